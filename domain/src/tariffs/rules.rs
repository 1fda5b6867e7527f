//! Tariffs and meter accounts: tiered (阶梯) prices as the gas CIS<->DAS standard and flat
//! electricity prices use them.
//!
//! How the vendor vocabulary maps onto this module (no wire code here, adapters translate):
//!
//! - Gas CIS<->DAS standard, price creation (`priceType` 1 单价 / 2 阶梯): `priceDetail` carries
//!   `priceLength` tiers, `priceN` (N 阶价格) and `ladderNEnd` (N 阶止方, the cumulative cycle
//!   volume where tier N ends). Tier N is [`Tier`] `{ up_to: ladderNEnd, price: priceN }`; the
//!   last tier has no `ladderNEnd` and is unbounded (`up_to: None`). A single price (单价) is one
//!   unbounded tier ([`Tiers::single`]).
//! - `cycleLength` (months, "启用阶梯需填") is the billing cycle the tier bounds count within:
//!   [`Account::cycle_usage`] is the cycle's cumulative volume and [`Account::reset_cycle`]
//!   starts a new cycle. `initCycle` (初始周期累积量, for a replaced meter) is a starting
//!   `cycle_usage`.
//! - Meter registration: `payModel` 1 预付费 / 2 后付费 is [`PayModel`]; `billingModel`
//!   1 表端结算 / 2-3 中心计费 is [`BillingModel`]; `overdraft` (透支额度, default 0, prepaid
//!   only) is [`Account::overdraft`].
//! - A flat electricity price (room or apartment) is the single-tier case.
//!
//! All arithmetic is exact [`Decimal`] arithmetic: nothing is rounded here (results keep the
//! scale of their inputs; rounding to a currency unit, if any, is the caller's decision).

use crate::enums::string_enum;
use crate::{DomainError, DomainResult};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

string_enum!(
    /// What a meter measures.
    Utility, "utility" {
        Gas = "GAS",
        Electricity = "ELECTRICITY",
        Water = "WATER",
    }
);

string_enum!(
    /// Who carries the credit risk (CIS `payModel`: 1 预付费, 2 后付费).
    PayModel, "payModel" {
        /// Pay first: the balance (plus the overdraft) is what may still be consumed; running out
        /// closes the valve / opens the relay.
        Prepaid = "PREPAID",
        /// Consume first, settle the bill later: the balance may go arbitrarily negative.
        Postpaid = "POSTPAID",
    }
);

string_enum!(
    /// Where the money is computed (CIS `billingModel`).
    BillingModel, "billingModel" {
        /// 表端计费 / 表端结算: the meter keeps its own balance and prices; the account here
        /// mirrors it.
        MeterSide = "METER_SIDE",
        /// 中心计费: the centre (this system or the CIS) prices each reading and drives the valve.
        Centre = "CENTRE",
    }
);

string_enum!(
    /// What a ledger entry records.
    LedgerKind, "kind" {
        /// Money paid in (positive amount).
        Recharge = "RECHARGE",
        /// Money for consumed volume (negative or zero amount, with the volume).
        Charge = "CHARGE",
        /// A signed manual correction.
        Adjustment = "ADJUSTMENT",
    }
);

/// Parses a decimal written as plain text: an optional sign, digits, optionally `.` and more
/// digits (`"12"`, `"-0.5"`, `"2.500"`). No exponent, separators, spaces or rounding: a value
/// that does not fit a [`Decimal`] exactly is refused. The scale is kept as written.
///
/// # Errors
/// `Invalid { field }` naming `field` when `s` is not such a number.
pub fn parse_decimal(field: &str, s: &str) -> DomainResult<Decimal> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (int, frac) = match digits.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (digits, None),
    };
    let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || !frac.is_none_or(all_digits) {
        return Err(DomainError::invalid(field, format!("not a decimal number: {s:?}")));
    }
    Decimal::from_str_exact(s).map_err(|_| DomainError::invalid(field, format!("decimal out of range: {s:?}")))
}

/// One step of a tiered price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tier {
    /// The cumulative cycle volume where this tier ends (CIS `ladderNEnd`, 止方); `None` means
    /// unbounded, which only the last tier may be.
    pub up_to: Option<Decimal>,
    /// The price of one unit of volume in this tier (CIS `priceN`), `>= 0`.
    pub price: Decimal,
}

