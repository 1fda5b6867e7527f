//! The `linkyard` binary: commands and settings of the contract, the zero-setup default,
//! the checked-in schema, graceful shutdown on SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The `linkyard` CLI with none of its settings inherited from the environment.
fn linkyard() -> Command {
    let mut cmd = Command::new(crate::utils::child::linkyard_bin());
    for var in [
        "DATABASE_URL",
        "REDIS_URL",
        "LINKYARD_ADDR",
        "LINKYARD_PUBLIC_URL",
        "LINKYARD_JWT_SECRET",
        "LINKYARD_SECRET_KEY",
        "LINKYARD_ADMIN_EMAIL",
        "LINKYARD_ADMIN_PASSWORD",
        "LINKYARD_DATA_DIR",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root").to_path_buf()
}

#[test]
fn schema_graphql_is_what_linkyard_schema_prints() {
    let printed = api::graphql::sdl();
    let file = std::fs::read_to_string(repo_root().join("schema.graphql")).expect("schema.graphql is checked in");
    assert_eq!(file, printed, "regenerate with: cargo run -p api -- schema > schema.graphql");
    let out = linkyard().arg("schema").output().expect("run schema");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), printed);
    for name in [
        "login",
        "me",
        "createTenant",
        "tenants",
        "createUser",
        "configureIntegration",
        "integrations",
        "rotateIntegrationSecret",
        "createApiKey",
    ] {
        assert!(printed.contains(&format!("\t{name}")), "{name} missing from the SDL");
    }
}

#[test]
fn migrate_and_create_platform_admin_are_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str]| {
        let out = linkyard().current_dir(dir.path()).args(args).output().expect("run");
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&["migrate"]);
    run(&["migrate"]);
    assert!(dir.path().join("data/linkyard.db").exists(), "default SQLite file under ./data/");
    let first =
        run(&["admin", "create-platform-admin", "--email", "root@example.com", "--password", "root-password-1"]);
    let second =
        run(&["admin", "create-platform-admin", "--email", "root@example.com", "--password", "root-password-1"]);
    assert!(first.contains("created"), "{first}");
    assert!(second.contains("already exists"), "{second}");
    let out = linkyard()
        .current_dir(dir.path())
        .args(["admin", "create-platform-admin", "--email", "x", "--password", "p"])
        .output()
        .expect("run");
    assert!(!out.status.success(), "a bad email is refused");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port")
}

/// With no settings but the address, the server creates ./data, migrates, serves, and
/// stops cleanly on SIGTERM.
#[test]
fn zero_setup_serve_and_graceful_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = linkyard()
        .current_dir(dir.path())
        .env("LINKYARD_ADDR", &addr)
        .env("LINKYARD_ADMIN_EMAIL", "boot@example.com")
        .env("LINKYARD_ADMIN_PASSWORD", "boot-password-123")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(mut l) = sink.lock() {
                l.push(line);
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    let ready = rt.block_on(async {
        let client = reqwest::Client::new();
        while Instant::now() < deadline {
            let up = client.get(format!("http://{addr}/readyz")).send().await.is_ok_and(|r| r.status() == 200);
            if up {
                let query = "mutation{ login(email:\"boot@example.com\", password:\"boot-password-123\"){ token } }";
                let login = client
                    .post(format!("http://{addr}/graphql"))
                    .json(&serde_json::json!({"query": query}))
                    .send()
                    .await;
                let body: serde_json::Value = match login {
                    Ok(r) => r.json().await.unwrap_or_default(),
                    Err(_) => serde_json::Value::Null,
                };
                return body["data"]["login"]["token"].is_string();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    });
    assert!(ready, "server became ready and the env-configured admin logged in");
    assert!(dir.path().join("data/linkyard.db").exists());
    assert!(dir.path().join("data/jwt_secret").exists() && dir.path().join("data/secret_key").exists());

    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline + Duration::from_secs(30), "server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = reader.join();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    let log = lines.lock().map(|l| l.join("\n")).unwrap_or_default();
    assert!(log.contains("shutdown requested") && log.contains("stopped"), "{log}");
    assert!(!log.contains("boot-password-123"), "the admin password never reaches the logs");
    // Every request line carries its request id.
    let request_lines: Vec<_> = log.lines().filter(|l| l.contains("finished processing request")).collect();
    assert!(!request_lines.is_empty());
    assert!(request_lines.iter().all(|l| l.contains("\"request_id\"")), "{log}");
}

/// `domain` depends on no web, ORM or HTTP-client crate.
#[test]
fn domain_depends_on_no_web_orm_or_http_crate() {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(repo_root())
        .args(["tree", "-p", "domain", "-e", "normal", "--prefix", "none", "--offline"])
        .output()
        .expect("cargo tree");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8_lossy(&out.stdout);
    for banned in ["axum", "hyper", "sea-orm", "sqlx", "reqwest", "async-graphql", "tower", "redis"] {
        assert!(!tree.lines().any(|l| l.starts_with(&format!("{banned} "))), "domain depends on {banned}");
    }
    assert!(tree.lines().any(|l| l.starts_with("serde ")), "the tree was read");
}
