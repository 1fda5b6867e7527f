//! Operations surface: health, readiness, metrics, request ids, body limit, query limits,
//! GraphiQL and the subscription endpoint.

use crate::utils::spawn_app;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = spawn_app().await;
    let r = app.http.get(app.url("/healthz")).send().await.expect("healthz");
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-request-id").is_some_and(|v| !v.is_empty()));
    let r = app.http.get(app.url("/readyz")).send().await.expect("readyz");
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["database"], "ok");
    let want_redis = if std::env::var("TEST_REDIS_URL").is_ok_and(|u| !u.is_empty()) { "ok" } else { "not configured" };
    assert_eq!(body["redis"], want_redis);

    app.gql(None, "{ __typename }", json!({})).await;
    let text = app.http.get(app.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    assert!(text.contains("http_requests_total{"), "{text}");
    assert!(text.contains("route=\"/graphql\""), "{text}");
    assert!(text.contains("http_request_duration_seconds_bucket{"), "{text}");
}

#[tokio::test]
async fn a_request_id_given_by_the_client_is_kept() {
    let app = spawn_app().await;
    let r = app.http.get(app.url("/healthz")).header("x-request-id", "client-chosen-id").send().await.expect("healthz");
    assert_eq!(r.headers().get("x-request-id").and_then(|v| v.to_str().ok()), Some("client-chosen-id"));
}

#[tokio::test]
async fn bodies_over_one_mebibyte_are_refused_with_413() {
    let app = spawn_app().await;
    let big = format!("{{\"query\":\"{{ __typename }}\",\"pad\":\"{}\"}}", "x".repeat(1024 * 1024 + 10));
    let r = app
        .http
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 413);
    // The server still answers afterwards.
    let ok = app.gql(None, "{ __typename }", json!({})).await;
    assert_eq!(ok.data()["__typename"], "QueryRoot");
}

#[tokio::test]
async fn malformed_bodies_get_a_graphql_error_not_a_500() {
    let app = spawn_app().await;
    let r = app
        .http
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    let r = app.gql(None, "{ nonsense", json!({})).await;
    assert_eq!(r.code(), "BAD_USER_INPUT");
    let r = app.gql(None, "{ noSuchField }", json!({})).await;
    assert_eq!(r.code(), "BAD_USER_INPUT");
}

#[tokio::test]
async fn a_depth_50_query_is_refused_before_it_runs() {
    let app = spawn_app().await;
    // A login nested in fifty selections would change state if it ran.
    let mut q = String::from("__typename");
    for _ in 0..50 {
        q = format!("me {{ {q} }}");
    }
    let r = app.gql(None, &format!("{{ {q} }}"), json!({})).await;
    assert_eq!(r.code(), "BAD_USER_INPUT");
    assert!(r.body["data"].is_null(), "{}", r.raw);
    let msg = r.body["errors"][0]["message"].as_str().unwrap_or_default().to_lowercase();
    assert!(
        msg.contains("nested")
            || msg.contains("depth")
            || msg.contains("subselection")
            || msg.contains("unknown field"),
        "{msg}"
    );

    // tenants + 24 x (edges, node) + id: fifty levels of valid fields.
    let mut nested = String::from("id");
    for _ in 0..24 {
        nested = format!("edges {{ node {{ {nested} }} }}");
    }
    let r = app.gql(None, &format!("{{ tenants {{ {nested} }} }}"), json!({})).await;
    assert_eq!(r.code(), "BAD_USER_INPUT", "{}", r.raw);
    assert!(r.body["errors"][0]["message"].as_str().unwrap_or_default().contains("nested too deep"), "{}", r.raw);
}

#[tokio::test]
async fn graphiql_is_served_and_the_websocket_speaks_graphql_transport_ws() {
    let app = spawn_app().await;
    let page = app.http.get(app.url("/graphql")).send().await.expect("graphiql");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("html").to_lowercase().contains("graphiql"));

    let token = app.admin_token().await;
    let ws_url = app.url("/graphql/ws").replacen("http://", "ws://", 1);
    let mut req = ws_url.into_client_request().expect("request");
    req.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().expect("header"));
    let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.expect("websocket");
    assert_eq!(
        resp.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok()),
        Some("graphql-transport-ws")
    );
    ws.send(Message::Text(
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}}).to_string().into(),
    ))
    .await
    .expect("init");
    let ack = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next()).await.expect("ack in time");
    let ack: serde_json::Value = match ack {
        Some(Ok(Message::Text(t))) => serde_json::from_str(&t).expect("json"),
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(ack["type"], "connection_ack");
}

