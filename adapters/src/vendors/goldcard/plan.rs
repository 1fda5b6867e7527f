//! What the platform owes the DAS for each change (seed 003 2.4.1-2.4.7), planned in the
//! change's own unit of work: a new gas meter is registered (1001), a cancelled one
//! cancelled (1002), a replaced one replaced (1009); a tariff saved on a `GOLDCARD`
//! integration is created or adjusted there (1007), a meter switched to a tariff is
//! switched (1008); a supply change or a user's valve command is a 1004 `paramNo` 03, a
//! recharge of a meter that bills itself a 1004 `paramNo` 05.
//!
//! Payloads carry the seed's field names with text values; `serialNo` (the delivery's
//! idempotency key), `companyCode`, `factorNo` and `sdateTime` are added by `client.rs` when
//! it sends. Deliveries of one integration share an order key, so they reach the DAS in
//! the order of the changes.

use super::PREFIX;
use super::sign;
use async_trait::async_trait;
use domain::deliveries::{DeliveryKind, NewDelivery};
use domain::devices::{Device, DeviceKind};
use domain::ids::{IntegrationId, TenantId};
use domain::integrations::{IntegrationKind, IntegrationRepo};
use domain::outbound::{Message, MeterCommand, Planner};
use domain::tariffs::{BillingModel, LedgerKind, PayModel, SupplyChange, Tariff};
use domain::{DomainError, DomainResult};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// A fresh 32-hex `serialNo`.
pub(crate) fn serial() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A 32-hex `serialNo` fixed by what it is for: the same change planned twice is one message.
fn serial_of(parts: &str) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(parts.as_bytes()))
}

fn text(d: Decimal) -> String {
    d.normalize().to_string()
}

/// `initNum`-style readings: 4 decimals.
fn reading(d: Decimal) -> String {
    format!("{:.4}", d.round_dp(4))
}

