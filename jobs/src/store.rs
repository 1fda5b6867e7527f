//! The delivery queue on apalis storages: Redis when `REDIS_URL` is set, otherwise the SQL
//! database in use (SQLite or PostgreSQL, sharing the application's sqlx pool). Jobs carry
//! a delivery id only; the worker reloads the delivery, and our own retry policy schedules
//! the next attempt as a new job, so every job is pushed with `max_attempts(1)`.

use adapters::db::batch::Batcher;
use apalis::prelude::*;
use apalis_postgres::PostgresStorage;
use apalis_redis::RedisStorage;
use apalis_sqlite::SqliteStorage;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::deliveries::{DeliveryQueue, DeliveryService};
use domain::ids::DeliveryId;
use domain::{DomainError, DomainResult};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long shutdown waits for attempts in flight.
const DRAIN: Duration = Duration::from_secs(30);

/// How long a finished job's record is kept in the job storage. The delivery row and its
/// attempts are the record; apalis keeps every finished job (in Redis: its payload, its
/// metadata hash and its id in the done set) until deleted, so without pruning the
/// storage grows by one job per delivery for good.
pub const FINISHED_JOB_RETENTION: Duration = Duration::from_secs(3600);
/// A finished job in apalis' SQL job tables: done, killed, or failed with no attempt left.
const FINISHED: &str = "(status IN ('Done', 'Killed') OR (status = 'Failed' AND attempts >= max_attempts))";
/// How often each worker process prunes finished jobs.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Job ids looked at per Redis call while pruning: each call is short, so Redis serves
/// the queue in between.
const PRUNE_SCAN: usize = 500;

/// Deletes one scanned page of finished jobs finished at or before the cutoff.
/// KEYS: the done set, the data hash, the metadata prefix. ARGV: cursor, cutoff (Unix
/// seconds), page size. Returns the next cursor and how many were deleted.
const PRUNE_REDIS: &str = r"
local page = redis.call('SSCAN', KEYS[1], ARGV[1], 'COUNT', ARGV[3])
local cutoff = tonumber(ARGV[2])
local deleted = 0
for _, id in ipairs(page[2]) do
  local meta = KEYS[3] .. ':' .. id
  local done_at = tonumber(redis.call('HGET', meta, 'done_at') or '0') or 0
  if done_at <= cutoff then
    redis.call('HDEL', KEYS[2], id)
    redis.call('HDEL', KEYS[3] .. ':result', id)
    redis.call('DEL', meta)
    redis.call('SREM', KEYS[1], id)
    deleted = deleted + 1
  end
end
return {page[1], deleted}
";

/// The job: which delivery to attempt. Versioned so a payload change stays readable.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "v")]
pub enum DeliverJob {
    #[serde(rename = "1")]
    V1 { delivery_id: String },
}

/// Where jobs are stored.
#[derive(Clone)]
pub enum JobStore {
    Redis(redis::aio::ConnectionManager),
    Postgres(sea_orm::sqlx::PgPool),
    Sqlite(sea_orm::sqlx::SqlitePool),
}

/// Worker timing: heartbeats decide how soon a dead worker's jobs come back.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// The queue name: deployments (or test apps) sharing one Redis use their own.
    pub queue: String,
    /// Every beat, a worker process renews the leases of the deliveries it is sending,
    /// takes up those whose worker stopped beating, and tells the job storage it lives
    /// (jobs it fetched come back after two missed beats).
    pub heartbeat: Duration,
    pub poll: Duration,
    pub concurrency: usize,
}

impl WorkerSettings {
    /// How long a claim on a delivery holds without a heartbeat: three beats and a
    /// second (10 s with the default 3 s beat), so that one late beat takes nothing away
    /// from a live worker, while a dead one's deliveries come back within a lease and a
    /// beat of its death.
    pub fn lease(&self) -> Duration {
        self.heartbeat * 3 + Duration::from_secs(1)
    }
}

