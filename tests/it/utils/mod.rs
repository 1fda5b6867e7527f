//! Test harness: `spawn_app()` boots the real server on `127.0.0.1:0` with a fresh database
//! (a temporary SQLite file, or a fresh PostgreSQL database when `TEST_DATABASE_URL` is
//! set) and Redis when `TEST_REDIS_URL` is set; a small typed GraphQL client; captured logs.

pub mod child;
pub mod logs;

use api::config::{Config, Settings};
use domain::security::ThrottlePolicy;
use serde_json::{Value, json};
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
    let settings = Settings {
        addr: "127.0.0.1:0".into(),
        public_url: Some("https://linkyard.test".into()),
        database_url: Some(database_url.clone()),
        redis_url: std::env::var("TEST_REDIS_URL").ok().filter(|u| !u.is_empty()),
        admin_email: Some(admin_email.clone()),
        admin_password: Some(ADMIN_PASSWORD.into()),
        job_queue: format!("it-{}", unique()),
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

async fn create_pg_database(admin_url: &str, name: &str) -> String {
    use sea_orm::ConnectionTrait;
    let db = sea_orm::Database::connect(admin_url).await.expect("TEST_DATABASE_URL reachable");
    db.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await.expect("create test database");
    let _ = db.close().await;
    let (base, _) = admin_url.rsplit_once('/').expect("database URL has a path");
    format!("{base}/{name}")
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

/// A GraphQL answer: the raw body plus helpers.
#[derive(Debug)]
pub struct Gql {
    pub body: Value,
    pub raw: String,
}

impl Gql {
    pub fn data(&self) -> &Value {
        assert!(self.body.get("errors").is_none(), "unexpected errors: {}", self.raw);
        &self.body["data"]
    }
    /// The `extensions.code` of the first error.
    pub fn code(&self) -> String {
        self.body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {}", self.raw))
            .to_owned()
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Posts a GraphQL query; asserts the HTTP status is 200.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Gql {
        let mut req = self.http.post(self.url("/graphql")).json(&json!({"query": query, "variables": variables}));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let raw = resp.text().await.expect("body");
        let body: Value = serde_json::from_str(&raw).unwrap_or_else(|_| panic!("not JSON: {raw}"));
        assert_eq!(status, 200, "{raw}");
        Gql { body, raw }
    }

    pub async fn login(&self, email: &str, password: &str) -> String {
        let r = self
            .gql(
                None,
                "mutation($e:String!,$p:String!){ login(email:$e,password:$p){ token } }",
                json!({"e": email, "p": password}),
            )
            .await;
        r.data()["login"]["token"].as_str().expect("token").to_owned()
    }

    pub async fn admin_token(&self) -> String {
        self.login(&self.admin_email, ADMIN_PASSWORD).await
    }

    pub async fn create_tenant(&self, admin: &str, slug: &str) -> String {
        let r = self
            .gql(
                Some(admin),
                "mutation($i:CreateTenantInput!){ createTenant(input:$i){ id slug } }",
                json!({"i": {"slug": slug, "name": format!("Tenant {slug}")}}),
            )
            .await;
        r.data()["createTenant"]["id"].as_str().expect("id").to_owned()
    }

    /// Creates a user and returns its id.
    pub async fn create_user(&self, token: &str, tenant: &str, email: &str, password: &str, role: &str) -> String {
        let r = self
            .gql(
                Some(token),
                "mutation($i:CreateUserInput!){ createUser(input:$i){ id role } }",
                json!({"i": {"tenantId": tenant, "email": email, "password": password, "role": role}}),
            )
            .await;
        r.data()["createUser"]["id"].as_str().expect("id").to_owned()
    }

    pub async fn configure_integration(&self, token: &str, input: Value) -> Gql {
        self.gql(
            Some(token),
            "mutation($i:ConfigureIntegrationInput!){ configureIntegration(input:$i){ id kind name hookUrl telemetryUrl settings credentialNames } }",
            json!({"i": input}),
        )
        .await
    }
}

/// A tenant with its admin, ready for tests.
pub struct TenantFixture {
    pub id: String,
    pub slug: String,
    pub admin_email: String,
    pub admin_token: String,
    pub admin_id: String,
}

pub const USER_PASSWORD: &str = "tenant-password-Wx4?";

pub async fn tenant_with_admin(app: &TestApp, platform_token: &str) -> TenantFixture {
    let slug = format!("t-{}", unique());
    let id = app.create_tenant(platform_token, &slug).await;
    let admin_email = format!("admin@{slug}.example.com");
    let admin_id = app.create_user(platform_token, &id, &admin_email, USER_PASSWORD, "TENANT_ADMIN").await;
    let admin_token = app.login(&admin_email, USER_PASSWORD).await;
    TenantFixture { id, slug, admin_email, admin_token, admin_id }
}

impl TestApp {
    /// A GraphQL multipart request (the GraphQL multipart spec) uploading `bytes` as the
    /// variable `var`.
    pub async fn gql_upload(
        &self,
        token: Option<&str>,
        query: &str,
        mut variables: Value,
        var: &str,
        bytes: Vec<u8>,
        filename: &str,
    ) -> Gql {
        variables[var] = Value::Null;
        let ops = json!({"query": query, "variables": variables});
        let form = reqwest::multipart::Form::new()
            .text("operations", ops.to_string())
            .text("map", json!({"0": [format!("variables.{var}")]}).to_string())
            .part(
                "0",
                reqwest::multipart::Part::bytes(bytes)
                    .file_name(filename.to_owned())
                    .mime_str("application/octet-stream")
                    .expect("mime"),
            );
        let mut req = self.http.post(self.url("/graphql")).multipart(form);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("upload request");
        let raw = resp.text().await.expect("body");
        let body: Value = serde_json::from_str(&raw).unwrap_or_else(|_| panic!("not JSON: {raw}"));
        Gql { body, raw }
    }
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
