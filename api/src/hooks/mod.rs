//! Inbound controllers, one module per protocol, under `/hooks/{integration_id}/...`
//! (`CONTRACT.md`, "HTTP surface"). Each authenticates the caller the way its protocol
//! says, stores the raw request (with its dedup key) before processing it, and answers in
//! its protocol's own envelope, never with a bare 5xx.

mod dingding;
pub use dingding::Backlog as DingdingBacklog;
mod huzhou;
mod telemetry;

use crate::app::AppState;
use axum::Router;
use domain::DomainResult;
use domain::events::{NewInboundEvent, Recorded};
use domain::ids::IntegrationId;
use domain::integrations::{Integration, IntegrationKind};
use serde_json::{Map, Value};

/// Every hook route; each protocol module adds its own.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(dingding::router())
        .route("/hooks/{integration_id}/huzhou/elev_api", axum::routing::get(huzhou::elev_api).post(huzhou::elev_api))
        .route("/hooks/{integration_id}/telemetry", axum::routing::post(telemetry::telemetry))
}

/// Why a hook request names no integration it may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookRefusal {
    /// No integration of the expected kind has this id (a malformed id included).
    UnknownIntegration,
    /// The integration could not be loaded; logged, answered opaquely.
    Internal,
}

/// The integration a hook path names, with its credentials opened, if it is of `kind`.
///
/// # Errors
/// `UnknownIntegration` for a malformed id, an unknown one, or one of another kind.
pub async fn integration(
    st: &AppState,
    raw_id: &str,
    kind: IntegrationKind,
) -> Result<(Integration, Map<String, Value>), HookRefusal> {
    let id: IntegrationId = raw_id.parse().map_err(|_| HookRefusal::UnknownIntegration)?;
    match st.integrations.open_hook(id).await {
        Ok(Some((i, c))) if i.kind == kind => Ok((i, c)),
        Ok(_) => Err(HookRefusal::UnknownIntegration),
        Err(e) => {
            tracing::error!(error = ?e, integration_id = %id, "resolving a hook's integration");
            Err(HookRefusal::Internal)
        }
    }
}

/// Stores a request raw, before processing, under its dedup key; a repeat returns the
/// stored one with `duplicate` set.
///
/// # Errors
/// `Unknown` on storage failure (the vendor should send it again).
pub async fn record(
    st: &AppState,
    integration: &Integration,
    kind: &str,
    dedup_key: String,
    headers: Value,
    body: &str,
) -> DomainResult<Recorded> {
    st.events
        .record(
            integration.tenant_id,
            NewInboundEvent {
                integration_id: integration.id,
                protocol: integration.kind.as_str().to_owned(),
                kind: kind.to_owned(),
                dedup_key,
                headers,
                body: body.to_owned(),
                received_at: chrono::Utc::now(),
            },
        )
        .await
}