/// apalis-postgres indexes every job by the worker that fetched it (`lock_by`), finished
/// ones included (kept an hour), and its acknowledgement joins the acknowledged ids to the
/// worker's jobs: planned while the table was small, that join read every job the worker
/// ever fetched at each acknowledgement (a scan growing with the table: 10,000 jobs into a
/// run, 2.2 ms per batch). The statements that look jobs up by worker without their ids
/// (re-enqueueing a dead or stopped worker's jobs) look for `Queued` or `Running` ones only:
/// the index holds those, so the acknowledgement finds its jobs by id. Idempotent, at every
/// start (the first one builds the index over the jobs kept).
const OPEN_JOBS_BY_WORKER: [&str; 2] = [
    "CREATE INDEX IF NOT EXISTS ix_apalis_jobs_open_lock_by ON apalis.jobs (lock_by) \
     WHERE status = 'Queued' OR status = 'Running'",
    "DROP INDEX IF EXISTS apalis.idx_apalis_jobs_lock_by",
];

/// The advisory lock `OPEN_JOBS_BY_WORKER` is applied under.
const OPEN_JOBS_LOCK: i64 = 0x6c79_6a6f_6273; // "lyjobs"

impl JobStore {
    /// Picks Redis when given, else the database behind `db`; creates the job tables.
    ///
    /// # Errors
    /// When the job tables cannot be created.
    pub async fn open(
        db: &sea_orm::DatabaseConnection,
        redis: Option<redis::aio::ConnectionManager>,
    ) -> anyhow::Result<Self> {
        if let Some(r) = redis {
            return Ok(Self::Redis(r));
        }
        match db.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => {
                let pool = db.get_postgres_connection_pool().clone();
                PostgresStorage::setup(&pool).await?;
                // Under a lock: processes starting together would race to create it.
                let mut tx = pool.begin().await?;
                sea_orm::sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(OPEN_JOBS_LOCK).execute(&mut *tx).await?;
                for sql in OPEN_JOBS_BY_WORKER {
                    sea_orm::sqlx::query(sql).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(Self::Postgres(pool))
            }
            _ => {
                let pool = db.get_sqlite_connection_pool().clone();
                // apalis' setup also switches its connection to `synchronous = OFF`; keep
                // that connection out of the application's pool.
                let own = sea_orm::sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with((*pool.connect_options()).clone())
                    .await?;
                SqliteStorage::setup(&own).await?;
                own.close().await;
                Ok(Self::Sqlite(pool))
            }
        }
    }

    /// The queue handle services push to.
    pub fn queue(&self, s: &WorkerSettings) -> ApalisQueue {
        let storage = match self {
            Self::Redis(c) => Storage::Redis(RedisQueue {
                conn: c.clone(),
                config: redis_config(s),
                script: std::sync::Arc::new(redis::Script::new(PUSH_REDIS)),
            }),
            Self::Postgres(p) => Storage::Postgres(pg_storage(p, s)),
            Self::Sqlite(p) => Storage::Sqlite(sqlite_storage(p, s)),
        };
        let flush = storage.clone();
        let pushes = Batcher::new(
            PUSH_BATCH,
            PUSHES_IN_FLIGHT,
            std::sync::Arc::new(move |ids: Vec<DeliveryId>| {
                let storage = flush.clone();
                Box::pin(async move {
                    let n = ids.len();
                    storage.push_many(ids).await?;
                    Ok((0..n).map(|_| Ok(())).collect())
                }) as futures::future::BoxFuture<'static, _>
            }),
        );
        ApalisQueue { pushes: std::sync::Arc::new(pushes) }
    }

    /// Deletes the records of jobs of `queue` that finished at least `older_than` ago
    /// (done, or failed for good); returns how many. Jobs waiting or running are kept.
    ///
    /// # Errors
    /// When the storage is unreachable.
    pub async fn prune_finished(&self, queue: &str, older_than: Duration) -> anyhow::Result<u64> {
        let age = i64::try_from(older_than.as_secs()).unwrap_or(i64::MAX / 2);
        let cutoff = Utc::now().timestamp() - age;
        match self {
            Self::Redis(c) => {
                let mut conn = c.clone();
                let cfg = apalis_redis::Config::default().queue(queue);
                let script = redis::Script::new(PRUNE_REDIS);
                let mut total = 0u64;
                for set in [cfg.done_jobs_set(), cfg.dead_jobs_set()] {
                    let mut cursor = "0".to_owned();
                    loop {
                        let (next, deleted): (String, u64) = script
                            .key(&set)
                            .key(cfg.job_data_hash())
                            .key(cfg.job_meta_hash())
                            .arg(&cursor)
                            .arg(cutoff)
                            .arg(PRUNE_SCAN)
                            .invoke_async(&mut conn)
                            .await?;
                        total += deleted;
                        if next == "0" {
                            break;
                        }
                        cursor = next;
                    }
                }
                Ok(total)
            }
            Self::Postgres(p) => {
                let sql = format!(
                    "DELETE FROM apalis.jobs WHERE job_type = $1 AND done_at <= to_timestamp($2) AND {FINISHED}"
                );
                let done =
                    sea_orm::sqlx::query(sea_orm::sqlx::AssertSqlSafe(sql)).bind(queue).bind(cutoff).execute(p).await?;
                Ok(done.rows_affected())
            }
            Self::Sqlite(p) => {
                let sql = format!("DELETE FROM Jobs WHERE job_type = ?1 AND done_at <= ?2 AND {FINISHED}");
                let done =
                    sea_orm::sqlx::query(sea_orm::sqlx::AssertSqlSafe(sql)).bind(queue).bind(cutoff).execute(p).await?;
                Ok(done.rows_affected())
            }
        }
    }

