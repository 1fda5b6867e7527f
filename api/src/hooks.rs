//! THE inbound pipeline, for every protocol under `/hooks/{integration_id}/...`
//! (`CONTRACT.md`, "HTTP surface"): the integration is looked up, its vendor's inbound
//! protocol authenticates and parses the request, the request is stored raw under its
//! dedup key before anything is applied, a resend is recognised, the facts are applied
//! (before the answer, or from the backlog in a burst) and the protocol answers in its
//! own envelope, never with a bare 5xx. Each protocol lives in its vendor's folder
//! (`adapters/src/vendors/<vendor>/inbound.rs`) and is registered in `state.rs`.

use crate::app::AppState;
use adapters::vendors::inbound::{HookAnswer, HookRequest, InboundProtocol, Opened, Refusal};
use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::events::NewInboundEvent;
use domain::ids::IntegrationId;
use jobs::inbound::{Pending, Route};
use jobs::metrics::inbound_request;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// Every hook route: one handler, the protocol chosen by the path.
pub fn router() -> Router<AppState> {
    Router::new().route("/hooks/{integration_id}/{*path}", axum::routing::get(hook).post(hook))
}

fn render(a: HookAnswer) -> Response {
    let status = StatusCode::from_u16(a.status).unwrap_or(StatusCode::OK);
    (status, axum::Json(a.body)).into_response()
}

/// The integration a hook path names, if the protocol serves its kind; `fresh` skips the
/// cache. Answers whether it came from the cache.
async fn open(
    st: &AppState,
    protocol: &dyn InboundProtocol,
    raw_id: &str,
    fresh: bool,
) -> Result<(Opened, bool), Refusal> {
    let id: IntegrationId = raw_id.parse().map_err(|_| Refusal::UnknownIntegration)?;
    let cached = (protocol.cached() && !fresh).then(|| st.hook_integrations.get(&id)).flatten();
    let from_cache = cached.is_some();
    let opened = match cached {
        Some(o) => o,
        None => match st.integrations.open_hook(id).await {
            Ok(Some((integration, credentials))) => {
                let o = Opened { integration, credentials };
                if protocol.cached() {
                    st.hook_integrations.put(id, o.clone());
                }
                o
            }
            Ok(None) => return Err(Refusal::UnknownIntegration),
            Err(e) => {
                tracing::error!(error = ?e, integration_id = %id, "resolving a hook's integration");
                return Err(Refusal::Internal);
            }
        },
    };
    if protocol.serves(opened.integration.kind) { Ok((opened, from_cache)) } else { Err(Refusal::UnknownIntegration) }
}

async fn hook(
    State(st): State<AppState>,
    Path((id, path)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let Some(protocol) = st.inbound.iter().find(|p| p.path() == path).cloned() else {
        return (StatusCode::NOT_FOUND, axum::Json(serde_json::json!({"error": "no such hook"}))).into_response();
    };
    let name = protocol.protocol();
    let (mut hook, mut from_cache) = match open(&st, &*protocol, &id, false).await {
        Ok(o) => o,
        Err(why) => {
            inbound_request(name, "REFUSED");
            return render(protocol.refused(why));
        }
    };
    let Ok(body) = body else {
        inbound_request(name, "REFUSED");
        return render(protocol.refused(Refusal::Internal));
    };
    let mut req = HookRequest {
        method: method.as_str().to_owned(),
        query: query.ok().map(|Query(q)| q),
        headers: headers
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_owned(), v.to_owned())))
            .collect(),
        body: body.to_vec(),
        peer: peer.map(|Extension(ConnectInfo(a))| a),
    };
    let accepted = loop {
        // A refusal under cached credentials is checked again under the stored ones (they
        // may have just changed).
        let again = from_cache.then(|| req.clone());
        match protocol.accept(&hook, req).await {
            Ok(a) => break a,
            Err(answer) => {
                let fresh = match again {
                    Some(r) => open(&st, &*protocol, &id, true).await.ok().map(|(o, _)| (o, r)),
                    None => None,
                };
                let Some((o, r)) = fresh else {
                    inbound_request(name, "REFUSED");
                    return render(answer);
                };
                (hook, req, from_cache) = (o, r, false);
            }
        }
    };
    let writer = st.inbound_backlog.writer().await;
    let recorded = st
        .events
        .record(
            hook.integration.tenant_id,
            NewInboundEvent {
                integration_id: hook.integration.id,
                protocol: name.to_owned(),
                kind: accepted.kind,
                dedup_key: accepted.dedup_key,
                headers: accepted.headers,
                body: accepted.body,
                received_at: chrono::Utc::now(),
            },
        )
        .await;
    drop(writer);
    let recorded = match recorded {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = ?e, integration_id = %hook.integration.id, "storing a hook request");
            inbound_request(name, "STORE_FAILED");
            // Not stored: the vendor sends it again.
            return render(protocol.refused(Refusal::Internal));
        }
    };
    let duplicate = recorded.duplicate;
    inbound_request(name, if duplicate { "DUPLICATE" } else { "STORED" });
    if duplicate
        && protocol.keeps_answer()
        && let Some(body) = recorded.event.answer.clone()
    {
        return render(HookAnswer::new(200, body));
    }
    if duplicate && let Some(answer) = protocol.repeat(&recorded.event) {
        return render(answer);
    }
    let lane = accepted.lane;
    let pending = Box::new(Pending {
        protocol: protocol.clone(),
        hook,
        event: recorded.event,
        lane: lane.clone().unwrap_or_default(),
        work: accepted.work,
    });
    let (pending, slot) = match lane {
        None => (pending, None),
        Some(_) => match st.inbound_backlog.inline_or_defer(pending) {
            Route::Deferred => return render(protocol.deferred()),
            Route::Inline(p, slot) => (p, slot),
        },
    };
    // SQLite has one writer: applying waits its turn.
    let turn = st.inbound_backlog.writer().await;
    let (_, answer) = jobs::inbound::apply(&st.events, *pending, duplicate).await;
    drop((slot, turn));
    render(answer)
}

/// Registered protocols, for `state.rs`.
pub type Protocols = Arc<Vec<Arc<dyn InboundProtocol>>>;
