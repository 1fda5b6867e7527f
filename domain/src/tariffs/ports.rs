use super::rules::{Account, LedgerDraft};
use super::{LedgerEntry, MeterAccount, NewTariff, PriceAssignment, PriceScope, PriceWay, Tariff, TariffFilter};
use crate::ids::{AccountId, DeviceId, HomeId, TariffId, TenantId, UserId};
use crate::{DomainResult, Page, PageRequest};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Versioned tariffs of a tenant.
#[async_trait]
pub trait TariffRepo: Send + Sync {
    /// Stores the tariff as the next version of its code.
    ///
    /// # Errors
    /// `Duplicate` when another save of the same code took that version first.
    async fn create(&self, tenant: TenantId, input: NewTariff) -> DomainResult<Tariff>;
    /// # Errors
    /// `Unknown` on storage failure.
    async fn get(&self, tenant: TenantId, id: TariffId) -> DomainResult<Option<Tariff>>;
    /// Newest first.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn list(&self, tenant: TenantId, filter: &TariffFilter, page: PageRequest) -> DomainResult<Page<Tariff>>;
    /// Binds an electricity price to a scope (creating or replacing its assignment); a
    /// `None` keeps what the scope had.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn set_price(
        &self,
        tenant: TenantId,
        scope: PriceScope,
        tariff: Option<TariffId>,
        way: Option<PriceWay>,
    ) -> DomainResult<PriceAssignment>;
    /// The tenant-wide assignment plus, with `home`, the home's and its rooms'.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn prices(&self, tenant: TenantId, home: Option<HomeId>) -> DomainResult<Vec<PriceAssignment>>;
}

/// Meter accounts and their ledgers.
#[async_trait]
pub trait MeterAccountRepo: Send + Sync {
    /// # Errors
    /// `Unknown` on storage failure.
    async fn by_device(&self, tenant: TenantId, device: DeviceId) -> DomainResult<Option<MeterAccount>>;
    /// # Errors
    /// `Duplicate` when the device already has an account.
    async fn open(
        &self,
        tenant: TenantId,
        device: DeviceId,
        tariff: Option<TariffId>,
        account: &Account,
    ) -> DomainResult<MeterAccount>;
    /// Changes the tariff and the account's terms (pay and billing model, overdraft); money
    /// fields are left alone.
    ///
    /// # Errors
    /// `NotFound("meter account")`.
    async fn set_terms(
        &self,
        tenant: TenantId,
        id: AccountId,
        tariff: Option<TariffId>,
        account: &Account,
        cycle_started_at: Option<DateTime<Utc>>,
    ) -> DomainResult<MeterAccount>;
    /// In one transaction: moves the account from `expected` to `next` if its balance and
    /// cycle usage are still those of `expected` (compare-and-set), and appends `entry`.
    ///
    /// # Errors
    /// `InvalidTransition` when the account changed meanwhile (the caller retries);
    /// `Duplicate` when the entry's reference is already on the ledger.
    async fn apply(
        &self,
        tenant: TenantId,
        id: AccountId,
        expected: &Account,
        next: &Account,
        entry: LedgerDraft,
        by: Option<UserId>,
    ) -> DomainResult<LedgerEntry>;
    /// # Errors
    /// `Unknown` on storage failure.
    async fn entry_by_reference(
        &self,
        tenant: TenantId,
        id: AccountId,
        reference: &str,
    ) -> DomainResult<Option<LedgerEntry>>;
    /// Newest first.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn ledger(&self, tenant: TenantId, id: AccountId, page: PageRequest) -> DomainResult<Page<LedgerEntry>>;
}
