//! `DAILY_USAGE` (seed 003 2.4.8 `1013`, 2.4.10 `1015`): once a day, and on
//! `runScheduledJob`, each gas meter's usage of the past two days is fetched (1015) and
//! kept per day (a day that crossed a tier comes as several rows: their volumes and
//! amounts add up); then the DAS's latest reading of every meter (1013) fills what the DAS
//! could not report to us: a reading newer than the last one billed is recorded and
//! charged, once (its reference is the meter and the reading's time).

use super::client::GoldcardSender;
use super::map::VOLUME;
use super::wire::shanghai_to_utc;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use domain::devices::{Device, DeviceFilter, DeviceKind, DeviceRepo, NewReading};
use domain::ingest::{Fact, IngestService};
use domain::integrations::Integration;
use domain::schedules::PeriodicJob;
use domain::tariffs::{DailyUsage, TariffService, parse_decimal};
use domain::{DomainError, DomainResult, PageRequest};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

fn text(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn decimal(v: &Value, k: &str) -> Option<Decimal> {
    parse_decimal(k, &text(v, k)).ok()
}

/// 1015 `gasData` rows as days: volumes and amounts summed, prices listed.
pub(crate) fn days_of(device: &Device, gas_data: &Value, now: DateTime<Utc>) -> Vec<DailyUsage> {
    let mut days: BTreeMap<NaiveDate, DailyUsage> = BTreeMap::new();
    for row in gas_data.as_array().into_iter().flatten() {
        let Ok(day) = NaiveDate::parse_from_str(&text(row, "useDate"), "%Y-%m-%d") else { continue };
        let (Some(volume), Some(amount)) = (decimal(row, "useGas"), decimal(row, "useAmount")) else { continue };
        let d = days.entry(day).or_insert_with(|| DailyUsage {
            device_id: device.id,
            day,
            volume: Decimal::ZERO,
            amount: Decimal::ZERO,
            prices: Vec::new(),
            fetched_at: now,
        });
        d.volume += volume;
        d.amount += amount;
        if let Some(p) = decimal(row, "price") {
            d.prices.push(p);
        }
    }
    days.into_values().collect()
}

/// The daily gas job of one integration.
pub struct GasDailyUsage {
    das: GoldcardSender,
    devices: Arc<dyn DeviceRepo>,
    tariffs: TariffService,
    ingest: IngestService,
}

impl GasDailyUsage {
    pub fn new(
        das: GoldcardSender,
        devices: Arc<dyn DeviceRepo>,
        tariffs: TariffService,
        ingest: IngestService,
    ) -> Self {
        Self { das, devices, tariffs, ingest }
    }

    async fn meters(&self, integration: &Integration) -> DomainResult<Vec<Device>> {
        let filter = DeviceFilter {
            integration_id: Some(integration.id),
            kind: Some(DeviceKind::GasMeter),
            ..DeviceFilter::default()
        };
        let (mut all, mut after) = (Vec::new(), None);
        loop {
            let page = self.devices.list(integration.tenant_id, &filter, PageRequest::new(Some(100), after)?).await?;
            after = page.items.last().map(|d| d.id.as_uuid());
            let more = page.has_next_page;
            all.extend(page.items);
            if !more {
                return Ok(all);
            }
        }
    }

    /// 1015 for each meter; answers (days stored, failures and the first reason).
    async fn usage(
        &self,
        integration: &Integration,
        meters: &[Device],
        tick: DateTime<Utc>,
    ) -> (usize, usize, Option<String>) {
        let today = tick.with_timezone(&super::sign::shanghai()).date_naive();
        let (from, to) = (today - chrono::Duration::days(2), today - chrono::Duration::days(1));
        let (mut stored, mut failed, mut first) = (0, 0, None);
        for m in meters {
            let user = m.attributes.get("userNo").and_then(Value::as_str).unwrap_or(&m.external_id).to_owned();
            let ask = json!({"userNo": user, "meterNo": m.external_id,
                             "startTime": from.format("%Y-%m-%d").to_string(), "endTime": to.format("%Y-%m-%d").to_string()});
            let answer = self.das.read(integration.tenant_id, integration.id, "1015", ask).await;
            let days = match answer {
                Ok(msg) => days_of(m, msg.get("gasData").unwrap_or(&Value::Null), tick),
                Err(why) => {
                    failed += 1;
                    first.get_or_insert(format!("{}: {why}", m.external_id));
                    continue;
                }
            };
            stored += days.len();
            if let Err(e) = self.tariffs.record_daily_usage(integration.tenant_id, days).await {
                failed += 1;
                first.get_or_insert(format!("{}: {e}", m.external_id));
            }
        }
        (stored, failed, first)
    }

    /// 1013: readings the DAS has that we have not billed. Answers how many were applied.
    async fn reconcile(&self, integration: &Integration, meters: &[Device]) -> DomainResult<usize> {
        let answer = self
            .das
            .read(integration.tenant_id, integration.id, "1013", json!({}))
            .await
            .map_err(|m| DomainError::upstream(super::VENDOR, format!("1013: {m}")))?;
        let rows = answer.pointer("/readingData/data").and_then(Value::as_array).cloned().unwrap_or_default();
        let mut applied = 0;
        for row in rows {
            let meter_no = text(&row, "gasMeterNo");
            let Some(device) = meters.iter().find(|d| d.external_id == meter_no) else { continue };
            let Some(total) = decimal(&row, "readNum") else { continue };
            let Some(at) = NaiveDateTime::parse_from_str(&text(&row, "readDate"), "%Y-%m-%d %H:%M:%S")
                .ok()
                .and_then(shanghai_to_utc)
            else {
                continue;
            };
            let account = self.tariffs.account_in(integration.tenant_id, device.id).await?;
            if account.as_ref().is_some_and(|a| a.meter.last_read_at.is_some_and(|last| at <= last)) {
                continue;
            }
            let facts = vec![
                Fact::Readings {
                    device: device.id,
                    readings: vec![NewReading {
                        metric: VOLUME.into(),
                        value: json!(total.normalize().to_string()),
                        ts: at,
                    }],
                },
                Fact::MeterTotal {
                    device: device.id,
                    total,
                    at,
                    reference: format!("1013:{meter_no}:{}", at.timestamp()),
                    answered: false,
                },
            ];
            self.ingest.apply(integration.tenant_id, None, facts, None).await?;
            applied += 1;
        }
        Ok(applied)
    }
}

#[async_trait]
impl PeriodicJob for GasDailyUsage {
    async fn run(&self, integration: &Integration, tick: DateTime<Utc>) -> DomainResult<String> {
        let meters = self.meters(integration).await?;
        let (stored, failed, first) = self.usage(integration, &meters, tick).await;
        let applied = self.reconcile(integration, &meters).await?;
        let mut summary =
            format!("{} meters: {stored} days of usage stored, {applied} missed readings applied", meters.len());
        if failed > 0 {
            summary.push_str(&format!("; {failed} failed, first: {}", first.unwrap_or_default()));
            if failed == meters.len() {
                return Err(DomainError::upstream(super::VENDOR, summary));
            }
        }
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn rows_of_one_day_add_up() {
        let d = Device {
            id: domain::ids::DeviceId::new(),
            tenant_id: domain::ids::TenantId::new(),
            integration_id: domain::ids::IntegrationId::new(),
            external_id: "m".into(),
            kind: DeviceKind::GasMeter,
            name: "m".into(),
            home_id: None,
            room_id: None,
            online: None,
            online_changed_at: None,
            battery: None,
            signal: None,
            last_seen_at: None,
            attributes: json!({}),
            latest: json!({}),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        let rows = json!([
            {"useDate": "2020-01-11", "price": "1", "useGas": "2", "useAmount": "2"},
            {"useDate": "2020-01-12", "price": "1", "useGas": "4", "useAmount": "4"},
            {"useDate": "2020-01-12", "price": "2.5", "useGas": "1.5", "useAmount": "3.75"},
            {"useDate": "bad", "price": "1", "useGas": "1", "useAmount": "1"}
        ]);
        let days = days_of(&d, &rows, Utc::now());
        assert_eq!(days.len(), 2);
        assert_eq!(
            (days[1].volume, days[1].amount, days[1].prices.clone()),
            (dec!(5.5), dec!(7.75), vec![dec!(1), dec!(2.5)])
        );
    }
}
