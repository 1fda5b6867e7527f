//! ETC gantry reports (seed 001, `PROTOCOLS.md` section 2): `BENCH_GANTRIES` (default 10,000)
//! gantries of one tenant and one `ETC_GANTRY` integration post the document's own
//! `cabinetStatusUpdate` example (3.1.3, its gantry id and a current `timeStamp`), signed with
//! `binfile-md5` and `binfile-auth`, to `POST /hooks/{id}/etc/monitor.do` on PostgreSQL.
//!
//! Phase 1, the burst: every gantry reports once, from 64 concurrent connections (as after a
//! network outage); prints reports per second and p50/p99 answer times against the target
//! "burst of 10,000 answered within 10 s", then how long until every report was processed
//! (no inbound event left `RECEIVED`). Phase 2, the rhythm: each gantry reports every 600 s;
//! `ETC_BENCH_RHYTHM_SECS` (default 30) of it are run, i.e. gantries x secs / 600 reports
//! spread evenly; prints their p50/p99.
//!
//! `BENCH_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test?sslmode=disable`, must
//! allow `CREATE DATABASE`), `BENCH_REDIS_URL` (unset: in-process job storage and caches).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

use linkyard_tests::{BenchTenant, Figures, Target, bench_database, bench_server, bench_tenant, burst, percentile};
use md5::{Digest, Md5};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const CONNECTIONS: usize = 64;
const AUTH_CODE: &str = "bench-auth-123456";
/// How often a gantry reports (section 3.1: every 600 s by default).
const PERIOD_SECS: u64 = 600;

/// Section 3.1.3's example, as the document prints it.
const CABINET_EXAMPLE: &str = include_str!("../fixtures/etc/cabinet_status_update.json");

/// Gantry `k`'s id: 19 characters like the document's `G000211001002110010`.
fn gantry(k: usize) -> String {
    format!("G{:018}", 211_001_002_100_000_u64 + k as u64)
}

/// Gantry `k`'s report now, and its `binfile-md5`.
fn report(k: usize) -> (String, String) {
    let ts = chrono::Utc::now().timestamp();
    let body = CABINET_EXAMPLE
        .replace("G000211001002110010", &gantry(k))
        .replace("\"timeStamp\": \"1564734526\"", &format!("\"timeStamp\": \"{ts}\""));
    let md5 = hex::encode(Md5::digest(body.as_bytes()));
    (body, md5)
}

/// Posts one signed report; its answer time and whether it was answered `1000`.
async fn post(http: &reqwest::Client, target: &str, body: String, md5: &str) -> (Duration, bool) {
    let t = Instant::now();
    let resp = http
        .post(target)
        .header("content-type", "application/json")
        .header("binfile-md5", md5)
        .header("binfile-auth", AUTH_CODE)
        .body(body)
        .send()
        .await;
    let ok = match resp {
        Ok(r) => r.json::<Value>().await.is_ok_and(|v| v["code"] == "1000"),
        Err(_) => false,
    };
    (t.elapsed(), ok)
}

/// Configures the integration with `minReportIntervalSeconds` = `min`; the id, or the errors.
async fn configure(http: &reqwest::Client, base: &str, token: &str, min: u64) -> Result<String, Value> {
    let q = "mutation($s:JSON!,$c:JSON!){ configureIntegration(input:{kind:ETC_GANTRY, name:\"bench\", settings:$s, credentials:$c}){ id } }";
    let vars = json!({"s": {"minReportIntervalSeconds": min}, "c": {"authCode": AUTH_CODE}});
    let body: Value = http
        .post(format!("{base}/graphql"))
        .bearer_auth(token)
        .json(&json!({"query": q, "variables": vars}))
        .send()
        .await
        .expect("configure")
        .json()
        .await
        .expect("json");
    match body.get("errors") {
        Some(errors) => Err(errors.clone()),
        None => Ok(body["data"]["configureIntegration"]["id"].as_str().expect("integration").to_owned()),
    }
}

/// Inbound events stored and those processed (no longer `RECEIVED`).
async fn processed(db: &sea_orm::DatabaseConnection) -> (i64, i64) {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n, COUNT(*) FILTER (WHERE state <> 'RECEIVED') AS done FROM inbound_events",
        ))
        .await
        .expect("inbound events")
        .expect("a row");
    (row.try_get::<i64>("", "n").unwrap_or(0), row.try_get::<i64>("", "done").unwrap_or(0))
}

