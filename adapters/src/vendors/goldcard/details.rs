//! `1014` meter details (seed 003 2.4.9): the DAS's own record of a meter, asked for on
//! demand (`meterDetails`). Its valve states differ from the reports': here 1 open, 2
//! closed, 3 unknown. The seed spells two fields oddly (`beseNum`, `sumRechargeAomunt`);
//! the plain spellings are read too.
// Parsers of tenant and vendor input (issue 17): no indexing that can panic.
#![cfg_attr(not(test), warn(clippy::indexing_slicing))]

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use domain::tariffs::parse_decimal;
use rust_decimal::Decimal;
use serde_json::Value;

/// The valve as the DAS last knew it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DasValve {
    Open,
    Closed,
    Unknown,
}

/// A gas meter as its DAS describes it, in the product's words.
#[derive(Debug, Clone, PartialEq)]
pub struct GasMeterDetails {
    /// The DAS's id of the meter.
    pub das_device_id: Option<String>,
    pub meter_no: String,
    /// `meterState` 2 (in use); 1 is out of use.
    pub active: bool,
    pub installed_on: Option<NaiveDate>,
    /// The register at installation (`beseNum`).
    pub base_reading: Option<Decimal>,
    pub reading: Option<Decimal>,
    pub valve: DasValve,
    pub balance: Option<Decimal>,
    pub price: Option<Decimal>,
    pub price_code: Option<String>,
    pub last_read_at: Option<DateTime<Utc>>,
    pub total_volume: Option<Decimal>,
    pub total_spent: Option<Decimal>,
    pub total_recharged: Option<Decimal>,
    pub last_recharge_amount: Option<Decimal>,
    pub last_recharge_at: Option<DateTime<Utc>>,
    pub recharge_count: Option<i32>,
    /// Battery voltage as reported (`voltage`).
    pub voltage: Option<Decimal>,
    /// `signalStrength`, in percent.
    pub signal: Option<i32>,
    pub user_name: Option<String>,
    pub address: Option<String>,
}

fn text(v: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match v.get(*k) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

fn decimal(v: &Value, keys: &[&str]) -> Option<Decimal> {
    let name = keys.first().copied().unwrap_or_default();
    text(v, keys).and_then(|s| parse_decimal(name, &s).ok())
}

fn moment(v: &Value, key: &str) -> Option<DateTime<Utc>> {
    let s = text(v, &[key])?;
    NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M:%S").ok().and_then(super::wire::shanghai_to_utc)
}

/// Reads a 1014 `echoMsg`; `meter_no` when the answer does not repeat it.
pub(crate) fn details_of(msg: &Value, meter_no: &str) -> GasMeterDetails {
    let integer = |k: &str| text(msg, &[k]).and_then(|s| s.trim_end_matches('%').parse::<i32>().ok());
    GasMeterDetails {
        das_device_id: text(msg, &["deviceId"]),
        meter_no: text(msg, &["meterNo"]).unwrap_or_else(|| meter_no.to_owned()),
        active: text(msg, &["meterState"]).as_deref() != Some("1"),
        installed_on: text(msg, &["setUpTime"])
            .and_then(|s| NaiveDate::parse_from_str(s.get(..10).unwrap_or(&s), "%Y-%m-%d").ok()),
        base_reading: decimal(msg, &["beseNum", "baseNum"]),
        reading: decimal(msg, &["readingNum"]),
        valve: match text(msg, &["valveState"]).as_deref() {
            Some("1") => DasValve::Open,
            Some("2") => DasValve::Closed,
            _ => DasValve::Unknown,
        },
        balance: decimal(msg, &["balance"]),
        price: decimal(msg, &["price"]),
        price_code: text(msg, &["priceCode"]),
        last_read_at: moment(msg, "lastReadingTime"),
        total_volume: decimal(msg, &["sumUseGas"]),
        total_spent: decimal(msg, &["sumUseMoney"]),
        total_recharged: decimal(msg, &["sumRechargeAomunt", "sumRechargeAmount"]),
        last_recharge_amount: decimal(msg, &["lastRechargeAmount"]),
        last_recharge_at: moment(msg, "lastRechargeDate"),
        recharge_count: integer("rechargeCount"),
        voltage: decimal(msg, &["voltage"]),
        signal: integer("signalStrength"),
        user_name: text(msg, &["userName"]),
        address: text(msg, &["address"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_seeds_fields_are_read_with_its_spellings() {
        let d = details_of(
            &json!({"serialNo": "s", "deviceId": "das-1", "meterNo": "201911260001", "meterState": "2",
                    "setUpTime": "2020-03-01", "beseNum": 12.5, "readingNum": "130.25", "valveState": "2",
                    "balance": "-3.5", "price": "2.5", "priceCode": "P1", "lastReadingTime": "2020-04-01 08:00:00",
                    "sumRechargeAomunt": "100", "rechargeCount": "3", "signalStrength": "80%", "voltage": "3.6"}),
            "x",
        );
        assert_eq!(d.meter_no, "201911260001");
        assert!(d.active);
        assert_eq!(d.base_reading, Some(Decimal::new(125, 1)));
        assert_eq!(d.reading, Some(Decimal::new(13025, 2)));
        assert_eq!(d.valve, DasValve::Closed);
        assert_eq!(d.balance, Some(Decimal::new(-35, 1)));
        assert_eq!(d.total_recharged, Some(Decimal::from(100)));
        assert_eq!(d.recharge_count, Some(3));
        assert_eq!(d.signal, Some(80));
        assert_eq!(d.last_read_at.map(|t| t.to_rfc3339()).as_deref(), Some("2020-04-01T00:00:00+00:00"));
        assert_eq!(d.installed_on, NaiveDate::from_ymd_opt(2020, 3, 1));
        let out = details_of(&json!({"meterState": "1", "valveState": "9"}), "m");
        assert!(!out.active);
        assert_eq!(out.meter_no, "m");
        assert_eq!(out.valve, DasValve::Unknown);
    }
}
