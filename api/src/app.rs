//! Router composition and the server lifecycle (graceful shutdown); the state is built in
//! `state.rs`.

use crate::auth::Caller;
use crate::config::Config;
use crate::error::ensure_codes;
use crate::ops;
use anyhow::Context as _;
use async_graphql::http::GraphiQLSource;
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::extract::{Path, Query, State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderName, Request, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router, middleware};
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

pub use crate::state::AppState;

/// Largest request body accepted; larger ones are answered 413.
pub const BODY_LIMIT: usize = 1024 * 1024;
/// Largest GraphQL multipart request (a file upload): the largest file plus room for the form.
pub const UPLOAD_LIMIT: usize = domain::tickets::MAX_FILE_BYTES + 64 * 1024;

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let timeout = state.config.request_timeout;
    let protocols = state.inbound.clone();
    let api = Router::new()
        .route("/graphql", get(graphiql).post(graphql_handler))
        .route(SUBSCRIPTIONS, get(graphql_ws))
        .route("/files/tickets/{ticket}/{file}", get(ticket_file))
        .route("/files/devices/{file}", get(device_file))
        .merge(crate::hooks::router())
        .merge(ops::router())
        .route_layer(middleware::from_fn(ops::track_metrics));
    api.fallback(not_found)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(move |req: &Request<_>| {
                            let rid = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                            // The path only (query strings can carry vendor secrets), its hook
                            // token masked.
                            let path = crate::hooks::loggable_path(&protocols, req.uri().path());
                            tracing::info_span!("request", request_id = %rid, method = %req.method(), path = %path)
                        })
                        .on_response(DefaultOnResponse::new().level(Level::INFO)),
                )
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(CatchPanicLayer::new())
                .layer(middleware::from_fn(move |req, next| request_timeout(timeout, req, next)))
                .layer(middleware::from_fn(body_limit)),
        )
        .with_state(state)
}

/// The path of GraphQL subscriptions: a connection that lasts, exempt from the timeout.
const SUBSCRIPTIONS: &str = "/graphql/ws";

/// 408 for a request not answered within `limit` (`LINKYARD_REQUEST_TIMEOUT_SECS`), reading
/// its body included: a slow client holds a connection that long at most. The handler is
/// dropped (a transaction rolls back; a hook request stored but not applied is applied by
/// the inbound sweep).
async fn request_timeout(
    limit: std::time::Duration,
    req: Request<axum::body::Body>,
    next: middleware::Next,
) -> Response {
    if req.uri().path() == SUBSCRIPTIONS {
        return next.run(req).await;
    }
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            (StatusCode::REQUEST_TIMEOUT, Json(serde_json::json!({"error": "request timed out"}))).into_response()
        }
    }
}

/// 413 for bodies over `BODY_LIMIT`, or `UPLOAD_LIMIT` for GraphQL multipart uploads: by
/// the declared length up front, and by counting while a body without one streams in.
async fn body_limit(req: Request<axum::body::Body>, next: middleware::Next) -> Response {
    let upload = req.uri().path() == "/graphql"
        && req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("multipart/form-data"));
    let limit = if upload { UPLOAD_LIMIT } else { BODY_LIMIT };
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return (StatusCode::PAYLOAD_TOO_LARGE, Json(serde_json::json!({"error": "request body too large"})))
            .into_response();
    }
    let (parts, body) = req.into_parts();
    let body = axum::body::Body::new(http_body_util::Limited::new(body, limit));
    next.run(Request::from_parts(parts, body)).await
}

