//! Gas DAS readings with centre billing: `BENCH_REPORTS` (default 20,000) signed `2001`
//! reports from 64 concurrent connections to `POST /hooks/{id}/goldcard/api/collect/meter/2001`,
//! spread over 200 prepaid centre-billed meters on a three-tier tariff, on PostgreSQL.
//! Every report of a meter carries a higher register, so each is charged.
//!
//! Prints reports per second, p50/p99 latency, and whether the ledgers add up: per meter,
//! the volume charged equals its last register (nothing lost, nothing charged twice under
//! concurrent reports of one meter). Target on a 2-core machine: 2,000/s, p99 under 100 ms,
//! printed at the end next to the figures with a `BENCH gas_reports <figure>=<value>` line each.
//!
//! `BENCH_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test?sslmode=disable`, must
//! allow `CREATE DATABASE`), `BENCH_REDIS_URL` (unset: in-process job storage and caches).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

use adapters::vendors::goldcard::sign;
use linkyard_tests::{BenchTenant, Figures, Target, bench_database, bench_server, bench_tenant, burst, gql};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONNECTIONS: usize = 64;
const METERS: usize = 200;
const APP_CODE: &str = "00000072";
const APP_SECRET: &str = "bench-secret";

fn meter(m: usize) -> String {
    format!("{:012}", 201_911_260_000_u64 + m as u64)
}