#[tokio::main]
async fn main() {
    linkyard_tests::bench_logs();
    let redis = std::env::var("BENCH_REDIS_URL").ok().filter(|u| !u.is_empty());
    let n: usize = std::env::var("BENCH_GANTRIES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let rhythm_secs: u64 = std::env::var("ETC_BENCH_RHYTHM_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let (url, name, admin) = bench_database().await;

    let server = bench_server(&url, redis).await;
    let (running, base, shutdown) = (&server.running, server.base.clone(), server.shutdown.clone());
    let http = reqwest::Client::builder().pool_max_idle_per_host(CONNECTIONS).build().expect("client");
    let BenchTenant { token, .. } = bench_tenant(&http, &base).await;
    // No rate limit at all if the platform allows it; else the smallest it takes.
    let (integration, min) = match configure(&http, &base, &token, 0).await {
        Ok(id) => (id, 0),
        Err(e) => {
            eprintln!("minReportIntervalSeconds 0 refused ({e}); using 1");
            (configure(&http, &base, &token, 1).await.expect("minReportIntervalSeconds 1"), 1)
        }
    };
    let target = format!("{base}/hooks/{integration}/etc/monitor.do");
    let db = &running.state.db;

    // Phase 1: the burst. Bodies are built and hashed up front: the burst measures the server.
    let bodies: Arc<Vec<(String, String)>> = Arc::new((0..n).map(report).collect());
    let sent = {
        let (bodies, target) = (bodies.clone(), target.clone());
        burst(CONNECTIONS, n, move |http, k| {
            let (body, md5) = bodies[k].clone();
            let target = target.clone();
            async move { post(&http, &target, body, &md5).await.1 }
        })
        .await
    };
    let (started, burst, ok) = (sent.started, sent.elapsed, sent.accepted);
    println!(
        "postgres  burst: {n} gantries x 1 cabinetStatusUpdate from {CONNECTIONS} connections \
         (minReportIntervalSeconds {min}): {ok} answered 1000 in {:.2} s = {:.0}/s, p50 {:.1} ms, p99 {:.1} ms; \
         target: burst of {n} answered within 10 s: {}",
        burst.as_secs_f64(),
        ok as f64 / burst.as_secs_f64(),
        sent.pct(0.50).as_secs_f64() * 1000.0,
        sent.pct(0.99).as_secs_f64() * 1000.0,
        if burst <= Duration::from_secs(10) && ok == n { "met" } else { "MISSED" }
    );

    // Every accepted report processed (devices, readings, alarms written).
    let deadline = Instant::now() + Duration::from_secs(900);
    let (stored, done) = loop {
        let (stored, done) = processed(db).await;
        if (done >= stored && stored >= ok as i64) || Instant::now() > deadline {
            break (stored, done);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!(
        "postgres  burst processed: {done} of {stored} events {:.2} s after the first report ({:.2} s after the last answer)",
        started.elapsed().as_secs_f64(),
        (started.elapsed() - burst).as_secs_f64()
    );

    // Phase 2: the rhythm, each gantry every 600 s, compressed to `rhythm_secs`.
    let count = ((n as u64 * rhythm_secs) / PERIOD_SECS).max(1) as usize;
    let step = Duration::from_secs_f64(rhythm_secs as f64 / count as f64);
    let stride = (n / count).max(1);
    let rhythm_ok = Arc::new(AtomicUsize::new(0));
    let begin = tokio::time::Instant::now();
    let mut sends = Vec::with_capacity(count);
    for i in 0..count {
        let (http, target, rhythm_ok) = (http.clone(), target.clone(), rhythm_ok.clone());
        let at = begin + step.mul_f64(i as f64);
        let k = (i * stride) % n;
        sends.push(tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let (body, md5) = report(k);
            let (took, ok) = post(&http, &target, body, &md5).await;
            if ok {
                rhythm_ok.fetch_add(1, Ordering::Relaxed);
            }
            took
        }));
    }
    let mut rhythm = Vec::with_capacity(count);
    for s in sends {
        rhythm.push(s.await.expect("sender"));
    }
    rhythm.sort();
    let rhythm_done = rhythm_ok.load(Ordering::Relaxed);
    println!(
        "postgres  rhythm: {count} reports over {rhythm_secs} s ({n} gantries every {PERIOD_SECS} s, compressed): \
         {rhythm_done} answered 1000, p50 {:.1} ms, p99 {:.1} ms",
        percentile(&rhythm, 0.50).as_secs_f64() * 1000.0,
        percentile(&rhythm, 0.99).as_secs_f64() * 1000.0,
    );

    // Not in issue 19's table: the bench's own target.
    let mut figures = Figures::new("etc_reports");
    figures.add(
        "burst_answered_s",
        &format!("burst of {n} answered in"),
        burst.as_secs_f64(),
        " s",
        Target::AtMost(10.0),
        2,
    );
    figures.add("burst_per_s", "burst answered", ok as f64 / burst.as_secs_f64(), "/s", Target::None, 0);
    figures.add("burst_p99_ms", "burst p99", sent.pct(0.99).as_secs_f64() * 1000.0, " ms", Target::None, 1);
    figures.add(
        "rhythm_p99_ms",
        "rhythm p99",
        percentile(&rhythm, 0.99).as_secs_f64() * 1000.0,
        " ms",
        Target::None,
        1,
    );
    figures.print();
    shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;
    admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await.expect("drop");
    if ok != n || rhythm_done != count || done < stored {
        std::process::exit(1);
    }
}
