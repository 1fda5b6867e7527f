//! THE inbound pipeline, for every protocol under `/hooks/{integration_id}/...`
//! (`CONTRACT.md`, "HTTP surface"): a client address that failed to authenticate too
//! often lately is refused before anything else, the integration is looked up, the hook
//! token is checked where the protocol's path carries one, its vendor's inbound
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
use domain::security::LoginThrottle;
use jobs::inbound::{Pending, Route};
use jobs::metrics::inbound_request;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// The window `LINKYARD_HOOK_FAILURES_PER_MINUTE` counts in.
const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// Failed authentications on `/hooks` per client address (the TCP peer), counted in the
/// login throttle's store (bounded in memory, or Redis shared by every process): an
/// address over its budget is refused before any look-up until its window is over.
/// Authenticated requests are never counted, so a vendor's volume costs nothing here.
#[derive(Clone)]
pub struct FailureGate {
    throttle: Arc<dyn LoginThrottle>,
    per_minute: u32,
    namespace: String,
}

impl FailureGate {
    pub fn new(throttle: Arc<dyn LoginThrottle>, per_minute: u32, namespace: impl Into<String>) -> Self {
        Self { throttle, per_minute, namespace: namespace.into() }
    }

    fn key(&self, client: IpAddr) -> String {
        format!("{}hook-failures:{client}", self.namespace)
    }

    /// Whether `client` has used up its failures of the window. A store that cannot answer
    /// lets the request through: it is still authenticated.
    async fn closed(&self, client: Option<IpAddr>) -> bool {
        let Some(client) = client else { return false };
        match self.throttle.failures(&self.key(client)).await {
            Ok(n) => n >= self.per_minute,
            Err(e) => {
                tracing::warn!(error = ?e, "reading the hook failures of a client address");
                false
            }
        }
    }

    /// Counts one failed authentication of `client`.
    async fn failed(&self, client: Option<IpAddr>) {
        let Some(client) = client else { return };
        if let Err(e) = self.throttle.record_failure(&self.key(client), FAILURE_WINDOW).await {
            tracing::warn!(error = ?e, "counting a hook failure of a client address");
        }
    }
}

/// Every hook route: one handler, the protocol chosen by the path.
pub fn router() -> Router<AppState> {
    Router::new().route("/hooks/{integration_id}/{*path}", axum::routing::get(hook).post(hook))
}

fn render(a: HookAnswer) -> Response {
    let status = StatusCode::from_u16(a.status).unwrap_or(StatusCode::OK);
    (status, axum::Json(a.body)).into_response()
}

/// The protocol a hook path names, with the hook token the path ends in where the
/// protocol's path takes one (`None` when it is missing: refused once the protocol is known,
/// in its own envelope).
fn route(p: &Arc<dyn InboundProtocol>, path: &str) -> Option<Option<String>> {
    if path == p.path() {
        return Some(None);
    }
    if !p.path_token() {
        return None;
    }
    let token = path.strip_prefix(p.path())?.strip_prefix('/')?;
    (!token.is_empty() && !token.contains('/')).then(|| Some(token.to_owned()))
}

/// A refusal before parsing; all but our own failures count against the address.
async fn refuse(st: &AppState, client: Option<IpAddr>, protocol: &dyn InboundProtocol, why: Refusal) -> Response {
    // A disabled integration's vendor is no attacker: its address stays open for others.
    if !matches!(why, Refusal::Internal | Refusal::Disabled) {
        st.hook_failures.failed(client).await;
    }
    inbound_request(protocol.protocol(), "REFUSED");
    render(protocol.refused(why))
}

/// `path` as it may be logged: a hook token in it masked.
pub fn loggable_path<'a>(protocols: &Protocols, path: &'a str) -> std::borrow::Cow<'a, str> {
    let Some(rest) = path.strip_prefix("/hooks/") else { return path.into() };
    let Some((id, hook_path)) = rest.split_once('/') else { return path.into() };
    let tokened = |p: &&Arc<dyn InboundProtocol>| {
        p.path_token() && hook_path.strip_prefix(p.path()).is_some_and(|r| r.starts_with('/'))
    };
    match protocols.iter().find(tokened) {
        Some(p) => format!("/hooks/{id}/{}/***", p.path()).into(),
        None => path.into(),
    }
}

/// An answer to a caller that failed to authenticate: counted against its address.
async fn unauthenticated(
    st: &AppState,
    client: Option<IpAddr>,
    protocol: &'static str,
    answer: HookAnswer,
) -> Response {
    st.hook_failures.failed(client).await;
    inbound_request(protocol, "REFUSED");
    render(answer)
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
    if !protocol.serves(opened.integration.kind) {
        return Err(Refusal::UnknownIntegration);
    }
    if opened.integration.disabled_at.is_some() {
        return Err(Refusal::Disabled);
    }
    Ok((opened, from_cache))
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
    let peer = peer.map(|Extension(ConnectInfo(a))| a);
    let client = peer.map(|a| a.ip());
    let Some((protocol, token)) = st.inbound.iter().find_map(|p| route(p, &path).map(|t| (p.clone(), t))) else {
        // A scan of paths costs the address as much as guessing integrations.
        st.hook_failures.failed(client).await;
        return (StatusCode::NOT_FOUND, axum::Json(serde_json::json!({"error": "no such hook"}))).into_response();
    };
    let name = protocol.protocol();
    if st.hook_failures.closed(client).await {
        inbound_request(name, "THROTTLED");
        return render(protocol.refused(Refusal::TooManyFailures));
    }
    let (mut hook, mut from_cache) = match open(&st, &*protocol, &id, false).await {
        Ok(o) => o,
        Err(why) => return refuse(&st, client, &*protocol, why).await,
    };
    // The hook token, where the path carries one: before anything is read or stored. A
    // token refused under a cached integration is checked again under the stored one (it
    // may have just been rotated by another process).
    if protocol.path_token() {
        let mut valid = st.integrations.check_hook_token(&hook.integration, token.as_deref());
        if !valid && from_cache {
            match open(&st, &*protocol, &id, true).await {
                Ok((o, _)) => {
                    valid = st.integrations.check_hook_token(&o.integration, token.as_deref());
                    (hook, from_cache) = (o, false);
                }
                Err(why) => return refuse(&st, client, &*protocol, why).await,
            }
        }
        if !valid {
            return refuse(&st, client, &*protocol, Refusal::BadHookToken).await;
        }
    }
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
        peer,
        hook_token: token,
    };
    let accepted = loop {
        // A refusal under cached credentials is checked again under the stored ones (they
        // may have just changed).
        let again = from_cache.then(|| req.clone());
        match protocol.accept(&hook, req).await {
            Ok(a) => break a,
            Err(rejected) => {
                let fresh = match again {
                    Some(r) => open(&st, &*protocol, &id, true).await.ok().map(|(o, _)| (o, r)),
                    None => None,
                };
                let Some((o, r)) = fresh else {
                    if rejected.unauthenticated {
                        return unauthenticated(&st, client, name, rejected.answer).await;
                    }
                    inbound_request(name, "REFUSED");
                    return render(rejected.answer);
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
    let (lane, answer_first) = (accepted.lane, accepted.answer_first && !duplicate);
    let pending = Box::new(Pending {
        protocol: protocol.clone(),
        hook,
        event: recorded.event,
        lane: lane.clone().unwrap_or_default(),
        work: accepted.work,
    });
    let (pending, slot) = match lane {
        None => (pending, None),
        Some(_) if answer_first => match st.inbound_backlog.defer(pending) {
            Ok(()) => return render(protocol.deferred()),
            Err(p) => (p, None),
        },
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