fn attr(d: &Device, k: &str) -> Option<String> {
    match d.attributes.get(k)? {
        Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `userNo`: the meter's customer number (at most 17 characters), else its meter number.
fn user_no(d: &Device) -> String {
    attr(d, "userNo").unwrap_or_else(|| d.external_id.clone())
}

fn delivery(
    integration: IntegrationId,
    code: &'static str,
    key: String,
    subject: String,
    payload: Value,
) -> NewDelivery {
    NewDelivery {
        integration_id: integration,
        kind: DeliveryKind::of(PREFIX, code),
        idempotency_key: key,
        order_key: Some(order(integration)),
        payload,
        subject: Some(subject),
    }
}

/// One order per integration: a meter's registration names a price the DAS must have,
/// a switch of price names a meter it must have; the calls are few.
fn order(integration: IntegrationId) -> String {
    format!("goldcard:{integration}")
}

/// The head every meter call carries.
fn meter_head(d: &Device) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("userNo".into(), json!(user_no(d)));
    m.insert("meterNo".into(), json!(d.external_id));
    if let Some(id) = attr(d, "dasDeviceId") {
        m.insert("deviceId".into(), json!(id));
    }
    m
}

/// 1001 from a new meter: its attributes in the product's names (`payModel`,
/// `billingModel`, `overdraft`, `initialReading`) and the seed's (`userNo`, `meterType`,
/// `priceCode`, `address`, `phoneNum`, `customerType`).
///
/// # Errors
/// `Invalid` naming the attribute the DAS requires and the meter lacks.
pub(crate) fn register(d: &Device) -> DomainResult<Value> {
    let (account, meter) = domain::tariffs::billing::opening_terms(&d.attributes)?;
    let user = user_no(d);
    if user.chars().count() > 17 {
        return Err(DomainError::invalid("attributes.userNo", "at most 17 characters (the DAS's userNo)"));
    }
    let required =
        |k: &str| attr(d, k).ok_or_else(|| DomainError::invalid(format!("attributes.{k}"), "required by the DAS"));
    let mut m = meter_head(d);
    m.insert("username".into(), json!(d.name));
    m.insert("meterType".into(), json!(required("meterType")?));
    m.insert("priceCode".into(), json!(required("priceCode")?));
    m.insert("initNum".into(), json!(reading(meter.last_reading.unwrap_or_default())));
    m.insert("billingModel".into(), json!(if account.billing_model == BillingModel::MeterSide { "1" } else { "2" }));
    m.insert("payModel".into(), json!(if account.pay_model == PayModel::Prepaid { "1" } else { "2" }));
    m.insert("overdraft".into(), json!(text(account.overdraft)));
    for k in ["commNo", "initCycle", "address", "phoneNum", "customerType"] {
        if let Some(v) = attr(d, k) {
            m.insert(k.into(), json!(v));
        }
    }
    Ok(Value::Object(m))
}

/// 1007 from a tariff version: version 1 creates the price, later versions adjust it from
/// their date (`clearFlag` 0 when the version restarts the cycle volume).
pub(crate) fn price(t: &Tariff) -> Value {
    let tiers = t.tiers.as_slice();
    let mut detail = Map::new();
    detail.insert("priceLength".into(), json!(tiers.len().to_string()));
    for (i, tier) in tiers.iter().enumerate() {
        detail.insert(format!("price{}", i + 1), json!(text(tier.price)));
        if i + 1 < tiers.len()
            && let Some(end) = tier.up_to
        {
            detail.insert(format!("ladder{}End", i + 1), json!(text(end)));
        }
    }
    let date = t.effective_from.with_timezone(&sign::shanghai()).format("%Y-%m-%d").to_string();
    let mut m = Map::new();
    m.insert("priceCode".into(), json!(t.code));
    m.insert("priceVersion".into(), json!(format!("V{}", t.version)));
    m.insert("priceProperty".into(), json!(if t.version == 1 { "1" } else { "2" }));
    m.insert("priceBeginDate".into(), json!(date));
    m.insert("cycleLength".into(), json!(t.cycle_months.to_string()));
    m.insert("priceType".into(), json!(if tiers.len() == 1 { "1" } else { "2" }));
    if t.version > 1 {
        m.insert("clearFlag".into(), json!(if t.clear_cycle { "0" } else { "1" }));
    }
    m.insert("priceDetail".into(), Value::Object(detail));
    Value::Object(m)
}

/// 1004 `paramNo` 03: `valveSet` 0 open, 1 close.
fn valve(d: &Device, open: bool) -> Value {
    let mut m = meter_head(d);
    m.insert("paramNo".into(), json!("03"));
    m.insert("paramContext".into(), json!({"total": "1", "data": {"valveSet": if open { "0" } else { "1" }}}));
    Value::Object(m)
}

/// Plans the DAS calls of gas meters on `GOLDCARD` integrations.
pub struct GoldcardPlanner {
    integrations: Arc<dyn IntegrationRepo>,
}

impl GoldcardPlanner {
    pub fn new(integrations: Arc<dyn IntegrationRepo>) -> Self {
        Self { integrations }
    }

    async fn is_goldcard(&self, tenant: TenantId, id: IntegrationId) -> DomainResult<bool> {
        Ok(self.integrations.get(tenant, id).await?.is_some_and(|i| i.kind == IntegrationKind::Goldcard))
    }

    async fn gas_meter(&self, tenant: TenantId, d: &Device) -> DomainResult<bool> {
        Ok(d.kind == DeviceKind::GasMeter && self.is_goldcard(tenant, d.integration_id).await?)
    }
}

#[async_trait]
impl Planner for GoldcardPlanner {
    async fn plan(&self, tenant: TenantId, msg: &Message) -> DomainResult<Vec<NewDelivery>> {
        let one = |d: &Device, code, key, payload| {
            Ok(vec![delivery(d.integration_id, code, key, format!("device:{}", d.id), payload)])
        };
        match msg {
            Message::DeviceSaved { before: None, after } if self.gas_meter(tenant, after).await? => {
                one(after, "1001", serial(), register(after)?)
            }
            Message::TariffSaved { tariff } => match tariff.integration_id {
                Some(i) if self.is_goldcard(tenant, i).await? => {
                    Ok(vec![delivery(i, "1007", serial(), format!("tariff:{}", tariff.code), price(tariff))])
                }
                _ => Ok(Vec::new()),
            },
            Message::TariffAssigned { device, tariff } if self.gas_meter(tenant, device).await? => {
                let mut m = meter_head(device);
                m.insert("newPriceCode".into(), json!(tariff.code));
                one(device, "1008", serial(), Value::Object(m))
            }
            Message::SupplyChanged { device, change, reference } if self.gas_meter(tenant, device).await? => {
                let open = *change == SupplyChange::Restore;
                let key = serial_of(&format!("supply:{}:{reference}:{open}", device.id));
                one(device, "1004", key, valve(device, open))
            }
            Message::MeterCommand { device, command, .. } if self.gas_meter(tenant, device).await? => {
                one(device, "1004", serial(), valve(device, *command == MeterCommand::ValveOpen))
            }
            Message::AccountCredited { device, account, entry }
                if entry.kind == LedgerKind::Recharge
                    && account.account.billing_model == BillingModel::MeterSide
                    && self.gas_meter(tenant, device).await? =>
            {
                let at = entry.at.with_timezone(&sign::shanghai()).format("%Y-%m-%d %H:%M:%S").to_string();
                let stream = entry.reference.clone().unwrap_or_else(|| entry.id.to_string());
                let mut m = meter_head(device);
                m.insert("paramNo".into(), json!("05"));
                m.insert(
                    "paramContext".into(),
                    json!({"total": "1", "data": {
                        "rechargeAmount": text(entry.amount),
                        "rechargeCount": "1",
                        "rechargeDate": at,
                        "rechargeStream": stream,
                    }}),
                );
                one(device, "1004", serial_of(&format!("recharge:{}", entry.id)), Value::Object(m))
            }
            Message::CommandCancelled { device, key, kind }
                if kind.as_str() == "goldcard.1004" && self.gas_meter(tenant, device).await? =>
            {
                let mut m = meter_head(device);
                m.insert("sendSerialNo".into(), json!(key));
                one(device, "1005", serial_of(&format!("cancel:{key}")), Value::Object(m))
            }
            Message::MeterCancelled { device, reason } if self.gas_meter(tenant, device).await? => {
                let mut m = meter_head(device);
                let last = device.latest.get(super::map::VOLUME).and_then(|v| v.get("value")).and_then(Value::as_str);
                let num = last.and_then(|s| domain::tariffs::parse_decimal("volume", s).ok()).unwrap_or_default();
                m.insert("initNum".into(), json!(reading(num)));
                m.insert("reason".into(), json!(reason.chars().take(50).collect::<String>()));
                one(device, "1002", serial(), Value::Object(m))
            }
            Message::MeterReplaced { device, old_external_id, old_reading, new_reading }
                if self.gas_meter(tenant, device).await? =>
            {
                let mut m = meter_head(device);
                m.insert("meterNo".into(), json!(old_external_id));
                m.insert("newMeterNo".into(), json!(device.external_id));
                m.insert("newMeterType".into(), json!(attr(device, "meterType").unwrap_or_default()));
                if let Some(c) = attr(device, "commNo") {
                    m.insert("newCommNo".into(), json!(c));
                }
                m.insert("oldNum".into(), json!(reading(*old_reading)));
                m.insert("newNum".into(), json!(reading(*new_reading)));
                one(device, "1009", serial(), Value::Object(m))
            }
            _ => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use domain::tariffs::{Tier, Tiers, Utility};
    use rust_decimal_macros::dec;

    fn tariff(version: i32, tiers: Vec<Tier>, clear: bool) -> Tariff {
        let at = chrono::Utc.with_ymd_and_hms(2019, 7, 6, 16, 0, 0).single().expect("t");
        Tariff {
            id: domain::ids::TariffId::new(),
            tenant_id: TenantId::new(),
            integration_id: None,
            code: "201907031439".into(),
            version,
            utility: Utility::Gas,
            tiers: Tiers::new(tiers).expect("tiers"),
            cycle_months: 12,
            effective_from: at,
            clear_cycle: clear,
            created_at: at,
        }
    }

    #[test]
    fn tiered_prices_render_as_the_seed_example() {
        let tiers = vec![
            Tier { up_to: Some(dec!(50)), price: dec!(1.4) },
            Tier { up_to: Some(dec!(300)), price: dec!(2.4) },
            Tier { up_to: None, price: dec!(3.4) },
        ];
        let adjust = price(&tariff(2, tiers, true));
        assert_eq!(
            adjust,
            json!({
                "priceCode": "201907031439", "priceVersion": "V2", "priceProperty": "2",
                "priceBeginDate": "2019-07-07", "cycleLength": "12", "priceType": "2", "clearFlag": "0",
                "priceDetail": {"priceLength": "3", "price1": "1.4", "ladder1End": "50", "price2": "2.4",
                    "ladder2End": "300", "price3": "3.4"}
            })
        );
        let single = price(&tariff(1, vec![Tier { up_to: None, price: dec!(2.5) }], false));
        assert_eq!(single["priceProperty"], "1");
        assert_eq!(single["priceType"], "1");
        assert_eq!(single["priceDetail"], json!({"priceLength": "1", "price1": "2.5"}));
        assert!(single.get("clearFlag").is_none());
    }

    #[test]
    fn serials_are_32_hex() {
        for s in [serial(), serial_of("x")] {
            assert_eq!(s.len(), 32);
            assert!(s.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }
}
