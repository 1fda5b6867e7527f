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
    /// The register as last billed, and whether the supply is cut.
    pub meter: super::billing::MeterState,
    /// Bumped by every write: compare-and-set on it.
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

/// An account's writes in order (`MeterAccountRepo::save_steps`): from `expected`, each
/// step's next state with the entry it appends.
#[derive(Debug, Clone)]
pub struct AccountSteps {
    pub expected: MeterAccount,
    pub steps: Vec<(MeterAccount, Option<super::rules::LedgerDraft>)>,
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
    /// For a charge of a reading: how it was priced.
    pub detail: Option<super::billing::ChargeDetail>,
}

/// A meter's consumption on one day, as its vendor reported it (the gas DAS's 1015; a day
/// that crossed a tier has several prices).
#[derive(Debug, Clone, PartialEq)]
pub struct DailyUsage {
    pub device_id: DeviceId,
    pub day: chrono::NaiveDate,
    pub volume: Decimal,
    pub amount: Decimal,
    pub prices: Vec<Decimal>,
    pub fetched_at: DateTime<Utc>,
}

crate::enums::string_enum!(
    /// Which electricity price applies to a home's meters.
    PriceWay, "priceWay" {
        /// 1 房源电价: the home's own price (`elemeter_set_eleprice_by_home`).
        Home = "HOME",
        /// 2 公寓统一电价: the one price of the whole tenant (`client_eleprice`).
        Unified = "UNIFIED",
        /// 3 房间电价: each room's price (`room_eleprice`).
        Room = "ROOM",
    }
);

/// What an electricity price is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceScope {
    Tenant,
    Home(crate::ids::HomeId),
    Room(crate::ids::HomeId, crate::ids::RoomId),
}

/// An electricity price bound to a scope; a home's assignment also carries its way.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceAssignment {
    pub scope: PriceScope,
    pub tariff_id: Option<TariffId>,
    pub price_way: Option<PriceWay>,
    pub updated_at: DateTime<Utc>,
}

/// Picks the tariff that prices a meter with no tariff of its own: the home's way decides
/// between the room's, the home's and the tenant's price (default `HOME`); when the chosen
/// scope has none, the next broader one applies.
pub fn effective_price(
    prices: &[PriceAssignment],
    home: Option<crate::ids::HomeId>,
    room: Option<crate::ids::RoomId>,
) -> Option<TariffId> {
    let find = |want: PriceScope| prices.iter().find(|p| p.scope == want);
    let home_entry = home.and_then(|h| find(PriceScope::Home(h)));
    let way = home_entry.and_then(|p| p.price_way).unwrap_or(PriceWay::Home);
    let room_tariff = match (home, room) {
        (Some(h), Some(r)) => find(PriceScope::Room(h, r)).and_then(|p| p.tariff_id),
        _ => None,
    };
    let home_tariff = home_entry.and_then(|p| p.tariff_id);
    let tenant_tariff = find(PriceScope::Tenant).and_then(|p| p.tariff_id);
    match way {
        PriceWay::Room => room_tariff.or(home_tariff).or(tenant_tariff),
        PriceWay::Home => home_tariff.or(tenant_tariff),
        PriceWay::Unified => tenant_tariff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{HomeId, RoomId};

    fn at(scope: PriceScope, tariff: Option<TariffId>, way: Option<PriceWay>) -> PriceAssignment {
        PriceAssignment { scope, tariff_id: tariff, price_way: way, updated_at: Utc::now() }
    }

    #[test]
    fn the_home_way_picks_room_home_or_tenant_price() {
        let (h, r) = (HomeId::new(), RoomId::new());
        let (t_tenant, t_home, t_room) = (TariffId::new(), TariffId::new(), TariffId::new());
        let mut prices = vec![
            at(PriceScope::Tenant, Some(t_tenant), None),
            at(PriceScope::Home(h), Some(t_home), Some(PriceWay::Room)),
            at(PriceScope::Room(h, r), Some(t_room), None),
        ];
        assert_eq!(effective_price(&prices, Some(h), Some(r)), Some(t_room));
        assert_eq!(effective_price(&prices, Some(h), Some(RoomId::new())), Some(t_home), "room without price");
        prices[1].price_way = Some(PriceWay::Home);
        assert_eq!(effective_price(&prices, Some(h), Some(r)), Some(t_home));
        prices[1].price_way = Some(PriceWay::Unified);
        assert_eq!(effective_price(&prices, Some(h), Some(r)), Some(t_tenant));
        assert_eq!(effective_price(&prices, None, None), Some(t_tenant), "no home: the tenant's price");
        assert_eq!(effective_price(&prices[1..], Some(h), Some(r)), None, "unified without a tenant price");
    }
}