/// Downloads a device file through its signed, expiring link (`deviceFiles { downloadUrl }`).
async fn device_file(
    State(st): State<AppState>,
    Path(file): Path<String>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let error = |status: StatusCode, msg: &str| (status, Json(serde_json::json!({"error": msg}))).into_response();
    let granted = q.get("token").and_then(|t| st.jwt.open_file_link(t).ok());
    let Some((tenant, file)) = granted.filter(|(_, f)| f.to_string() == file) else {
        return error(StatusCode::FORBIDDEN, "the link is not valid (or has expired)");
    };
    match st.device_files.open(tenant, file).await {
        Ok(Some((meta, bytes))) => {
            let name = meta.filename.unwrap_or_else(|| meta.id.to_string());
            let disposition = format!("attachment; filename*=UTF-8''{}", percent_encode(&name));
            let mut resp = bytes.into_response();
            let h = resp.headers_mut();
            if let Some(v) = meta.content_type.and_then(|c| c.parse().ok()) {
                h.insert(header::CONTENT_TYPE, v);
            }
            if let Ok(v) = disposition.parse() {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            h.insert(header::X_CONTENT_TYPE_OPTIONS, header::HeaderValue::from_static("nosniff"));
            resp
        }
        Ok(None) => error(StatusCode::NOT_FOUND, "file not found"),
        Err(e) => {
            tracing::error!(error = ?e, "reading a device file");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

/// Downloads a ticket's file; the bearer token of a user of the ticket's tenant is needed.
async fn ticket_file(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path((ticket, file)): Path<(String, String)>,
) -> Response {
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let error = |status: StatusCode, msg: &str| (status, Json(serde_json::json!({"error": msg}))).into_response();
    let Ok(actor) = Caller::resolve(&st.jwt, &st.users, auth).await.actor() else {
        return error(StatusCode::UNAUTHORIZED, "authentication required");
    };
    let (Ok(ticket), Ok(file)) = (ticket.parse(), file.parse()) else {
        return error(StatusCode::NOT_FOUND, "file not found");
    };
    match st.tickets.read_file(&actor, ticket, file).await {
        Ok((meta, bytes)) => {
            let disposition = format!("attachment; filename*=UTF-8''{}", percent_encode(&meta.filename));
            let mut resp = bytes.into_response();
            let h = resp.headers_mut();
            if let Ok(v) = meta.content_type.parse() {
                h.insert(header::CONTENT_TYPE, v);
            }
            if let Ok(v) = disposition.parse() {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            h.insert(header::X_CONTENT_TYPE_OPTIONS, header::HeaderValue::from_static("nosniff"));
            resp
        }
        Err(domain::DomainError::NotFound(_)) => error(StatusCode::NOT_FOUND, "file not found"),
        Err(domain::DomainError::Forbidden | domain::DomainError::Unauthenticated) => {
            error(StatusCode::FORBIDDEN, "not allowed")
        }
        Err(e) => {
            tracing::error!(error = ?e, "reading a ticket file");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

/// RFC 5987 encoding of a header parameter value.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn not_found() -> impl IntoResponse {
    (StatusCode::NOT_FOUND, Json(serde_json::json!({"error": "not found"})))
}

/// The GraphiQL page, where introspection is on (`LINKYARD_INTROSPECTION`).
async fn graphiql(State(st): State<AppState>) -> Response {
    if !st.config.introspection {
        return not_found().await.into_response();
    }
    Html(GraphiQLSource::build().endpoint("/graphql").subscription_endpoint("/graphql/ws").finish()).into_response()
}

/// Per GraphQL request: the client's address, and whether a `login` ran already (one
/// password check per request, whatever the aliases).
pub struct LoginGate {
    pub client: Option<std::net::IpAddr>,
    used: std::sync::atomic::AtomicBool,
}

impl LoginGate {
    pub fn new(client: Option<std::net::IpAddr>) -> Self {
        Self { client, used: std::sync::atomic::AtomicBool::new(false) }
    }

    /// True for the request's first login only.
    pub fn first(&self) -> bool {
        !self.used.swap(true, std::sync::atomic::Ordering::SeqCst)
    }
}

async fn graphql_handler(
    State(st): State<AppState>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    req: Result<GraphQLRequest, async_graphql_axum::rejection::GraphQLRejection>,
) -> Response {
    let req = match req {
        Ok(r) => r.into_inner(),
        Err(rejection) => {
            let body = serde_json::json!({"errors": [{
                "message": format!("malformed GraphQL request: {}", rejection.0),
                "extensions": {"code": crate::error::code::BAD_USER_INPUT},
            }]});
            return (StatusCode::BAD_REQUEST, Json(body)).into_response();
        }
    };
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let caller = Caller::resolve(&st.jwt, &st.users, auth).await;
    let schema = st.schema.clone();
    let gate = LoginGate::new(peer.map(|axum::Extension(axum::extract::ConnectInfo(a))| a.ip()));
    let loaders = crate::graphql::loaders::for_request(st.clone(), caller);
    // A tenant's request runs in its tenant's row-level-security scope (PostgreSQL).
    let tenant = caller.actor().ok().and_then(|a| a.tenant().ok());
    let run = schema.execute(req.data(st).data(caller).data(gate).data(loaders));
    let mut resp = match tenant {
        Some(t) => adapters::db::with_tenant(t, run).await,
        None => run.await,
    };
    ensure_codes(&mut resp);
    GraphQLResponse::from(resp).into_response()
}

/// graphql-transport-ws; the access token comes in the `connection_init` payload as
/// `Authorization: "Bearer ..."` (or `token`).
async fn graphql_ws(State(st): State<AppState>, protocol: GraphQLProtocol, upgrade: WebSocketUpgrade) -> Response {
    let schema = st.schema.clone();
    upgrade.protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS).on_upgrade(move |socket| async move {
        GraphQLWebSocket::new(socket, schema, protocol)
            .on_connection_init(move |payload| async move {
                let header = payload
                    .get("Authorization")
                    .or_else(|| payload.get("authorization"))
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
                    .or_else(|| payload.get("token").and_then(|v| v.as_str()).map(|t| format!("Bearer {t}")));
                let caller = Caller::resolve(&st.jwt, &st.users, header.as_deref()).await;
                let mut data = async_graphql::Data::default();
                data.insert(crate::graphql::loaders::for_request(st.clone(), caller));
                data.insert(st);
                data.insert(caller);
                Ok(data)
            })
            .serve()
            .await;
    })
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// The delivery workers and scheduler, when this process runs them; they finish the
    /// attempts in flight after the shutdown token is cancelled.
    pub workers: Option<tokio::task::JoinHandle<()>>,
}

/// Builds the state, binds `config.addr` and serves until `shutdown` is cancelled; then
/// stops accepting and lets in-flight requests finish.
///
/// # Errors
/// When the state cannot be built or the address cannot be bound.
pub async fn start(config: Config, shutdown: CancellationToken) -> anyhow::Result<Running> {
    let listener =
        tokio::net::TcpListener::bind(&config.addr).await.with_context(|| format!("binding {}", config.addr))?;
    let addr = listener.local_addr()?;
    let run_workers = config.run_workers;
    let state = AppState::build(config, shutdown.clone()).await?;
    let workers = run_workers.then(|| state.spawn_workers());
    // Planner statistics follow fast-growing tables (a new tenant's first burst) within
    // seconds instead of autovacuum's minute.
    tokio::spawn(adapters::db::statistics::keep_statistics(state.db.clone(), STATISTICS_EVERY, shutdown.clone()));
    let app = router(state.clone());
    let task = tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .context("serving HTTP")
    });
    tracing::info!(%addr, "linkyard listening");
    Ok(Running { addr, state, task, workers })
}

/// How often tables are checked for statistics older than their rows.
const STATISTICS_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Resolves when SIGTERM or Ctrl-C arrives.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
