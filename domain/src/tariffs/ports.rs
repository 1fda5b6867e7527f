use super::billing::MeterState;
use super::rules::{Account, LedgerDraft};
use super::{
    DailyUsage, LedgerEntry, MeterAccount, NewTariff, PriceAssignment, PriceScope, PriceWay, Tariff, TariffFilter,
};
use crate::ids::{AccountId, DeviceId, HomeId, TariffId, TenantId, UserId};
use crate::{DomainResult, Page, PageRequest};
use async_trait::async_trait;

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
    /// Every version of the code (and integration) of `tariff`, oldest first.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn versions_of(&self, tenant: TenantId, tariff: TariffId) -> DomainResult<Vec<Tariff>>;
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
        meter: &MeterState,
    ) -> DomainResult<MeterAccount>;
    /// The account, locked for the rest of the transaction when the repository writes
    /// through one (a unit of work): concurrent writers of the account wait.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn lock_by_device(&self, tenant: TenantId, device: DeviceId) -> DomainResult<Option<MeterAccount>> {
        self.by_device(tenant, device).await
    }
    /// The accounts of `devices` (those that have one), locked as `lock_by_device` locks,
    /// in a fixed order.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn lock_by_devices(&self, tenant: TenantId, devices: &[DeviceId]) -> DomainResult<Vec<MeterAccount>> {
        let mut ids = devices.to_vec();
        ids.sort_by_key(|d| d.as_uuid());
        ids.dedup();
        let mut found = Vec::with_capacity(ids.len());
        for d in ids {
            found.extend(self.lock_by_device(tenant, d).await?);
        }
        Ok(found)
    }
    /// Writes each account's steps in order, as `save` of each step would (compare-and-set
    /// on the first step's `expected` version; each step bumps the version), in as few
    /// round trips as the store allows.
    ///
    /// # Errors
    /// As `save`.
    async fn save_steps(&self, tenant: TenantId, accounts: Vec<super::AccountSteps>) -> DomainResult<()> {
        for a in accounts {
            let mut expected = a.expected;
            for (next, draft) in a.steps {
                let (saved, _) = self.save(tenant, &expected, &next, draft, None).await?;
                expected = saved;
            }
        }
        Ok(())
    }
    /// In one transaction: moves the account from `expected` to `next` if it is still at
    /// `expected.version` (compare-and-set; the version is bumped), writing its tariff,
    /// terms, money, cycle and meter state, and appends `entry` when given.
    ///
    /// # Errors
    /// `InvalidTransition` when the account changed meanwhile (the caller retries);
    /// `Duplicate` when the entry's reference is already on the ledger.
    async fn save(
        &self,
        tenant: TenantId,
        expected: &MeterAccount,
        next: &MeterAccount,
        entry: Option<LedgerDraft>,
        by: Option<UserId>,
    ) -> DomainResult<(MeterAccount, Option<LedgerEntry>)>;
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
    /// Stores daily usage, replacing what a day had.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn save_daily_usage(&self, tenant: TenantId, days: Vec<DailyUsage>) -> DomainResult<()>;
    /// A device's days in `from..=to`, oldest first.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn daily_usage(
        &self,
        tenant: TenantId,
        device: DeviceId,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> DomainResult<Vec<DailyUsage>>;
    /// # Errors
    /// `Unknown` on storage failure.
    async fn ledger(&self, tenant: TenantId, id: AccountId, page: PageRequest) -> DomainResult<Page<LedgerEntry>>;
}