    /// Prunes finished jobs every minute until `shutdown`.
    async fn keep_pruned(self, queue: String, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(PRUNE_EVERY) => {}
            }
            match self.prune_finished(&queue, FINISHED_JOB_RETENTION).await {
                Ok(n) => tracing::debug!(pruned = n, queue = %queue, "finished jobs pruned"),
                Err(e) => tracing::warn!(error = %e, queue = %queue, "pruning finished jobs"),
            }
        }
    }

    /// Runs delivery workers until `shutdown`; attempts in flight finish (up to 30 s), the
    /// rest return to the queue.
    ///
    /// # Errors
    /// When the monitor fails to start.
    pub async fn run_workers(
        &self,
        service: DeliveryService,
        s: WorkerSettings,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        // A unique name per process start: a restarted worker never inherits a dead one's
        // jobs under its name (PostgreSQL would leave them stranded).
        let base = format!("{}-{}-{}", s.queue, std::process::id(), start_nanos());
        let (poll, concurrency) = (s.poll, s.concurrency.max(1));
        tokio::spawn(self.clone().keep_pruned(s.queue.clone(), shutdown.clone()));
        // Beats until the attempts in flight have drained, so that shutdown's drain keeps
        // their leases; taking up other workers' deliveries stops with `shutdown`.
        let beats = CancellationToken::new();
        tokio::spawn(beat(service.clone(), s.heartbeat, shutdown.clone(), beats.clone()));
        let attempts = TaskTracker::new();
        macro_rules! worker {
            ($backend:expr) => {{
                let backend = $backend;
                let service = service.clone();
                let attempts = attempts.clone();
                let base = base.clone();
                Monitor::new()
                    .register(move |restarts| {
                        WorkerBuilder::new(format!("{base}-{restarts}"))
                            .backend(backend.clone().poll_with_interval(poll))
                            .concurrency(concurrency)
                            .parallelize(tokio::spawn)
                            .data(service.clone())
                            .data(attempts.clone())
                            .on_event(|w, ev| {
                                if let Event::Error(e) = ev {
                                    tracing::warn!(worker = w.name(), error = %e, "delivery worker error");
                                }
                            })
                            .build(handle)
                    })
                    .should_restart(|_, _| true)
                    .shutdown_timeout(DRAIN)
                    .run_with_signal(async move {
                        shutdown.cancelled().await;
                        Ok(())
                    })
                    .await
            }};
        }
        let r = match self {
            Self::Redis(c) => worker!(redis_storage::<DeliverJob>(c.clone(), &s)),
            Self::Postgres(p) => worker!(pg_storage::<DeliverJob>(p, &s)),
            Self::Sqlite(p) => worker!(sqlite_storage::<DeliverJob>(p, &s)),
        };
        // Attempts in flight finish (or, past the drain time, are left to the sweep: their
        // deliveries stay IN_FLIGHT until the claim goes stale).
        attempts.close();
        if tokio::time::timeout(DRAIN, attempts.wait()).await.is_err() {
            tracing::warn!(left = attempts.len(), "shutdown: attempts still in flight are left to the sweep");
        }
        beats.cancel();
        r.map_err(|e| anyhow::anyhow!("delivery workers: {e}"))
    }
}

