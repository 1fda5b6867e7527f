use super::rules::{Account, LedgerKind, Tiers, Utility};
use crate::ids::{AccountId, DeviceId, EntryId, IntegrationId, TariffId, TenantId, UserId};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

/// One version of a tariff; saving a tariff with an existing code adds a version.
#[derive(Debug, Clone, PartialEq)]
pub struct Tariff {
    pub id: TariffId,
    pub tenant_id: TenantId,
    pub integration_id: Option<IntegrationId>,
    pub code: String,
    pub version: i32,
    pub utility: Utility,
    pub tiers: Tiers,
    /// Length of the tier cycle in months: usage restarts from zero when a cycle ends.
    pub cycle_months: i32,
    pub effective_from: DateTime<Utc>,
    /// Whether adopting this version restarts the accounts' cycle usage (the gas standard's
    /// 清零 flag).
    pub clear_cycle: bool,
    pub created_at: DateTime<Utc>,
}

/// A validated tariff to store as the next version of its code.
#[derive(Debug, Clone)]
pub struct NewTariff {
    pub integration_id: Option<IntegrationId>,
    pub code: String,
    pub utility: Utility,
    pub tiers: Tiers,
    pub cycle_months: i32,
    pub effective_from: DateTime<Utc>,
    pub clear_cycle: bool,
}

/// `tariffs(filter)`.
#[derive(Debug, Clone, Default)]
pub struct TariffFilter {
    pub utility: Option<Utility>,
    pub code: Option<String>,
    pub integration_id: Option<IntegrationId>,
}

/// A meter's account: its money state (`account`) and the tariff that prices it.
#[derive(Debug, Clone, PartialEq)]
pub struct MeterAccount {
    pub id: AccountId,
    pub tenant_id: TenantId,
    pub device_id: DeviceId,
    pub tariff_id: Option<TariffId>,
    pub account: Account,
    pub cycle_started_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// A stored ledger entry: every change of a balance is one.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerEntry {
    pub id: EntryId,
    pub account_id: AccountId,
    pub kind: LedgerKind,
    /// Signed: positive adds to the balance.
    pub amount: Decimal,
    pub volume: Option<Decimal>,
    pub balance_after: Decimal,
    /// The payer's trade number, the reading's id ... unique per account when present.
    pub reference: Option<String>,
    pub created_by: Option<UserId>,
    pub at: DateTime<Utc>,
}
