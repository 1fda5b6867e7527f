//! Dingding callback burst: `BENCH_CALLBACKS` (default 20,000) signed callbacks from 64
//! concurrent connections to `POST /hooks/{id}/dingding/{hook_token}`, plus every 10th sent again (a
//! Dingding retry), on PostgreSQL and on SQLite.
//!
//! Prints, per database: accepted callbacks per second, p50/p99 latency, whether each was
//! stored exactly once (one inbound event per distinct callback, repeats included), and
//! the time until all are processed. On PostgreSQL it then measures PostgreSQL's own
//! single-row insert rate of the same rows from as many clients (`pg_insert_rate`) and
//! prints our accepted rate as a fraction of it. At the end, issue 19's figures (medians
//! over `BENCH_RUNS` runs, default 1) next to their targets on a 2-core machine: PostgreSQL
//! accepted >= 8,000/s with p99 < 30 ms, all processed within 5 s (>= 4,000/s); SQLite
//! accepted >= 1,000/s; and one `BENCH dingding_callbacks <figure>=<value>` line each.
//!
//! `BENCH_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test?sslmode=disable`, must allow
//! `CREATE DATABASE`), `BENCH_REDIS_URL` (unset: in-process job storage and caches),
//! `BENCH_DATABASES` (default `postgres,sqlite`), `BENCH_RUNS`. Bench databases are dropped at the end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

use linkyard_tests::{
    BenchTenant, Figures, Target, bench_database, bench_server, bench_tenant, dingding_burst, send_dingding_burst,
};
use sea_orm::{ConnectionTrait, Statement};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// PostgreSQL's own single-row inserts of the same rows per second (PostgreSQL only).
    pg_inserts: Option<f64>,
    /// Statements the server's pool ran from the first callback until all were processed
    /// (the drain's own counting queries included).
    statements: u64,
    integration: String,
}

/// PostgreSQL's own rate for our inbound-event row: the rows the burst stored, each
/// inserted again as one autocommitted `INSERT ... ON CONFLICT (integration_id, dedup_key)
/// DO NOTHING` from `CONNECTIONS` clients, into a scratch copy of the table
/// (`LIKE inbound_events INCLUDING ALL`: its columns, defaults, checks and indexes; no
/// foreign key and no row security, so this is the bare insert cost). Every 10th row is
/// inserted twice, as the burst's repeats were sent, so the count is the burst's.
async fn pg_insert_rate(url: &str, integration: &str) -> (f64, usize) {
    let mut opts = sea_orm::ConnectOptions::new(url.to_owned());
    opts.max_connections(CONNECTIONS as u32).min_connections(CONNECTIONS as u32).sqlx_logging(false);
    let db = sea_orm::Database::connect(opts).await.expect("scratch pool");
    let pg = sea_orm::DbBackend::Postgres;
    db.execute_unprepared("DROP TABLE IF EXISTS bench_inbound_events_scratch").await.expect("drop scratch");
    db.execute_unprepared("CREATE TABLE bench_inbound_events_scratch (LIKE inbound_events INCLUDING ALL)")
        .await
        .expect("create scratch");
    let cols = db
        .query_all_raw(Statement::from_string(
            pg,
            "SELECT column_name::text AS c, udt_name::text AS t FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = 'inbound_events' ORDER BY ordinal_position",
        ))
        .await
        .expect("columns");
    let cols: Vec<(String, String)> =
        cols.iter().map(|r| (r.try_get("", "c").expect("c"), r.try_get("", "t").expect("t"))).collect();
    let select = cols.iter().enumerate().map(|(k, (c, _))| format!("\"{c}\"::text AS c{k}")).collect::<Vec<_>>();
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            pg,
            format!("SELECT {} FROM inbound_events WHERE integration_id = $1 ORDER BY id", select.join(", ")),
            [sea_orm::Value::from(uuid::Uuid::parse_str(integration).unwrap())],
        ))
        .await
        .expect("stored rows");
    let mut values: Vec<Vec<Option<String>>> = rows
        .iter()
        .map(|r| (0..cols.len()).map(|k| r.try_get::<Option<String>>("", &format!("c{k}")).expect("column")).collect())
        .collect();
    let repeats: Vec<_> = values.iter().step_by(10).cloned().collect();
    values.extend(repeats);
    let insert = format!(
        "INSERT INTO bench_inbound_events_scratch ({}) VALUES ({}) ON CONFLICT (integration_id, dedup_key) DO NOTHING",
        cols.iter().map(|(c, _)| format!("\"{c}\"")).collect::<Vec<_>>().join(", "),
        cols.iter().enumerate().map(|(k, (_, t))| format!("${}::{t}", k + 1)).collect::<Vec<_>>().join(", ")
    );
    // Every connection open and the statement prepared on each before the clock starts.
    let warm: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move { db.execute_unprepared("SELECT 1").await.expect("warm") })
        })
        .collect();
    for w in warm {
        w.await.unwrap();
    }
    let (values, insert, next) = (Arc::new(values), Arc::new(insert), Arc::new(std::sync::atomic::AtomicUsize::new(0)));
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (db, values, insert, next) = (db.clone(), values.clone(), insert.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(row) = values.get(k) else { return };
                    let params = row.iter().map(|v| sea_orm::Value::String(v.clone()));
                    db.execute_raw(Statement::from_sql_and_values(pg, insert.as_str(), params)).await.expect("insert");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let rate = values.len() as f64 / started.elapsed().as_secs_f64();
    let copied = db
        .query_one_raw(Statement::from_string(pg, "SELECT COUNT(*) AS n FROM bench_inbound_events_scratch"))
        .await
        .expect("count")
        .expect("row");
    let copied: i64 = copied.try_get("", "n").expect("n");
    assert_eq!(copied as usize, rows.len(), "the scratch table holds each stored row once");
    db.execute_unprepared("DROP TABLE bench_inbound_events_scratch").await.expect("drop scratch");
    db.close().await.expect("close");
    (rate, values.len())
}

