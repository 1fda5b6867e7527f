//! Dingding callback burst: `BENCH_CALLBACKS` (default 20,000) signed callbacks from 64
//! concurrent connections to `POST /hooks/{id}/dingding/{hook_token}`, plus every 10th sent again (a
//! Dingding retry), on PostgreSQL and on SQLite.
//!
//! Prints, per database: accepted callbacks per second, p50/p99 latency, and whether each
//! was stored exactly once (one inbound event per distinct callback, repeats included).
//! Targets on a 2-core machine: at least 2,000/s on PostgreSQL, 1,000/s on SQLite.
//!
//! `BENCH_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test?sslmode=disable`, must allow
//! `CREATE DATABASE`), `BENCH_REDIS_URL` (unset: in-process job storage and caches),
//! `BENCH_DATABASES` (default `postgres,sqlite`). Bench databases are dropped at the end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

use adapters::vendors::dingding::sign;
use linkyard_tests::{BenchTenant, bench_database, bench_server, bench_tenant, burst, gql};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const CONNECTIONS: usize = 64;

struct Report {
    label: String,
    sent: usize,
    accepted: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
    stored: i64,
    distinct: i64,
    unique: usize,
    /// From the first callback until every one is processed.
    drain: Duration,
}

/// Devices per kind the burst is spread over (a burst comes from many devices).
const DEVICES: usize = 50;