/// A validated tier table: at least one tier, bounds positive and strictly ascending, only the
/// last tier unbounded, prices non-negative.
///
/// If the last tier has a bound, volume beyond it is charged at the last tier's price: the
/// last bound is kept (it round-trips) but does not cap anything.
///
/// Serialises as the JSON array of its tiers; deserialising validates like [`Tiers::new`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Tier>", into = "Vec<Tier>")]
pub struct Tiers(Vec<Tier>);

impl Tiers {
    /// # Errors
    /// `Invalid { field: "tiers" }` if `tiers` is empty; `Invalid { field: "tiers[i].upTo" }` if
    /// a bound is not positive, not strictly above the previous one, or an unbounded tier is not
    /// the last; `Invalid { field: "tiers[i].price" }` if a price is negative.
    pub fn new(tiers: Vec<Tier>) -> DomainResult<Self> {
        if tiers.is_empty() {
            return Err(DomainError::invalid("tiers", "at least one tier is required"));
        }
        let mut previous = Decimal::ZERO;
        for (i, tier) in tiers.iter().enumerate() {
            match tier.up_to {
                Some(bound) if bound <= previous => {
                    let message = if i == 0 {
                        "must be positive".to_owned()
                    } else {
                        format!("must be above the previous tier's bound {previous}")
                    };
                    return Err(DomainError::invalid(format!("tiers[{i}].upTo"), message));
                }
                Some(bound) => previous = bound,
                None if i + 1 < tiers.len() => {
                    return Err(DomainError::invalid(
                        format!("tiers[{i}].upTo"),
                        "only the last tier may be unbounded",
                    ));
                }
                None => {}
            }
            if tier.price < Decimal::ZERO {
                return Err(DomainError::invalid(format!("tiers[{i}].price"), "must not be negative"));
            }
        }
        Ok(Self(tiers))
    }

    /// One flat price (CIS 单价, a flat electricity price): a single unbounded tier.
    ///
    /// # Errors
    /// `Invalid { field: "tiers[0].price" }` if `price` is negative.
    pub fn single(price: Decimal) -> DomainResult<Self> {
        Self::new(vec![Tier { up_to: None, price }])
    }

    pub fn as_slice(&self) -> &[Tier] {
        &self.0
    }

    /// The money for `volume` when the cycle has already used `used_before`: each unit is
    /// priced by the tier its cumulative cycle position falls in, so a consumption crossing a
    /// bound is split between tiers (CIS "当日跨阶梯有多条"). Volume past the last bound is
    /// charged at the last tier's price. Exact, no rounding.
    ///
    /// Charging is additive: `charge(u, a) + charge(u + a, b) == charge(u, a + b)`.
    ///
    /// # Errors
    /// `Invalid { field: "volume" }` if `volume < 0` or the result does not fit a [`Decimal`];
    /// `Invalid { field: "usedBefore" }` if `used_before < 0`.
    pub fn charge(&self, used_before: Decimal, volume: Decimal) -> DomainResult<Decimal> {
        let out_of_range = || DomainError::invalid("volume", "the charge is out of range");
        self.split(used_before, volume)?
            .iter()
            .try_fold(Decimal::ZERO, |total, part| total.checked_add(part.amount).ok_or_else(out_of_range))
    }

    /// The same charge, tier by tier: each tier's share of the volume, its price and its
    /// money (only tiers with volume appear). The shares add up to `volume`; the amounts
    /// add up to [`Tiers::charge`].
    ///
    /// # Errors
    /// As [`Tiers::charge`].
    pub fn split(&self, used_before: Decimal, volume: Decimal) -> DomainResult<Vec<TierCharge>> {
        if used_before < Decimal::ZERO {
            return Err(DomainError::invalid("usedBefore", "must not be negative"));
        }
        if volume < Decimal::ZERO {
            return Err(DomainError::invalid("volume", "must not be negative"));
        }
        let out_of_range = || DomainError::invalid("volume", "the charge is out of range");
        let end = used_before.checked_add(volume).ok_or_else(out_of_range)?;
        let mut parts = Vec::new();
        let mut lower = Decimal::ZERO;
        for (i, tier) in self.0.iter().enumerate() {
            // The last tier takes everything above the previous bound, bounded or not.
            let upper = if i + 1 == self.0.len() { None } else { tier.up_to };
            let from = used_before.max(lower);
            let to = upper.map_or(end, |u| end.min(u));
            if to > from {
                let share = to - from;
                let amount = share.checked_mul(tier.price).ok_or_else(out_of_range)?;
                let tier_no = u32::try_from(i + 1).unwrap_or(u32::MAX);
                parts.push(TierCharge { tier: tier_no, volume: share, price: tier.price, amount });
            }
            match upper {
                Some(u) if u < end => lower = u,
                _ => break,
            }
        }
        Ok(parts)
    }

