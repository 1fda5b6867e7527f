//! The application state: every service built once, every observer wired once, so a
//! change reaches the same observers (subscriptions, outbound pushes) whatever its origin:
//! a GraphQL mutation, a vendor callback or a periodic job.

use crate::auth::Jwt;
use crate::config::Config;
use crate::graphql::{self, AppSchema};
use crate::ops;
use adapters::bus::Bus;
use adapters::crypto::Argon2Hasher;
use adapters::db::repos::{
    SqlAlarmRepo, SqlApiKeyRepo, SqlAuditRepo, SqlDeliveryRepo, SqlDeviceRepo, SqlHomeRepo, SqlInboundEventRepo,
    SqlIntegrationRepo, SqlScheduledRunRepo, SqlTariffRepo, SqlTenantRepo, SqlTicketRepo, SqlUserRepo,
};
use adapters::throttle::{MemoryLoginThrottle, RedisLoginThrottle};
use anyhow::Context as _;
use domain::Clock;
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
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Everything a request handler needs, shared by every request: a clone is one reference
/// count.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl std::ops::Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.0
    }
}

/// What `AppState` holds.
pub struct Services {
    pub config: Arc<Config>,
    pub db: adapters::db::Db,
    /// Statements `db` has run since the start (`linkyard_db_statements_total` on
    /// `/metrics`); tests count a request's queries with it.
    pub db_statements: Arc<std::sync::atomic::AtomicU64>,
    pub redis: Option<redis::aio::ConnectionManager>,
    pub tenants: TenantService,
    pub users: UserService,
    pub auth: AuthService,
    pub integrations: IntegrationService,
    pub devices: DeviceService,
    pub homes: HomeService,
    pub alarms: AlarmService,
    /// Escalation policies, notification channels and the check that takes due steps.
    pub escalations: domain::alarms::escalation::EscalationService,
    pub tariffs: TariffService,
    pub tickets: TicketService,
    /// Dingding locks, meters and callbacks.
    pub dingding: adapters::vendors::dingding::DingdingService,
    /// Dingding callbacks waiting when a burst outruns processing.
    /// The inbound protocols, one per vendor (`hooks.rs` picks one by path).
    pub inbound: crate::hooks::Protocols,
    /// Where stored hook requests wait in a burst; its sweep applies what a stopped
    /// process left.
    pub inbound_backlog: Arc<jobs::inbound::Backlog>,
    /// Failed authentications on `/hooks` per client address.
    pub hook_failures: crate::hooks::FailureGate,
    /// Integrations of recent hook requests (protocols that allow it).
    pub hook_integrations: Arc<domain::ttl::TtlCache<domain::ids::IntegrationId, adapters::vendors::inbound::Opened>>,
    /// Vendor-neutral facts, applied with their outbox rows in one unit of work.
    pub ingest: domain::ingest::IngestService,
    pub deliveries: DeliveryService,
    pub scheduler: SchedulerService,
    /// Huzhou elevator data center: fault pushes, the pull API, live subscriptions.
    pub huzhou: adapters::vendors::huzhou::HuzhouService,
    /// The gas module's use cases (meter details asked of the DAS).
    pub gas: adapters::vendors::goldcard::Goldcard,
    /// The ETC module's use cases (gantry commands).
    pub etc: adapters::vendors::etc::Etc,
    /// Files devices hand over (door-opening pictures), per tenant.
    pub device_files: domain::devices::DeviceFiles,
    /// Vendor tokens, fetched once across workers and refreshed before they expire.
    pub tokens: Arc<TokenProvider>,
    /// Per-key rate limits (Redis when configured).
    pub limiter: Arc<dyn RateLimiter>,
    pub jobs: jobs::JobStore,
    pub worker_settings: jobs::WorkerSettings,
    pub events: InboundEventService,
    pub audit: AuditService,
    pub bus: Bus,
    /// Where every service reads the time: the system clock.
    pub clock: Arc<dyn Clock>,
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
        let mut db = adapters::db::connect(&config.database_url).await?;
        let db_statements = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = db_statements.clone();
        db.set_metric_callback(move |_| {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            metrics::counter!("linkyard_db_statements_total").increment(1);
        });
        adapters::db::migrate(&db).await?;
        let redis = match &config.redis_url {
            Some(url) => Some(adapters::redis_store::connect(url).await?),
            None => None,
        };
        // The one clock: every rule that reads the time, or waits, reads this one.
        let clock: Arc<dyn Clock> = config.clock.0.clone();
        let hasher: Arc<dyn PasswordHasher> = Arc::new(Argon2Hasher::new()?);
        let secrets = Arc::new(config.secret_box()?);
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
        let files: Arc<dyn domain::tickets::FileStore> = match &config.storage_url {
            Some(url) => Arc::new(adapters::storage::ObjectFileStore::s3(url).context("LINKYARD_STORAGE_URL")?),
            None => Arc::new(adapters::storage::DiskFileStore::new(config.data_dir.join("files"))),
        };
        // Delivery bookkeeping, and delivery jobs in PostgreSQL job storage, commit without
        // waiting for the disk: a job lost in a crash is found again by the sweep (the
        // delivery row itself is written durably).
        let bookkeeping = adapters::db::connect_bookkeeping(&config.database_url, &db).await?;
        // Batched delivery creates: durable, planned once per connection.
        let keyed = adapters::db::connect_keyed(&config.database_url, &db).await?;
        let job_store = jobs::JobStore::open(&bookkeeping, redis.clone()).await.context("opening the job storage")?;
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
        .with_outbound(integration_repo.clone(), queue.clone())
        // Vendor modules that send some alarms on: one registration line per vendor.
        .with_relay(Arc::new(adapters::vendors::hazchem::HazchemAlarms::new(
            ticket_repo.clone(),
            integration_repo.clone(),
        )))
        .with_clock(clock.clone());
        let escalations =
            domain::alarms::escalation::EscalationService::new(domain::alarms::escalation::EscalationPorts {
                repo: Arc::new(adapters::db::repos::SqlEscalationRepo::new(db.clone())),
                alarms: Arc::new(SqlAlarmRepo::new(db.clone())),
                integrations: integration_repo.clone(),
                secrets: secrets.clone(),
                queue: queue.clone(),
                bus: bus_port.clone(),
            })
            .with_clock(clock.clone());
        let integrations =
            IntegrationService::new(integration_repo.clone(), key_repo, secrets).with_clock(clock.clone());
        let http = adapters::vendors::http_client(std::time::Duration::from_secs(15), &config.outbound)?;
        let tokens = Arc::new(TokenProvider::new(token_cache).with_clock(clock.clone()));
        let huzhou_sender =
            adapters::vendors::huzhou::HuzhouSender::new(http.clone(), integrations.clone(), tokens.clone())
                .with_clock(clock.clone());
        let senders = config.senders.clone().or_with(
            adapters::vendors::webhook::PREFIX,
            Arc::new(adapters::vendors::webhook::WebhookSender::new(http, integrations.clone())),
            config.vendor_concurrency,
        );
        // Dingding (PROTOCOLS.md 3): the sender of its state-changing calls, its reads, its use cases.
        let dingding_repo = Arc::new(adapters::db::repos::SqlDingdingRepo::new(db.clone()));
        let dingding_secrets: Arc<dyn domain::security::SecretBox> = Arc::new(config.secret_box()?);
        let dingding_client = adapters::vendors::dingding::client::Client::new(
            adapters::vendors::http_client(std::time::Duration::from_secs(15), &config.outbound)?,
            tokens.clone(),
            integrations.clone(),
        )
        .with_clock(clock.clone());
        let dingding_sender = adapters::vendors::dingding::DingdingSender::new(
            dingding_client.clone(),
            adapters::vendors::dingding::Outcomes::new(dingding_repo.clone(), dingding_secrets.clone())
                .with_clock(clock.clone()),
        );
        let senders =
            senders.or_with(adapters::vendors::dingding::PREFIX, Arc::new(dingding_sender), config.vendor_concurrency);
        let senders =
            senders.or_with(adapters::vendors::huzhou::PREFIX, Arc::new(huzhou_sender), config.vendor_concurrency);
        let gas_sender = adapters::vendors::goldcard::GoldcardSender::new(
            adapters::vendors::http_client(std::time::Duration::from_secs(15), &config.outbound)?,
            integrations.clone(),
            clock.clone(),
        );
        let senders = senders.or_with(
            adapters::vendors::goldcard::PREFIX,
            Arc::new(gas_sender.clone()),
            config.vendor_concurrency,
        );
        let delivery_repo: Arc<dyn domain::deliveries::DeliveryRepo> =
            Arc::new(SqlDeliveryRepo::with_pools(db.clone(), keyed, bookkeeping.clone()));
        // ETC gantries (PROTOCOLS.md 2): control commands and door-opening files.
        let device_files = domain::devices::DeviceFiles::new(
            Arc::new(adapters::db::repos::SqlDeviceFileRepo::new(db.clone())),
            device_repo.clone(),
            files.clone(),
        )
        .with_clock(clock.clone());
        let etc_sender = adapters::vendors::etc::EtcSender::new(
            adapters::vendors::http_client(std::time::Duration::from_secs(30), &config.outbound)?,
            integrations.clone(),
            delivery_repo.clone(),
            device_files.clone(),
            clock.clone(),
        );
        let senders = senders.or_with(adapters::vendors::etc::PREFIX, Arc::new(etc_sender), config.vendor_concurrency);
        // The hazardous-chemicals regulator (PROTOCOLS.md 5): permits, attachments, alarms.
        let ticket_syncs: Arc<dyn domain::tickets::TicketSyncRepo> =
            Arc::new(adapters::db::repos::SqlTicketSyncRepo::new(db.clone()));
        let hazchem_sender = adapters::vendors::hazchem::HazchemSender::new(
            adapters::vendors::http_client(std::time::Duration::from_secs(30), &config.outbound)?,
            adapters::vendors::hazchem::client::HazchemPorts {
                integrations: integrations.clone(),
                tokens: tokens.clone(),
                tickets: ticket_repo.clone(),
                syncs: ticket_syncs.clone(),
                deliveries: delivery_repo.clone(),
                files: files.clone(),
                clock: clock.clone(),
            },
        );
        let senders =
            senders.or_with(adapters::vendors::hazchem::PREFIX, Arc::new(hazchem_sender), config.vendor_concurrency);
        let senders: Arc<dyn domain::deliveries::DeliverySender> = Arc::new(senders);
        let deliveries = DeliveryService::new(
            DeliveryPorts {
                repo: delivery_repo,
                integrations: integration_repo.clone(),
                sender: senders.clone(),
                queue: queue.clone(),
                limiter: limiter.clone(),
            },
            alarms.clone(),
            config.delivery_stale_after,
        )
        .with_lease(worker_settings.lease())
        .with_clock(clock.clone());
        let huzhou = adapters::vendors::huzhou::HuzhouService::new(adapters::vendors::huzhou::HuzhouPorts {
            repo: Arc::new(adapters::db::repos::SqlHuzhouRepo::new(db.clone())),
            devices: device_repo.clone(),
            integrations: integration_repo.clone(),
            alarms: alarms.clone(),
            deliveries: deliveries.clone(),
            sender: senders,
            clock: clock.clone(),
        });
        let scheduler = SchedulerService::new(
            Arc::new(SqlScheduledRunRepo::new(db.clone())),
            integration_repo.clone(),
            deliveries.clone(),
            format!("{}-{}", config.job_queue, std::process::id()),
            config.sweep_every,
        )
        .with_clock(clock.clone())
        .with_retention(Arc::new(adapters::db::repos::SqlRetentionRepo::new(db.clone())), config.retention)
        .with_job(ScheduledJob::HeartbeatCheck, Arc::new(HeartbeatCheck::new(device_repo.clone(), alarms.clone())))
        .with_job(ScheduledJob::LiftNotifyDaily, Arc::new(adapters::vendors::huzhou::LiftNotifyDaily(huzhou.clone())))
        .with_job(ScheduledJob::ElevThingsDaily, Arc::new(adapters::vendors::huzhou::ElevThingsDaily(huzhou.clone())));
        let scheduler =
            if config.escalate_on_tick { scheduler.with_escalation(escalations.clone()) } else { scheduler };
        // Built once: every change, from GraphQL or from a vendor, reaches the same observers.
        // Outbound: every change is written with the deliveries each vendor module plans for
        // it, in one unit of work. One registration line per vendor planner.
        let units: Arc<dyn domain::ingest::UnitOfWork> = Arc::new(adapters::db::repos::SqlUnitOfWork::new(db.clone()));
        let outbound = domain::outbound::Outbound::new(units.clone(), Some(queue.clone()))
            .with_planner(Arc::new(huzhou.clone()))
            .with_planner(Arc::new(adapters::vendors::goldcard::GoldcardPlanner::new(integration_repo.clone())))
            .with_planner(Arc::new(adapters::vendors::hazchem::HazchemPlanner::new(integration_repo.clone())))
            .with_planner(Arc::new(adapters::vendors::dingding::DingdingMirror::new(
                integration_repo.clone(),
                home_repo.clone(),
            )));
        let devices =
            DeviceService::new(device_repo.clone(), integration_repo.clone(), home_repo.clone(), bus_port.clone())
                .with_outbound(outbound.clone());
        let tickets = TicketService::new(
            ticket_repo.clone(),
            files,
            device_repo.clone(),
            home_repo.clone(),
            integration_repo.clone(),
            // The ticket kinds' field tables: one registration line per vendor module.
            domain::tickets::TicketFields::new()
                .with(adapters::vendors::hazchem::TICKET_RULES)
                .with(adapters::vendors::huzhou::TICKET_RULES)
                .with(adapters::vendors::dingding::TICKET_RULES)
                .with_files(adapters::vendors::hazchem::FILE_RULES)
                .with_uploads(adapters::vendors::hazchem::UPLOADS),
        )
        .with_syncs(ticket_syncs)
        .with_outbound(outbound.clone())
        .with_clock(clock.clone());
        let dingding = adapters::vendors::dingding::DingdingService::new(adapters::vendors::dingding::DingdingPorts {
            repo: dingding_repo,
            api: Arc::new(adapters::vendors::dingding::DingdingReads::new(dingding_client)),
            devices: devices.clone(),
            device_repo: device_repo.clone(),
            homes: home_repo.clone(),
            integrations: integration_repo.clone(),
            deliveries: deliveries.clone(),
            limiter: limiter.clone(),
            secrets: dingding_secrets,
            tickets: tickets.clone(),
            clock: clock.clone(),
        });
        let scheduler = scheduler
            .with_job(ScheduledJob::Sync, Arc::new(adapters::vendors::dingding::DingdingSync::new(dingding.clone())));
        let users = UserService::new(user_repo.clone(), tenant_repo.clone(), hasher.clone());
        let events = InboundEventService::new(Arc::new(SqlInboundEventRepo::new(db.clone())));
        let tariffs = TariffService::new(
            tariff_repo.clone(),
            tariff_repo,
            device_repo.clone(),
            home_repo.clone(),
            integration_repo.clone(),
        )
        .with_outbound(outbound.clone())
        .with_clock(clock.clone());
        let ingest = domain::ingest::IngestService::new(
            units,
            devices.clone(),
            alarms.clone(),
            bus_port.clone(),
            Some(queue.clone()),
        )
        .with_billing(tariffs.clone(), outbound.clone());
        let gas = adapters::vendors::goldcard::Goldcard::new(
            devices.clone(),
            ingest.clone(),
            tariffs.clone(),
            deliveries.clone(),
            gas_sender.clone(),
            clock.clone(),
        );
        let scheduler = scheduler.with_job(
            ScheduledJob::DailyUsage,
            Arc::new(adapters::vendors::goldcard::GasDailyUsage::new(
                gas_sender,
                device_repo.clone(),
                tariffs.clone(),
                ingest.clone(),
            )),
        );
        // The inbound protocols: one registration line per vendor.
        let mut inbound: Vec<Arc<dyn adapters::vendors::inbound::InboundProtocol>> = vec![
            Arc::new(adapters::vendors::dingding::DingdingInbound::new(
                dingding.clone(),
                ingest.clone(),
                config.public_url.clone(),
            )),
            Arc::new(adapters::vendors::huzhou::HuzhouInbound::new(huzhou.clone())),
            Arc::new(adapters::vendors::telemetry::TelemetryInbound::new(
                integrations.clone(),
                devices.clone(),
                ingest.clone(),
                vec![Arc::new(huzhou.clone())],
            )),
        ];
        inbound.extend(adapters::vendors::goldcard::GoldcardInbound::all(&gas));
        let etc = adapters::vendors::etc::Etc::new(devices.clone(), ingest.clone(), deliveries.clone(), clock.clone());
        inbound.push(Arc::new(adapters::vendors::etc::EtcInbound::new(etc.clone())));
        let inbound: crate::hooks::Protocols = Arc::new(inbound);
        let inbound_backlog = jobs::inbound::Backlog::start(
            events.clone(),
            integrations.clone(),
            inbound.to_vec(),
            config.database_url.starts_with("sqlite"),
            config.inbound_stale_after,
            config.inbound_sweep_every,
            shutdown.clone(),
        );
        let state = Self(Arc::new(Services {
            tenants: TenantService::new(tenant_repo.clone()),
            hook_failures: crate::hooks::FailureGate::new(
                throttle.clone(),
                config.hook_failures_per_minute,
                format!("{}:", config.job_queue),
            ),
            auth: AuthService::new(user_repo, tenant_repo, hasher, throttle, config.login_throttle)
                .with_budget(limiter.clone(), config.login_hashes_per_minute, format!("{}:", config.job_queue))
                .with_clock(clock.clone()),
            integrations,
            devices,
            tariffs,
            tickets,
            homes: HomeService::new(home_repo, integration_repo).with_outbound(outbound),
            dingding,
            inbound,
            inbound_backlog,
            hook_integrations: Arc::new(domain::ttl::TtlCache::new(domain::ttl::CONFIG_TTL, 10_000)),
            ingest,
            alarms,
            escalations,
            deliveries,
            scheduler,
            huzhou,
            gas,
            etc,
            device_files,
            tokens,
            limiter,
            jobs: job_store,
            worker_settings,
            events,
            audit: AuditService::new(Arc::new(SqlAuditRepo::new(db.clone()))),
            bus,
            clock,
            users,
            jwt: Arc::new(config.jwt()),
            schema: graphql::schema_with(config.introspection),
            metrics: ops::metrics_handle()?,
            config: Arc::new(config),
            db,
            db_statements,
            redis,
            shutdown,
        }));
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
