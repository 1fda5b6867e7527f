//! Settings: defaults -> `.env` (read by `main`) -> environment, validated at start.
//! Secrets that are not given are generated once and kept under the data directory.

use anyhow::Context;
use clap::Args;
use domain::security::ThrottlePolicy;
use secrecy::{ExposeSecret, SecretString};
use std::path::{Path, PathBuf};

/// The settings of `CONTRACT.md`, read from the environment (or flags).
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Listen address.
    #[arg(long, env = "LINKYARD_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Base URL for webhook URLs shown to tenants; default `http://{LINKYARD_ADDR}`.
    #[arg(long, env = "LINKYARD_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Database URL; default an SQLite file under the data directory.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Redis URL: when set, queues, pub/sub, throttles and token caches use Redis.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Signing key for access tokens; generated once under the data directory when unset.
    #[arg(long, env = "LINKYARD_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// 32-byte key (base64 or hex) encrypting vendor credentials; generated once when unset.
    #[arg(long, env = "LINKYARD_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// During a rotation: the JWT secret being replaced; tokens it signed still verify,
    /// new ones are signed with `LINKYARD_JWT_SECRET`.
    #[arg(long, env = "LINKYARD_JWT_SECRET_PREVIOUS", hide_env_values = true)]
    pub jwt_secret_previous: Option<String>,
    /// During a rotation: the credentials key being replaced; values it sealed still open,
    /// everything written is sealed with `LINKYARD_SECRET_KEY` (`linkyard admin reencrypt`
    /// moves the rest, then this can be dropped).
    #[arg(long, env = "LINKYARD_SECRET_KEY_PREVIOUS", hide_env_values = true)]
    pub secret_key_previous: Option<String>,
    /// With `LINKYARD_ADMIN_PASSWORD`: the platform admin created at start if missing.
    #[arg(long, env = "LINKYARD_ADMIN_EMAIL")]
    pub admin_email: Option<String>,
    #[arg(long, env = "LINKYARD_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Where the SQLite file, generated keys and uploaded files live.
    #[arg(long, env = "LINKYARD_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Where files are kept: unset, a folder under the data directory; `s3://bucket/prefix`,
    /// an S3-compatible bucket (endpoint and credentials from the usual `AWS_*` variables).
    #[arg(long, env = "LINKYARD_STORAGE_URL")]
    pub storage_url: Option<String>,
    /// The job queue name (deployments sharing one Redis use their own).
    #[arg(long, env = "LINKYARD_JOB_QUEUE", default_value = "linkyard-deliveries")]
    pub job_queue: String,
    /// Seconds between worker heartbeats. Each beat renews the lease on the deliveries a
    /// worker is sending (3 beats + 1 s: 10 s by default); a killed worker's deliveries are
    /// taken up by a live one once their lease runs out, its fetched jobs after two missed beats.
    #[arg(long, env = "LINKYARD_JOB_HEARTBEAT_SECS", default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub job_heartbeat_secs: u64,
    /// Seconds after which a delivery still PENDING (its queue message lost) is queued again
    /// by the sweep.
    #[arg(long, env = "LINKYARD_DELIVERY_STALE_SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub delivery_stale_secs: u64,
    /// Seconds between delivery sweeps (re-queueing what is due and held by nobody).
    #[arg(long, env = "LINKYARD_SWEEP_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub sweep_secs: u64,
    /// Seconds between scheduler ticks (periodic jobs and the sweep are checked each tick).
    #[arg(long, env = "LINKYARD_SCHEDULER_TICK_SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=59))]
    pub scheduler_tick_secs: u64,
    /// Sends to one vendor at once from this process.
    #[arg(long, env = "LINKYARD_VENDOR_CONCURRENCY", default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub vendor_concurrency: u64,
    /// Seconds after which a hook request stored but left RECEIVED (its process stopped
    /// before applying it) is applied by the inbound sweep.
    #[arg(long, env = "LINKYARD_INBOUND_STALE_SECS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub inbound_stale_secs: u64,
    /// Days raw inbound events (once applied), attempts of finished deliveries and audit
    /// entries are kept.
    #[arg(long, env = "LINKYARD_RETENTION_DAYS", default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub retention_days: u32,
    /// When set, `GET /metrics` answers only `Authorization: Bearer <this token>`.
    #[arg(long, env = "LINKYARD_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// GraphQL introspection and the GraphiQL page; default on with SQLite, off with PostgreSQL.
    #[arg(long, env = "LINKYARD_INTROSPECTION")]
    pub introspection: Option<bool>,
    /// Comma-separated CIDRs outbound calls may reach although private (loopback, RFC 1918,
    /// link-local, unique-local); every other private or metadata address is refused.
    #[arg(long, env = "LINKYARD_OUTBOUND_ALLOW", default_value = "")]
    pub outbound_allow: String,
    /// Requests to `/hooks` from one client address that may fail to authenticate (unknown
    /// integration, wrong hook token, signature or credentials) within a minute; beyond
    /// that the address is refused (429) until the minute is over.
    #[arg(long, env = "LINKYARD_HOOK_FAILURES_PER_MINUTE", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub hook_failures_per_minute: u32,
    /// Seconds a whole HTTP request may take (reading its body included) before it is
    /// answered 408; GraphQL subscriptions (`/graphql/ws`) are exempt.
    #[arg(long, env = "LINKYARD_REQUEST_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_timeout_secs: u64,
    /// Delivery attempts at once in this process.
    #[arg(long, env = "LINKYARD_DELIVERY_CONCURRENCY", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub delivery_concurrency: u64,
}