    /// The price of the next unit when the cycle has used `usage` (at a tier's bound, the
    /// next tier's price).
    pub fn price_at(&self, usage: Decimal) -> Decimal {
        let last = self.0.len().saturating_sub(1);
        self.0
            .iter()
            .enumerate()
            .find(|(i, t)| *i == last || t.up_to.is_some_and(|u| usage < u))
            .map_or(Decimal::ZERO, |(_, t)| t.price)
    }
}

/// One tier's share of a charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TierCharge {
    /// 1-based tier number.
    pub tier: u32,
    pub volume: Decimal,
    pub price: Decimal,
    pub amount: Decimal,
}

impl TryFrom<Vec<Tier>> for Tiers {
    type Error = DomainError;

    fn try_from(tiers: Vec<Tier>) -> DomainResult<Self> {
        Self::new(tiers)
    }
}

impl From<Tiers> for Vec<Tier> {
    fn from(tiers: Tiers) -> Self {
        tiers.0
    }
}

/// A ledger entry about to be stored: what happened and the balance it left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerDraft {
    pub kind: LedgerKind,
    /// Signed: positive for a recharge, negative (or zero) for a charge, either for an
    /// adjustment.
    pub amount: Decimal,
    /// The consumed volume, for a charge.
    pub volume: Option<Decimal>,
    /// The account balance right after this entry.
    pub balance_after: Decimal,
    /// An external reference (payment id, reading id ...) the caller can deduplicate on.
    pub reference: Option<String>,
    /// For a charge of a reading: how it was priced.
    pub detail: Option<super::billing::ChargeDetail>,
}

/// What [`Account::consume`] answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumption {
    /// The charge, recorded even when it exhausts the credit (the volume was consumed).
    pub entry: LedgerDraft,
    /// Prepaid only: the balance is now below `-overdraft`, the caller should close the valve.
    pub cut_off: bool,
}

/// The balance implied by a ledger: the sum of its amounts.
pub fn ledger_balance<'a>(entries: impl IntoIterator<Item = &'a LedgerDraft>) -> Decimal {
    entries.into_iter().map(|e| e.amount).sum()
}

/// Longest accepted ledger reference (the storage column's width).
pub const MAX_REFERENCE_LEN: usize = 128;

/// A meter's money account. Every mutation returns the [`LedgerDraft`] to store, so that the
/// balance always equals [`ledger_balance`] of the stored entries. A refused operation leaves
/// the account unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub pay_model: PayModel,
    pub billing_model: BillingModel,
    pub balance: Decimal,
    /// Credit limit (CIS 透支额度), `>= 0`: a prepaid balance may go down to `-overdraft`
    /// before the supply is cut. Ignored for postpaid accounts.
    pub overdraft: Decimal,
    /// Volume used in the current billing cycle: where the next consumption starts on the
    /// tiers.
    pub cycle_usage: Decimal,
}

impl Account {
    /// A new account with a zero balance, at the start of a cycle.
    ///
    /// # Errors
    /// `Invalid { field: "overdraft" }` if `overdraft < 0`.
    pub fn new(pay_model: PayModel, billing_model: BillingModel, overdraft: Decimal) -> DomainResult<Self> {
        if overdraft < Decimal::ZERO {
            return Err(DomainError::invalid("overdraft", "must not be negative"));
        }
        Ok(Self { pay_model, billing_model, balance: Decimal::ZERO, overdraft, cycle_usage: Decimal::ZERO })
    }

    /// Whether the supply should be cut now: a prepaid account below `-overdraft`. After a
    /// recharge or adjustment this tells the caller whether the valve may reopen.
    pub fn should_cut_off(&self) -> bool {
        self.pay_model == PayModel::Prepaid && self.balance < -self.overdraft
    }

    /// Money paid in.
    ///
    /// # Errors
    /// `Invalid { field: "amount" }` unless `amount > 0` (or if the balance would overflow);
    /// `Invalid { field: "reference" }` for an empty or over-long reference.
    pub fn recharge(&mut self, amount: Decimal, reference: Option<String>) -> DomainResult<LedgerDraft> {
        if amount <= Decimal::ZERO {
            return Err(DomainError::invalid("amount", "must be positive"));
        }
        self.post(LedgerKind::Recharge, amount, None, reference)
    }

