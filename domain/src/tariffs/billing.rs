//! Centre billing of register readings, utility-neutral: a gas meter's DAS report, an
//! electricity or water meter's reading. Each reading of a centre-billed meter charges the
//! volume since the meter's previous reading, tier by tier, under the tariff version in
//! effect at the reading's own time (`PROTOCOLS.md` 4, pinned), within the billing cycle:
//!
//! - the tariff of a code in effect at `t` is its newest version with `effective_from <= t`
//!   (an adjustment takes effect on its date, for every meter on that code); before the
//!   first version's date, the first version;
//! - a cycle lasts the tariff's `cycle_months` from the account's `cycle_started_at`; a
//!   reading past its end starts the next cycle (the accumulated volume restarts at zero;
//!   the whole volume of that reading counts in the new cycle);
//! - adopting a version with `clear_cycle` (the gas standard's `clearFlag` 0) restarts the
//!   accumulated volume, its cycle starting on the version's date;
//! - a reading older than the last one billed, or a register that went backwards (a new
//!   meter, a rollover), charges nothing and only moves the baseline forward;
//! - a prepaid account falling below minus its overdraft asks for the valve to close, once
//!   (until a recharge lifts it back: then once to open).

use super::rules::{Account, BillingModel, LedgerDraft, PayModel, TierCharge};
use super::{MeterAccount, Tariff};
use crate::DomainResult;
use crate::ids::TariffId;
use chrono::{DateTime, Months, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A meter's register state on its account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeterState {
    /// The register at the last billed reading (or at registration).
    pub last_reading: Option<Decimal>,
    pub last_read_at: Option<DateTime<Utc>>,
    /// The tariff version the last charge used (a change to a `clear_cycle` version restarts
    /// the cycle once).
    pub billed_tariff_id: Option<TariffId>,
    /// The supply is cut (valve closed, relay open) for lack of credit.
    pub cut_off: bool,
}

/// A change of the supply the account's state calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SupplyChange {
    /// Close the valve (open the relay): the credit ran out.
    Cut,
    /// Open it again: a recharge lifted the balance back.
    Restore,
}

/// How a reading's charge was priced (kept on its ledger entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargeDetail {
    pub tariff_id: TariffId,
    pub tariff_version: i32,
    pub previous_reading: Decimal,
    pub reading: Decimal,
    pub read_at: DateTime<Utc>,
    pub tiers: Vec<TierCharge>,
    /// Cycle volume after this charge.
    pub cycle_usage: Decimal,
    /// The price of the next unit after this charge.
    pub price_after: Decimal,
    /// What the charge did to the supply.
    pub supply: Option<SupplyChange>,
}

/// What billing a reading came to.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadingBill {
    /// The charge to store (`None`: nothing charged, only the baseline moved).
    pub entry: Option<LedgerDraft>,
    /// The supply change the charge calls for.
    pub supply: Option<SupplyChange>,
    /// The tariff version in effect at the reading, if the account has one.
    pub tariff: Option<Tariff>,
    /// Why nothing was charged.
    pub note: Option<&'static str>,
}

/// The version of a code in effect at `at` (see the module doc). `versions` are one
/// code's versions, in any order.
pub fn in_effect(versions: &[Tariff], at: DateTime<Utc>) -> Option<&Tariff> {
    versions
        .iter()
        .filter(|v| v.effective_from <= at)
        .max_by_key(|v| (v.effective_from, v.version))
        .or_else(|| versions.iter().min_by_key(|v| (v.effective_from, v.version)))
}

/// The start of the cycle `at` falls in, cycles of `months` counted from `started`
/// (`started` itself when `at` is before it).
pub fn cycle_start(started: DateTime<Utc>, months: i32, at: DateTime<Utc>) -> DateTime<Utc> {
    let step = Months::new(u32::try_from(months.max(1)).unwrap_or(1));
    let mut start = started;
    // Bounded: a reading centuries after the cycle start is not a case to loop on.
    for _ in 0..12_000 {
        match start.checked_add_months(step) {
            Some(next) if next <= at => start = next,
            _ => break,
        }
    }
    start
}

