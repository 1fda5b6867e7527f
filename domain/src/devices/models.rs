use crate::ids::{DeviceId, HomeId, IntegrationId, ReadingId, RoomId, TenantId};
use crate::{DomainError, DomainResult};
use chrono::{DateTime, Utc};
use serde_json::Value;

/// Every device kind the integrations map into; declared beside the integration kinds
/// that bring them.
pub use crate::integrations::DeviceKind;

/// A device's id at its vendor: 1-128 printable characters without surrounding spaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExternalId(String);

impl ExternalId {
    /// # Errors
    /// `Invalid { field: "externalId" }`.
    pub fn parse(s: &str) -> DomainResult<Self> {
        let t = s.trim();
        if t.is_empty() || t.chars().count() > 128 || t.chars().any(char::is_control) {
            return Err(DomainError::invalid("externalId", "1-128 printable characters"));
        }
        Ok(Self(t.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A stored device.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    pub id: DeviceId,
    pub tenant_id: TenantId,
    pub integration_id: IntegrationId,
    pub external_id: String,
    pub kind: DeviceKind,
    pub name: String,
    pub home_id: Option<HomeId>,
    pub room_id: Option<RoomId>,
    pub online: Option<bool>,
    pub online_changed_at: Option<DateTime<Utc>>,
    pub battery: Option<i32>,
    pub signal: Option<i32>,
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Vendor specifics.
    pub attributes: Value,
    /// The latest reading per metric: `{metric: {"value": .., "ts": ..}}`.
    pub latest: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Input to create or update a device, keyed by (integration, external id).
#[derive(Debug, Clone)]
pub struct UpsertDevice {
    pub integration_id: IntegrationId,
    pub external_id: ExternalId,
    pub kind: DeviceKind,
    pub name: String,
    pub home_id: Option<HomeId>,
    pub room_id: Option<RoomId>,
    pub attributes: Value,
}

/// Live-state changes reported by a vendor; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceStatus {
    pub online: Option<bool>,
    pub battery: Option<i32>,
    pub signal: Option<i32>,
    /// When the device reported; `None` for a status the system sets itself (offline
    /// after silence), which leaves `last_seen_at` as it is.
    pub seen_at: Option<DateTime<Utc>>,
}

/// What one report told of one device: its status, then its readings.
#[derive(Debug, Clone)]
pub struct Observed {
    /// The device as read before the report.
    pub device: Device,
    pub status: DeviceStatus,
    pub readings: Vec<NewReading>,
}

impl Observed {
    /// The device after `set_status` then `record_readings` of this report, at `now`:
    /// `online_changed_at` moves when `online` flips, a reported status sets
    /// `last_seen_at`, readings keep the newest value per metric and move `last_seen_at`
    /// forward.
    #[must_use]
    pub fn written(&self, now: DateTime<Utc>) -> Device {
        let mut d = self.device.clone();
        let s = &self.status;
        let seen = s.seen_at.unwrap_or(now);
        if let Some(o) = s.online {
            if d.online != Some(o) {
                d.online_changed_at = Some(seen);
            }
            d.online = Some(o);
        }
        if s.battery.is_some() {
            d.battery = s.battery;
        }
        if s.signal.is_some() {
            d.signal = s.signal;
        }
        if s.seen_at.is_some() {
            d.last_seen_at = Some(seen);
        }
        if !d.latest.is_object() {
            d.latest = Value::Object(serde_json::Map::new());
        }
        for r in &self.readings {
            let newer = d
                .latest
                .get(&r.metric)
                .and_then(|v| v.get("ts"))
                .and_then(Value::as_str)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .is_none_or(|t| t <= r.ts);
            if newer && let Value::Object(m) = &mut d.latest {
                m.insert(r.metric.clone(), serde_json::json!({"value": r.value, "ts": r.ts.to_rfc3339()}));
            }
            d.last_seen_at = Some(d.last_seen_at.map_or(r.ts, |l| l.max(r.ts)));
        }
        d.updated_at = now;
        d
    }
}

/// One value of one metric at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct NewReading {
    pub metric: String,
    pub value: Value,
    pub ts: DateTime<Utc>,
}

/// A stored reading.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub id: ReadingId,
    pub device_id: DeviceId,
    pub metric: String,
    pub value: Value,
    pub ts: DateTime<Utc>,
}

/// Filters of `devices`; every set field must match.
#[derive(Debug, Clone, Default)]
pub struct DeviceFilter {
    pub kind: Option<DeviceKind>,
    pub integration_id: Option<IntegrationId>,
    pub home_id: Option<HomeId>,
    pub online: Option<bool>,
    /// Case-insensitive substring of the name or external id.
    pub search: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_observation_keeps_the_newest_value_per_metric_and_flips_online_once() {
        let t = |s: i64| DateTime::<Utc>::from_timestamp(1_700_000_000 + s, 0).unwrap_or_default();
        let device = Device {
            id: DeviceId::new(),
            tenant_id: TenantId::new(),
            integration_id: IntegrationId::new(),
            external_id: "m".into(),
            kind: DeviceKind::GasMeter,
            name: "m".into(),
            home_id: None,
            room_id: None,
            online: Some(false),
            online_changed_at: Some(t(0)),
            battery: Some(50),
            signal: None,
            last_seen_at: Some(t(5)),
            attributes: serde_json::json!({}),
            latest: serde_json::json!({"volume": {"value": "9", "ts": t(20).to_rfc3339()}}),
            created_at: t(0),
            updated_at: t(0),
        };
        let o = Observed {
            device,
            status: DeviceStatus { online: Some(true), battery: None, signal: Some(70), seen_at: Some(t(10)) },
            readings: vec![
                NewReading { metric: "volume".into(), value: serde_json::json!("8"), ts: t(10) },
                NewReading { metric: "pressure".into(), value: serde_json::json!("2"), ts: t(10) },
            ],
        };
        let w = o.written(t(30));
        assert_eq!((w.online, w.online_changed_at, w.battery, w.signal), (Some(true), Some(t(10)), Some(50), Some(70)));
        assert_eq!(w.latest["volume"]["value"], "9", "an older reading does not replace a newer latest value");
        assert_eq!(w.latest["pressure"]["value"], "2");
        assert_eq!((w.last_seen_at, w.updated_at), (Some(t(10)), t(30)));
        let again = Observed { device: w.clone(), ..o }.written(t(31));
        assert_eq!(again.online_changed_at, Some(t(10)), "no flip, no change");
    }

    #[test]
    fn kinds_round_trip() {
        for k in DeviceKind::ALL {
            assert_eq!(DeviceKind::parse(k.as_str()).ok(), Some(*k));
        }
        assert!(DeviceKind::parse("TOASTER").is_err());
        let names: std::collections::BTreeSet<_> = DeviceKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), DeviceKind::ALL.len(), "every kind has its own name");
        assert_eq!(DeviceKind::ALL.len(), 21);
    }

    #[test]
    fn external_ids_are_trimmed_and_bounded() {
        assert_eq!(ExternalId::parse(" 204150 ").map(|e| e.0).ok(), Some("204150".into()));
        assert!(ExternalId::parse("  ").is_err());
        assert!(ExternalId::parse(&"x".repeat(129)).is_err());
    }
}
