//! The daily Huzhou jobs: 4.3 `lift_notify` (each elevator's start count of the past 24 h)
//! and 7.5 `put_ie_elev_things` (each elevator's status once a day, 100 per request).

use super::state::{self, is_lift};
use super::{ELEV_THINGS, HuzhouService, LIFT_NOTIFY, MAX_ITEMS, request_id};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::deliveries::{DeliveryKind, NewDelivery};
use domain::devices::{Device, DeviceFilter};
use domain::integrations::Integration;
use domain::schedules::PeriodicJob;
use domain::{DomainResult, PageRequest};
use serde_json::{Value, json};

/// One page of the integration's elevators after `after`; the cursor of the next page
/// (`None` after the last).
async fn lifts_page(
    svc: &HuzhouService,
    integration: &Integration,
    after: Option<uuid::Uuid>,
) -> DomainResult<(Vec<Device>, Option<uuid::Uuid>)> {
    let filter = DeviceFilter { integration_id: Some(integration.id), ..DeviceFilter::default() };
    let page = svc.ports().devices.list(integration.tenant_id, &filter, PageRequest::new(Some(100), after)?).await?;
    let next = if page.has_next_page { page.items.last().map(|d| d.id.as_uuid()) } else { None };
    Ok((page.items.into_iter().filter(|d| is_lift(d.kind)).collect(), next))
}

/// Starts in `(from, to]` from a counter's readings (newest first): the last value in the
/// window minus the last one before it (or the first in it); a counter reset counts 0.
pub fn starts_between(readings: &[(DateTime<Utc>, f64)], from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
    let inside: Vec<f64> = readings.iter().filter(|(t, _)| *t > from && *t <= to).map(|(_, v)| *v).collect();
    let Some(last) = inside.first() else { return 0 };
    let base = readings.iter().find(|(t, _)| *t <= from).map(|(_, v)| *v).or(inside.last().copied()).unwrap_or(*last);
    let n = (last - base).max(0.0);
    // Counters are whole numbers; the cast saturates.
    n.round() as u64
}

/// 4.3, daily.
pub struct LiftNotifyDaily(pub HuzhouService);

#[async_trait]
impl PeriodicJob for LiftNotifyDaily {
    async fn run(&self, integration: &Integration, tick: DateTime<Utc>) -> DomainResult<String> {
        let svc = &self.0;
        let from = tick - chrono::Duration::hours(24);
        let (mut n, mut after) = (0, None);
        loop {
            let (lifts, next) = lifts_page(svc, integration, after).await?;
            n += lifts.len();
            for d in lifts {
                let mut readings = Vec::new();
                for metric in ["run_count", "present_counter_value"] {
                    readings = svc.ports().devices.readings(integration.tenant_id, d.id, Some(metric), 1000).await?;
                    if !readings.is_empty() {
                        break;
                    }
                }
                let points: Vec<(DateTime<Utc>, f64)> = readings
                    .iter()
                    .filter_map(|r| state::text(&r.value).and_then(|v| v.parse::<f64>().ok()).map(|v| (r.ts, v)))
                    .collect();
                let mut payload = json!({
                    "unique_id": d.external_id,
                    "lift_type": state::lift_type(d.kind),
                    "use_type": "1",
                    "is_current_count": "1",
                    "use_count": starts_between(&points, from, tick).to_string(),
                    "use_starttime": from.to_rfc3339(),
                    "use_endtime": tick.to_rfc3339(),
                    "comments": "",
                });
                if let Some(code) = state::attr(&d, "deviceCode") {
                    payload["device_id"] = json!(code);
                }
                let input = NewDelivery {
                    integration_id: integration.id,
                    kind: DeliveryKind::from_static(LIFT_NOTIFY),
                    idempotency_key: request_id(),
                    order_key: None,
                    payload,
                    subject: None,
                };
                svc.ports().deliveries.enqueue(integration.tenant_id, input).await?;
            }
            match next {
                Some(_) => after = next,
                None => break,
            }
        }
        Ok(format!("lift_notify for {n} elevators"))
    }
}

/// 7.5, daily: the live state of every elevator, 100 per request.
pub struct ElevThingsDaily(pub HuzhouService);

#[async_trait]
impl PeriodicJob for ElevThingsDaily {
    async fn run(&self, integration: &Integration, tick: DateTime<Utc>) -> DomainResult<String> {
        let svc = &self.0;
        let mut batches = 0;
        let mut items: Vec<Value> = Vec::new();
        let (mut n, mut after) = (0, None);
        loop {
            let (lifts, next) = lifts_page(svc, integration, after).await?;
            n += lifts.len();
            items.extend(lifts.iter().map(|d| state::things_item(&d.external_id, &d.latest, tick)));
            while items.len() >= MAX_ITEMS || (next.is_none() && !items.is_empty()) {
                let rest = items.split_off(items.len().min(MAX_ITEMS));
                let batch = std::mem::replace(&mut items, rest);
                let input = NewDelivery {
                    integration_id: integration.id,
                    kind: DeliveryKind::from_static(ELEV_THINGS),
                    idempotency_key: request_id(),
                    order_key: None,
                    payload: json!({"rt_data": batch}),
                    subject: None,
                };
                svc.ports().deliveries.enqueue(integration.tenant_id, input).await?;
                batches += 1;
            }
            match next {
                Some(_) => after = next,
                None => break,
            }
        }
        Ok(format!("put_ie_elev_things for {n} elevators in {batches} requests"))
    }
}

#[cfg(test)]
mod tests {
    use super::starts_between;
    use chrono::{TimeZone, Utc};

    #[test]
    fn starts_are_the_counter_difference_over_the_window() {
        let t = |h| Utc.with_ymd_and_hms(2026, 1, 2, h, 0, 0).single().expect("t");
        let day_start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().expect("t");
        let newest_first = [(t(10), 150.0), (t(5), 120.0), (day_start, 100.0)];
        assert_eq!(starts_between(&newest_first, t(0), t(23)), 50);
        assert_eq!(
            starts_between(&newest_first[..2], t(0), t(23)),
            30,
            "no reading before: the first inside is the base"
        );
        assert_eq!(starts_between(&[], t(0), t(23)), 0);
    }
}
