//! Latency of the hot read paths with production-sized tables, on PostgreSQL.
//!
//! Seeds a fresh database with one tenant, 100 devices, 1,000,000 readings and 100,000
//! alarms (a third in each state), then times, over HTTP against the real server:
//! `alarms(filter: {state: RAISED})` (first page with `totalCount`) and
//! `device(id) { readings(last: 100) }`. Target: median under 20 ms. Prints the query plans
//! so a missing index shows as a sequential scan.
//!
//! `BENCH_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`) must allow
//! `CREATE DATABASE`; the bench database is dropped at the end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

use api::config::{Config, Settings};
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const READINGS: i64 = 1_000_000;
const ALARMS: i64 = 100_000;
const DEVICES: usize = 100;
const RUNS: usize = 300;

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut req =
            self.http.post(format!("{}/graphql", self.base)).json(&json!({"query": query, "variables": variables}));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let body: Value = req.send().await.expect("request").json().await.expect("json");
        assert!(body.get("errors").is_none(), "errors: {body}");
        body["data"].clone()
    }
}

fn stats(name: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = pct(0.5);
    println!(
        "{name:<48} n={:<4} median {:>7.2} ms   p95 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms",
        samples.len(),
        ms(median),
        ms(pct(0.95)),
        ms(pct(0.99)),
        ms(pct(1.0))
    );
    median
}

async fn time(client: &Client, token: &str, query: &str, vars: Value) -> Vec<Duration> {
    for _ in 0..20 {
        client.gql(Some(token), query, vars.clone()).await;
    }
    let mut out = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let t = Instant::now();
        client.gql(Some(token), query, vars.clone()).await;
        out.push(t.elapsed());
    }
    out
}