/// The delivery heartbeat of this process, every `every` until `stop` (at once on start,
/// so that a restarted process takes up what its predecessor left as soon as the
/// predecessor's leases run out): renews the leases of the attempts this process runs,
/// and, until `shutdown`, takes up deliveries whose worker stopped beating.
async fn beat(service: DeliveryService, every: Duration, shutdown: CancellationToken, stop: CancellationToken) {
    let (service, shutdown) = (&service, &shutdown);
    adapters::ticks::every(every, &stop, || async move {
        if let Err(e) = service.renew_leases().await {
            tracing::warn!(error = %e, "renewing delivery leases");
        }
        if shutdown.is_cancelled() {
            return;
        }
        match service.requeue_abandoned().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(taken_up = n, "deliveries of a stopped worker taken up"),
            Err(e) => tracing::warn!(error = %e, "taking up deliveries of stopped workers"),
        }
    })
    .await;
}

fn start_nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default()
}

async fn handle(
    job: DeliverJob,
    service: Data<DeliveryService>,
    attempts: Data<TaskTracker>,
) -> Result<(), BoxDynError> {
    let DeliverJob::V1 { delivery_id } = job;
    let Ok(id) = delivery_id.parse::<DeliveryId>() else {
        tracing::error!(%delivery_id, "a delivery job with a malformed id; dropped");
        return Ok(());
    };
    // The attempt runs as its own tracked task: should shutdown drop this handler, the
    // attempt still finishes and records its outcome (shutdown waits for the tracker).
    let service = (*service).clone();
    let attempt = attempts.spawn(async move { service.run(id).await });
    // Our retry policy decides what happens next; a storage error here is left to the
    // sweep, which finds the delivery again in the database.
    match attempt.await {
        Ok(Ok(outcome)) => crate::metrics::record_run(&outcome),
        Ok(Err(e)) => tracing::error!(error = ?e, delivery_id = %id, "delivery attempt failed to run"),
        Err(e) => tracing::error!(error = %e, delivery_id = %id, "delivery attempt panicked"),
    }
    Ok(())
}

/// Jobs a worker fetches at once (as many as it runs at once by default).
const FETCH_BATCH: usize = 64;

// apalis' task locks are off (`lock_tasks(false)`): a fetched job is already its worker's
// (the Redis in-flight set, `lock_by` in SQL), which is all that re-enqueueing a dead
// worker's jobs reads, and the delivery's own claim and lease decide who sends it. The
// lock cost a call per started job: in Redis an `LREM` of the whole pending list (the
// fetch had already taken the job off it), 132 us each behind a 10,000-job backlog, 1.3 s
// of Redis' time per 10,000 deliveries; in SQL an `UPDATE` of the job to `Running`, one
// more row version per job. Redis' pub/sub task events (`emit_events`) have no reader.

fn redis_config(s: &WorkerSettings) -> apalis_redis::Config {
    apalis_redis::Config::default()
        .queue(&s.queue)
        .heartbeat_interval(s.heartbeat)
        .missed_heartbeats(2)
        .batch_size(FETCH_BATCH)
        .lock_tasks(false)
        .emit_events(false)
        .idempotency_ttl(Some(Duration::from_secs(86_400)))
}

fn redis_storage<T>(conn: redis::aio::ConnectionManager, s: &WorkerSettings) -> RedisStorage<T> {
    RedisStorage::new(conn).with_config(redis_config(s))
}

fn pg_storage<T>(pool: &sea_orm::sqlx::PgPool, s: &WorkerSettings) -> PostgresStorage<T> {
    let cfg = apalis_postgres::Config::default()
        .queue(&s.queue)
        .heartbeat_interval(s.heartbeat)
        .missed_heartbeats(2)
        .batch_size(FETCH_BATCH)
        .lock_tasks(false);
    PostgresStorage::new(pool).with_config(cfg)
}

fn sqlite_storage<T>(pool: &sea_orm::sqlx::SqlitePool, s: &WorkerSettings) -> SqliteStorage<T> {
    let cfg = apalis_sqlite::Config::default()
        .queue(&s.queue)
        .heartbeat_interval(s.heartbeat)
        .missed_heartbeats(2)
        .batch_size(FETCH_BATCH)
        .lock_tasks(false);
    SqliteStorage::new(pool).with_config(cfg)
}

/// Jobs pushed in one call at most, and calls in flight at once: concurrent pushes (a
/// burst of deliveries created by many requests) share one Redis script call or one
/// `INSERT` of the SQL job storage instead of a round trip (and, on SQL, a transaction)
/// each; a lone push goes out at once.
const PUSH_BATCH: usize = 128;
const PUSHES_IN_FLIGHT: usize = 2;