/// The `n`th callback of the burst: a mix of lock, meter and water events.
fn callback(n: usize, t0: i64) -> Value {
    let time = t0 + i64::try_from(n).unwrap_or_default();
    let d = (n / 4) % DEVICES;
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

async fn run(label: &str, url: &str, redis: Option<String>, n: usize) -> Report {
    let server = bench_server(url, redis).await;
    let (running, base, shutdown) = (&server.running, server.base.clone(), server.shutdown.clone());
    let http = reqwest::Client::builder().pool_max_idle_per_host(CONNECTIONS).build().expect("client");
    let BenchTenant { token, .. } = bench_tenant(&http, &base).await;
    let i = gql(
        &http,
        &base,
        Some(&token),
        "mutation{ configureIntegration(input:{kind:DINGDING, name:\"bench\", settings:{baseUrl:\"http://127.0.0.1:9\"}, credentials:{clientId:\"c\", clientSecret:\"s\"}}){ id hookUrl } }",
        json!({}),
    )
    .await;
    let integration = i["configureIntegration"]["id"].as_str().unwrap().to_owned();
    let hook_url = i["configureIntegration"]["hookUrl"].as_str().unwrap().to_owned();
    let devices = (0..DEVICES).flat_map(|d| {
        [("lock", "LOCK"), ("meter", "ELECTRICITY_METER"), ("water", "WATER_METER")]
            .map(|(p, k)| (format!("bench-{p}-{d}"), k))
    });
    for (uuid, kind) in devices {
        gql(
            &http,
            &base,
            Some(&token),
            "mutation($i:UpsertDeviceInput!){ upsertDevice(input:$i){ id } }",
            json!({"i": {"integrationId": integration, "externalId": uuid, "kind": kind, "name": uuid}}),
        )
        .await;
    }

    // Signed up front so the burst measures the server only; every 10th is sent twice.
    let t0 = chrono::Utc::now().timestamp_millis();
    let mut bodies: Vec<String> = (0..n)
        .map(|k| {
            let mut body = callback(k, t0);
            body["sign"] = json!(sign::callback_sign(&hook_url, &body.to_string()).expect("sign"));
            body.to_string()
        })
        .collect();
    let repeats: Vec<String> = bodies.iter().step_by(10).cloned().collect();
    bodies.extend(repeats);
    let sent = bodies.len();
    let bodies = Arc::new(bodies);
    // The URL as registered (its hook token included), on the bench server's address.
    let path = hook_url.split_once("/hooks/").map(|(_, p)| p).expect("hookUrl has a /hooks/ path");
    let target = format!("{base}/hooks/{path}");
    let b = burst(CONNECTIONS, sent, move |http, k| {
        let (body, target) = (bodies[k].clone(), target.clone());
        async move {
            match http.post(&target).header("content-type", "application/json").body(body).send().await {
                Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                _ => false,
            }
        }
    })
    .await;
    let (elapsed, started) = (b.elapsed, b.started);
    let row = running
        .state
        .db
        .query_one_raw(Statement::from_sql_and_values(
            running.state.db.get_database_backend(),
            "SELECT COUNT(*) AS n, COUNT(DISTINCT dedup_key) AS d FROM inbound_events WHERE integration_id = $1",
            [sea_orm::Value::from(uuid::Uuid::parse_str(&integration).unwrap())],
        ))
        .await
        .expect("count")
        .expect("row");
    let stored: i64 = row.try_get("", "n").expect("n");
    // What the burst left in the backlog is processed after it: how long until none is
    // RECEIVED any more.
    let drain = loop {
        let left = running
            .state
            .db
            .query_one_raw(Statement::from_sql_and_values(
                running.state.db.get_database_backend(),
                "SELECT COUNT(*) AS n FROM inbound_events WHERE integration_id = $1 AND state = 'RECEIVED'",
                [sea_orm::Value::from(uuid::Uuid::parse_str(&integration).unwrap())],
            ))
            .await
            .expect("count")
            .expect("row");
        let left: i64 = left.try_get("", "n").expect("n");
        if left == 0 || started.elapsed() > Duration::from_secs(600) {
            break started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let distinct: i64 = row.try_get("", "d").expect("d");
    shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;
    Report {
        label: label.to_owned(),
        sent,
        accepted: b.accepted,
        elapsed,
        p50: b.pct(0.50),
        p99: b.pct(0.99),
        stored,
        distinct,
        unique: n,
        drain,
    }
}

#[tokio::main]
async fn main() {
    linkyard_tests::bench_logs();
    let redis = std::env::var("BENCH_REDIS_URL").ok().filter(|u| !u.is_empty());
    let n: usize = std::env::var("BENCH_CALLBACKS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let which = std::env::var("BENCH_DATABASES").unwrap_or_else(|_| "postgres,sqlite".into());
    let mut reports = Vec::new();
    for label in which.split(',').map(str::trim) {
        match label {
            "postgres" => {
                let (url, name, admin) = bench_database().await;
                reports.push(run(label, &url, redis.clone(), n).await);
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
                    .expect("drop");
            }
            "sqlite" => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display());
                reports.push(run(label, &url, redis.clone(), n).await);
            }
            other => panic!("unknown database {other:?} in BENCH_DATABASES"),
        }
    }
    println!();
    let mut ok = true;
    for r in &reports {
        let rate = r.accepted as f64 / r.elapsed.as_secs_f64();
        let once = r.stored == r.unique as i64 && r.distinct == r.unique as i64;
        println!(
            "{:<9} {} callbacks ({} distinct) from {CONNECTIONS} connections: {} accepted in {:.2} s = {:.0}/s, p50 {:.1} ms, p99 {:.1} ms; stored {} rows for {} distinct: {}",
            r.label,
            r.sent,
            r.unique,
            r.accepted,
            r.elapsed.as_secs_f64(),
            rate,
            r.p50.as_secs_f64() * 1000.0,
            r.p99.as_secs_f64() * 1000.0,
            r.stored,
            r.distinct,
            if once { "each stored exactly once" } else { "NOT stored exactly once" }
        );
        println!("          all processed {:.2} s after the first callback", r.drain.as_secs_f64());
        let target = if r.label == "postgres" { 2000.0 } else { 1000.0 };
        if !once || r.accepted != r.sent {
            ok = false;
        }
        if rate < target {
            eprintln!("{}: below target of {target:.0}/s", r.label);
        }
    }
    if !ok {
        std::process::exit(1);
    }
}
