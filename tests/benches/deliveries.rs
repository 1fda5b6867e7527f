//! Delivery throughput: 10,000 deliveries through the job queue to a local fake vendor
//! (the production `WEBHOOK` sender: HMAC-signed POSTs), with Redis job storage and with
//! PostgreSQL job storage (the database in both cases is PostgreSQL).
//!
//! Prints, per storage: the time to write and enqueue them, the time until the vendor has
//! received every one, and deliveries per second end to end; at the end issue 19's
//! figures next to their targets on a 2-core machine (Redis >= 5,000/s, PostgreSQL job
//! storage >= 2,500/s) and a `BENCH deliveries <figure>=<value>` line each. Fails below
//! 1,000 per second with Redis.
//!
//! `BENCH_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test?sslmode=disable`, must allow
//! `CREATE DATABASE`), `BENCH_REDIS_URL` (default `redis://127.0.0.1:6379`),
//! `BENCH_DELIVERIES` (default 10000), `BENCH_WRITERS` (tasks enqueueing them one after
//! another, default 16). Bench databases are dropped at the end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

use api::config::{Config, Settings};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use domain::deliveries::{DeliveryKind, DeliveryState, NewDelivery};
use domain::ids::{IntegrationId, TenantId};
use linkyard_tests::{BENCH_ADMIN, BenchTenant, Figures, Target, bench_admin_url, bench_tenant, gql, with_database};
use sea_orm::{ConnectionTrait, Database};
use serde_json::json;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(Clone, Default)]
struct Vendor {
    keys: Arc<Mutex<HashSet<String>>>,
}

async fn receive(State(v): State<Vendor>, headers: HeaderMap) -> StatusCode {
    let key = headers.get("x-linkyard-idempotency-key").and_then(|h| h.to_str().ok()).unwrap_or_default();
    if headers.get("x-linkyard-signature").is_none() || key.is_empty() {
        return StatusCode::BAD_REQUEST;
    }
    v.keys.lock().unwrap().insert(key.to_owned());
    StatusCode::OK
}

struct Report {
    label: &'static str,
    enqueue: Duration,
    delivered: Duration,
}

async fn run(
    label: &'static str,
    url: &str,
    redis: Option<String>,
    n: usize,
    vendor_url: &str,
    vendor: &Vendor,
) -> Report {
    let dir = tempfile::tempdir().expect("tempdir");
    let queue = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let settings = Settings {
        addr: "127.0.0.1:0".into(),
        database_url: Some(url.to_owned()),
        redis_url: redis,
        admin_email: Some(BENCH_ADMIN.0.into()),
        admin_password: Some(BENCH_ADMIN.1.into()),
        job_queue: queue,
        outbound_allow: "127.0.0.1/32".into(),
        jwt_secret: Some("bench-jwt-secret-0123456789abcdef0123456789".into()),
        secret_key: Some("00".repeat(32)),
        ..Settings::defaults(dir.path().to_path_buf())
    };
    let config = Config::resolve(settings).expect("config");
    let shutdown = CancellationToken::new();
    let running = api::app::start(config, shutdown.clone()).await.expect("server starts");
    let http = reqwest::Client::new();
    let base = format!("http://{}", running.addr);
    let BenchTenant { tenant_id, token } = bench_tenant(&http, &base).await;
    let i = gql(
        &http,
        &base,
        Some(&token),
        "mutation($u:JSON!){ configureIntegration(input:{kind:WEBHOOK, name:\"bench\", settings:$u, credentials:{signingSecret:\"bench-signing-secret\"}}){ id } }",
        json!({"u": {"url": vendor_url}}),
    )
    .await;
    let integration: IntegrationId = i["configureIntegration"]["id"].as_str().unwrap().parse().unwrap();
    let tenant: TenantId = tenant_id.parse().unwrap();
    vendor.keys.lock().unwrap().clear();

    let started = Instant::now();
    let writers: usize = std::env::var("BENCH_WRITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(16);
    let mut tasks = Vec::new();
    for w in 0..writers {
        let deliveries = running.state.deliveries.clone();
        tasks.push(tokio::spawn(async move {
            for k in (w..n).step_by(writers) {
                let d = NewDelivery {
                    integration_id: integration,
                    kind: DeliveryKind::from_static("webhook.bench"),
                    idempotency_key: format!("bench-{k:06}"),
                    order_key: None,
                    payload: json!({"event": "bench", "n": k}),
                    subject: None,
                };
                deliveries.enqueue(tenant, d).await.expect("enqueue");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let enqueue = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if vendor.keys.lock().unwrap().len() >= n {
            break;
        }
        assert!(Instant::now() < deadline, "not all delivered after 10 minutes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered = started.elapsed();
    // Every delivery ends SUCCEEDED in the database too.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let depth = running.state.deliveries.depth().await.unwrap();
        if depth.iter().all(|(s, c)| *c == 0 || *s == DeliveryState::Succeeded) {
            break;
        }
        assert!(Instant::now() < deadline, "deliveries left unfinished: {depth:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The bench's finished jobs leave the job storage (a Redis shared across runs would
    // otherwise keep all of them, and grow slower with every run).
    let queue = running.state.worker_settings.queue.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut pruned = 0;
    while pruned < n as u64 && Instant::now() < deadline {
        pruned += running.state.jobs.prune_finished(&queue, Duration::ZERO).await.expect("prune");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    shutdown.cancel();
    Report { label, enqueue, delivered }
}

#[tokio::main]
async fn main() {
    linkyard_tests::bench_logs();
    let admin_url = bench_admin_url();
    let redis = std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let n: usize = std::env::var("BENCH_DELIVERIES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);

    let vendor = Vendor::default();
    let app = Router::new().route("/hook", post(receive)).with_state(vendor.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let vendor_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let admin = Database::connect(&admin_url).await.expect("BENCH_DATABASE_URL reachable");
    let mut reports = Vec::new();
    for (label, with_redis) in [("redis", true), ("postgres", false)] {
        let name = format!("linkyard_bench_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await.expect("create database");
        let url = with_database(&admin_url, &name);
        let report = run(label, &url, with_redis.then(|| redis.clone()), n, &vendor_url, &vendor).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await.expect("drop");
        reports.push(report);
    }
    println!();
    for r in &reports {
        println!(
            "{:<9} {n} deliveries: enqueued in {:>6.2} s, all delivered in {:>6.2} s: {:>7.0} deliveries/s",
            r.label,
            r.enqueue.as_secs_f64(),
            r.delivered.as_secs_f64(),
            n as f64 / r.delivered.as_secs_f64()
        );
    }
    let mut figures = Figures::new("deliveries");
    for r in &reports {
        let target = if r.label == "redis" { 5000.0 } else { 2500.0 };
        figures.add(
            &format!("{}_delivered_per_s", r.label),
            &format!("deliveries end to end, {} job storage:", if r.label == "redis" { "Redis" } else { "PostgreSQL" }),
            n as f64 / r.delivered.as_secs_f64(),
            "/s",
            Target::AtLeast(target),
            0,
        );
    }
    figures.print();
    let redis_rate = reports.iter().find(|r| r.label == "redis").map(|r| n as f64 / r.delivered.as_secs_f64());
    if redis_rate.is_some_and(|r| r < 1000.0) {
        eprintln!("below target: at least 1,000 deliveries/s with Redis");
        std::process::exit(1);
    }
}
