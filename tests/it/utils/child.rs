//! `linkyard` child processes for tests that need a second process (subscriptions across
//! processes, a worker killed mid-attempt, schedulers competing for a tick).

use super::TestApp;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The `linkyard` CLI, built by `cargo test` as this package's `linkyard-it` binary.
pub fn linkyard_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_linkyard-it"))
}

/// A `linkyard` child process, killed when dropped (also when the test panics).
pub struct Child {
    pub process: std::process::Child,
    pub base: String,
    log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Child {
    /// Starts `linkyard {command}` on the database of `app` with its secrets (and the same
    /// job queue name), plus `env`.
    pub fn start(app: &TestApp, command: &str, env: &[(&str, String)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let addr = format!("127.0.0.1:{port}");
        let secret = |name: &str| {
            std::fs::read_to_string(app.data_dir().join(name)).expect("the app's generated key").trim().to_owned()
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new(linkyard_bin());
        for (var, _) in std::env::vars() {
            if var.starts_with("LINKYARD_") || var == "DATABASE_URL" || var == "REDIS_URL" {
                cmd.env_remove(var);
            }
        }
        cmd.arg(command)
            .current_dir(dir.path())
            .env("LINKYARD_ADDR", &addr)
            .env("DATABASE_URL", &app.database_url)
            .env("LINKYARD_JWT_SECRET", secret("jwt_secret"))
            .env("LINKYARD_SECRET_KEY", secret("secret_key"))
            .env("LINKYARD_DATA_DIR", dir.path().join("data"))
            .env("LINKYARD_OUTBOUND_ALLOW", "127.0.0.1/32")
            .env("LINKYARD_JOB_QUEUE", app.job_queue())
            .env("LINKYARD_LOG_FORMAT", "text")
            .env("RUST_LOG", "warn");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut process = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn linkyard");
        let log = Arc::new(Mutex::new(Vec::new()));
        if let Some(stderr) = process.stderr.take() {
            let sink = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Ok(mut l) = sink.lock() {
                        l.push(line);
                    }
                }
            });
        }
        Self { process, base: format!("http://{addr}"), log, _dir: dir }
    }

    /// Waits for `/readyz` (servers only).
    pub async fn wait_ready(&mut self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.process.try_wait() {
                panic!("linkyard exited ({status}): {}", self.log());
            }
            let ready = client.get(format!("{}/readyz", self.base)).send().await.is_ok_and(|r| r.status() == 200);
            if ready {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("linkyard did not become ready: {}", self.log());
    }

    /// Everything the child wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// SIGKILL: no shutdown, no cleanup, as when a machine dies.
    pub fn kill_hard(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill_hard();
    }
}