impl Settings {
    /// The defaults of every setting, with the data under `data_dir` (tests and
    /// benchmarks start from these).
    pub fn defaults(data_dir: PathBuf) -> Self {
        Self {
            addr: "127.0.0.1:8080".into(),
            public_url: None,
            database_url: None,
            redis_url: None,
            jwt_secret: None,
            secret_key: None,
            jwt_secret_previous: None,
            secret_key_previous: None,
            admin_email: None,
            admin_password: None,
            data_dir,
            storage_url: None,
            job_queue: "linkyard-deliveries".into(),
            job_heartbeat_secs: 3,
            delivery_stale_secs: 120,
            scheduler_tick_secs: 5,
            sweep_secs: 30,
            vendor_concurrency: 32,
            delivery_concurrency: 64,
            inbound_stale_secs: 600,
            outbound_allow: String::new(),
            introspection: None,
            retention_days: 90,
            metrics_token: None,
            hook_failures_per_minute: 30,
            request_timeout_secs: 30,
        }
    }
}

/// Validated configuration the application runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: String,
    pub public_url: String,
    pub database_url: String,
    pub redis_url: Option<String>,
    pub jwt_secret: SecretString,
    pub secret_key: SecretString,
    /// The JWT secret being rotated out, if any (`LINKYARD_JWT_SECRET_PREVIOUS`).
    pub jwt_secret_previous: Option<SecretString>,
    /// The credentials key being rotated out, if any (`LINKYARD_SECRET_KEY_PREVIOUS`).
    pub secret_key_previous: Option<SecretString>,
    pub admin: Option<(String, SecretString)>,
    pub data_dir: PathBuf,
    /// `s3://bucket/prefix` when files are kept in a bucket.
    pub storage_url: Option<String>,
    pub login_throttle: ThrottlePolicy,
    /// Password checks (argon2 hashes) one client address may cause a minute.
    pub login_hashes_per_minute: u32,
    /// Senders of outbound deliveries by vendor prefix (`huzhou`, `dingding` ...); vendor
    /// modules register theirs, tests register senders that talk to fake vendors.
    pub senders: jobs::SenderRegistry,
    /// How often the sweep re-queues due deliveries nobody holds.
    pub sweep_every: std::time::Duration,
    /// Delivery attempts run at once in this process.
    pub delivery_concurrency: usize,
    /// The job queue name.
    pub job_queue: String,
    /// Job-worker heartbeat: renews delivery leases (a dead worker's deliveries return
    /// once theirs run out) and a dead worker's fetched jobs return after two missed beats.
    pub job_heartbeat: std::time::Duration,
    /// How often an idle worker looks for jobs.
    pub job_poll: std::time::Duration,
    /// When a PENDING delivery counts as abandoned (its queue message lost).
    pub delivery_stale_after: std::time::Duration,
    /// When a stored hook request left RECEIVED counts as abandoned by its process.
    pub inbound_stale_after: std::time::Duration,
    /// How often the inbound sweep looks for such requests.
    pub inbound_sweep_every: std::time::Duration,
    /// Whether `serve` runs the job workers too (`linkyard worker` runs them alone).
    pub run_workers: bool,
    /// How often the scheduler ticks.
    pub scheduler_tick: std::time::Duration,
    /// Whether each scheduler tick runs the alarm escalation check (tests turn it off and
    /// run the check themselves, at the times they set).
    pub escalate_on_tick: bool,
    /// Sends to one vendor at once from this process.
    pub vendor_concurrency: usize,
    /// The token `/metrics` asks for, if any (`LINKYARD_METRICS_TOKEN`).
    pub metrics_token: Option<SecretString>,
    /// How long traffic records are kept (`LINKYARD_RETENTION_DAYS`).
    pub retention: chrono::Duration,
    /// Whether GraphQL introspection and GraphiQL are served (`LINKYARD_INTROSPECTION`).
    pub introspection: bool,
    /// What outbound calls may reach (`LINKYARD_OUTBOUND_ALLOW`).
    pub outbound: std::sync::Arc<adapters::vendors::OutboundGuard>,
    /// Failed authentications on `/hooks` one client address may cause a minute
    /// (`LINKYARD_HOOK_FAILURES_PER_MINUTE`).
    pub hook_failures_per_minute: u32,
    /// How long a whole request may take (`LINKYARD_REQUEST_TIMEOUT_SECS`).
    pub request_timeout: std::time::Duration,
    /// Where every service reads the time: the system clock (tests set one they move).
    pub clock: AppClock,
}

