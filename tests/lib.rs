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

/// Devices per kind a Dingding callback burst is spread over (a burst comes from many devices).
pub const DINGDING_DEVICES: usize = 50;

/// The `n`th callback of a Dingding burst: a mix of lock, meter and water events.
pub fn dingding_callback(n: usize, t0: i64) -> Value {
    let time = t0 + i64::try_from(n).unwrap_or_default();
    let d = (n / 4) % DINGDING_DEVICES;
    let (lock, meter, water) = (format!("bench-lock-{d}"), format!("bench-meter-{d}"), format!("bench-water-{d}"));
    match n % 4 {
        0 => {
            json!({"event": "batteryAsync", "uuid": lock, "home_id": "h", "time": time, "detail": {"battery": (n % 100).to_string()}})
        }
        1 => {
            json!({"event": "lockerOpenAlarm", "uuid": lock, "home_id": "h", "time": time, "detail": {"source": 2, "sourceid": 1001}})
        }
        2 => {
            json!({"event": "elemeterPowerAsync", "uuid": meter, "time": time, "detail": {"consume_amount": n as f64 / 100.0}})
        }
        _ => {
            json!({"event": "watermeterAmountAsync", "uuid": water, "manufactory": "cy", "time": time, "detail": {"amount": n}})
        }
    }
}

/// A Dingding callback burst ready to send: the integration it goes to, the URL to post
/// to (on the bench server's address) and the signed bodies.
pub struct DingdingBurst {
    pub integration: String,
    pub target: String,
    /// `n` distinct callbacks, then every 10th of them again (a Dingding retry).
    pub bodies: Vec<String>,
}

/// Configures a Dingding integration for the tenant of `token` with its lock, electricity
/// and water meter devices, and signs `n` callbacks for it up front (so a burst measures
/// the server only).
pub async fn dingding_burst(http: &reqwest::Client, base: &str, token: &str, n: usize) -> DingdingBurst {
    use adapters::vendors::dingding::sign;
    let i = gql(
        http,
        base,
        Some(token),
        "mutation{ configureIntegration(input:{kind:DINGDING, name:\"bench\", settings:{baseUrl:\"http://127.0.0.1:9\"}, credentials:{clientId:\"c\", clientSecret:\"s\"}}){ id hookUrl } }",
        json!({}),
    )
    .await;
    let integration = i["configureIntegration"]["id"].as_str().unwrap().to_owned();
    let hook_url = i["configureIntegration"]["hookUrl"].as_str().unwrap().to_owned();
    let devices = (0..DINGDING_DEVICES).flat_map(|d| {
        [("lock", "LOCK"), ("meter", "ELECTRICITY_METER"), ("water", "WATER_METER")]
            .map(|(p, k)| (format!("bench-{p}-{d}"), k))
    });
    for (uuid, kind) in devices {
        gql(
            http,
            base,
            Some(token),
            "mutation($i:UpsertDeviceInput!){ upsertDevice(input:$i){ id } }",
            json!({"i": {"integrationId": integration, "externalId": uuid, "kind": kind, "name": uuid}}),
        )
        .await;
    }
    let t0 = chrono::Utc::now().timestamp_millis();
    let mut bodies: Vec<String> = (0..n)
        .map(|k| {
            let mut body = dingding_callback(k, t0);
            body["sign"] = json!(sign::callback_sign(&hook_url, &body.to_string()).expect("sign"));
            body.to_string()
        })
        .collect();
    let repeats: Vec<String> = bodies.iter().step_by(10).cloned().collect();
    bodies.extend(repeats);
    // The URL as registered (its hook token included), on the bench server's address.
    let path = hook_url.split_once("/hooks/").map(|(_, p)| p).expect("hookUrl has a /hooks/ path");
    DingdingBurst { integration, target: format!("{base}/hooks/{path}"), bodies }
}

/// Posts the bodies of a Dingding burst from `connections` connections.
pub async fn send_dingding_burst(connections: usize, burst_of: DingdingBurst) -> Burst {
    let (bodies, target) = (std::sync::Arc::new(burst_of.bodies), burst_of.target);
    burst(connections, bodies.len(), move |http, k| {
        let (body, target) = (bodies[k].clone(), target.clone());
        async move {
            match http.post(&target).header("content-type", "application/json").body(body).send().await {
                Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                _ => false,
            }
        }
    })
    .await
}

