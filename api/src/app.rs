//! Application state, router composition and the server lifecycle (graceful shutdown).

use crate::auth::{Caller, Jwt};
use crate::config::Config;
use crate::error::ensure_codes;
use crate::graphql::{self, AppSchema};
use crate::ops;
use adapters::bus::Bus;
use adapters::crypto::{AesGcmSecretBox, Argon2Hasher};
use adapters::db::repos::{
    SqlAlarmRepo, SqlApiKeyRepo, SqlAuditRepo, SqlDeliveryRepo, SqlDeviceRepo, SqlHomeRepo, SqlInboundEventRepo,
    SqlIntegrationRepo, SqlScheduledRunRepo, SqlTariffRepo, SqlTenantRepo, SqlTicketRepo, SqlUserRepo,
};
use adapters::throttle::{MemoryLoginThrottle, RedisLoginThrottle};
use anyhow::Context as _;
use async_graphql::http::GraphiQLSource;
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::extract::{Path, State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderName, Request, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router, middleware};
use domain::alarms::AlarmService;
use domain::audit::AuditService;
use domain::deliveries::{DeliveryPorts, DeliveryService};
use domain::devices::DeviceService;
use domain::events::InboundEventService;
use domain::homes::HomeService;
use domain::integrations::IntegrationService;
use domain::limits::RateLimiter;
use domain::schedules::{HeartbeatCheck, ScheduledJob, SchedulerService};
use domain::security::{LoginThrottle, PasswordHasher};
use domain::tariffs::TariffService;
use domain::tenants::TenantService;
use domain::tickets::TicketService;
use domain::tokens::{TokenCache, TokenProvider};
use domain::users::{AuthService, UserService};
use secrecy::ExposeSecret;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

/// Largest request body accepted; larger ones are answered 413.
pub const BODY_LIMIT: usize = 1024 * 1024;
/// Largest GraphQL multipart request (a file upload): the largest file plus room for the form.
pub const UPLOAD_LIMIT: usize = domain::tickets::MAX_FILE_BYTES + 64 * 1024;

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: adapters::db::Db,
    pub redis: Option<redis::aio::ConnectionManager>,
    pub tenants: TenantService,
    pub users: UserService,
    pub auth: AuthService,
    pub integrations: IntegrationService,
    pub devices: DeviceService,
    pub homes: HomeService,
    pub alarms: AlarmService,
    pub tariffs: TariffService,
    pub tickets: TicketService,
    /// Dingding locks, meters and callbacks.
    pub dingding: adapters::vendors::dingding::DingdingService,
    /// Dingding callbacks waiting when a burst outruns processing.
    pub dingding_backlog: Arc<crate::hooks::DingdingBacklog>,
    pub deliveries: DeliveryService,
    pub scheduler: SchedulerService,
    /// Huzhou elevator data center: fault pushes, the pull API, live subscriptions.
    pub huzhou: adapters::vendors::huzhou::HuzhouService,
    /// Vendor tokens, fetched once across workers and refreshed before they expire.
    pub tokens: Arc<TokenProvider>,
    /// Per-key rate limits (Redis when configured).
    pub limiter: Arc<dyn RateLimiter>,
    pub jobs: jobs::JobStore,
    pub worker_settings: jobs::WorkerSettings,
    pub events: InboundEventService,
    pub audit: AuditService,
    pub bus: Bus,
    pub jwt: Arc<Jwt>,
    pub schema: AppSchema,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    pub shutdown: CancellationToken,
}

impl AppState {
    /// Starts the delivery workers and the scheduler (periodic jobs and the sweep); they
    /// stop with the shutdown token, letting attempts in flight finish. The handle resolves
    /// when the workers have stopped.
    pub fn spawn_workers(&self) -> tokio::task::JoinHandle<()> {
        let name = format!("{}-scheduler-{}", self.worker_settings.queue, std::process::id());
        let (scheduler, tick, shutdown) = (self.scheduler.clone(), self.config.scheduler_tick, self.shutdown.clone());
        let ticking = tokio::spawn(async move {
            if let Err(e) = jobs::run_scheduler(scheduler, tick, name, shutdown).await {
                tracing::error!(error = ?e, "scheduler stopped");
            }
        });
        let (huzhou, shutdown) = (self.huzhou.clone(), self.shutdown.clone());
        let live = tokio::spawn(jobs::run_live_ticker(huzhou, std::time::Duration::from_millis(100), shutdown));
        let (store, service, settings, shutdown) =
            (self.jobs.clone(), self.deliveries.clone(), self.worker_settings.clone(), self.shutdown.clone());
        tokio::spawn(async move {
            if let Err(e) = store.run_workers(service, settings, shutdown).await {
                tracing::error!(error = ?e, "delivery workers stopped");
            }
            let _ = ticking.await;
            let _ = live.await;
        })
    }

