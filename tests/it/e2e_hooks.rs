//! Hook hardening (issue 17): the Dingding hook token (`CONTRACT.md`, "HTTP surface"), the
//! per-address limit on failed authentications under `/hooks`, and the whole-request
//! timeout.

use crate::e2e_dingding::{now_ms, setup};
use crate::utils::{
    ShiftedClock, TestApp, USER_PASSWORD, hook_path, logs, spawn_app, spawn_app_with, tenant_with_admin, unique,
};
use adapters::vendors::dingding::sign;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const ROTATE: &str = "mutation($id:ID!){ rotateIntegrationSecret(id:$id){ field secret integration { hookUrl } } }";
const HOOK_URL: &str = "query($id:ID!){ integration(id:$id){ hookUrl } }";

fn dingding(name: &str) -> Value {
    json!({"kind": "DINGDING", "name": name, "settings": {"baseUrl": "http://127.0.0.1:9"},
           "credentials": {"clientId": "c", "clientSecret": "s"}})
}

fn battery(uuid: &str) -> Value {
    json!({"event": "batteryAlarm", "time": now_ms(), "uuid": uuid, "home_id": "h1", "detail": {"battery_level": 9}})
}

/// `body` with the sign Dingding computes for `url`: an MD5 anyone who knows the URL can.
fn signed_for(url: &str, body: &Value) -> String {
    let mut signed = body.clone();
    signed["sign"] = json!(sign::callback_sign(url, &body.to_string()).expect("sign"));
    signed.to_string()
}