/// Pushes jobs that are due now straight onto apalis-redis' active list, in the layout
/// its own push writes (payload in the data hash, a `Pending` metadata hash, the id on
/// the list, the fetch signal set). apalis-redis 1.0's own push puts every job in its
/// scheduled set, and its fetch moves all due scheduled jobs with one Lua `unpack`, which
/// fails once about 8,000 are due: a backlog that size stopped every worker of the queue
/// for good ("too many results to unpack"). Jobs pushed here never enter that set.
/// KEYS: data hash, active list, signal list, metadata prefix. ARGV: task id and payload
/// of each job, in turn.
const PUSH_REDIS: &str = r"
local pushed = 0
for i = 1, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 then
    redis.call('HSET', KEYS[4] .. ':' .. ARGV[i], 'attempts', 0, 'max_attempts', 1, 'status', 'Pending',
      'idempotency_key', '')
    redis.call('RPUSH', KEYS[2], ARGV[i])
    pushed = pushed + 1
  end
end
if pushed > 0 then
  redis.call('DEL', KEYS[3])
  redis.call('LPUSH', KEYS[3], 1)
end
return pushed
";

/// Where delivery jobs are pushed on Redis: the connection and the queue's key layout.
#[derive(Clone)]
struct RedisQueue {
    conn: redis::aio::ConnectionManager,
    config: apalis_redis::Config,
    script: std::sync::Arc<redis::Script>,
}

impl RedisQueue {
    /// One script call for all of `jobs`.
    async fn push(&self, jobs: &[DeliverJob]) -> anyhow::Result<()> {
        let c = &self.config;
        let mut call = self.script.key(c.job_data_hash());
        call.key(c.active_jobs_list()).key(c.signal_list()).key(c.job_meta_hash());
        for job in jobs {
            call.arg(ulid::Ulid::generate().to_string()).arg(serde_json::to_vec(job)?);
        }
        let mut conn = self.conn.clone();
        call.invoke_async::<i64>(&mut conn).await?;
        Ok(())
    }
}

/// The job storage jobs are pushed to.
#[derive(Clone)]
enum Storage {
    Redis(RedisQueue),
    Postgres(PostgresStorage<DeliverJob>),
    Sqlite(SqliteStorage<DeliverJob>),
}

impl Storage {
    /// Pushes a job per delivery, all in one call (one transaction on the SQL storages).
    async fn push_many(&self, ids: Vec<DeliveryId>) -> DomainResult<()> {
        let jobs: Vec<DeliverJob> = ids.iter().map(|id| DeliverJob::V1 { delivery_id: id.to_string() }).collect();
        let err = |e: String| DomainError::Unknown(anyhow::anyhow!("pushing delivery jobs: {e}"));
        let tasks = || futures::stream::iter(jobs.iter().cloned().map(|j| TaskBuilder::new(j).max_attempts(1).build()));
        match self {
            Self::Redis(q) => q.push(&jobs).await.map_err(|e| err(e.to_string())),
            Self::Postgres(s) => s.clone().push_all(tasks()).await.map_err(|e| err(e.to_string())),
            Self::Sqlite(s) => s.clone().push_all(tasks()).await.map_err(|e| err(e.to_string())),
        }
    }
}

/// Pushes delivery jobs to the job storage in use; concurrent pushes are sent together.
#[derive(Clone)]
pub struct ApalisQueue {
    pushes: std::sync::Arc<Batcher<DeliveryId, ()>>,
}

impl ApalisQueue {
    async fn push_now(&self, id: DeliveryId) -> DomainResult<()> {
        self.pushes.submit(id).await
    }
}

#[async_trait]
impl DeliveryQueue for ApalisQueue {
    /// Due now: pushed at once. Later (a retry): pushed when due by a timer in this
    /// process. The SQL storages only look for future-dated jobs on their heartbeat, which
    /// would add up to a heartbeat to every retry; and should this process die first, the
    /// delivery row (RETRYING, `next_attempt_at`) is still there for the sweep.
    async fn schedule(&self, id: DeliveryId, at: DateTime<Utc>) -> DomainResult<()> {
        let wait = (at - Utc::now()).to_std().unwrap_or_default();
        if wait <= Duration::from_millis(20) {
            return self.push_now(id).await;
        }
        let queue = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            if let Err(e) = queue.push_now(id).await {
                tracing::warn!(error = %e, delivery_id = %id, "queue unreachable; the sweep will send it");
            }
        });
        Ok(())
    }
}