    /// Connects the database (applying migrations) and Redis, wires the services, and
    /// creates the configured platform admin if missing.
    ///
    /// # Errors
    /// When a store is unreachable or a migration fails.
    pub async fn build(config: Config, shutdown: CancellationToken) -> anyhow::Result<Self> {
        let db = adapters::db::connect(&config.database_url).await?;
        adapters::db::migrate(&db).await?;
        let redis = match &config.redis_url {
            Some(url) => Some(adapters::redis_store::connect(url).await?),
            None => None,
        };
        let hasher: Arc<dyn PasswordHasher> = Arc::new(Argon2Hasher::new()?);
        let secrets = Arc::new(AesGcmSecretBox::new(config.secret_key_bytes()?)?);
        let throttle: Arc<dyn LoginThrottle> = match &redis {
            Some(conn) => Arc::new(RedisLoginThrottle::new(conn.clone())),
            None => Arc::new(MemoryLoginThrottle::default()),
        };
        let tenant_repo = Arc::new(SqlTenantRepo::new(db.clone()));
        let user_repo = Arc::new(SqlUserRepo::new(db.clone()));
        let integration_repo = Arc::new(SqlIntegrationRepo::new(db.clone()));
        let key_repo = Arc::new(SqlApiKeyRepo::new(db.clone()));
        let home_repo = Arc::new(SqlHomeRepo::new(db.clone()));
        let device_repo = Arc::new(SqlDeviceRepo::new(db.clone()));
        let bus = match (&config.redis_url, &redis) {
            (Some(url), Some(conn)) => Bus::redis(url, conn.clone(), shutdown.clone())?,
            _ => Bus::local(),
        };
        let bus_port: Arc<dyn domain::bus::EventBus> = Arc::new(bus.clone());
        let tariff_repo = Arc::new(SqlTariffRepo::new(db.clone()));
        let ticket_repo = Arc::new(SqlTicketRepo::new(db.clone()));
        let files: Arc<dyn domain::tickets::FileStore> =
            Arc::new(adapters::storage::DiskFileStore::new(config.data_dir.join("files")));
        let job_store = jobs::JobStore::open(&db, redis.clone()).await.context("opening the job storage")?;
        let worker_settings = jobs::WorkerSettings {
            queue: config.job_queue.clone(),
            heartbeat: config.job_heartbeat,
            poll: config.job_poll,
            concurrency: config.delivery_concurrency,
        };
        let queue: Arc<dyn domain::deliveries::DeliveryQueue> = Arc::new(job_store.queue(&worker_settings));
        let (token_cache, limiter): (Arc<dyn TokenCache>, Arc<dyn RateLimiter>) = match &redis {
            Some(conn) => (
                Arc::new(adapters::cache::RedisTokenCache::new(conn.clone())),
                Arc::new(adapters::cache::RedisRateLimiter::new(conn.clone())),
            ),
            None => (
                Arc::new(adapters::cache::MemoryTokenCache::default()),
                Arc::new(adapters::cache::MemoryRateLimiter::default()),
            ),
        };
        let alarms = AlarmService::new(
            Arc::new(SqlAlarmRepo::new(db.clone())),
            device_repo.clone(),
            ticket_repo.clone(),
            bus_port.clone(),
        )
        .with_outbound(integration_repo.clone(), queue.clone());
        let integrations = IntegrationService::new(integration_repo.clone(), key_repo, secrets);
        let http = adapters::vendors::http_client(std::time::Duration::from_secs(15))?;
        let tokens = Arc::new(TokenProvider::new(token_cache));
        let huzhou_sender =
            adapters::vendors::huzhou::HuzhouSender::new(http.clone(), integrations.clone(), tokens.clone());
        let senders = config.senders.clone().or_with(
            adapters::vendors::webhook::PREFIX,
            Arc::new(adapters::vendors::webhook::WebhookSender::new(http, integrations.clone())),
            config.vendor_concurrency,
        );
        // Dingding (PROTOCOLS.md 3): the sender of its state-changing calls, its reads, its use cases.
        let dingding_repo = Arc::new(adapters::db::repos::SqlDingdingRepo::new(db.clone()));
        let dingding_secrets: Arc<dyn domain::security::SecretBox> =
            Arc::new(AesGcmSecretBox::new(config.secret_key_bytes()?)?);
        let dingding_client = adapters::vendors::dingding::client::Client::new(
            adapters::vendors::http_client(std::time::Duration::from_secs(15))?,
            tokens.clone(),
            integrations.clone(),
        );
        let dingding_sender = adapters::vendors::dingding::DingdingSender::new(
            dingding_client.clone(),
            adapters::vendors::dingding::Outcomes::new(dingding_repo.clone(), dingding_secrets.clone()),
        );
        let senders =
            senders.or_with(adapters::vendors::dingding::PREFIX, Arc::new(dingding_sender), config.vendor_concurrency);
        let senders =
            senders.or_with(adapters::vendors::huzhou::PREFIX, Arc::new(huzhou_sender), config.vendor_concurrency);
        let senders: Arc<dyn domain::deliveries::DeliverySender> = Arc::new(senders);
        let deliveries = DeliveryService::new(
            DeliveryPorts {
                repo: Arc::new(SqlDeliveryRepo::with_bookkeeping(
                    db.clone(),
                    adapters::db::connect_bookkeeping(&config.database_url, &db).await?,
                )),
                integrations: integration_repo.clone(),
                sender: senders.clone(),
                queue,
                limiter: limiter.clone(),
            },
            alarms.clone(),
            config.delivery_stale_after,
        );
        let huzhou = adapters::vendors::huzhou::HuzhouService::new(adapters::vendors::huzhou::HuzhouPorts {
            repo: Arc::new(adapters::db::repos::SqlHuzhouRepo::new(db.clone())),
            devices: device_repo.clone(),
            integrations: integration_repo.clone(),
            alarms: alarms.clone(),
            deliveries: deliveries.clone(),
            sender: senders,
        });
        let scheduler = SchedulerService::new(
            Arc::new(SqlScheduledRunRepo::new(db.clone())),
            integration_repo.clone(),
            deliveries.clone(),
            format!("{}-{}", config.job_queue, std::process::id()),
            config.sweep_every,
        )
        .with_job(ScheduledJob::HeartbeatCheck, Arc::new(HeartbeatCheck::new(device_repo.clone(), alarms.clone())))
        .with_job(ScheduledJob::LiftNotifyDaily, Arc::new(adapters::vendors::huzhou::LiftNotifyDaily(huzhou.clone())))
        .with_job(ScheduledJob::ElevThingsDaily, Arc::new(adapters::vendors::huzhou::ElevThingsDaily(huzhou.clone())));
        let dingding = adapters::vendors::dingding::DingdingService::new(adapters::vendors::dingding::DingdingPorts {
            repo: dingding_repo,
            api: Arc::new(adapters::vendors::dingding::DingdingReads::new(dingding_client)),
            devices: DeviceService::new(
                device_repo.clone(),
                integration_repo.clone(),
                home_repo.clone(),
                bus_port.clone(),
            ),
            device_repo: device_repo.clone(),
            homes: home_repo.clone(),
            integrations: integration_repo.clone(),
            deliveries: deliveries.clone(),
            alarms: alarms.clone(),
            limiter: limiter.clone(),
            secrets: dingding_secrets,
            tickets: TicketService::new(
                ticket_repo.clone(),
                files.clone(),
                device_repo.clone(),
                home_repo.clone(),
                integration_repo.clone(),
            ),
        });
        let scheduler = scheduler
            .with_job(ScheduledJob::Sync, Arc::new(adapters::vendors::dingding::DingdingSync::new(dingding.clone())));
        let users = UserService::new(user_repo.clone(), tenant_repo.clone(), hasher.clone());
        let events = InboundEventService::new(Arc::new(SqlInboundEventRepo::new(db.clone())));
        let dingding_backlog = crate::hooks::DingdingBacklog::start(
            dingding.clone(),
            events.clone(),
            config.database_url.starts_with("sqlite"),
            shutdown.clone(),
        );
        let state = Self {
            tenants: TenantService::new(tenant_repo.clone()),
            auth: AuthService::new(user_repo, tenant_repo, hasher, throttle, config.login_throttle),
            integrations,
            devices: DeviceService::new(
                device_repo.clone(),
                integration_repo.clone(),
                home_repo.clone(),
                bus_port.clone(),
            )
            .with_observer(Arc::new(huzhou.clone())),
            tariffs: TariffService::new(
                tariff_repo.clone(),
                tariff_repo,
                device_repo.clone(),
                home_repo.clone(),
                integration_repo.clone(),
            ),
            tickets: TicketService::new(
                ticket_repo.clone(),
                files,
                device_repo.clone(),
                home_repo.clone(),
                integration_repo.clone(),
            )
            .with_observer(Arc::new(huzhou.clone())),
            homes: HomeService::new(home_repo, integration_repo),
            dingding,
            dingding_backlog,
            alarms,
            deliveries,
            scheduler,
            huzhou,
            tokens,
            limiter,
            jobs: job_store,
            worker_settings,
            events,
            audit: AuditService::new(Arc::new(SqlAuditRepo::new(db.clone()))),
            bus,
            users,
            jwt: Arc::new(Jwt::new(config.jwt_secret.expose_secret().as_bytes())),
            schema: graphql::schema(),
            metrics: ops::metrics_handle()?,
            config: Arc::new(config),
            db,
            redis,
            shutdown,
        };
        if let Some((email, password)) = &state.config.admin {
            let (admin, created) = state
                .users
                .ensure_platform_admin(email, password.expose_secret())
                .await
                .map_err(|e| anyhow::anyhow!("creating the platform admin from LINKYARD_ADMIN_EMAIL: {e}"))?;
            tracing::info!(user_id = %admin.id, created, "platform admin ready");
        }
        Ok(state)
    }
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let api = Router::new()
        .route("/graphql", get(graphiql).post(graphql_handler))
        .route("/graphql/ws", get(graphql_ws))
        .route("/files/tickets/{ticket}/{file}", get(ticket_file))
        .merge(crate::hooks::router())
        .merge(ops::router())
        .route_layer(middleware::from_fn(ops::track_metrics));
    api.fallback(not_found)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|req: &Request<_>| {
                            let rid = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                            // The path only: query strings can carry vendor secrets.
                            tracing::info_span!("request", request_id = %rid, method = %req.method(), path = %req.uri().path())
                        })
                        .on_response(DefaultOnResponse::new().level(Level::INFO)),
                )
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(CatchPanicLayer::new())
                .layer(middleware::from_fn(body_limit)),
        )
        .with_state(state)
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