    /// Charges `volume` on `tiers` from the current `cycle_usage`, adds it to `cycle_usage` and
    /// takes the money from the balance. A prepaid account falling below `-overdraft` is still
    /// charged (the volume was consumed) and the answer says `cut_off: true`; a postpaid account
    /// is never cut off. The billing model does not change the arithmetic: for a meter-side
    /// account this mirrors what the meter computed itself.
    ///
    /// # Errors
    /// `Invalid { field: "volume" }` if `volume < 0` or the amounts would overflow;
    /// `Invalid { field: "reference" }` for an empty or over-long reference.
    pub fn consume(&mut self, tiers: &Tiers, volume: Decimal, reference: Option<String>) -> DomainResult<Consumption> {
        if volume < Decimal::ZERO {
            return Err(DomainError::invalid("volume", "must not be negative"));
        }
        check_reference(reference.as_deref())?;
        let out_of_range = || DomainError::invalid("volume", "out of range");
        let money = tiers.charge(self.cycle_usage, volume)?;
        let cycle_usage = self.cycle_usage.checked_add(volume).ok_or_else(out_of_range)?;
        // `-money` on zero would be a negative zero; keep the ledger's zero plain.
        let amount = if money.is_zero() { Decimal::ZERO } else { -money };
        let balance = self.balance.checked_add(amount).ok_or_else(out_of_range)?;
        self.cycle_usage = cycle_usage;
        self.balance = balance;
        let entry = LedgerDraft {
            kind: LedgerKind::Charge,
            amount,
            volume: Some(volume),
            balance_after: balance,
            reference,
            detail: None,
        };
        Ok(Consumption { entry, cut_off: self.should_cut_off() })
    }

    /// A signed manual correction.
    ///
    /// # Errors
    /// `Invalid { field: "amount" }` if `amount` is zero (or the balance would overflow);
    /// `Invalid { field: "reference" }` for an empty or over-long reference.
    pub fn adjust(&mut self, amount: Decimal, reference: Option<String>) -> DomainResult<LedgerDraft> {
        if amount.is_zero() {
            return Err(DomainError::invalid("amount", "must not be zero"));
        }
        self.post(LedgerKind::Adjustment, amount, None, reference)
    }

    /// Starts a new billing cycle: the tiers count from zero again. The balance is untouched.
    pub fn reset_cycle(&mut self) {
        self.cycle_usage = Decimal::ZERO;
    }

    fn post(
        &mut self,
        kind: LedgerKind,
        amount: Decimal,
        volume: Option<Decimal>,
        reference: Option<String>,
    ) -> DomainResult<LedgerDraft> {
        check_reference(reference.as_deref())?;
        let balance = self
            .balance
            .checked_add(amount)
            .ok_or_else(|| DomainError::invalid("amount", "the balance is out of range"))?;
        self.balance = balance;
        Ok(LedgerDraft { kind, amount, volume, balance_after: balance, reference, detail: None })
    }
}