/// A new meter's account terms from its attributes: `payModel` (`PREPAID`, default, or
/// `POSTPAID`), `billingModel` (`CENTRE`, default, or `METER_SIDE`), `overdraft` (default 0)
/// and `initialReading` (the register at installation, the first charge's baseline).
///
/// # Errors
/// `Invalid` naming the attribute (`attributes.payModel` ...).
pub fn opening_terms(attributes: &serde_json::Value) -> DomainResult<(Account, MeterState)> {
    let text = |k: &str| match attributes.get(k) {
        Some(serde_json::Value::String(s)) => Some(s.trim().to_owned()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let field = |k: &str| format!("attributes.{k}");
    let pay = match text("payModel") {
        None => PayModel::Prepaid,
        Some(s) => {
            PayModel::parse(&s).map_err(|_| crate::DomainError::invalid(field("payModel"), "PREPAID or POSTPAID"))?
        }
    };
    let billing = match text("billingModel") {
        None => BillingModel::Centre,
        Some(s) => BillingModel::parse(&s)
            .map_err(|_| crate::DomainError::invalid(field("billingModel"), "CENTRE or METER_SIDE"))?,
    };
    let decimal = |k: &str| -> DomainResult<Option<Decimal>> {
        text(k).map(|s| super::rules::parse_decimal(&field(k), &s)).transpose()
    };
    let overdraft = decimal("overdraft")?.unwrap_or(Decimal::ZERO);
    let account = Account::new(pay, billing, overdraft)
        .map_err(|_| crate::DomainError::invalid(field("overdraft"), "must not be negative"))?;
    let initial = decimal("initialReading")?.unwrap_or(Decimal::ZERO);
    if initial < Decimal::ZERO {
        return Err(crate::DomainError::invalid(field("initialReading"), "must not be negative"));
    }
    Ok((account, MeterState { last_reading: Some(initial), ..MeterState::default() }))
}

/// Whether the account is charged by the centre from its readings.
pub fn centre_billed(account: &Account) -> bool {
    account.billing_model == BillingModel::Centre
}

/// Bills the register `total` read at `at` on `acc` (changed in place), with `versions`
/// the versions of the account's tariff code. `reference` dedups the entry.
///
/// # Errors
/// `Invalid` when the charge is out of range or the reference is unusable.
pub fn bill_reading(
    acc: &mut MeterAccount,
    versions: &[Tariff],
    total: Decimal,
    at: DateTime<Utc>,
    reference: String,
) -> DomainResult<ReadingBill> {
    let tariff = in_effect(versions, at).cloned();
    let nothing =
        |tariff: Option<Tariff>, note| Ok(ReadingBill { entry: None, supply: None, tariff, note: Some(note) });
    if acc.meter.last_read_at.is_some_and(|last| at <= last) {
        return nothing(tariff, "a reading not newer than the last one billed");
    }
    let previous = acc.meter.last_reading;
    acc.meter.last_reading = Some(total);
    acc.meter.last_read_at = Some(at);
    let Some(previous) = previous else { return nothing(tariff, "the first reading sets the baseline") };
    if total < previous {
        return nothing(tariff, "the register went backwards: a new baseline");
    }
    if !centre_billed(&acc.account) {
        return nothing(tariff, "billed by the meter itself");
    }
    let Some(t) = tariff else { return nothing(None, "the meter has no tariff") };
    // Adopting a version that clears the cycle restarts it on the version's date.
    if t.clear_cycle && acc.meter.billed_tariff_id.is_some_and(|b| b != t.id) {
        acc.account.reset_cycle();
        acc.cycle_started_at = Some(t.effective_from);
    }
    let started = acc.cycle_started_at.unwrap_or(at);
    let start = cycle_start(started, t.cycle_months, at);
    if start != started {
        acc.account.reset_cycle();
    }
    acc.cycle_started_at = Some(start);
    acc.meter.billed_tariff_id = Some(t.id);
    let volume = total - previous;
    let used_before = acc.account.cycle_usage;
    let tiers = t.tiers.split(used_before, volume)?;
    let consumption = acc.account.consume(&t.tiers, volume, Some(reference))?;
    let supply = supply_after(acc);
    let detail = ChargeDetail {
        tariff_id: t.id,
        tariff_version: t.version,
        previous_reading: previous,
        reading: total,
        read_at: at,
        tiers,
        cycle_usage: acc.account.cycle_usage,
        price_after: t.tiers.price_at(acc.account.cycle_usage),
        supply,
    };
    let entry = LedgerDraft { detail: Some(detail), ..consumption.entry };
    Ok(ReadingBill { entry: Some(entry), supply, tariff: Some(t), note: None })
}

/// The supply change the account now calls for, recorded on it: a prepaid, centre-billed
/// account below minus its overdraft is cut once; lifted back, restored once.
pub fn supply_after(acc: &mut MeterAccount) -> Option<SupplyChange> {
    let a = &acc.account;
    if a.pay_model != PayModel::Prepaid || !centre_billed(a) {
        return None;
    }
    match (a.should_cut_off(), acc.meter.cut_off) {
        (true, false) => {
            acc.meter.cut_off = true;
            Some(SupplyChange::Cut)
        }
        (false, true) => {
            acc.meter.cut_off = false;
            Some(SupplyChange::Restore)
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ids::{AccountId, DeviceId, TenantId};
    use crate::tariffs::{Tier, Tiers, Utility};
    use chrono::TimeZone;
    use rust_decimal_macros::dec;

    fn day(d: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, m, d, 12, 0, 0).single().unwrap()
    }

    fn version(n: i32, from: DateTime<Utc>, prices: [Decimal; 3], clear: bool) -> Tariff {
        Tariff {
            id: TariffId::new(),
            tenant_id: TenantId::new(),
            integration_id: None,
            code: "G1".into(),
            version: n,
            utility: Utility::Gas,
            tiers: Tiers::new(vec![
                Tier { up_to: Some(dec!(10)), price: prices[0] },
                Tier { up_to: Some(dec!(20)), price: prices[1] },
                Tier { up_to: None, price: prices[2] },
            ])
            .unwrap(),
            cycle_months: 1,
            effective_from: from,
            clear_cycle: clear,
            created_at: from,
        }
    }

    fn account(balance: Decimal, overdraft: Decimal) -> MeterAccount {
        let mut a = Account::new(PayModel::Prepaid, BillingModel::Centre, overdraft).unwrap();
        a.balance = balance;
        MeterAccount {
            id: AccountId::new(),
            tenant_id: TenantId::new(),
            device_id: DeviceId::new(),
            tariff_id: None,
            account: a,
            cycle_started_at: Some(day(1, 1)),
            meter: MeterState { last_reading: Some(dec!(0)), ..MeterState::default() },
            version: 0,
            updated_at: day(1, 1),
        }
    }

    #[test]
    fn three_tiers_crossed_inside_one_reading() {
        let v = [version(1, day(1, 1), [dec!(1), dec!(2), dec!(3)], false)];
        let mut acc = account(dec!(100), dec!(0));
        let bill = bill_reading(&mut acc, &v, dec!(25), day(5, 1), "r1".into()).unwrap();
        let entry = bill.entry.unwrap();
        assert_eq!(entry.amount, dec!(-45)); // 10*1 + 10*2 + 5*3
        let d = entry.detail.unwrap();
        assert_eq!(d.tiers.iter().map(|t| t.volume).collect::<Vec<_>>(), vec![dec!(10), dec!(10), dec!(5)]);
        assert_eq!((d.cycle_usage, d.price_after), (dec!(25), dec!(3)));
        assert_eq!(acc.account.balance, dec!(55));
        assert_eq!(acc.meter.last_reading, Some(dec!(25)));
    }

    #[test]
    fn a_new_cycle_restarts_the_tiers() {
        let v = [version(1, day(1, 1), [dec!(1), dec!(2), dec!(3)], false)];
        let mut acc = account(dec!(100), dec!(0));
        bill_reading(&mut acc, &v, dec!(15), day(20, 1), "r1".into()).unwrap();
        assert_eq!(acc.account.cycle_usage, dec!(15));
        // February: a new one-month cycle; 5 more are charged in tier 1 again.
        let bill = bill_reading(&mut acc, &v, dec!(20), day(3, 2), "r2".into()).unwrap();
        assert_eq!(bill.entry.unwrap().amount, dec!(-5));
        assert_eq!(acc.account.cycle_usage, dec!(5));
        assert_eq!(acc.cycle_started_at, Some(day(1, 2)));
    }

    #[test]
    fn an_adjustment_applies_from_its_date_only() {
        let tomorrow = day(6, 1);
        let v = [
            version(1, day(1, 1), [dec!(1), dec!(1), dec!(1)], false),
            version(2, tomorrow, [dec!(5), dec!(5), dec!(5)], false),
        ];
        let mut acc = account(dec!(100), dec!(0));
        let today = bill_reading(&mut acc, &v, dec!(2), day(5, 1), "r1".into()).unwrap();
        assert_eq!((today.entry.unwrap().amount, today.tariff.unwrap().version), (dec!(-2), 1));
        let next = bill_reading(&mut acc, &v, dec!(4), day(7, 1), "r2".into()).unwrap();
        assert_eq!((next.entry.unwrap().amount, next.tariff.unwrap().version), (dec!(-10), 2));
    }

    #[test]
    fn a_clearing_adjustment_restarts_the_cycle_volume_once() {
        let v = [
            version(1, day(1, 1), [dec!(1), dec!(2), dec!(3)], false),
            version(2, day(10, 1), [dec!(1), dec!(2), dec!(3)], true),
        ];
        let mut acc = account(dec!(1000), dec!(0));
        bill_reading(&mut acc, &v, dec!(15), day(5, 1), "r1".into()).unwrap();
        let b = bill_reading(&mut acc, &v, dec!(20), day(12, 1), "r2".into()).unwrap();
        assert_eq!(b.entry.unwrap().amount, dec!(-5), "cleared: tier 1 again");
        let b = bill_reading(&mut acc, &v, dec!(30), day(13, 1), "r3".into()).unwrap();
        assert_eq!(b.entry.unwrap().amount, dec!(-15), "not cleared a second time: 5*1 + 5*2");
    }

    #[test]
    fn older_and_backward_readings_charge_nothing() {
        let v = [version(1, day(1, 1), [dec!(1), dec!(1), dec!(1)], false)];
        let mut acc = account(dec!(100), dec!(0));
        bill_reading(&mut acc, &v, dec!(10), day(5, 1), "r1".into()).unwrap();
        let old = bill_reading(&mut acc, &v, dec!(12), day(4, 1), "r0".into()).unwrap();
        assert!(old.entry.is_none());
        assert_eq!(acc.meter.last_reading, Some(dec!(10)));
        let back = bill_reading(&mut acc, &v, dec!(3), day(6, 1), "r2".into()).unwrap();
        assert!(back.entry.is_none());
        let after = bill_reading(&mut acc, &v, dec!(4), day(7, 1), "r3".into()).unwrap();
        assert_eq!(after.entry.unwrap().amount, dec!(-1), "charged from the new baseline");
    }

    #[test]
    fn the_supply_is_cut_once_and_restored_once() {
        let v = [version(1, day(1, 1), [dec!(1), dec!(1), dec!(1)], false)];
        let mut acc = account(dec!(5), dec!(2));
        let b = bill_reading(&mut acc, &v, dec!(6), day(2, 1), "r1".into()).unwrap();
        assert_eq!(b.supply, None, "-1 is within the overdraft of 2");
        let b = bill_reading(&mut acc, &v, dec!(8), day(3, 1), "r2".into()).unwrap();
        assert_eq!(b.supply, Some(SupplyChange::Cut));
        for (i, total) in [dec!(9), dec!(10), dec!(11)].into_iter().enumerate() {
            let b = bill_reading(&mut acc, &v, total, day(4 + i as u32, 1), format!("x{i}")).unwrap();
            assert_eq!(b.supply, None, "already cut");
        }
        acc.account.recharge(dec!(100), None).unwrap();
        assert_eq!(supply_after(&mut acc), Some(SupplyChange::Restore));
        assert_eq!(supply_after(&mut acc), None);
    }

    #[test]
    fn postpaid_and_meter_side_accounts_are_never_cut() {
        let v = [version(1, day(1, 1), [dec!(1), dec!(1), dec!(1)], false)];
        let mut acc = account(dec!(0), dec!(0));
        acc.account.pay_model = PayModel::Postpaid;
        assert_eq!(bill_reading(&mut acc, &v, dec!(50), day(2, 1), "r".into()).unwrap().supply, None);
        let mut acc = account(dec!(0), dec!(0));
        acc.account.billing_model = BillingModel::MeterSide;
        let b = bill_reading(&mut acc, &v, dec!(50), day(2, 1), "r".into()).unwrap();
        assert!(b.entry.is_none());
        assert_eq!(acc.account.balance, dec!(0));
    }

    #[test]
    fn cycles_count_from_their_start() {
        assert_eq!(cycle_start(day(15, 1), 1, day(14, 2)), day(15, 1));
        assert_eq!(cycle_start(day(15, 1), 1, day(15, 2)), day(15, 2));
        assert_eq!(cycle_start(day(15, 1), 3, day(20, 7)), day(15, 7));
        assert_eq!(cycle_start(day(15, 3), 1, day(1, 1)), day(15, 3));
    }
}