/// Downloads a ticket's file; the bearer token of a user of the ticket's tenant is needed.
async fn ticket_file(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path((ticket, file)): Path<(String, String)>,
) -> Response {
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let error = |status: StatusCode, msg: &str| (status, Json(serde_json::json!({"error": msg}))).into_response();
    let Ok(actor) = Caller::from_header(&st.jwt, auth).actor() else {
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

async fn graphiql() -> impl IntoResponse {
    Html(GraphiQLSource::build().endpoint("/graphql").subscription_endpoint("/graphql/ws").finish())
}

async fn graphql_handler(
    State(st): State<AppState>,
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
    let caller = Caller::from_header(&st.jwt, auth);
    let schema = st.schema.clone();
    let mut resp = schema.execute(req.data(st).data(caller)).await;
    ensure_codes(&mut resp);
    GraphQLResponse::from(resp).into_response()
}

/// graphql-transport-ws; the access token comes in the `connection_init` payload as
/// `Authorization: "Bearer ..."` (or `token`).
async fn graphql_ws(State(st): State<AppState>, protocol: GraphQLProtocol, upgrade: WebSocketUpgrade) -> Response {
    let schema = st.schema.clone();
    upgrade.protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS).on_upgrade(move |socket| async move {
        let jwt = st.jwt.clone();
        GraphQLWebSocket::new(socket, schema, protocol)
            .on_connection_init(move |payload| async move {
                let header = payload
                    .get("Authorization")
                    .or_else(|| payload.get("authorization"))
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
                    .or_else(|| payload.get("token").and_then(|v| v.as_str()).map(|t| format!("Bearer {t}")));
                let caller = Caller::from_header(&jwt, header.as_deref());
                let mut data = async_graphql::Data::default();
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
