//! Heartbeat check of devices that report on an interval (every `setFrequency` seconds, 600
//! by default). A device silent for twice its interval gets a `DEVICE_OFFLINE` alarm and is marked offline; once it reports again the
//! next check clears the alarm (or its own next report does, where its module says so).
//! A device that reports through another (attribute `reportsThrough`: the units of a
//! cabinet that report through its controller) is checked through that one only.

use super::PeriodicJob;
use crate::alarms::{AlarmKind, AlarmService, AlarmSeverity, RaiseAlarm};
use crate::devices::{Device, DeviceFilter, DeviceRepo, DeviceStatus};
use crate::integrations::Integration;
use crate::{DomainResult, PageRequest};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::sync::Arc;

/// The reporting interval when neither the device nor the integration sets one.
pub const DEFAULT_REPORT_INTERVAL_SECS: i64 = 600;

/// The heartbeat check of one integration.
pub struct HeartbeatCheck {
    devices: Arc<dyn DeviceRepo>,
    alarms: AlarmService,
}

impl HeartbeatCheck {
    pub fn new(devices: Arc<dyn DeviceRepo>, alarms: AlarmService) -> Self {
        Self { devices, alarms }
    }
}

/// The device's reporting interval: its `reportIntervalSeconds` attribute (what
/// `setFrequency` last set), else the integration's setting, else 600 s.
fn interval_secs(device: &Device, integration: &Integration) -> i64 {
    let of = |v: &Value| v.get("reportIntervalSeconds").and_then(Value::as_i64).filter(|n| *n > 0);
    of(&device.attributes).or_else(|| of(&integration.settings)).unwrap_or(DEFAULT_REPORT_INTERVAL_SECS)
}

/// The offline alarm of `device` as a key: what a module clears when the device reports.
pub fn offline_key(device: &Device, at: DateTime<Utc>) -> RaiseAlarm {
    offline_alarm(device, at, DEFAULT_REPORT_INTERVAL_SECS, at)
}

/// Raised as of `at`, the check's tick.
fn offline_alarm(device: &Device, silent_since: DateTime<Utc>, interval: i64, at: DateTime<Utc>) -> RaiseAlarm {
    RaiseAlarm {
        device_id: Some(device.id),
        integration_id: Some(device.integration_id),
        ticket_id: None,
        kind: AlarmKind::system("DEVICE_OFFLINE"),
        severity: AlarmSeverity::Major,
        message: format!("no status report since {} (reporting interval {interval} s)", silent_since.to_rfc3339()),
        vendor_code: None,
        vendor_text: None,
        inbound_event_id: None,
        raised_at: at,
        attributes: json!({"lastSeenAt": device.last_seen_at.map(|t| t.to_rfc3339()), "intervalSeconds": interval}),
    }
}

#[async_trait]
impl PeriodicJob for HeartbeatCheck {
    async fn run(&self, integration: &Integration, tick: DateTime<Utc>) -> DomainResult<String> {
        let filter = DeviceFilter { integration_id: Some(integration.id), ..DeviceFilter::default() };
        let (mut checked, mut offline, mut after) = (0usize, 0usize, None);
        loop {
            let page = self.devices.list(integration.tenant_id, &filter, PageRequest::new(Some(100), after)?).await?;
            for device in &page.items {
                if device.attributes.get("reportsThrough").is_some_and(|v| !v.is_null()) {
                    continue;
                }
                checked += 1;
                let interval = interval_secs(device, integration);
                let since = device.last_seen_at.unwrap_or(device.created_at);
                if since < tick - chrono::Duration::seconds(2 * interval) {
                    offline += 1;
                    self.alarms.raise_in(integration.tenant_id, offline_alarm(device, since, interval, tick)).await?;
                    if device.online != Some(false) {
                        let status = DeviceStatus { online: Some(false), battery: None, signal: None, seen_at: None };
                        self.devices.set_status(integration.tenant_id, device.id, status).await?;
                    }
                } else {
                    let key = offline_alarm(device, since, interval, tick);
                    self.alarms.clear_open(integration.tenant_id, &key, "the device reports again").await?;
                }
            }
            after = page.items.last().map(|d| d.id.as_uuid());
            if !page.has_next_page {
                return Ok(format!("checked {checked} devices, {offline} offline"));
            }
        }
    }
}