#[tokio::main]
async fn main() {
    linkyard_tests::bench_logs();
    let redis = std::env::var("BENCH_REDIS_URL").ok().filter(|u| !u.is_empty());
    let n: usize = std::env::var("BENCH_REPORTS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let (url, name, admin) = bench_database().await;

    let server = bench_server(&url, redis).await;
    let (running, base, shutdown) = (&server.running, server.base.clone(), server.shutdown.clone());
    let http = reqwest::Client::builder().pool_max_idle_per_host(CONNECTIONS).build().expect("client");
    let BenchTenant { token, .. } = bench_tenant(&http, &base).await;
    let t = Some(token.as_str());
    // The DAS is unreachable: the registrations it would get fail once and are left dead.
    let i = gql(&http, &base, t,
        "mutation($s:JSON!,$c:JSON!){ configureIntegration(input:{kind:GOLDCARD, name:\"bench\", settings:$s, credentials:$c}){ id } }",
        json!({"s": {"baseUrl": "http://127.0.0.1:9", "companyCode": "1000058", "factorNo": "0013",
                     "retry": {"initialDelaySecs": 1, "maxDelaySecs": 1, "maxAttempts": 1}},
               "c": {"appCode": APP_CODE, "appSecret": APP_SECRET}})).await;
    let integration = i["configureIntegration"]["id"].as_str().expect("integration").to_owned();
    let tariff = gql(
        &http,
        &base,
        t,
        "mutation($i:SaveTariffInput!){ saveTariff(input:$i){ id } }",
        json!({"i": {"integrationId": integration, "code": "BENCH", "utility": "GAS", "cycleMonths": 12,
                     "effectiveFrom": "2020-01-01T00:00:00Z",
                     "tiers": [{"upTo": "100", "price": "2.5"}, {"upTo": "300", "price": "3"}, {"price": "4"}]}}),
    )
    .await;
    let tariff = tariff["saveTariff"]["id"].as_str().expect("tariff").to_owned();
    let mut devices = Vec::new();
    for m in 0..METERS {
        let d = gql(
            &http,
            &base,
            t,
            "mutation($i:UpsertDeviceInput!){ upsertDevice(input:$i){ id } }",
            json!({"i": {"integrationId": integration, "externalId": meter(m), "kind": "GAS_METER", "name": meter(m),
                         "attributes": {"meterType": "441", "priceCode": "BENCH", "initialReading": "0"}}}),
        )
        .await;
        let d = d["upsertDevice"]["id"].as_str().expect("device").to_owned();
        gql(
            &http,
            &base,
            t,
            "mutation($d:ID!,$t:ID!){ assignTariff(deviceId:$d, tariffId:$t){ id } }",
            json!({"d": d, "t": tariff}),
        )
        .await;
        gql(
            &http,
            &base,
            t,
            "mutation($i:RechargeMeterInput!){ rechargeMeter(input:$i){ entry{ id } } }",
            json!({"i": {"deviceId": d, "amount": "100000", "tradeNo": format!("seed-{m}")}}),
        )
        .await;
        devices.push(d);
    }

    // The setup's deliveries (registrations and price switches to the unreachable DAS) are
    // settled first: the burst measures the reports alone.
    let db = &running.state.db;
    let settle = Instant::now();
    loop {
        let open = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT COUNT(*) AS n FROM deliveries WHERE state IN ('PENDING', 'IN_FLIGHT', 'RETRYING')",
            ))
            .await
            .expect("deliveries")
            .and_then(|r| r.try_get::<i64>("", "n").ok())
            .unwrap_or(0);
        if open == 0 || settle.elapsed() > Duration::from_secs(300) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("setup deliveries settled in {:.1} s", settle.elapsed().as_secs_f64());

    // Signed up front: the burst measures the server. Report k is meter k % METERS's
    // (k / METERS + 1)th, register 0.5 m3 higher and one second later each time.
    let time = sign::time(chrono::Utc::now());
    let (token_h, auth_h) = (sign::access_token(APP_CODE, APP_SECRET, &time), sign::authorization(APP_CODE, &time));
    let start = chrono::Utc::now() - chrono::Duration::days(1);
    let bodies: Vec<String> = (0..n)
        .map(|k| {
            let (m, step) = (k % METERS, k / METERS + 1);
            let at = (start + chrono::Duration::seconds(step as i64))
                .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap());
            json!({"serialNo": uuid::Uuid::new_v4().simple().to_string(), "userNo": meter(m), "factorNo": "0013",
                   "meterNo": meter(m), "billingModel": "2", "readNum": format!("{:.1}", step as f64 * 0.5),
                   "readDate": at.format("%Y%m%d").to_string(), "readTime": at.format("%H%M%S").to_string(),
                   "batteryCap": "6.1", "semaphore": "80", "valveState": "2", "companyCode": "1000058",
                   "sdateTime": at.format("%Y-%m-%d").to_string()})
            .to_string()
        })
        .collect();
    let bodies = Arc::new(bodies);
    let target = format!("{base}/hooks/{integration}/goldcard/api/collect/meter/2001");
    let b = burst(CONNECTIONS, n, move |http, k| {
        let (body, target, token_h, auth_h) = (bodies[k].clone(), target.clone(), token_h.clone(), auth_h.clone());
        async move {
            let resp = http
                .post(&target)
                .header("content-type", "application/json;charset=utf-8")
                .header("AccessToken", &token_h)
                .header("Authorization", &auth_h)
                .body(body)
                .send()
                .await;
            match resp {
                Ok(r) => r.json::<serde_json::Value>().await.is_ok_and(|v| v["echoCode"] == "0000"),
                Err(_) => false,
            }
        }
    })
    .await;
    // Per meter: the volume charged must be its last register.
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT m.last_reading AS last, COALESCE(SUM(CAST(l.volume AS NUMERIC)), 0)::TEXT AS charged \
             FROM meter_accounts m LEFT JOIN ledger_entries l ON l.account_id = m.id AND l.kind = 'CHARGE' \
             GROUP BY m.id, m.last_reading",
        ))
        .await
        .expect("ledgers");
    let mut consistent = rows.len() == METERS;
    for r in &rows {
        let last: Option<String> = r.try_get("", "last").expect("last");
        let charged: String = r.try_get("", "charged").expect("charged");
        let (l, c): (f64, f64) = (last.unwrap_or_default().parse().unwrap_or(-1.0), charged.parse().unwrap_or(-2.0));
        if (l - c).abs() > 1e-9 {
            consistent = false;
        }
    }
    shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(devices);
    admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await.expect("drop");
    let rate = b.rate();
    println!(
        "postgres  {n} signed 2001 reports over {METERS} meters from {CONNECTIONS} connections: {} answered 0000 in {:.2} s = {rate:.0}/s, p50 {:.1} ms, p99 {:.1} ms; ledgers {}",
        b.accepted,
        b.elapsed.as_secs_f64(),
        b.pct(0.50).as_secs_f64() * 1000.0,
        b.pct(0.99).as_secs_f64() * 1000.0,
        if consistent { "add up (charged volume = last register, every meter)" } else { "DO NOT add up" }
    );
    let mut figures = Figures::new("gas_reports");
    figures.add("reports_per_s", "gas 2001 reports with billing, PostgreSQL:", rate, "/s", Target::AtLeast(2000.0), 0);
    figures.add("p99_ms", "gas 2001 reports p99", b.pct(0.99).as_secs_f64() * 1000.0, " ms", Target::Below(100.0), 1);
    figures.print();
    if !consistent || b.accepted != n {
        std::process::exit(1);
    }
}