fn check_reference(reference: Option<&str>) -> DomainResult<()> {
    match reference {
        Some(r) if r.trim().is_empty() => Err(DomainError::invalid("reference", "must not be blank")),
        Some(r) if r.chars().count() > MAX_REFERENCE_LEN => {
            Err(DomainError::invalid("reference", format!("at most {MAX_REFERENCE_LEN} characters")))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    fn tier(up_to: Option<Decimal>, price: Decimal) -> Tier {
        Tier { up_to, price }
    }

    /// The worked example: 100 at 2.5, the next 100 at 3, the rest at 4.
    fn three_tiers() -> Tiers {
        Tiers::new(vec![tier(Some(dec!(100)), dec!(2.5)), tier(Some(dec!(200)), dec!(3)), tier(None, dec!(4))]).unwrap()
    }

    fn field_of<T: std::fmt::Debug>(result: DomainResult<T>) -> String {
        match result {
            Err(DomainError::Invalid { field, .. }) => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn charges_across_tiers() {
        let t = three_tiers();
        assert_eq!(t.charge(dec!(0), dec!(250)).unwrap(), dec!(750)); // 100*2.5 + 100*3 + 50*4
        assert_eq!(t.charge(dec!(150), dec!(100)).unwrap(), dec!(350)); // 50*3 + 50*4
        assert_eq!(t.charge(dec!(0), dec!(100)).unwrap(), dec!(250));
        assert_eq!(t.charge(dec!(100), dec!(100)).unwrap(), dec!(300));
        assert_eq!(t.charge(dec!(300), dec!(10)).unwrap(), dec!(40));
        assert_eq!(t.charge(dec!(99.5), dec!(1)).unwrap(), dec!(2.75)); // 0.5*2.5 + 0.5*3
        assert_eq!(t.charge(dec!(42), dec!(0)).unwrap(), dec!(0));
    }

    #[test]
    fn three_tiers_crossed_in_one_reading_split_per_tier() {
        let parts = three_tiers().split(dec!(50), dec!(200)).unwrap();
        let shape: Vec<_> = parts.iter().map(|p| (p.tier, p.volume, p.price, p.amount)).collect();
        assert_eq!(
            shape,
            vec![
                (1, dec!(50), dec!(2.5), dec!(125)),
                (2, dec!(100), dec!(3), dec!(300)),
                (3, dec!(50), dec!(4), dec!(200))
            ]
        );
        assert_eq!(three_tiers().price_at(dec!(0)), dec!(2.5));
        assert_eq!(three_tiers().price_at(dec!(100)), dec!(3), "a bound starts the next tier");
        assert_eq!(three_tiers().price_at(dec!(250)), dec!(4));
        assert_eq!(three_tiers().price_at(dec!(99.9)), dec!(2.5));
    }

    #[test]
    fn bounded_last_tier_overflows_at_its_price() {
        let t = Tiers::new(vec![tier(Some(dec!(50)), dec!(1.4)), tier(Some(dec!(80)), dec!(2.4))]).unwrap();
        // 50*1.4 + 30*2.4 + 20*2.4
        assert_eq!(t.charge(dec!(0), dec!(100)).unwrap(), dec!(190));
        assert_eq!(t.charge(dec!(120), dec!(10)).unwrap(), dec!(24));
        assert_eq!(t.as_slice()[1].up_to, Some(dec!(80)));
    }

    #[test]
    fn single_price() {
        let t = Tiers::single(dec!(0.65)).unwrap();
        assert_eq!(t.charge(dec!(1000), dec!(12.5)).unwrap(), dec!(8.125));
        assert_eq!(field_of(Tiers::single(dec!(-1))), "tiers[0].price");
    }

    #[test]
    fn refuses_invalid_tier_tables() {
        assert_eq!(field_of(Tiers::new(vec![])), "tiers");
        assert_eq!(field_of(Tiers::new(vec![tier(Some(dec!(0)), dec!(1))])), "tiers[0].upTo");
        assert_eq!(field_of(Tiers::new(vec![tier(Some(dec!(-5)), dec!(1))])), "tiers[0].upTo");
        let descending = vec![tier(Some(dec!(100)), dec!(1)), tier(Some(dec!(50)), dec!(2)), tier(None, dec!(3))];
        assert_eq!(field_of(Tiers::new(descending)), "tiers[1].upTo");
        let equal = vec![tier(Some(dec!(100)), dec!(1)), tier(Some(dec!(100.0)), dec!(2))];
        assert_eq!(field_of(Tiers::new(equal)), "tiers[1].upTo");
        let unbounded_first = vec![tier(None, dec!(1)), tier(Some(dec!(100)), dec!(2))];
        assert_eq!(field_of(Tiers::new(unbounded_first)), "tiers[0].upTo");
        let negative_price = vec![tier(Some(dec!(100)), dec!(1)), tier(None, dec!(-0.01))];
        assert_eq!(field_of(Tiers::new(negative_price)), "tiers[1].price");
        assert!(Tiers::new(vec![tier(Some(dec!(10)), dec!(0)), tier(None, dec!(0))]).is_ok());
    }

    #[test]
    fn refuses_negative_charge_inputs() {
        let t = three_tiers();
        assert_eq!(field_of(t.charge(dec!(0), dec!(-1))), "volume");
        assert_eq!(field_of(t.charge(dec!(-1), dec!(1))), "usedBefore");
        assert_eq!(field_of(t.charge(Decimal::MAX, dec!(1))), "volume");
    }

    #[test]
    fn tiers_json_round_trips_and_validates() {
        let t = three_tiers();
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                {"upTo": "100", "price": "2.5"},
                {"upTo": "200", "price": "3"},
                {"upTo": null, "price": "4"},
            ])
        );
        assert_eq!(serde_json::from_value::<Tiers>(json).unwrap(), t);
        let bad = serde_json::json!([{"upTo": "10", "price": "1"}, {"upTo": "5", "price": "1"}]);
        let err = serde_json::from_value::<Tiers>(bad).unwrap_err();
        assert!(err.to_string().contains("tiers[1].upTo"), "{err}");
    }

    #[test]
    fn enums_round_trip() {
        for u in Utility::ALL {
            assert_eq!(Utility::parse(u.as_str()).unwrap(), *u);
        }
        for p in PayModel::ALL {
            assert_eq!(PayModel::parse(p.as_str()).unwrap(), *p);
        }
        for b in BillingModel::ALL {
            assert_eq!(BillingModel::parse(b.as_str()).unwrap(), *b);
        }
        for k in LedgerKind::ALL {
            assert_eq!(LedgerKind::parse(k.as_str()).unwrap(), *k);
        }
        assert_eq!(field_of(PayModel::parse("prepaid")), "payModel");
        assert_eq!(field_of(BillingModel::parse("CIS")), "billingModel");
        assert_eq!(field_of(LedgerKind::parse("REFUND")), "kind");
        assert_eq!(field_of(Utility::parse("HEAT")), "utility");
    }

    #[test]
    fn parses_decimals_strictly() {
        assert_eq!(parse_decimal("balance", "12").unwrap(), dec!(12));
        assert_eq!(parse_decimal("balance", "-0.50").unwrap(), dec!(-0.5));
        assert_eq!(parse_decimal("balance", "-0.50").unwrap().to_string(), "-0.50");
        assert_eq!(parse_decimal("balance", "+3.125").unwrap(), dec!(3.125));
        for bad in ["", " 1", "1 ", "abc", "1.", ".5", "1e3", "1_000", "1,5", "--1", "-", "1.2.3", "NaN"] {
            assert_eq!(field_of(parse_decimal("balance", bad)), "balance", "{bad:?}");
        }
        assert_eq!(field_of(parse_decimal("amount", "99999999999999999999999999999999")), "amount");
        let d = dec!(-1234.5678);
        assert_eq!(parse_decimal("x", &d.to_string()).unwrap(), d);
    }

    #[test]
    fn account_validation() {
        assert_eq!(field_of(Account::new(PayModel::Prepaid, BillingModel::Centre, dec!(-1))), "overdraft");
        let mut a = Account::new(PayModel::Prepaid, BillingModel::Centre, dec!(0)).unwrap();
        let before = a.clone();
        assert_eq!(field_of(a.recharge(dec!(0), None)), "amount");
        assert_eq!(field_of(a.recharge(dec!(-5), None)), "amount");
        assert_eq!(field_of(a.adjust(dec!(0), None)), "amount");
        assert_eq!(field_of(a.adjust(dec!(0.00), None)), "amount");
        assert_eq!(field_of(a.consume(&three_tiers(), dec!(-1), None)), "volume");
        assert_eq!(field_of(a.recharge(dec!(1), Some(" ".into()))), "reference");
        assert_eq!(field_of(a.recharge(dec!(1), Some("x".repeat(MAX_REFERENCE_LEN + 1)))), "reference");
        assert_eq!(field_of(a.consume(&three_tiers(), dec!(1), Some(String::new()))), "reference");
        assert_eq!(a, before);
    }

    #[test]
    fn recharge_and_adjust_post_entries() {
        let mut a = Account::new(PayModel::Prepaid, BillingModel::MeterSide, dec!(0)).unwrap();
        let r = a.recharge(dec!(100), Some("pay-1".into())).unwrap();
        assert_eq!(
            r,
            LedgerDraft {
                kind: LedgerKind::Recharge,
                amount: dec!(100),
                volume: None,
                balance_after: dec!(100),
                reference: Some("pay-1".into()),
                detail: None,
            }
        );
        let adj = a.adjust(dec!(-12.34), None).unwrap();
        assert_eq!((adj.kind, adj.amount, adj.balance_after), (LedgerKind::Adjustment, dec!(-12.34), dec!(87.66)));
        assert_eq!(a.balance, dec!(87.66));
        assert_eq!(ledger_balance([&r, &adj]), a.balance);
    }

    #[test]
    fn prepaid_is_cut_off_below_the_overdraft() {
        let t = three_tiers();
        let mut a = Account::new(PayModel::Prepaid, BillingModel::Centre, dec!(50)).unwrap();
        a.recharge(dec!(200), None).unwrap();

        let c = a.consume(&t, dec!(80), Some("r1".into())).unwrap(); // 80*2.5 = 200 -> 0
        assert_eq!(c.entry.kind, LedgerKind::Charge);
        assert_eq!(c.entry.amount, dec!(-200));
        assert_eq!(c.entry.volume, Some(dec!(80)));
        assert_eq!(c.entry.balance_after, dec!(0));
        assert!(!c.cut_off);

        let c = a.consume(&t, dec!(20), None).unwrap(); // 20*2.5 = 50 -> -50 == -overdraft
        assert_eq!(c.entry.balance_after, dec!(-50));
        assert!(!c.cut_off);

        let c = a.consume(&t, dec!(1), None).unwrap(); // crosses into tier 2: 1*3 -> -53
        assert_eq!(c.entry.amount, dec!(-3));
        assert_eq!(c.entry.balance_after, dec!(-53));
        assert!(c.cut_off, "charged anyway, but the valve must close");
        assert_eq!(a.balance, dec!(-53));
        assert_eq!(a.cycle_usage, dec!(101));
        assert!(a.should_cut_off());

        a.recharge(dec!(3), None).unwrap();
        assert!(!a.should_cut_off(), "back at -overdraft the valve may reopen");

        let c = a.consume(&t, dec!(0), None).unwrap();
        assert_eq!(c.entry.amount, dec!(0));
        assert!(!c.entry.amount.is_sign_negative());
        assert!(!c.cut_off);
    }

    #[test]
    fn postpaid_is_never_cut_off() {
        let t = three_tiers();
        let mut a = Account::new(PayModel::Postpaid, BillingModel::Centre, dec!(0)).unwrap();
        let c = a.consume(&t, dec!(250), None).unwrap();
        assert_eq!(c.entry.balance_after, dec!(-750));
        assert!(!c.cut_off);
        assert!(!a.should_cut_off());
        let c = a.consume(&t, dec!(1000), None).unwrap();
        assert_eq!(c.entry.amount, dec!(-4000));
        assert!(!c.cut_off);
    }

    #[test]
    fn reset_cycle_restarts_the_tiers() {
        let t = three_tiers();
        let mut a = Account::new(PayModel::Postpaid, BillingModel::Centre, dec!(0)).unwrap();
        a.consume(&t, dec!(150), None).unwrap();
        assert_eq!(a.consume(&t, dec!(10), None).unwrap().entry.amount, dec!(-30));
        a.reset_cycle();
        assert_eq!(a.cycle_usage, dec!(0));
        assert_eq!(a.consume(&t, dec!(10), None).unwrap().entry.amount, dec!(-25));
        assert_eq!(a.balance, dec!(-455)); // 100*2.5 + 50*3, 10*3, then 10*2.5
    }

    // ---- property tests ----

    /// A non-negative decimal with 2 or 3 decimal places, mantissa in `0..=max`.
    fn decimal(max: i64) -> impl Strategy<Value = Decimal> {
        (0..=max, 2u32..=3).prop_map(|(m, scale)| Decimal::new(m, scale))
    }

    /// A signed decimal with 0 to 3 decimal places, zero included (to hit the refusals).
    fn signed_decimal() -> impl Strategy<Value = Decimal> {
        (-100_000i64..=100_000, 0u32..=3).prop_map(|(m, scale)| Decimal::new(m, scale))
    }

    /// A valid tier table of 1-5 tiers; `sorted` makes prices non-decreasing.
    fn tiers(sorted: bool) -> impl Strategy<Value = Tiers> {
        (prop::collection::vec((decimal(50_000).prop_map(|w| w + dec!(0.01)), decimal(100_000)), 1..=5), any::<bool>())
            .prop_map(move |(rows, bounded_last)| {
                let n = rows.len();
                let mut prices: Vec<Decimal> = rows.iter().map(|(_, p)| *p).collect();
                if sorted {
                    prices.sort();
                }
                let mut bound = Decimal::ZERO;
                let table = rows
                    .into_iter()
                    .zip(prices)
                    .enumerate()
                    .map(|(i, ((width, _), price))| {
                        bound += width;
                        Tier { up_to: (i + 1 < n || bounded_last).then_some(bound), price }
                    })
                    .collect();
                Tiers::new(table).unwrap()
            })
    }

    fn volume() -> impl Strategy<Value = Decimal> {
        decimal(1_000_000)
    }

    #[derive(Debug, Clone)]
    enum Op {
        Recharge(Decimal),
        Consume(Decimal),
        Adjust(Decimal),
        Reset,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => signed_decimal().prop_map(Op::Recharge),
            5 => signed_decimal().prop_map(Op::Consume),
            2 => signed_decimal().prop_map(Op::Adjust),
            1 => Just(Op::Reset),
        ]
    }

    proptest! {
        #[test]
        fn charge_is_additive_over_any_split(t in tiers(false), used in volume(), v1 in volume(), v2 in volume()) {
            let split = t.charge(used, v1).unwrap() + t.charge(used + v1, v2).unwrap();
            prop_assert_eq!(split, t.charge(used, v1 + v2).unwrap());
        }

        #[test]
        fn charge_is_never_negative_and_within_price_range(t in tiers(false), used in volume(), v in volume()) {
            let c = t.charge(used, v).unwrap();
            prop_assert!(c >= Decimal::ZERO);
            let prices = t.as_slice().iter().map(|t| t.price);
            let (lo, hi) = (prices.clone().min().unwrap(), prices.max().unwrap());
            prop_assert!(lo * v <= c && c <= hi * v, "{} not in [{}, {}]", c, lo * v, hi * v);
        }

        #[test]
        fn tier_splits_add_up_to_the_volume_and_the_charge(t in tiers(false), used in volume(), v in volume()) {
            let parts = t.split(used, v).unwrap();
            prop_assert_eq!(parts.iter().map(|p| p.volume).sum::<Decimal>(), v);
            for p in &parts {
                prop_assert_eq!(p.amount, p.volume * p.price);
                prop_assert!(p.volume > Decimal::ZERO);
            }
            prop_assert_eq!(parts.iter().map(|p| p.amount).sum::<Decimal>(), t.charge(used, v).unwrap());
            prop_assert!(parts.windows(2).all(|w| w[0].tier < w[1].tier));
        }

        #[test]
        fn charge_is_monotone_in_volume(t in tiers(false), used in volume(), v in volume(), extra in volume()) {
            prop_assert!(t.charge(used, v + extra).unwrap() >= t.charge(used, v).unwrap());
        }

        #[test]
        fn charge_is_monotone_in_usage_with_rising_prices(
            t in tiers(true), used in volume(), later in volume(), v in volume(),
        ) {
            prop_assert!(t.charge(used + later, v).unwrap() >= t.charge(used, v).unwrap());
        }

        #[test]
        fn ledger_matches_the_account(
            t in tiers(false),
            prepaid in any::<bool>(),
            overdraft in decimal(100_000),
            ops in prop::collection::vec(op(), 0..40),
        ) {
            let pay_model = if prepaid { PayModel::Prepaid } else { PayModel::Postpaid };
            let mut account = Account::new(pay_model, BillingModel::Centre, overdraft).unwrap();
            let mut entries: Vec<LedgerDraft> = Vec::new();
            let mut consumed = Decimal::ZERO;
            for op in ops {
                let before = account.clone();
                let posted = match op {
                    Op::Recharge(amount) => account.recharge(amount, None),
                    Op::Adjust(amount) => account.adjust(amount, None),
                    Op::Consume(v) => account.consume(&t, v, None).map(|c| {
                        assert_eq!(c.cut_off, prepaid && c.entry.balance_after < -overdraft);
                        c.entry
                    }),
                    Op::Reset => {
                        account.reset_cycle();
                        consumed = Decimal::ZERO;
                        continue;
                    }
                };
                match posted {
                    Ok(entry) => {
                        if let Some(v) = entry.volume {
                            consumed += v;
                            prop_assert!(entry.amount <= Decimal::ZERO);
                        }
                        prop_assert_eq!(entry.balance_after, ledger_balance(&entries) + entry.amount);
                        entries.push(entry);
                    }
                    Err(e) => {
                        prop_assert!(matches!(e, DomainError::Invalid { .. }), "unexpected error {e:?}");
                        prop_assert_eq!(&account, &before, "a refused operation must not change the account");
                    }
                }
                prop_assert_eq!(account.balance, ledger_balance(&entries));
                prop_assert_eq!(account.cycle_usage, consumed);
            }
            let mut running = Decimal::ZERO;
            for e in &entries {
                running += e.amount;
                prop_assert_eq!(e.balance_after, running);
            }
            prop_assert_eq!(account.balance, running);
        }
    }
}
