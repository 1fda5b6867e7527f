//! Test harness: `spawn_app()` boots the real server on `127.0.0.1:0` with a fresh database
//! (a temporary SQLite file, or a fresh PostgreSQL database when `TEST_DATABASE_URL` is
//! set) and Redis when `TEST_REDIS_URL` is set; the typed GraphQL client (`client`); fake vendors
//! (`fake`); child processes; captured logs.

pub mod child;
pub mod client;
pub mod fake;
pub mod logs;

pub use client::{Client, Gql, nodes};

use api::config::{Config, Settings};
use domain::security::ThrottlePolicy;
use serde_json::Value;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The platform admin password every test app starts with.
pub const ADMIN_PASSWORD: &str = "admin-password-Zq8!";

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub admin_email: String,
    pub database_url: String,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
    pg_db: Option<(String, String)>,
    /// The running app's services, for tests that act as the system (vendor adapters, jobs).
    pub state: api::app::AppState,
}

/// The path of a hook URL shown by the app (`LINKYARD_PUBLIC_URL` is
/// `https://linkyard.test` in tests), to post to the running app.
pub fn hook_path(hook_url: &str) -> String {
    hook_url
        .strip_prefix("https://linkyard.test")
        .unwrap_or_else(|| panic!("a hook URL of the test app: {hook_url:?}"))
        .to_owned()
}

/// A unique suffix for names that must not collide across tests and runs.
pub fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    logs::init();
    let dir = tempfile::tempdir().expect("tempdir");
    let admin_email = format!("admin-{}@example.com", unique());
    let (database_url, pg_db) = match std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) {
        Some(admin_url) => {
            let name = format!("linkyard_it_{}", unique());
            let url = create_pg_database(&admin_url, &name).await;
            (url, Some((admin_url, name)))
        }
        None => (format!("sqlite://{}?mode=rwc", dir.path().join("linkyard.db").display()), None),
    };
    // Keys given, as PostgreSQL requires; also written where the CLI tests read them.
    let key = || format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let (jwt_secret, secret_key) = (key(), key());
    std::fs::write(dir.path().join("jwt_secret"), &jwt_secret).expect("key file");
    std::fs::write(dir.path().join("secret_key"), &secret_key).expect("key file");
    let settings = Settings {
        addr: "127.0.0.1:0".into(),
        jwt_secret: Some(jwt_secret),
        secret_key: Some(secret_key),
        public_url: Some("https://linkyard.test".into()),
        database_url: Some(database_url.clone()),
        redis_url: std::env::var("TEST_REDIS_URL").ok().filter(|u| !u.is_empty()),
        admin_email: Some(admin_email.clone()),
        admin_password: Some(ADMIN_PASSWORD.into()),
        job_queue: format!("it-{}", unique()),
        // The fake vendors listen on loopback.
        outbound_allow: "127.0.0.1/32".into(),
        // The tests read the schema on both databases.
        introspection: Some(true),
        ..Settings::defaults(dir.path().to_path_buf())
    };
    let mut config = Config::resolve(settings).expect("config");
    config.login_throttle = ThrottlePolicy {
        free_attempts: 2,
        step: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        lockout_after: 5,
        window: Duration::from_secs(60),
    };
    // Every test client is 127.0.0.1: the per-address budget would be shared by all.
    config.login_hashes_per_minute = 10_000;
    // Tests send refused requests on purpose; the throttle's own test sets its limit.
    config.hook_failures_per_minute = 10_000;
    tweak(&mut config);
    let shutdown = CancellationToken::new();
    let running = api::app::start(config, shutdown.clone()).await.expect("server starts");
    TestApp {
        base: format!("http://{}", running.addr),
        http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client"),
        admin_email,
        database_url,
        shutdown,
        _dir: dir,
        pg_db,
        state: running.state,
    }
}

/// The system clock moved by an offset the test sets: the app runs in real time (its waits
/// are real), and a test jumps it forward past a deadline instead of sleeping.
#[derive(Debug, Default)]
pub struct ShiftedClock {
    offset: std::sync::Mutex<chrono::Duration>,
}

impl ShiftedClock {
    pub fn advance(&self, by: chrono::Duration) {
        let mut offset = self.offset.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *offset += by;
    }
}

impl domain::Clock for ShiftedClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + *self.offset.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn sleep(&self, d: Duration) -> domain::clock::Sleep {
        Box::pin(tokio::time::sleep(d))
    }
}

/// Workers that poll, sweep and beat quickly, for tests that wait on deliveries.
pub fn quick_jobs(c: &mut Config) {
    c.sweep_every = Duration::from_millis(500);
    c.job_poll = Duration::from_millis(100);
    c.job_heartbeat = Duration::from_secs(1);
}

/// The role the server connects as in tests: an ordinary login role that owns its
/// database, as in production, so row-level security holds for it (a superuser, like the
/// `TEST_DATABASE_URL` one, would skip the policies).
const PG_APP_ROLE: &str = "linkyard_it";

