//! `POST /hooks/{integration_id}/telemetry` (`CONTRACT.md`, "Telemetry batch"): a tenant's
//! own devices post readings, authenticated by `X-Api-Key` (`createApiKey`), on an
//! integration of any kind. Each reading updates the device's live state and history; the
//! vendor modules' reading rules add their facts (an elevator's `message_code` raises or
//! clears its fault alarm). A bad reading is rejected with its index and reason and never
//! drops the good ones; the good ones of a batch are applied together, with the batch's
//! stored event, so the same batch resent is stored once and applied once.
// Parsers of tenant and vendor input (issue 17): no indexing that can panic.
#![cfg_attr(not(test), warn(clippy::indexing_slicing))]

use crate::vendors::inbound::{
    Accepted, HookAnswer, HookRequest, InboundProtocol, Opened, Outcome, Refusal, Rejected, Work,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::devices::{DeviceService, NewReading};
use domain::events::{EventState, InboundEvent};
use domain::ingest::{Fact, IngestService, ReadingRule};
use domain::integrations::{IntegrationKind, IntegrationService};
use domain::{DomainError, DomainResult};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Largest number of readings in one batch.
pub const MAX_READINGS: usize = 5000;

fn error(status: u16, msg: &str) -> HookAnswer {
    HookAnswer::new(status, json!({"error": msg}))
}

/// A batch's readings, from its body.
///
/// # Errors
/// The answer to a body that is no batch.
pub(crate) fn batch(body: &[u8]) -> Result<Vec<Value>, HookAnswer> {
    let Ok(batch) = serde_json::from_slice::<Value>(body) else {
        return Err(error(400, "the body must be JSON: {\"readings\": [...]}"));
    };
    let Some(readings) = batch.get("readings").and_then(Value::as_array) else {
        return Err(error(400, "readings must be an array"));
    };
    if readings.len() > MAX_READINGS {
        return Err(error(400, &format!("at most {MAX_READINGS} readings per batch")));
    }
    Ok(readings.clone())
}

/// A reading's device (`externalId`), time and values.
pub(crate) type Reading<'a> = (String, DateTime<Utc>, &'a Map<String, Value>);