/// A bench's target for one figure.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// The figure must be at least this.
    AtLeast(f64),
    /// The figure must be below this.
    Below(f64),
    /// The figure must be at most this.
    AtMost(f64),
    /// No target: the figure is reported for comparison (a ratio, a reference rate).
    None,
}

impl Target {
    fn met(self, value: f64) -> bool {
        match self {
            Self::AtLeast(t) => value >= t,
            Self::Below(t) => value < t,
            Self::AtMost(t) => value <= t,
            Self::None => true,
        }
    }
}

/// The figures of a bench (issue 19's table), printed at its end next to their targets,
/// for a person (`accepted 6749/s (target >= 8000/s)`) and for a script (one
/// `BENCH <bench> <figure>=<value>` line each, the value in the figure's unit).
pub struct Figures {
    bench: &'static str,
    rows: Vec<(String, String, f64, &'static str, Target, usize)>,
}

impl Figures {
    pub fn new(bench: &'static str) -> Self {
        Self { bench, rows: Vec::new() }
    }

    /// Adds figure `key` (`[a-z0-9_]`, for the machine-readable line), described as
    /// `label`, worth `value` in `unit` (`/s`, ` ms`, ` s`, ` MB`, `x` ...), shown with
    /// `decimals` decimals.
    pub fn add(&mut self, key: &str, label: &str, value: f64, unit: &'static str, target: Target, decimals: usize) {
        self.rows.push((key.to_owned(), label.to_owned(), value, unit, target, decimals));
    }

    /// Whether every figure meets its target.
    pub fn all_met(&self) -> bool {
        self.rows.iter().all(|(_, _, v, _, t, _)| t.met(*v))
    }

    /// The human lines, then the machine-readable ones.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (_, label, v, unit, t, d) in &self.rows {
            let target = match t {
                Target::AtLeast(x) => format!(" (target >= {x:.d$}{unit})", d = *d),
                Target::Below(x) => format!(" (target < {x:.d$}{unit})", d = *d),
                Target::AtMost(x) => format!(" (target <= {x:.d$}{unit})", d = *d),
                Target::None => String::new(),
            };
            let verdict = match t {
                Target::None => "",
                _ if t.met(*v) => " met",
                _ => " MISSED",
            };
            out.push(format!("{label} {v:.d$}{unit}{target}{verdict}", d = *d));
        }
        for (key, _, v, _, _, d) in &self.rows {
            out.push(format!("BENCH {} {key}={v:.d$}", self.bench, d = *d));
        }
        out
    }

    /// Prints `lines` to stdout.
    #[allow(clippy::print_stdout)]
    pub fn print(&self) {
        println!();
        println!("{} figures (issue 19 targets):", self.bench);
        for l in self.lines() {
            println!("{l}");
        }
    }
}

/// A process's memory from `/proc/<pid>/status` (`self` for this one), in MB: resident
/// now (`VmRSS`), its peak (`VmHWM`), and its thread count.
pub fn proc_memory(pid: &str) -> Option<(f64, f64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
    };
    Some((field("VmRSS:")? as f64 / 1024.0, field("VmHWM:")? as f64 / 1024.0, field("Threads:")?))
}

#[cfg(test)]
mod tests {
    use super::{Figures, Target, with_database};

    #[test]
    fn figures_print_their_targets_and_a_machine_line() {
        let mut f = Figures::new("cb");
        f.add("accepted_per_s", "accepted", 6749.4, "/s", Target::AtLeast(8000.0), 0);
        f.add("p99_ms", "p99", 12.34, " ms", Target::Below(30.0), 1);
        f.add("ratio", "of PostgreSQL's own rate", 0.5, "x", Target::None, 2);
        assert_eq!(
            f.lines(),
            [
                "accepted 6749/s (target >= 8000/s) MISSED",
                "p99 12.3 ms (target < 30.0 ms) met",
                "of PostgreSQL's own rate 0.50x",
                "BENCH cb accepted_per_s=6749",
                "BENCH cb p99_ms=12.3",
                "BENCH cb ratio=0.50",
            ]
        );
        assert!(!f.all_met());
    }

    #[test]
    fn the_database_is_replaced_and_options_kept() {
        assert_eq!(
            with_database("postgres://u@h:5432/test?sslmode=disable", "b1"),
            "postgres://u@h:5432/b1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h/test", "b2"), "postgres://u@h/b2");
    }
}
