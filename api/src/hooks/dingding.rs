//! `POST /hooks/{integration_id}/dingding`: Dingding event and service callbacks (seed 002
//! sections 8, 9, 12, 13, 16). The sign is checked as pinned in `PROTOCOLS.md` 3b against
//! the integration's hook URL; a bad sign answers 401 and stores nothing. Then the raw body
//! is stored under its dedup key (event: uuid+event+time; service: serviceid+service),
//! processed once, and answered `{"ErrNo":0,"ErrMsg":"ok"}`, undocumented callbacks
//! included.

use super::{HookRefusal, integration, record};
use crate::app::AppState;
use adapters::vendors::dingding::{map, sign, wire};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use domain::dingding::Handled;
use domain::events::EventState;
use domain::integrations::{Integration, IntegrationKind};
use domain::ttl::{CONFIG_TTL, TtlCache};
use serde_json::{Value, json};
use std::sync::OnceLock;

pub fn router() -> Router<AppState> {
    Router::new().route("/hooks/{integration_id}/dingding", post(callback))
}

/// Dingding's own envelope.
fn answer(status: StatusCode, err_no: i64, msg: &str) -> Response {
    (status, axum::Json(wire::CallbackAnswer { err_no, err_msg: msg })).into_response()
}

/// The callback URL as registered: the one `hookUrl` shows.
pub fn hook_url(public_url: &str, integration: &domain::ids::IntegrationId) -> String {
    format!("{}/hooks/{integration}/dingding", public_url.trim_end_matches('/'))
}

/// Integrations seen recently: a burst of callbacks resolves its integration once (a
/// reconfiguration applies within `CONFIG_TTL`). The sign needs no credential.
fn seen() -> &'static TtlCache<String, Integration> {
    static SEEN: OnceLock<TtlCache<String, Integration>> = OnceLock::new();
    SEEN.get_or_init(|| TtlCache::new(CONFIG_TTL, 10_000))
}

fn sqlite_writer() -> &'static tokio::sync::Semaphore {
    static WRITER: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);
    &WRITER
}

async fn known(st: &AppState, id: &str) -> Result<Integration, HookRefusal> {
    if let Some(i) = seen().get(&id.to_owned()) {
        return Ok(i);
    }
    let (i, _) = integration(st, id, IntegrationKind::Dingding).await?;
    seen().put(id.to_owned(), i.clone());
    Ok(i)
}

async fn callback(State(st): State<AppState>, Path(id): Path<String>, body: Bytes) -> Response {
    let Ok(raw) = std::str::from_utf8(&body) else {
        return answer(StatusCode::BAD_REQUEST, 14001, "the body is not UTF-8");
    };
    let integration = match known(&st, &id).await {
        Ok(found) => found,
        Err(HookRefusal::UnknownIntegration) => return answer(StatusCode::NOT_FOUND, 15006, "unknown integration"),
        Err(HookRefusal::Internal) => return answer(StatusCode::INTERNAL_SERVER_ERROR, 15000, "internal error"),
    };
    let fields: Value = match serde_json::from_str(raw) {
        Ok(v @ Value::Object(_)) => v,
        _ => return answer(StatusCode::BAD_REQUEST, 14001, "the body must be a JSON object"),
    };
    let given = fields.get("sign").and_then(Value::as_str).unwrap_or_default();
    if !sign::verify(&hook_url(&st.config.public_url, &integration.id), raw, given) {
        return answer(StatusCode::UNAUTHORIZED, 15014, "missing or wrong sign");
    }
    let parsed: wire::CallbackBody = match serde_json::from_value(fields) {
        Ok(b) => b,
        Err(e) => return answer(StatusCode::BAD_REQUEST, 14001, &format!("malformed callback: {e}")),
    };
    // SQLite has one writer: callbacks write one after the other instead of failing on a
    // busy database when a read transaction cannot become a write.
    let _writer =
        if st.config.database_url.starts_with("sqlite") { sqlite_writer().acquire().await.ok() } else { None };
    let name = map::callback_name(&parsed);
    let kind = if name.is_empty() { "unknown".to_owned() } else { name.clone() };
    let dedup = map::dedup_key(&parsed, raw);
    let stored = map::redacted(raw, &parsed);
    let recorded = match record(&st, &integration, &kind, dedup, json!({}), &stored).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = ?e, integration_id = %integration.id, "storing a Dingding callback");
            // Not stored: Dingding sends it again.
            return answer(StatusCode::INTERNAL_SERVER_ERROR, 15000, "internal error");
        }
    };
    // A repeat is answered without processing it again, unless processing it failed
    // before (then Dingding's retry is the second chance).
    if recorded.duplicate && recorded.event.state != EventState::Failed {
        return answer(StatusCode::OK, 0, "ok");
    }
    let event = recorded.event.id;
    let tenant = integration.tenant_id;
    let (state, error) = match st.dingding.handle(tenant, integration.id, event, &name, map::callback(&parsed)).await {
        Ok(Handled::Processed) => (EventState::Processed, None),
        Ok(Handled::Ignored(why)) => (EventState::Ignored, Some(why)),
        Err(e) => {
            tracing::error!(error = ?e, inbound_event_id = %event, "processing a Dingding callback");
            (EventState::Failed, Some("processing failed".to_owned()))
        }
    };
    let failed = state == EventState::Failed;
    if let Err(e) = st.events.finish(tenant, event, state, error).await {
        tracing::error!(error = ?e, inbound_event_id = %event, "recording a Dingding callback's outcome");
    }
    if failed {
        // Stored, but not applied: a non-2xx answer makes Dingding send it again.
        return answer(StatusCode::INTERNAL_SERVER_ERROR, 15000, "internal error");
    }
    answer(StatusCode::OK, 0, "ok")
}