/// The clock the application runs on.
#[derive(Clone)]
pub struct AppClock(pub std::sync::Arc<dyn domain::Clock>);

impl Default for AppClock {
    fn default() -> Self {
        Self(domain::clock::system())
    }
}

impl std::fmt::Debug for AppClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppClock")
    }
}

impl Config {
    /// Resolves defaults, creating the data directory and generated secrets as needed.
    ///
    /// # Errors
    /// When the data directory or a key file cannot be written, or a setting is invalid.
    pub fn resolve(s: Settings) -> anyhow::Result<Self> {
        let on_postgres = s.database_url.as_deref().is_some_and(|u| u.trim().starts_with("postgres"));
        let given = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.is_empty());
        // Keys generated on one instance would not be those of the next: with a shared
        // database every instance must be given the same ones.
        anyhow::ensure!(
            !on_postgres || (given(&s.jwt_secret) && given(&s.secret_key)),
            "with PostgreSQL, LINKYARD_JWT_SECRET and LINKYARD_SECRET_KEY must be set (the same on every instance)"
        );
        let needs_dir = s.database_url.is_none() || s.jwt_secret.is_none() || s.secret_key.is_none();
        if needs_dir {
            std::fs::create_dir_all(&s.data_dir).with_context(|| format!("creating {}", s.data_dir.display()))?;
        }
        let database_url = s
            .database_url
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", s.data_dir.join("linkyard.db").display()));
        let jwt_secret = match s.jwt_secret.filter(|v| !v.is_empty()) {
            Some(v) => v,
            None => read_or_generate(&s.data_dir.join("jwt_secret"))?,
        };
        anyhow::ensure!(jwt_secret.len() >= 32, "LINKYARD_JWT_SECRET must be at least 32 characters");
        let secret_key = match s.secret_key.filter(|v| !v.is_empty()) {
            Some(v) => v,
            None => read_or_generate(&s.data_dir.join("secret_key"))?,
        };
        adapters::crypto::parse_key(&secret_key).context("LINKYARD_SECRET_KEY")?;
        let jwt_secret_previous = s.jwt_secret_previous.filter(|v| !v.is_empty());
        if let Some(p) = &jwt_secret_previous {
            anyhow::ensure!(p.len() >= 32, "LINKYARD_JWT_SECRET_PREVIOUS must be at least 32 characters");
        }
        let secret_key_previous = s.secret_key_previous.filter(|v| !v.trim().is_empty());
        if let Some(p) = &secret_key_previous {
            adapters::crypto::parse_key(p).context("LINKYARD_SECRET_KEY_PREVIOUS")?;
        }
        let public_url = s
            .public_url
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| format!("http://{}", s.addr))
            .trim_end_matches('/')
            .to_owned();
        anyhow::ensure!(
            public_url.starts_with("http://") || public_url.starts_with("https://"),
            "LINKYARD_PUBLIC_URL must start with http:// or https://"
        );
        let is_postgres = database_url.starts_with("postgres");
        let outbound = adapters::vendors::OutboundGuard::parse(&s.outbound_allow).map_err(anyhow::Error::msg)?;
        let admin = match (s.admin_email, s.admin_password) {
            (Some(e), Some(p)) if !e.is_empty() && !p.is_empty() => Some((e, SecretString::from(p))),
            _ => None,
        };
        Ok(Self {
            addr: s.addr,
            public_url,
            database_url,
            redis_url: s.redis_url.filter(|u| !u.trim().is_empty()),
            jwt_secret: SecretString::from(jwt_secret),
            secret_key: SecretString::from(secret_key),
            jwt_secret_previous: jwt_secret_previous.map(SecretString::from),
            secret_key_previous: secret_key_previous.map(SecretString::from),
            admin,
            data_dir: s.data_dir,
            storage_url: s.storage_url.filter(|u| !u.trim().is_empty()),
            login_throttle: ThrottlePolicy::default(),
            login_hashes_per_minute: 30,
            senders: jobs::SenderRegistry::default(),
            sweep_every: std::time::Duration::from_secs(s.sweep_secs),
            delivery_concurrency: usize::try_from(s.delivery_concurrency).unwrap_or(64),
            job_queue: s.job_queue,
            job_heartbeat: std::time::Duration::from_secs(s.job_heartbeat_secs),
            job_poll: std::time::Duration::from_secs(1),
            delivery_stale_after: std::time::Duration::from_secs(s.delivery_stale_secs),
            inbound_stale_after: std::time::Duration::from_secs(s.inbound_stale_secs),
            inbound_sweep_every: std::time::Duration::from_secs(s.inbound_stale_secs.clamp(1, 60)),
            run_workers: true,
            scheduler_tick: std::time::Duration::from_secs(s.scheduler_tick_secs),
            escalate_on_tick: true,
            vendor_concurrency: usize::try_from(s.vendor_concurrency).unwrap_or(32),
            outbound: std::sync::Arc::new(outbound),
            introspection: s.introspection.unwrap_or(!is_postgres),
            retention: chrono::Duration::days(i64::from(s.retention_days)),
            metrics_token: s.metrics_token.filter(|t| !t.trim().is_empty()).map(SecretString::from),
            hook_failures_per_minute: s.hook_failures_per_minute,
            request_timeout: std::time::Duration::from_secs(s.request_timeout_secs),
            clock: AppClock::default(),
        })
    }

    /// The decoded 32-byte credentials key.
    ///
    /// # Errors
    /// When the key is malformed (checked already in `resolve`).
    pub fn secret_key_bytes(&self) -> anyhow::Result<Vec<u8>> {
        adapters::crypto::parse_key(self.secret_key.expose_secret())
    }

    /// The credentials box: seals with the current key, opens with it or the previous one.
    ///
    /// # Errors
    /// When a key is malformed (checked already in `resolve`).
    pub fn secret_box(&self) -> anyhow::Result<adapters::crypto::AesGcmSecretBox> {
        let previous = self.secret_key_previous.as_ref().map(|k| adapters::crypto::parse_key(k.expose_secret()));
        adapters::crypto::AesGcmSecretBox::new(self.secret_key_bytes()?)?.with_previous(previous.transpose()?)
    }

    /// The access-token signer: signs with the current secret, verifies with it or the previous one.
    pub fn jwt(&self) -> crate::auth::Jwt {
        crate::auth::Jwt::new(self.jwt_secret.expose_secret().as_bytes())
            .with_previous(self.jwt_secret_previous.as_ref().map(|p| p.expose_secret().as_bytes()))
    }
}

