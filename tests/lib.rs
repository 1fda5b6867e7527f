//! Integration tests live in `it/`; this library holds what the benchmarks share: the
//! bench database URL and the bootstrap every bench starts with (an admin, a tenant, its
//! admin's token).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};

/// The PostgreSQL server the benches create their databases on: `BENCH_DATABASE_URL`, by
/// default the local test server over loopback without TLS (`sslmode=disable`, as a
/// database on the same host is reached; TLS would add its cost to every query).
pub fn bench_admin_url() -> String {
    std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test?sslmode=disable".into())
}

/// `admin_url` with its database replaced by `name`, its options kept.
pub fn with_database(admin_url: &str, name: &str) -> String {
    let (url, query) = admin_url.split_once('?').map_or((admin_url, None), |(u, q)| (u, Some(q)));
    let (base, _) = url.rsplit_once('/').expect("URL with a database");
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// One GraphQL call that must succeed; its `data`.
pub async fn gql(http: &reqwest::Client, base: &str, token: Option<&str>, query: &str, variables: Value) -> Value {
    let mut req = http.post(format!("{base}/graphql")).json(&json!({"query": query, "variables": variables}));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let body: Value = req.send().await.expect("request").json().await.expect("json");
    assert!(body.get("errors").is_none(), "errors: {body}");
    body["data"].clone()
}

/// The admin and password the benches start their servers with.
pub const BENCH_ADMIN: (&str, &str) = ("bench-admin@example.com", "bench-admin-password-1!");

/// A tenant `bench` with a tenant admin, on a server started with `BENCH_ADMIN`.
pub struct BenchTenant {
    pub tenant_id: String,
    /// The tenant admin's token.
    pub token: String,
}

/// Logs in as the bench admin, creates tenant `bench` and its admin, logs in as that admin.
pub async fn bench_tenant(http: &reqwest::Client, base: &str) -> BenchTenant {
    let login = "mutation($e:String!,$p:String!){ login(email:$e, password:$p){ token } }";
    let root = gql(http, base, None, login, json!({"e": BENCH_ADMIN.0, "p": BENCH_ADMIN.1})).await;
    let root = root["login"]["token"].as_str().expect("root token").to_owned();
    let t = gql(
        http,
        base,
        Some(&root),
        "mutation{ createTenant(input:{slug:\"bench\", name:\"Bench\"}){ id } }",
        json!({}),
    )
    .await;
    let tenant_id = t["createTenant"]["id"].as_str().expect("tenant").to_owned();
    gql(
        http,
        base,
        Some(&root),
        "mutation($t:ID!){ createUser(input:{tenantId:$t, email:\"ops@bench.example.com\", password:\"bench-ops-password-1!\", role:TENANT_ADMIN}){ id } }",
        json!({"t": tenant_id}),
    )
    .await;
    let token = gql(http, base, None, login, json!({"e": "ops@bench.example.com", "p": "bench-ops-password-1!"})).await;
    let token = token["login"]["token"].as_str().expect("tenant token").to_owned();
    BenchTenant { tenant_id, token }
}

/// A server a bench drives: started on `127.0.0.1:0` with `BENCH_ADMIN`, its own job
/// queue and data directory; it stops when `shutdown` is cancelled.
pub struct BenchServer {
    pub running: api::app::Running,
    pub base: String,
    pub shutdown: tokio_util::sync::CancellationToken,
    _dir: tempfile::TempDir,
}

/// Starts a bench server on the database `url` (and Redis when given).
pub async fn bench_server(url: &str, redis: Option<String>) -> BenchServer {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = api::config::Settings {
        addr: "127.0.0.1:0".into(),
        public_url: Some("https://linkyard.bench".into()),
        database_url: Some(url.to_owned()),
        redis_url: redis,
        admin_email: Some(BENCH_ADMIN.0.into()),
        admin_password: Some(BENCH_ADMIN.1.into()),
        job_queue: format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
        outbound_allow: "127.0.0.1/32".into(),
        jwt_secret: Some("bench-jwt-secret-0123456789abcdef0123456789".into()),
        secret_key: Some("00".repeat(32)),
        ..api::config::Settings::defaults(dir.path().to_path_buf())
    };
    let config = api::config::Config::resolve(settings).expect("config");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = api::app::start(config, shutdown.clone()).await.expect("server starts");
    let base = format!("http://{}", running.addr);
    BenchServer { running, base, shutdown, _dir: dir }
}

/// With `RUST_LOG` set, the server's logs go to stderr while a bench runs.
pub fn bench_logs() {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    }
}

/// A fresh database on the bench server (`BENCH_DATABASE_URL`): its URL, and the admin
/// connection that created it (to drop it at the end).
pub async fn bench_database() -> (String, String, sea_orm::DatabaseConnection) {
    use sea_orm::ConnectionTrait;
    let admin_url = bench_admin_url();
    let admin = sea_orm::Database::connect(&admin_url).await.expect("BENCH_DATABASE_URL reachable");
    let name = format!("linkyard_bench_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await.expect("create database");
    let url = with_database(&admin_url, &name);
    (url, name, admin)
}

/// The `p` quantile (0..1) of sorted times.
pub fn percentile(sorted: &[std::time::Duration], p: f64) -> std::time::Duration {
    match sorted.len() {
        0 => std::time::Duration::ZERO,
        n => sorted[((n as f64 * p) as usize).min(n - 1)],
    }
}

/// What a burst of requests came to.
pub struct Burst {
    /// Each request's answer time, sorted.
    pub latencies: Vec<std::time::Duration>,
    /// Requests the server accepted.
    pub accepted: usize,
    /// When the first request went.
    pub started: std::time::Instant,
    /// From the first request to the last answer.
    pub elapsed: std::time::Duration,
}

impl Burst {
    /// The `p` quantile (0..1) of the answer times.
    pub fn pct(&self, p: f64) -> std::time::Duration {
        percentile(&self.latencies, p)
    }

    /// Accepted requests per second.
    pub fn rate(&self) -> f64 {
        self.accepted as f64 / self.elapsed.as_secs_f64()
    }
}

/// Sends requests `0..n` as fast as `connections` clients (one connection each) can:
/// `send(client, k)` sends request `k` and answers whether the server accepted it.
pub async fn burst<F, Fut>(connections: usize, n: usize, send: F) -> Burst
where
    F: Fn(reqwest::Client, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (send, next, accepted) = (Arc::new(send), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (send, next, accepted) = (send.clone(), next.clone(), accepted.clone());
        let http = reqwest::Client::builder().pool_max_idle_per_host(1).build().expect("client");
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= n {
                    return latencies;
                }
                let t = std::time::Instant::now();
                if send(http.clone(), k).await {
                    accepted.fetch_add(1, Ordering::Relaxed);
                }
                latencies.push(t.elapsed());
            }
        }));
    }
    let mut latencies = Vec::with_capacity(n);
    for t in tasks {
        latencies.extend(t.await.expect("sender"));
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Burst { latencies, accepted: accepted.load(Ordering::Relaxed), started, elapsed }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_is_replaced_and_options_kept() {
        assert_eq!(
            with_database("postgres://u@h:5432/test?sslmode=disable", "b1"),
            "postgres://u@h:5432/b1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h/test", "b2"), "postgres://u@h/b2");
    }
}