async fn create_pg_database(admin_url: &str, name: &str) -> String {
    use sea_orm::ConnectionTrait;
    let db = sea_orm::Database::connect(admin_url).await.expect("TEST_DATABASE_URL reachable");
    // Tests start in parallel: a concurrent CREATE ROLE is a unique violation, not an error.
    db.execute_unprepared(&format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{PG_APP_ROLE}') THEN \
           CREATE ROLE {PG_APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS; END IF; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
    ))
    .await
    .expect("create the test role");
    db.execute_unprepared(&format!("CREATE DATABASE \"{name}\" OWNER {PG_APP_ROLE}"))
        .await
        .expect("create test database");
    let _ = db.close().await;
    let mut url = reqwest::Url::parse(admin_url).expect("TEST_DATABASE_URL is a URL");
    url.set_username(PG_APP_ROLE).expect("URL takes a user");
    url.set_password(None).expect("URL takes no password");
    url.set_path(name);
    url.to_string()
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some((admin_url, name)) = self.pg_db.take() {
            // Drop runs outside async context: use a short-lived runtime on its own thread.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                rt.block_on(async {
                    use sea_orm::ConnectionTrait;
                    if let Ok(db) = sea_orm::Database::connect(&admin_url).await {
                        let _ =
                            db.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await;
                        let _ = db.close().await;
                    }
                });
            })
            .join();
        }
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A GraphQL client of this app acting as nobody.
    pub fn anon(&self) -> Client {
        Client::new(self.http.clone(), &self.base)
    }

    /// A GraphQL client of this app acting as the holder of `token`.
    pub fn api(&self, token: &str) -> Client {
        self.anon().as_user(token)
    }

    /// Posts a GraphQL query; asserts the HTTP status is 200.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Gql {
        match token {
            Some(t) => self.api(t).gql(query, variables).await,
            None => self.anon().gql(query, variables).await,
        }
    }

    pub async fn login(&self, email: &str, password: &str) -> String {
        self.anon().login(email, password).await
    }

    pub async fn admin_token(&self) -> String {
        self.login(&self.admin_email, ADMIN_PASSWORD).await
    }

    pub async fn create_tenant(&self, admin: &str, slug: &str) -> String {
        self.api(admin).create_tenant(slug).await
    }

    /// Creates a user and returns its id.
    pub async fn create_user(&self, token: &str, tenant: &str, email: &str, password: &str, role: &str) -> String {
        self.api(token).create_user(tenant, email, password, role).await
    }

    pub async fn configure_integration(&self, token: &str, input: Value) -> Gql {
        self.api(token).configure_integration(input).await
    }

    /// A GraphQL multipart request uploading `bytes` as the variable `var`.
    pub async fn gql_upload(
        &self,
        token: &str,
        query: &str,
        variables: Value,
        var: &str,
        bytes: Vec<u8>,
        filename: &str,
    ) -> Gql {
        self.api(token).upload(query, variables, var, bytes, filename).await
    }
}

/// A tenant with its admin, ready for tests.
pub struct TenantFixture {
    pub id: String,
    pub slug: String,
    pub admin_email: String,
    pub admin_token: String,
    pub admin_id: String,
    /// The GraphQL client acting as the tenant admin.
    pub api: Client,
}

pub const USER_PASSWORD: &str = "tenant-password-Wx4?";

pub async fn tenant_with_admin(app: &TestApp, platform_token: &str) -> TenantFixture {
    let slug = format!("t-{}", unique());
    let id = app.create_tenant(platform_token, &slug).await;
    let admin_email = format!("admin@{slug}.example.com");
    let admin_id = app.create_user(platform_token, &id, &admin_email, USER_PASSWORD, "TENANT_ADMIN").await;
    let admin_token = app.login(&admin_email, USER_PASSWORD).await;
    let api = app.api(&admin_token);
    TenantFixture { id, slug, admin_email, admin_token, admin_id, api }
}

impl TestApp {
    /// The app's data directory: its generated `jwt_secret` and `secret_key` files live here.
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// The job queue this app's workers use (child processes join it).
    pub fn job_queue(&self) -> String {
        self.state.config.job_queue.clone()
    }
}

/// Polls the async `check` until it answers true (at most 15 s); panics naming `what`.
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually_within(what, Duration::from_secs(15), check).await;
}

/// The same with its own bound, for work that waits on a child process under a loaded
/// machine (a full test run on two cores).
pub async fn eventually_within<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..within.as_millis().div_ceil(100) {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Another app on `first`'s database with `first`'s keys: a restart, or a second instance
/// beside it. Dropping it leaves the database to `first`.
pub async fn spawn_app_sharing(first: &TestApp, tweak: impl FnOnce(&mut Config)) -> TestApp {
    logs::init();
    let dir = tempfile::tempdir().expect("tempdir");
    let read = |name: &str| std::fs::read_to_string(first.data_dir().join(name)).expect("key file").trim().to_owned();
    let settings = Settings {
        addr: "127.0.0.1:0".into(),
        jwt_secret: Some(read("jwt_secret")),
        secret_key: Some(read("secret_key")),
        public_url: Some("https://linkyard.test".into()),
        database_url: Some(first.database_url.clone()),
        redis_url: std::env::var("TEST_REDIS_URL").ok().filter(|u| !u.is_empty()),
        admin_email: Some(first.admin_email.clone()),
        admin_password: Some(ADMIN_PASSWORD.into()),
        job_queue: first.job_queue(),
        outbound_allow: "127.0.0.1/32".into(),
        introspection: Some(true),
        ..Settings::defaults(dir.path().to_path_buf())
    };
    let mut config = Config::resolve(settings).expect("config");
    config.login_hashes_per_minute = 10_000;
    tweak(&mut config);
    let shutdown = CancellationToken::new();
    let running = api::app::start(config, shutdown.clone()).await.expect("server starts");
    TestApp {
        base: format!("http://{}", running.addr),
        http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client"),
        admin_email: first.admin_email.clone(),
        database_url: first.database_url.clone(),
        shutdown,
        _dir: dir,
        pg_db: None,
        state: running.state,
    }
}