/// One reading's device (`externalId`), time and values, checked against `now`.
///
/// # Errors
/// Why the reading is rejected.
pub(crate) fn reading(r: &Value, now: DateTime<Utc>) -> Result<Reading<'_>, String> {
    let external = r
        .get("externalId")
        .and_then(|v| match v {
            Value::String(s) => Some(s.trim().to_owned()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .filter(|s| !s.is_empty())
        .ok_or("externalId is required")?;
    let ts = r.get("ts").and_then(Value::as_str).ok_or("ts is required (RFC 3339)")?;
    let ts = DateTime::parse_from_rfc3339(ts).map_err(|_| "ts must be an RFC 3339 time")?.with_timezone(&Utc);
    if ts > now + chrono::Duration::minutes(5) {
        return Err("ts is in the future".into());
    }
    let values: &Map<String, Value> = r.get("values").and_then(Value::as_object).ok_or("values must be an object")?;
    if values.is_empty() {
        return Err("values is empty".into());
    }
    Ok((external, ts, values))
}

/// The telemetry protocol.
pub struct TelemetryInbound {
    integrations: IntegrationService,
    devices: DeviceService,
    ingest: IngestService,
    rules: Vec<Arc<dyn ReadingRule>>,
}

impl TelemetryInbound {
    pub fn new(
        integrations: IntegrationService,
        devices: DeviceService,
        ingest: IngestService,
        rules: Vec<Arc<dyn ReadingRule>>,
    ) -> Self {
        Self { integrations, devices, ingest, rules }
    }

    /// A reading's facts, or the reason it is rejected.
    async fn check(&self, hook: &Opened, r: &Value) -> Result<Vec<Fact>, String> {
        let (external, ts, values) = reading(r, Utc::now())?;
        let (tenant, integration) = (hook.integration.tenant_id, hook.integration.id);
        let device = match self.devices.find_by_external(tenant, integration, &external).await {
            Ok(Some(d)) => d,
            Ok(None) => return Err(format!("unknown device {external:?}")),
            Err(e) => {
                tracing::error!(error = ?e, "looking up a telemetry device");
                return Err("internal error".into());
            }
        };
        for rule in &self.rules {
            rule.check(&device, values)?;
        }
        let readings =
            values.iter().map(|(k, v)| NewReading { metric: k.clone(), value: v.clone(), ts }).collect::<Vec<_>>();
        let mut facts = vec![Fact::Readings { device: device.id, readings }];
        for rule in &self.rules {
            match rule.facts(&device, values, ts).await {
                Ok(more) => facts.extend(more),
                Err(e) => {
                    tracing::error!(error = ?e, device_id = %device.id, "applying a reading rule");
                    return Err("internal error".into());
                }
            }
        }
        Ok(facts)
    }

    /// Applies the batch's facts with its event, again (up to 6 times in all, backing off
    /// from 50 ms) while the storage fails: SQLite answers a transaction that meets
    /// another writer with "database is locked" at once instead of waiting. The unit is
    /// all or nothing, so a retry never applies anything twice.
    async fn apply_all(&self, event: &InboundEvent, facts: Vec<Fact>, note: Option<String>) -> DomainResult<()> {
        let mut tries = 0u64;
        loop {
            tries += 1;
            match self.ingest.apply(event.tenant_id, Some(event.id), facts.clone(), note.clone()).await {
                Err(DomainError::Unknown(e)) if tries < 6 => {
                    tracing::debug!(error = ?e, "retrying a telemetry batch");
                    tokio::time::sleep(std::time::Duration::from_millis(25 << tries)).await;
                }
                other => return other.map(drop),
            }
        }
    }
}

#[async_trait]
impl InboundProtocol for TelemetryInbound {
    fn path(&self) -> &'static str {
        "telemetry"
    }

    fn protocol(&self) -> &'static str {
        "TELEMETRY"
    }

    fn serves(&self, _kind: IntegrationKind) -> bool {
        true
    }

    fn refused(&self, why: Refusal) -> HookAnswer {
        match why {
            Refusal::UnknownIntegration => error(404, "unknown integration"),
            Refusal::Disabled => error(403, "integration disabled"),
            Refusal::BadHookToken => error(401, "a valid X-Api-Key is required"),
            Refusal::TooManyFailures => error(429, "too many failed requests from this address"),
            Refusal::Internal => error(503, "try again later"),
        }
    }

    async fn accept(&self, hook: &Opened, req: HookRequest) -> Result<Accepted, Rejected> {
        let key = req.header("x-api-key").unwrap_or_default();
        match self.integrations.check_api_key(hook.integration.id, key).await {
            Ok(true) => {}
            Ok(false) => return Err(error(401, "a valid X-Api-Key is required").unauthenticated()),
            Err(e) => {
                tracing::error!(error = ?e, "checking a telemetry API key");
                return Err(self.refused(Refusal::Internal).into());
            }
        }
        let readings = batch(&req.body)?;
        Ok(Accepted {
            kind: "telemetry".into(),
            dedup_key: format!("telemetry:{}", crate::crypto::sha256_hex(&req.body)),
            headers: json!({"content-type": req.header("content-type")}),
            body: String::from_utf8_lossy(&req.body).into_owned(),
            lane: None,
            answer_first: false,
            work: Box::new(readings),
        })
    }

    async fn apply(&self, hook: &Opened, event: &InboundEvent, duplicate: bool, work: Work) -> (Outcome, HookAnswer) {
        let Ok(readings) = work.downcast::<Vec<Value>>() else {
            return (Outcome::to_finish(EventState::Failed, None), self.refused(Refusal::Internal));
        };
        let (mut facts, mut accepted, mut rejected) = (Vec::new(), 0usize, Vec::new());
        for (index, r) in readings.iter().enumerate() {
            match self.check(hook, r).await {
                Ok(f) => {
                    facts.extend(f);
                    accepted += 1;
                }
                Err(reason) => rejected.push(json!({"index": index, "reason": reason})),
            }
        }
        // A resent batch is answered as before, and applied only if it never was.
        let applied_before = duplicate && matches!(event.state, EventState::Processed | EventState::Ignored);
        let outcome = match rejected.len() {
            n if accepted == 0 && n > 0 => {
                Outcome::to_finish(EventState::Failed, Some(format!("all {n} readings rejected")))
            }
            0 if accepted == 0 => Outcome::to_finish(EventState::Processed, None),
            n => {
                let note = (n > 0).then(|| format!("{n} readings rejected"));
                if !applied_before && let Err(e) = self.apply_all(event, facts, note).await {
                    tracing::error!(error = ?e, inbound_event_id = %event.id, "applying a telemetry batch");
                    return (
                        Outcome::to_finish(EventState::Failed, Some("storage failed".into())),
                        self.refused(Refusal::Internal),
                    );
                }
                Outcome::finished(EventState::Processed)
            }
        };
        (outcome, HookAnswer::new(200, json!({"accepted": accepted, "rejected": rejected})))
    }
}