#[tokio::main]
async fn main() {
    linkyard_tests::bench_logs();
    let admin_url =
        std::env::var("BENCH_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let name = format!("linkyard_bench_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let admin = Database::connect(&admin_url).await.expect("BENCH_DATABASE_URL reachable");
    admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await.expect("create database");
    let (base, _) = admin_url.rsplit_once('/').expect("URL with a database");
    let url = format!("{base}/{name}");
    let result = run(&url).await;
    admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await.expect("drop");
    if let Err(failed) = result {
        eprintln!("{failed}");
        std::process::exit(1);
    }
}

async fn run(url: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = Settings {
        addr: "127.0.0.1:0".into(),
        database_url: Some(url.to_owned()),
        admin_email: Some("bench-admin@example.com".into()),
        admin_password: Some("bench-admin-password-1!".into()),
        job_queue: "linkyard-bench".into(),
        jwt_secret: Some("bench-jwt-secret-0123456789abcdef0123456789".into()),
        secret_key: Some("00".repeat(32)),
        ..Settings::defaults(dir.path().to_path_buf())
    };
    let config = Config::resolve(settings).expect("config");
    let shutdown = CancellationToken::new();
    let running = api::app::start(config, shutdown.clone()).await.expect("server starts");
    let client = Client { http: reqwest::Client::new(), base: format!("http://{}", running.addr) };

    let login = "mutation($e:String!,$p:String!){ login(email:$e, password:$p){ token } }";
    let root = client.gql(None, login, json!({"e": "bench-admin@example.com", "p": "bench-admin-password-1!"})).await;
    let root = root["login"]["token"].as_str().unwrap().to_owned();
    let tenant = client
        .gql(Some(&root), "mutation{ createTenant(input:{slug:\"bench\", name:\"Bench\"}){ id } }", json!({}))
        .await;
    let tenant_id = tenant["createTenant"]["id"].as_str().unwrap().to_owned();
    client
        .gql(
            Some(&root),
            "mutation($t:ID!){ createUser(input:{tenantId:$t, email:\"ops@bench.example.com\", password:\"bench-ops-password-1!\", role:TENANT_ADMIN}){ id } }",
            json!({"t": tenant_id}),
        )
        .await;
    let token = client.gql(None, login, json!({"e": "ops@bench.example.com", "p": "bench-ops-password-1!"})).await;
    let token = token["login"]["token"].as_str().unwrap().to_owned();
    let integ = client
        .gql(
            Some(&token),
            "mutation{ configureIntegration(input:{kind:DINGDING, name:\"dd\", settings:{baseUrl:\"https://openapi.example.com\"}, credentials:{clientId:\"c\", clientSecret:\"s\"}}){ id } }",
            json!({}),
        )
        .await;
    let integ = integ["configureIntegration"]["id"].as_str().unwrap().to_owned();
    let mut devices = Vec::new();
    for i in 0..DEVICES {
        let d = client
            .gql(
                Some(&token),
                "mutation($i:UpsertDeviceInput!){ upsertDevice(input:$i){ id } }",
                json!({"i": {"integrationId": integ, "externalId": format!("E{i:05}"), "kind": "ELEVATOR", "name": format!("lift {i}")}}),
            )
            .await;
        devices.push(d["upsertDevice"]["id"].as_str().unwrap().to_owned());
    }

    let db = Database::connect(url).await.expect("bench database");
    let seed = Instant::now();
    let exec = |sql: String| {
        let db = &db;
        async move { db.execute_raw(Statement::from_string(DbBackend::Postgres, sql)).await.expect("seed statement") }
    };
    exec(format!(
        "INSERT INTO readings (id, tenant_id, device_id, metric, value, ts)
         SELECT gen_random_uuid(), '{tenant_id}', d.ids[1 + (i % {DEVICES})],
                CASE WHEN i % 3 = 0 THEN 'speed' WHEN i % 3 = 1 THEN 'car_position' ELSE 'door_status' END,
                to_jsonb(i % 97), now() - make_interval(secs => i)
         FROM generate_series(1, {READINGS}) AS i,
              (SELECT array_agg(id) AS ids FROM devices WHERE tenant_id = '{tenant_id}') AS d"
    ))
    .await;
    exec(format!(
        "INSERT INTO alarms (id, tenant_id, device_id, integration_id, kind, severity, state, message, occurrences,
                             raised_at, last_seen_at, attributes, open_key, updated_at)
         SELECT gen_random_uuid(), '{tenant_id}', d.ids[1 + (i % {DEVICES})], '{integ}',
                'BENCH_' || (i % 50), (ARRAY['CRITICAL','MAJOR','MINOR','WARNING','INFO'])[1 + i % 5],
                (ARRAY['RAISED','ACKNOWLEDGED','CLEARED'])[1 + i % 3], 'seeded', 1,
                now() - make_interval(secs => i), now() - make_interval(secs => i), '{{}}'::jsonb,
                CASE WHEN i % 3 = 2 THEN NULL ELSE 'bench:' || i END, now()
         FROM generate_series(1, {ALARMS}) AS i,
              (SELECT array_agg(id) AS ids FROM devices WHERE tenant_id = '{tenant_id}') AS d"
    ))
    .await;
    db.execute_unprepared("VACUUM ANALYZE readings").await.expect("vacuum");
    db.execute_unprepared("VACUUM ANALYZE alarms").await.expect("vacuum");
    println!("seeded {READINGS} readings and {ALARMS} alarms in {:.1} s", seed.elapsed().as_secs_f64());

    for (label, sql) in [
        (
            "plan: alarms RAISED first page",
            format!(
                "EXPLAIN SELECT * FROM alarms WHERE tenant_id = '{tenant_id}' AND state = 'RAISED' ORDER BY id DESC LIMIT 51"
            ),
        ),
        (
            "plan: alarms RAISED count",
            format!("EXPLAIN SELECT count(*) FROM alarms WHERE tenant_id = '{tenant_id}' AND state = 'RAISED'"),
        ),
        (
            "plan: readings last 100",
            format!(
                "EXPLAIN SELECT * FROM readings WHERE tenant_id = '{tenant_id}' AND device_id = '{}' ORDER BY ts DESC LIMIT 100",
                devices[0]
            ),
        ),
    ] {
        println!("{label}:");
        for row in db.query_all_raw(Statement::from_string(DbBackend::Postgres, sql)).await.expect("explain") {
            let line: String = row.try_get_by_index(0).expect("plan line");
            println!("    {line}");
        }
    }

    let alarms_q = "{ alarms(filter:{state:RAISED}){ totalCount pageInfo{ hasNextPage endCursor } edges{ node{ id kind severity state raisedAt occurrences } } } }";
    let a = client.gql(Some(&token), alarms_q, json!({})).await;
    let raised = a["alarms"]["totalCount"].as_i64().unwrap_or_default();
    assert_eq!(raised, ALARMS / 3, "RAISED count: the seeds with i % 3 == 0");
    let readings_q = "query($id:ID!){ device(id:$id){ id name readings(last:100){ metric value ts } } }";
    let r = client.gql(Some(&token), readings_q, json!({"id": devices[0]})).await;
    assert_eq!(r["device"]["readings"].as_array().map(Vec::len), Some(100));

    println!("latency over HTTP (client-side, includes HTTP and JSON; {RUNS} runs after 20 warm-up):");
    let m1 = stats("alarms(filter:{state:RAISED}) first page", time(&client, &token, alarms_q, json!({})).await);
    let m2 =
        stats("device(id){ readings(last:100) }", time(&client, &token, readings_q, json!({"id": devices[0]})).await);
    let m3 = stats(
        "device(id){ readings(last:100, metric:\"speed\") }",
        time(
            &client,
            &token,
            "query($id:ID!){ device(id:$id){ readings(last:100, metric:\"speed\"){ value ts } } }",
            json!({"id": devices[1]}),
        )
        .await,
    );
    shutdown.cancel();
    let target = Duration::from_millis(20);
    let over: Vec<_> = [("alarms", m1), ("readings", m2), ("readings by metric", m3)]
        .into_iter()
        .filter(|(_, m)| *m >= target)
        .map(|(n, m)| format!("{n}: {:.2} ms", m.as_secs_f64() * 1000.0))
        .collect();
    if over.is_empty() { Ok(()) } else { Err(format!("median over 20 ms: {}", over.join(", "))) }
}