#[tokio::test]
async fn unknown_routes_answer_404_json() {
    let app = spawn_app().await;
    let r = app.http.get(app.url("/nope")).send().await.expect("get");
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn introspection_and_graphiql_follow_the_setting() {
    let app = crate::utils::spawn_app_with(|c| c.introspection = false).await;
    let r = app.gql(None, "{ __schema { queryType { name } } }", serde_json::json!({})).await;
    assert!(r.body["data"]["__schema"].is_null() && !r.raw.contains("Query"), "introspection answered: {}", r.raw);
    let page = app.http.get(app.url("/graphql")).send().await.expect("graphiql");
    assert_eq!(page.status().as_u16(), 404);
    // Ordinary queries still work.
    let root = app.admin_token().await;
    assert!(app.gql(Some(&root), "{ me { role } }", serde_json::json!({})).await.body.get("errors").is_none());
    // The default: on with SQLite, off with PostgreSQL.
    let settings = |db: &str| api::config::Settings {
        database_url: Some(db.into()),
        jwt_secret: Some("x".repeat(32)),
        secret_key: Some("0".repeat(64)),
        ..api::config::Settings::defaults(std::env::temp_dir())
    };
    let pg = api::config::Config::resolve(settings("postgres://u@127.0.0.1/db")).expect("config");
    let lite = api::config::Config::resolve(settings("sqlite::memory:")).expect("config");
    assert!(!pg.introspection && lite.introspection);
}

#[test]
fn postgres_needs_the_keys_given() {
    let settings = |jwt: Option<String>, key: Option<String>| api::config::Settings {
        database_url: Some("postgres://u@127.0.0.1/db".into()),
        jwt_secret: jwt,
        secret_key: key,
        ..api::config::Settings::defaults(std::env::temp_dir().join(format!("ly-{}", uuid::Uuid::new_v4())))
    };
    let err = api::config::Config::resolve(settings(None, Some("0".repeat(64)))).err().map(|e| e.to_string());
    assert!(err.is_some_and(|e| e.contains("LINKYARD_JWT_SECRET")));
    assert!(api::config::Config::resolve(settings(Some("x".repeat(32)), None)).is_err());
    assert!(api::config::Config::resolve(settings(Some("x".repeat(32)), Some("0".repeat(64)))).is_ok());
}

#[tokio::test]
async fn a_document_with_too_many_aliases_is_refused_before_it_runs() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let fifty: String = (0..50).map(|i| format!("a{i}: me {{ id }} ")).collect();
    let r = app.gql(Some(&root), &format!("{{ {fifty} }}"), json!({})).await;
    assert!(r.body.get("errors").is_none(), "fifty are fine: {}", r.raw);
    let many: String = (0..51).map(|i| format!("a{i}: me {{ id }} ")).collect();
    let r = app.gql(Some(&root), &format!("{{ {many} }}"), json!({})).await;
    assert_eq!(r.code(), "BAD_USER_INPUT", "{}", r.raw);
    assert!(r.body["data"].is_null(), "nothing ran: {}", r.raw);
    // Through a fragment spread many times.
    let spreads: String = (0..30).map(|i| format!("x{i}: me {{ ...F }} ")).collect();
    let q = format!("{{ {spreads} }} fragment F on User {{ a: id b: email }}");
    assert_eq!(app.gql(Some(&root), &q, json!({})).await.code(), "BAD_USER_INPUT");
}

#[tokio::test]
async fn metrics_ask_for_the_token_when_one_is_set() {
    let app = crate::utils::spawn_app_with(|c| {
        c.metrics_token = Some(secrecy::SecretString::from("scrape-token-Kd83".to_owned()));
    })
    .await;
    let r = app.http.get(app.url("/metrics")).send().await.expect("metrics");
    assert_eq!(r.status().as_u16(), 401);
    let r = app.http.get(app.url("/metrics")).bearer_auth("wrong").send().await.expect("metrics");
    assert_eq!(r.status().as_u16(), 401);
    let r = app.http.get(app.url("/metrics")).bearer_auth("scrape-token-Kd83").send().await.expect("metrics");
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().await.expect("text").contains("http_requests_total"));
}

/// A table that grows faster than autovacuum analyses it is analysed by the server within
/// seconds (its planner statistics count its rows); a table with few changes is left to
/// autovacuum. Autovacuum is off for both tables, so only the server's keeper analyses
/// them. On SQLite there is nothing to do.
#[tokio::test]
async fn tables_that_outgrow_their_statistics_are_analysed() {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let app = spawn_app().await;
    let db = &app.state.db;
    if db.get_database_backend() != DbBackend::Postgres {
        let analysed = adapters::db::statistics::analyse_stale(db, 1).await.expect("sqlite");
        assert!(analysed.is_empty(), "{analysed:?}");
        return;
    }
    for (table, rows) in [("stats_grown", 5_000), ("stats_small", 20)] {
        db.execute_unprepared(&format!(
            "CREATE TABLE {table} (n int PRIMARY KEY) WITH (autovacuum_enabled = false); \
             INSERT INTO {table} SELECT generate_series(1, {rows})"
        ))
        .await
        .expect("table");
    }
    let analyses = |table: &'static str| {
        let db = db.clone();
        async move {
            let row = db
                .query_one_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT s.analyze_count AS n, c.reltuples::int8 AS rows FROM pg_stat_user_tables s \
                     JOIN pg_class c ON c.oid = s.relid WHERE s.relname = $1",
                    [table.into()],
                ))
                .await
                .expect("stats")
                .expect("row");
            (row.try_get::<i64>("", "n").expect("n"), row.try_get::<i64>("", "rows").expect("rows"))
        }
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (n, rows) = analyses("stats_grown").await;
        if n > 0 {
            assert_eq!(rows, 5_000, "the analysis counted the table's rows");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "stats_grown not analysed within 20 s");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(analyses("stats_small").await.0, 0, "20 changed rows are left to autovacuum");
    // Analysed, the table is not stale any more until it changes by as many rows again.
    let again = adapters::db::statistics::analyse_stale(db, 1_000).await.expect("analyse");
    assert!(!again.iter().any(|t| t.contains("stats_grown")), "{again:?}");
    db.execute_unprepared("INSERT INTO stats_grown SELECT generate_series(5001, 11000)").await.expect("grow");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while analyses("stats_grown").await.1 != 11_000 {
        assert!(std::time::Instant::now() < deadline, "stats_grown not analysed again after growing by 120 %");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
