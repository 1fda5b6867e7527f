//! `POST /hooks/{integration_id}/telemetry` (`CONTRACT.md`, "Telemetry batch"): a tenant's
//! own devices post readings, authenticated by `X-Api-Key` (`createApiKey`). Each reading
//! updates the device's live state and history; an elevator's `message_code` raises or
//! clears its fault alarm. A bad reading is rejected with its index and reason and never
//! drops the good ones; the same batch resent is stored once and applied once.

use crate::app::AppState;
use adapters::vendors::huzhou::state;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::devices::{Device, NewReading};
use domain::events::EventState;
use domain::ids::IntegrationId;
use domain::integrations::Integration;
use serde_json::{Map, Value, json};

/// Largest number of readings in one batch.
pub const MAX_READINGS: usize = 5000;

fn error(status: StatusCode, msg: &str) -> Response {
    (status, Json(json!({"error": msg}))).into_response()
}

/// A reading that passed the checks.
struct Good {
    device: Device,
    ts: DateTime<Utc>,
    values: Map<String, Value>,
}

async fn check(st: &AppState, integration: &Integration, r: &Value) -> Result<Good, String> {
    let external =
        r.get("externalId").and_then(state::text).filter(|s| !s.is_empty()).ok_or("externalId is required")?;
    let ts = r.get("ts").and_then(Value::as_str).ok_or("ts is required (RFC 3339)")?;
    let ts = DateTime::parse_from_rfc3339(ts).map_err(|_| "ts must be an RFC 3339 time")?.with_timezone(&Utc);
    if ts > Utc::now() + chrono::Duration::minutes(5) {
        return Err("ts is in the future".into());
    }
    let values = r.get("values").and_then(Value::as_object).ok_or("values must be an object")?.clone();
    if values.is_empty() {
        return Err("values is empty".into());
    }
    let device = match st.devices.find_by_external(integration.tenant_id, integration.id, &external).await {
        Ok(Some(d)) => d,
        Ok(None) => return Err(format!("unknown device {external:?}")),
        Err(e) => {
            tracing::error!(error = ?e, "looking up a telemetry device");
            return Err("internal error".into());
        }
    };
    if state::is_lift(device.kind) {
        state::check_values(&values)?;
    }
    Ok(Good { device, ts, values })
}

/// Runs `f` again (up to 6 times in all, backing off from 50 ms) while it fails with a
/// storage error: SQLite answers a transaction that meets another writer with "database is
/// locked" at once instead of waiting.
async fn retried<T, F, Fut>(mut f: F) -> domain::DomainResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = domain::DomainResult<T>>,
{
    let mut tries = 0u64;
    loop {
        tries += 1;
        match f().await {
            Err(domain::DomainError::Unknown(e)) if tries < 6 => {
                tracing::debug!(error = ?e, "retrying a telemetry write");
                tokio::time::sleep(std::time::Duration::from_millis(25 << tries)).await;
            }
            other => return other,
        }
    }
}

async fn apply(st: &AppState, g: Good) -> Result<(), String> {
    let readings =
        g.values.iter().map(|(k, v)| NewReading { metric: k.clone(), value: v.clone(), ts: g.ts }).collect::<Vec<_>>();
    let fail = |e: domain::DomainError| {
        tracing::error!(error = ?e, device_id = %g.device.id, "applying a telemetry reading");
        "internal error".to_owned()
    };
    let (tenant, id) = (g.device.tenant_id, g.device.id);
    let device = retried(|| st.devices.record_readings(tenant, id, readings.clone())).await.map_err(fail)?;
    retried(|| st.huzhou.on_reading(&device, &g.values, g.ts)).await.map_err(fail)
}

/// The controller's batch.
pub async fn telemetry(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let Ok(id) = id.parse::<IntegrationId>() else { return error(StatusCode::NOT_FOUND, "unknown integration") };
    let integration = match st.integrations.open_hook(id).await {
        Ok(Some((i, _))) => i,
        Ok(None) => return error(StatusCode::NOT_FOUND, "unknown integration"),
        Err(e) => {
            tracing::error!(error = ?e, "resolving a telemetry integration");
            return error(StatusCode::SERVICE_UNAVAILABLE, "try again later");
        }
    };
    let key = headers.get("x-api-key").and_then(|v| v.to_str().ok()).unwrap_or_default();
    match st.integrations.check_api_key(integration.id, key).await {
        Ok(true) => {}
        Ok(false) => return error(StatusCode::UNAUTHORIZED, "a valid X-Api-Key is required"),
        Err(e) => {
            tracing::error!(error = ?e, "checking a telemetry API key");
            return error(StatusCode::SERVICE_UNAVAILABLE, "try again later");
        }
    }
    let Ok(body) = body else { return error(StatusCode::BAD_REQUEST, "unreadable body") };
    let Ok(batch) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "the body must be JSON: {\"readings\": [...]}");
    };
    let Some(readings) = batch.get("readings").and_then(Value::as_array) else {
        return error(StatusCode::BAD_REQUEST, "readings must be an array");
    };
    if readings.len() > MAX_READINGS {
        return error(StatusCode::BAD_REQUEST, &format!("at most {MAX_READINGS} readings per batch"));
    }
    let text = String::from_utf8_lossy(&body);
    let dedup = format!("telemetry:{}", adapters::crypto::sha256_hex(&body));
    let stored = json!({"content-type": headers.get("content-type").and_then(|v| v.to_str().ok())});
    let recorded = match super::record(&st, &integration, "telemetry", dedup, stored, &text).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = ?e, "recording a telemetry batch");
            return error(StatusCode::SERVICE_UNAVAILABLE, "try again later");
        }
    };
    let (mut accepted, mut rejected) = (0usize, Vec::new());
    for (index, r) in readings.iter().enumerate() {
        let res = match check(&st, &integration, r).await {
            // A resent batch is answered as before, but not applied again.
            Ok(_) if recorded.duplicate => Ok(()),
            Ok(good) => apply(&st, good).await,
            Err(e) => Err(e),
        };
        match res {
            Ok(()) => accepted += 1,
            Err(reason) => rejected.push(json!({"index": index, "reason": reason})),
        }
    }
    if !recorded.duplicate {
        let (state, error) = match rejected.len() {
            0 => (EventState::Processed, None),
            n if accepted == 0 => (EventState::Failed, Some(format!("all {n} readings rejected"))),
            n => (EventState::Processed, Some(format!("{n} readings rejected"))),
        };
        if let Err(e) = st.events.finish(integration.tenant_id, recorded.event.id, state, error).await {
            tracing::warn!(error = %e, "marking a telemetry batch processed");
        }
    }
    (StatusCode::OK, Json(json!({"accepted": accepted, "rejected": rejected}))).into_response()
}
