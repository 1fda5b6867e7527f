//! Resident memory of `linkyard serve` (this package's release build of the CLI) on SQLite,
//! as an operator runs it: a child process with the default settings and its own data
//! directory.
//!
//! Prints what the idle server holds `BENCH_IDLE_SECS` (default 10) after it answers
//! `/readyz` (`VmRSS`, split into heap and other anonymous memory and file-backed pages from
//! `/proc/<pid>/smaps_rollup`, and its threads), then its peak during a Dingding callback burst
//! of `BENCH_CALLBACKS` (default 20,000, plus 10% repeats) from 64 connections, and what it
//! holds once idle again. At the end, issue 19's figures next to their targets (idle
//! < 40 MB, < 300 MB under the burst) and a `BENCH memory <figure>=<value>` line each.
//! Extra environment for the child (e.g. `LINKYARD_*` sizing settings) passes through.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

use linkyard_tests::{
    BENCH_ADMIN, BenchTenant, Figures, Target, bench_tenant, dingding_burst, proc_memory, send_dingding_burst,
};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CONNECTIONS: usize = 64;

/// The `linkyard` child, killed when dropped.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Resident memory by kind from `/proc/<pid>/smaps_rollup`, in MB: anonymous and file-backed.
fn rollup(pid: &str) -> (f64, f64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let kb = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or_default()
    };
    (kb("Anonymous:") / 1024.0, (kb("Rss:") - kb("Anonymous:")) / 1024.0)
}

/// The `[heap]` and the largest anonymous mappings' resident sizes in MB, from `/proc/<pid>/smaps`.
fn largest_mappings(pid: &str, count: usize) -> Vec<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut maps: Vec<(f64, String)> = Vec::new();
    let mut name = String::new();
    for line in text.lines() {
        let first = line.split_whitespace().next().unwrap_or_default();
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            let parts: Vec<&str> = line.split_whitespace().collect();
            name = format!("{} {}", parts[0], parts.get(5).copied().unwrap_or("[anon]"));
        } else if let Some(v) = line.strip_prefix("Rss:") {
            let kb: f64 = v.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or_default();
            maps.push((kb / 1024.0, name.clone()));
        }
    }
    maps.sort_by(|a, b| b.0.total_cmp(&a.0));
    maps.into_iter().take(count).map(|(mb, n)| format!("{mb:7.1} MB  {n}")).collect()
}

fn report(label: &str, pid: &str) -> f64 {
    let (rss, hwm, threads) = proc_memory(pid).expect("/proc status of the server");
    let (anon, file) = rollup(pid);
    let mut names = std::collections::BTreeMap::<String, usize>::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten() {
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        *names.entry(name.trim().to_owned()).or_default() += 1;
    }
    let names: Vec<String> = names.iter().map(|(n, c)| format!("{c} {n}")).collect();
    println!(
        "{label}: VmRSS {rss:.1} MB (peak {hwm:.1} MB): anonymous {anon:.1} MB, file-backed {file:.1} MB; {threads} threads ({})",
        names.join(", ")
    );
    rss
}

#[tokio::main]
async fn main() {
    let idle_secs: u64 = std::env::var("BENCH_IDLE_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let n: usize = std::env::var("BENCH_CALLBACKS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port");
    let base = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_linkyard-it"));
    for var in ["DATABASE_URL", "REDIS_URL", "LINKYARD_DATA_DIR", "LINKYARD_ADDR"] {
        cmd.env_remove(var);
    }
    cmd.arg("serve")
        .current_dir(dir.path())
        .env("LINKYARD_ADDR", format!("127.0.0.1:{port}"))
        .env("LINKYARD_PUBLIC_URL", &base)
        .env("LINKYARD_DATA_DIR", dir.path().join("data"))
        .env("LINKYARD_ADMIN_EMAIL", BENCH_ADMIN.0)
        .env("LINKYARD_ADMIN_PASSWORD", BENCH_ADMIN.1)
        .env("LINKYARD_OUTBOUND_ALLOW", "127.0.0.1/32")
        .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let server = Server(cmd.spawn().expect("spawn linkyard serve"));
    let pid = server.0.id().to_string();

    let http = reqwest::Client::builder().pool_max_idle_per_host(CONNECTIONS).build().expect("client");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ready = http.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status().is_success());
        if ready {
            break;
        }
        assert!(Instant::now() < deadline, "linkyard serve not ready after 120 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let idle = report(&format!("idle, {idle_secs} s after ready"), &pid);
    println!("largest mappings:");
    for m in largest_mappings(&pid, 8) {
        println!("  {m}");
    }

    let BenchTenant { token, .. } = bench_tenant(&http, &base).await;
    let burst_of = dingding_burst(&http, &base, &token, n).await;
    let sent = burst_of.bodies.len();
    let b = send_dingding_burst(CONNECTIONS, burst_of).await;
    println!(
        "burst: {sent} callbacks from {CONNECTIONS} connections, {} accepted in {:.2} s = {:.0}/s",
        b.accepted,
        b.elapsed.as_secs_f64(),
        b.rate()
    );
    // What the burst left in the backlog is processed after it: the peak may come then.
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let (_, peak, _) = proc_memory(&pid).expect("status");
    let after = report(&format!("{idle_secs} s after the burst"), &pid);

    let mut figures = Figures::new("memory");
    figures.add("idle_rss_mb", "resident memory, idle server on SQLite:", idle, " MB", Target::Below(40.0), 1);
    figures.add(
        "burst_peak_rss_mb",
        "peak resident memory under the callback burst:",
        peak,
        " MB",
        Target::Below(300.0),
        1,
    );
    figures.add("after_burst_rss_mb", "resident memory after the burst:", after, " MB", Target::None, 1);
    figures.print();
    drop(server);
    if b.accepted != sent {
        eprintln!("not every callback was accepted");
        std::process::exit(1);
    }
}