async fn run(label: &str, url: &str, redis: Option<String>, n: usize) -> Report {
    let server = bench_server(url, redis).await;
    let (running, base, shutdown) = (&server.running, server.base.clone(), server.shutdown.clone());
    let http = reqwest::Client::builder().pool_max_idle_per_host(CONNECTIONS).build().expect("client");
    let BenchTenant { token, .. } = bench_tenant(&http, &base).await;
    let burst_of = dingding_burst(&http, &base, &token, n).await;
    let integration = burst_of.integration.clone();
    let sent = burst_of.bodies.len();
    let statements_before = running.state.db_statements.load(std::sync::atomic::Ordering::Relaxed);
    let b = send_dingding_burst(CONNECTIONS, burst_of).await;
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
    let statements = running.state.db_statements.load(std::sync::atomic::Ordering::Relaxed) - statements_before;
    shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = running.state.db.clone().close().await;
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
        statements,
        integration,
        pg_inserts: None,
    }
}

/// The median of `values` (the upper one of an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or_default()
}

#[tokio::main]
async fn main() {
    linkyard_tests::bench_logs();
    let redis = std::env::var("BENCH_REDIS_URL").ok().filter(|u| !u.is_empty());
    let n: usize = std::env::var("BENCH_CALLBACKS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(1).max(1);
    let which = std::env::var("BENCH_DATABASES").unwrap_or_else(|_| "postgres,sqlite".into());
    let mut reports = Vec::new();
    for label in which.split(',').map(str::trim) {
        for _ in 0..runs {
            match label {
                "postgres" => {
                    let (url, name, admin) = bench_database().await;
                    let mut report = run(label, &url, redis.clone(), n).await;
                    // The server's pools closed first: PostgreSQL's connections are few.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    let (rate, count) = pg_insert_rate(&url, &report.integration).await;
                    println!("postgres: PostgreSQL's own single-row inserts of the same {count} rows: {rate:.0}/s");
                    report.pg_inserts = Some(rate);
                    reports.push(report);
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
        println!(
            "          all processed {:.2} s after the first callback; {} database statements = {:.2} per distinct callback",
            r.drain.as_secs_f64(),
            r.statements,
            r.statements as f64 / r.unique as f64
        );
        if !once || r.accepted != r.sent {
            ok = false;
        }
    }
    // Issue 19's figures, medians over the runs of each database.
    let mut figures = Figures::new("dingding_callbacks");
    for label in which.split(',').map(str::trim) {
        let of: Vec<&Report> = reports.iter().filter(|r| r.label == label).collect();
        let m = |f: &dyn Fn(&Report) -> f64| median(of.iter().map(|r| f(r)).collect());
        let accepted = m(&|r| r.accepted as f64 / r.elapsed.as_secs_f64());
        let p99 = m(&|r| r.p99.as_secs_f64() * 1000.0);
        let drain = m(&|r| r.drain.as_secs_f64());
        let processed = m(&|r| r.unique as f64 / r.drain.as_secs_f64());
        let what = format!("{label} (median of {}):", of.len());
        let pg = label == "postgres";
        let target = |on_pg: Target, other: Target| if pg { on_pg } else { other };
        figures.add(
            &format!("{label}_accepted_per_s"),
            &format!("{what} accepted"),
            accepted,
            "/s",
            target(Target::AtLeast(8000.0), Target::AtLeast(1000.0)),
            0,
        );
        figures.add(
            &format!("{label}_p99_ms"),
            &format!("{what} p99"),
            p99,
            " ms",
            target(Target::Below(30.0), Target::None),
            1,
        );
        figures.add(
            &format!("{label}_all_processed_s"),
            &format!("{what} all processed after the first callback in"),
            drain,
            " s",
            target(Target::AtMost(5.0), Target::None),
            2,
        );
        figures.add(
            &format!("{label}_processed_per_s"),
            &format!("{what} processed"),
            processed,
            "/s",
            target(Target::AtLeast(4000.0), Target::None),
            0,
        );
        if pg {
            let own = m(&|r| r.pg_inserts.unwrap_or_default());
            figures.add(
                "postgres_own_insert_per_s",
                &format!("{what} PostgreSQL's own single-row insert of the inbound-event row, {CONNECTIONS} clients,"),
                own,
                "/s",
                Target::None,
                0,
            );
            figures.add(
                "postgres_accepted_to_own_insert_ratio",
                &format!("{what} accepted as a fraction of PostgreSQL's own insert rate:"),
                m(&|r| r.accepted as f64 / r.elapsed.as_secs_f64() / r.pg_inserts.unwrap_or(f64::NAN)),
                "x",
                Target::None,
                2,
            );
        }
    }
    figures.print();
    if !ok {
        std::process::exit(1);
    }
}