/// Posts `raw` to the path of `url`; answers status and body.
async fn post(app: &TestApp, url: &str, raw: String) -> (u16, Value) {
    let resp = app
        .http
        .post(app.url(&hook_path(url)))
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .await
        .expect("post");
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

/// A callback of `uuid` signed for `url` and sent there; answers the status.
async fn callback(app: &TestApp, url: &str, uuid: &str) -> u16 {
    let (status, answer) = post(app, url, signed_for(url, &battery(uuid))).await;
    assert!(status == 200 || answer["ErrNo"].is_i64(), "Dingding's envelope: {answer}");
    status
}

fn token_of(hook_url: &str) -> &str {
    hook_url.rsplit('/').next().expect("a token")
}

#[tokio::test]
async fn a_forged_dingding_callback_without_the_hook_token_is_refused_and_nothing_is_stored() {
    let s = setup().await;
    let lock = s.device("lock-forged", "LOCK", json!({})).await;
    let body = battery("lock-forged");
    let token = token_of(&s.hook_url);
    let bare = format!("https://linkyard.test/hooks/{}/dingding", s.integration);
    let last = if token.ends_with('A') { 'B' } else { 'A' };
    let forged = [
        bare.clone(),
        format!("{bare}/"),
        format!("{bare}/{}", "A".repeat(32)),
        format!("{bare}/{}{last}", &token[..token.len() - 1]),
        format!("{bare}/{token}/more"),
    ];
    // Each signed correctly over the URL it is sent to.
    for url in &forged {
        let (status, answer) = post(&s.app, url, signed_for(url, &body)).await;
        assert!(matches!(status, 401 | 404), "{url}: {status} {answer}");
        if status == 401 {
            assert_eq!(answer["ErrNo"], 15014, "Dingding's envelope: {answer}");
        }
    }
    assert!(s.inbound().await.is_empty(), "nothing stored");
    assert!(s.alarms(&lock).await.is_empty(), "nothing processed");
    // The same callback on the URL as registered is taken, once.
    let (status, answer) = post(&s.app, &s.hook_url, signed_for(&s.hook_url, &body)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(s.inbound().await.len(), 1);
    // A sign over the URL without the token does not pass on the URL with it.
    let (status, _) = post(&s.app, &s.hook_url, signed_for(&bare, &battery("lock-forged"))).await;
    assert_eq!(status, 401);
    assert!(!logs::captured().contains(token), "the hook token is never logged");
}

#[tokio::test]
async fn only_administrators_see_the_dingding_hook_url() {
    let s = setup().await;
    let platform = s.app.admin_token().await;
    let token = token_of(&s.hook_url).to_owned();
    let q =
        "query($id:ID!){ integration(id:$id){ hookUrl telemetryUrl } integrations { edges { node { id hookUrl } } } }";
    for role in ["VIEWER", "OPERATOR"] {
        let email = format!("{}-{}@{}.example.com", role.to_lowercase(), unique(), s.tenant.slug);
        s.app.create_user(&platform, &s.tenant.id, &email, USER_PASSWORD, role).await;
        let user = s.app.login(&email, USER_PASSWORD).await;
        let r = s.app.gql(Some(&user), q, json!({"id": s.integration})).await;
        assert!(r.data()["integration"]["hookUrl"].is_null(), "{role}: {}", r.raw);
        assert!(r.data()["integration"]["telemetryUrl"].is_string(), "{role}: {}", r.raw);
        assert!(r.data()["integrations"]["edges"][0]["node"]["hookUrl"].is_null(), "{role}: {}", r.raw);
        assert!(!r.raw.contains(&token), "{role} never sees the token");
    }
    let r = s.gql(q, json!({"id": s.integration})).await;
    assert_eq!(r.data()["integration"]["hookUrl"], json!(s.hook_url), "the tenant admin sees it");
    assert_eq!(r.data()["integrations"]["edges"][0]["node"]["hookUrl"], json!(s.hook_url));
}

#[tokio::test]
async fn a_rotated_hook_token_keeps_working_for_24_hours_then_is_refused() {
    let clock = Arc::new(ShiftedClock::default());
    let app_clock = clock.clone();
    let app = spawn_app_with(move |c| c.clock = api::config::AppClock(app_clock)).await;
    let platform = app.admin_token().await;
    let t = tenant_with_admin(&app, &platform).await;
    let i = t.api.integration(dingding("dd")).await;
    t.api.device(&i.id, "lock-r", "LOCK", "lock", json!({})).await;
    let old = i.hook_url;
    assert_eq!(callback(&app, &old, "lock-r").await, 200);

    let r = t.api.gql(ROTATE, json!({"id": i.id})).await;
    let d = &r.data()["rotateIntegrationSecret"];
    assert_eq!(d["field"], "hookSecret", "the inbound secret is rotated as before");
    let new = d["integration"]["hookUrl"].as_str().expect("hookUrl").to_owned();
    assert_ne!(new, old);
    assert_ne!(token_of(&new), token_of(&old));
    let shown = t.api.gql(HOOK_URL, json!({"id": i.id})).await;
    assert_eq!(shown.data()["integration"]["hookUrl"], json!(new), "the admin sees the new URL from now on");

    assert_eq!(callback(&app, &old, "lock-r").await, 200, "the old token works on");
    assert_eq!(callback(&app, &new, "lock-r").await, 200);
    clock.advance(chrono::Duration::hours(24) - chrono::Duration::minutes(1));
    assert_eq!(callback(&app, &old, "lock-r").await, 200, "a minute before its 24 hours are over");
    clock.advance(chrono::Duration::minutes(2));
    let before = t.api.inbound_events(&i.id).await.len();
    let (status, answer) = post(&app, &old, signed_for(&old, &battery("lock-r"))).await;
    assert_eq!((status, answer["ErrNo"].as_i64()), (401, Some(15014)), "{answer}");
    assert_eq!(t.api.inbound_events(&i.id).await.len(), before, "nothing stored");
    assert_eq!(callback(&app, &new, "lock-r").await, 200, "the new token works");
}

#[tokio::test]
async fn another_tenant_cannot_rotate_a_hook_token() {
    let s = setup().await;
    let platform = s.app.admin_token().await;
    let other = tenant_with_admin(&s.app, &platform).await;
    let r = other.api.gql(ROTATE, json!({"id": s.integration})).await;
    assert_eq!(r.code(), "NOT_FOUND", "{}", r.raw);
    let email = format!("op-{}@{}.example.com", unique(), s.tenant.slug);
    s.app.create_user(&platform, &s.tenant.id, &email, USER_PASSWORD, "OPERATOR").await;
    let operator = s.app.login(&email, USER_PASSWORD).await;
    let r = s.app.gql(Some(&operator), ROTATE, json!({"id": s.integration})).await;
    assert_eq!(r.code(), "FORBIDDEN", "{}", r.raw);
    let shown = s.gql(HOOK_URL, json!({"id": s.integration})).await;
    assert_eq!(shown.data()["integration"]["hookUrl"], json!(s.hook_url), "unchanged");
    s.device("lock-kept", "LOCK", json!({})).await;
    assert_eq!(callback(&s.app, &s.hook_url, "lock-kept").await, 200);
}

#[tokio::test]
async fn an_address_that_keeps_failing_to_authenticate_is_refused_before_any_lookup() {
    let app = spawn_app_with(|c| c.hook_failures_per_minute = 3).await;
    let platform = app.admin_token().await;
    let t = tenant_with_admin(&app, &platform).await;
    let i = t.api.integration(dingding("dd")).await;
    t.api.device(&i.id, "lock-t", "LOCK", "lock", json!({})).await;
    let key = t.api.create_api_key(&i.id).await;
    // Authenticated requests are not counted: more than the limit pass.
    for _ in 0..6 {
        assert_eq!(callback(&app, &i.hook_url, "lock-t").await, 200);
    }
    let stored = t.api.inbound_events(&i.id).await.len();
    // Three failures: a wrong hook token, an unknown integration, a wrong sign.
    let token = token_of(&i.hook_url);
    let wrong = format!("https://linkyard.test/hooks/{}/dingding/{}", i.id, "x".repeat(32));
    assert_eq!(callback(&app, &wrong, "lock-t").await, 401);
    let unknown = format!("https://linkyard.test/hooks/{}/dingding/{token}", uuid::Uuid::new_v4());
    assert_eq!(callback(&app, &unknown, "lock-t").await, 404);
    let mut bad_sign = battery("lock-t");
    bad_sign["sign"] = json!("0".repeat(32));
    assert_eq!(post(&app, &i.hook_url, bad_sign.to_string()).await.0, 401);
    // Now even a valid callback from the address is refused, in Dingding's envelope.
    let (status, answer) = post(&app, &i.hook_url, signed_for(&i.hook_url, &battery("lock-t"))).await;
    assert_eq!((status, answer["ErrNo"].as_i64()), (429, Some(15029)), "{answer}");
    assert_eq!(t.api.inbound_events(&i.id).await.len(), stored, "nothing stored");
    // Every protocol, in its own envelope.
    let resp = app
        .http
        .post(app.url(&format!("/hooks/{}/telemetry", i.id)))
        .header("x-api-key", key)
        .body(r#"{"readings": []}"#)
        .send()
        .await
        .expect("telemetry");
    assert_eq!(resp.status().as_u16(), 429);
    assert!(resp.json::<Value>().await.expect("JSON")["error"].is_string());
}

#[tokio::test]
async fn the_migration_gives_existing_dingding_integrations_a_hook_token() {
    use migration::{Migrator, MigratorTrait};
    use sea_orm::{ConnectionTrait, Statement};
    let app = spawn_app().await;
    let platform = app.admin_token().await;
    let t = tenant_with_admin(&app, &platform).await;
    let dd = t.api.integration(dingding("dd")).await;
    t.api.device(&dd.id, "lock-m", "LOCK", "lock", json!({})).await;
    let etc =
        t.api.integration(json!({"kind": "ETC_GANTRY", "name": "e", "credentials": {"authCode": "123456"}})).await;
    let db = sea_orm::Database::connect(&app.database_url).await.expect("db");
    // As before the change: integrations without hook tokens.
    let names: Vec<String> = Migrator::migrations().iter().map(|m| m.name().to_owned()).collect();
    let at = names.iter().position(|n| n.ends_with("_hook_tokens")).expect("the hook-token migration");
    let back = u32::try_from(names.len() - at).expect("few migrations");
    Migrator::down(&db, Some(back)).await.expect("down");
    Migrator::up(&db, None).await.expect("up");
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), "SELECT kind, hook_seed FROM integrations"))
        .await
        .expect("integrations");
    let seeds: Vec<(String, Option<String>)> = rows
        .iter()
        .map(|r| (r.try_get("", "kind").expect("kind"), r.try_get("", "hook_seed").expect("hook_seed")))
        .collect();
    assert_eq!(seeds.len(), 2);
    for (kind, seed) in &seeds {
        assert_eq!(seed.is_some(), kind == "DINGDING", "{kind}: {seed:?}");
    }
    let url = t.api.gql(HOOK_URL, json!({"id": dd.id})).await.data()["integration"]["hookUrl"]
        .as_str()
        .expect("a hook URL")
        .to_owned();
    assert!(url.starts_with(&format!("https://linkyard.test/hooks/{}/dingding/", dd.id)), "{url}");
    assert_ne!(url, dd.hook_url, "a new token");
    assert_eq!(callback(&app, &url, "lock-m").await, 200);
    let shown = t.api.gql(HOOK_URL, json!({"id": etc.id})).await;
    assert_eq!(shown.data()["integration"]["hookUrl"], json!(etc.hook_url), "other kinds unchanged");
}

#[tokio::test]
async fn a_request_outlasting_the_timeout_is_answered_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(|c| c.request_timeout = Duration::from_millis(300)).await;
    let addr = app.base.strip_prefix("http://").expect("http base");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    // A body announced, begun, and never finished.
    let head =
        "POST /graphql HTTP/1.1\r\nHost: linkyard\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
    stream.write_all(format!("{head}{{\"query\":").as_bytes()).await.expect("write");
    let read = async {
        let mut answer = Vec::new();
        let mut chunk = [0u8; 1024];
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "closed without an answer: {}", String::from_utf8_lossy(&answer));
            answer.extend_from_slice(&chunk[..n]);
        }
        String::from_utf8_lossy(&answer).into_owned()
    };
    // A bound so a regression fails instead of hanging; the server answers long before.
    let answer = tokio::time::timeout(Duration::from_secs(60), read).await.expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    // The server goes on serving.
    let health = app.http.get(app.url("/healthz")).send().await.expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
}