/// Reads a key file, or writes a fresh key there (mode 0600) the first time.
fn read_or_generate(path: &Path) -> anyhow::Result<String> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        let existing = existing.trim().to_owned();
        if !existing.is_empty() {
            return Ok(existing);
        }
    }
    let key = adapters::crypto::generate_key();
    write_private(path, &key).with_context(|| format!("writing {}", path.display()))?;
    Ok(key)
}

#[cfg(unix)]
fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(content.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    std::fs::write(path, content)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path) -> Settings {
        Settings { addr: "127.0.0.1:9999".into(), ..Settings::defaults(dir.to_path_buf()) }
    }

    #[test]
    fn defaults_generate_keys_once() {
        let dir = std::env::temp_dir().join(format!("linkyard-cfg-{}", uuid::Uuid::new_v4()));
        let c1 = Config::resolve(settings(&dir)).expect("config");
        let c2 = Config::resolve(settings(&dir)).expect("config");
        assert_eq!(c1.jwt_secret.expose_secret(), c2.jwt_secret.expose_secret());
        assert_eq!(c1.secret_key.expose_secret(), c2.secret_key.expose_secret());
        assert_eq!(c1.public_url, "http://127.0.0.1:9999");
        assert!(c1.database_url.starts_with("sqlite://") && c1.database_url.ends_with("linkyard.db?mode=rwc"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn bad_previous_keys_are_refused() {
        let dir = std::env::temp_dir().join(format!("linkyard-cfg-{}", uuid::Uuid::new_v4()));
        let mut s = settings(&dir);
        s.secret_key_previous = Some("nope".into());
        assert!(Config::resolve(s).is_err());
        let mut s = settings(&dir);
        s.jwt_secret_previous = Some("short".into());
        assert!(Config::resolve(s).is_err());
        let mut s = settings(&dir);
        s.secret_key_previous = Some(adapters::crypto::generate_key());
        s.jwt_secret_previous = Some("x".repeat(32));
        let c = Config::resolve(s).expect("config");
        assert!(c.secret_box().is_ok() && c.jwt_secret_previous.is_some());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn bad_secret_key_is_refused() {
        let dir = std::env::temp_dir().join(format!("linkyard-cfg-{}", uuid::Uuid::new_v4()));
        let mut s = settings(&dir);
        s.secret_key = Some("nope".into());
        assert!(Config::resolve(s).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
