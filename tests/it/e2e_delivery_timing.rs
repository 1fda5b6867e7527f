//! Delivery timing (issue 18, CONTRACT.md "Outbound delivery"): the default retry schedule
//! (first retry within 5 s of a failure, each wait at most double, capped at 1 h, DEAD only
//! after 24 h), its per-integration override, and crash resume: a delivery in flight when
//! its process is killed is taken up within 20 s of the restart, once, while a live
//! instance's delivery is never taken. Each test runs on the storage the harness picks:
//! SQLite, PostgreSQL (`TEST_DATABASE_URL`), Redis job storage (`TEST_REDIS_URL`).

use crate::utils::child::Child;
use crate::utils::fake::Answer;
use crate::utils::fake::webhook::FakeWebhook;
use crate::utils::{TenantFixture, TestApp, eventually_within, quick_jobs, spawn_app_with, tenant_with_admin};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const SECRET: &str = "whsec-timing-signing-secret-0123456789";

struct World {
    app: TestApp,
    tenant: TenantFixture,
    receiver: FakeWebhook,
    device: String,
}

/// A tenant with a webhook integration on the default retry policy and a device whose
/// alarms it receives.
async fn world(tweak: impl FnOnce(&mut api::config::Config)) -> World {
    let receiver = FakeWebhook::start(SECRET).await;
    let url = receiver.url();
    let app = spawn_app_with(tweak).await;
    let root = app.admin_token().await;
    let tenant = tenant_with_admin(&app, &root).await;
    let api = &tenant.api;
    api.integration(json!({"kind": "WEBHOOK", "name": "ops-hook", "settings": {"url": url},
                          "credentials": {"signingSecret": SECRET}}))
        .await;
    let etc =
        api.integration(json!({"kind": "ETC_GANTRY", "name": "gantries", "credentials": {"authCode": "123456"}})).await;
    let device = api.device(&etc.id, "G0001", "GANTRY_CABINET", "cabinet 1", json!({})).await;
    World { app, tenant, receiver, device }
}

impl World {
    /// Raises an alarm: one webhook delivery. Answers its id.
    async fn alarm(&self, kind: &str) -> String {
        let r = self
            .app
            .gql(
                Some(&self.tenant.admin_token),
                "mutation($d:ID!,$k:String!){ reportAlarm(input:{deviceId:$d, kind:$k, severity:MAJOR, message:\"door\"}){ id } }",
                json!({"d": self.device, "k": kind}),
            )
            .await;
        let _ = r.data();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let ds = self.tenant.api.deliveries(json!({"kind": "webhook.alarm"})).await;
            if let Some(id) = ds.first().and_then(|d| d["id"].as_str()) {
                return id.to_owned();
            }
            assert!(Instant::now() < deadline, "no webhook delivery was written");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn delivery(&self, id: &str) -> Value {
        let q = "query($id:ID!){ delivery(id:$id){ state attemptCount lastError idempotencyKey
                   attempts{ number outcome at nextAttemptAt } } }";
        self.app.gql(Some(&self.tenant.admin_token), q, json!({"id": id})).await.data()["delivery"].clone()
    }

    async fn until(&self, id: &str, state: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let d = self.delivery(id).await;
            if d["state"] == state {
                return d;
            }
            assert!(Instant::now() < deadline, "delivery never reached {state}: {d}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok()).map(|t| t.with_timezone(&Utc)).expect("a time")
}

/// The environment of a `linkyard` child on the test's job storage; everything else at
/// its defaults unless `extra` says otherwise.
fn child_env(extra: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut env: Vec<(&'static str, String)> = extra.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    if let Some(redis) = std::env::var("TEST_REDIS_URL").ok().filter(|u| !u.is_empty()) {
        env.push(("REDIS_URL", redis));
    }
    env
}

#[tokio::test]
async fn the_default_schedule_retries_within_5_then_10_then_20_seconds() {
    let w = world(quick_jobs).await;
    let busy = Answer::status(StatusCode::SERVICE_UNAVAILABLE, json!({"error": "busy"}));
    w.receiver.server.answer_next("/hook", 3, busy);
    let id = w.alarm("CABINET_DOOR_OPEN").await;
    let d = w.until(&id, "SUCCEEDED", Duration::from_secs(90)).await;
    assert_eq!(d["attemptCount"], 4, "{d}");
    let attempts = d["attempts"].as_array().expect("attempts");
    let outcomes: Vec<&str> = attempts.iter().map(|a| a["outcome"].as_str().unwrap_or_default()).collect();
    assert_eq!(outcomes, ["RETRY", "RETRY", "RETRY", "SUCCEEDED"], "{d}");
    // The waits the policy scheduled (as stored), not how fast the machine was.
    let mut waits = Vec::new();
    for (i, ceiling) in [5, 10, 20].into_iter().enumerate() {
        let (at, next) = (time(&attempts[i]["at"]), time(&attempts[i]["nextAttemptAt"]));
        let wait = (next - at).to_std().expect("the next attempt comes after the failure");
        assert!(wait <= Duration::from_secs(ceiling), "wait {} was {wait:?}: {d}", i + 1);
        // Jitter shortens a wait by half at most.
        assert!(wait >= Duration::from_millis(ceiling * 500 - 10), "wait {} was {wait:?}: {d}", i + 1);
        // The next attempt was not sent before it was due (its job may come up to a
        // second early and then waits).
        let sent = time(&attempts[i + 1]["at"]);
        assert!(sent + chrono::Duration::seconds(1) >= next, "attempt {} came early: {d}", i + 2);
        waits.push(wait);
    }
    // One jitter per delivery: each wait is double the one before, to the millisecond.
    for pair in waits.windows(2) {
        let diff = pair[1].abs_diff(pair[0] * 2);
        assert!(diff <= Duration::from_millis(2), "{waits:?}");
    }
    assert!(attempts[3]["nextAttemptAt"].is_null(), "{d}");
    let got = w.receiver.got();
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(got.iter().all(|g| g.key == d["idempotencyKey"]), "one idempotency key: {got:?}");
}

#[tokio::test]
async fn retry_settings_are_validated_naming_the_field() {
    let w = world(|_| {}).await;
    let url = w.receiver.url();
    for (retry, field) in [
        (json!({"initialDelaySecs": 0}), "settings.retry.initialDelaySecs"),
        (json!({"initialDelaySecs": "soon"}), "settings.retry.initialDelaySecs"),
        (json!({"initialDelaySecs": 60, "maxDelaySecs": 30}), "settings.retry.maxDelaySecs"),
        (json!({"maxAttempts": 0}), "settings.retry.maxAttempts"),
        (json!({"maxAttempts": 2.5}), "settings.retry.maxAttempts"),
        (json!({"giveUpAfter": 3}), "settings.retry.giveUpAfter"),
        (json!("fast"), "settings.retry"),
    ] {
        let r = w
            .tenant
            .api
            .configure_integration(
                json!({"kind": "WEBHOOK", "name": "bad-retry", "settings": {"url": url, "retry": retry},
                                          "credentials": {"signingSecret": SECRET}}),
            )
            .await;
        assert_eq!(r.code(), "BAD_USER_INPUT", "{retry}: {}", r.raw);
        assert_eq!(r.body["errors"][0]["extensions"]["field"], field, "{retry}: {}", r.raw);
    }
    let ok = json!({"initialDelaySecs": 2, "maxDelaySecs": 600, "maxAttempts": 30});
    w.tenant
        .api
        .integration(json!({"kind": "WEBHOOK", "name": "good-retry", "settings": {"url": url, "retry": ok},
                            "credentials": {"signingSecret": SECRET}}))
        .await;
}

/// The test's own app serves the API only; the workers are `linkyard serve` processes with
/// the default timing on the same database and job storage, as in production.
#[tokio::test]
async fn a_delivery_in_flight_when_its_process_is_killed_is_taken_up_within_20_s_of_the_restart_once() {
    let w = world(|c| c.run_workers = false).await;
    // The first request is never answered: the process sending it is killed meanwhile.
    w.receiver.delay_first(Duration::from_secs(3600));
    let env = child_env(&[]);
    let mut first = Child::start(&w.app, "serve", &env);
    first.wait_ready().await;
    let id = w.alarm("CABINET_SMOKE").await;
    tokio::time::timeout(Duration::from_secs(60), w.receiver.first_arrived())
        .await
        .unwrap_or_else(|_| panic!("the first process never sent: {}", first.log()));
    assert_eq!(w.delivery(&id).await["state"], "IN_FLIGHT");
    first.kill_hard();

    let restarted = Instant::now();
    let second = Child::start(&w.app, "serve", &env);
    eventually_within("the delivery is sent again within 20 s of the restart", Duration::from_secs(20), || async {
        w.receiver.got().len() >= 2
    })
    .await;
    eprintln!("delivery taken up {:?} after the restart", restarted.elapsed());
    let d = w.until(&id, "SUCCEEDED", Duration::from_secs(30)).await;
    assert_eq!(d["attemptCount"], 2, "the killed attempt counts: {d}");
    let got = w.receiver.got();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.iter().all(|g| g.key == d["idempotencyKey"]), "one idempotency key: {got:?}");
    // Once only: the killed process's job, which its storage hands out again once its
    // heartbeats stop (two missed beats), finds the delivery finished.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(w.receiver.got().len(), 2, "sent once more, not twice: {}", second.log());
    assert_eq!(w.delivery(&id).await["attemptCount"], 2);
}

#[tokio::test]
async fn a_delivery_held_by_a_live_instance_is_not_taken_by_another() {
    let w = world(|c| c.run_workers = false).await;
    // A slow answer, three times as long as a lease without renewal (1 s beats: 4 s).
    w.receiver.delay_first(Duration::from_secs(12));
    let env = child_env(&[("LINKYARD_JOB_HEARTBEAT_SECS", "1")]);
    let mut one = Child::start(&w.app, "serve", &env);
    one.wait_ready().await;
    let id = w.alarm("CABINET_WATER").await;
    tokio::time::timeout(Duration::from_secs(60), w.receiver.first_arrived())
        .await
        .unwrap_or_else(|_| panic!("the first instance never sent: {}", one.log()));
    let mut two = Child::start(&w.app, "serve", &env);
    two.wait_ready().await;
    assert_eq!(
        w.delivery(&id).await["state"],
        "IN_FLIGHT",
        "the second instance must be up while the first still sends: the test proves nothing otherwise"
    );
    let d = w.until(&id, "SUCCEEDED", Duration::from_secs(60)).await;
    assert_eq!(d["attemptCount"], 1, "never claimed by the second instance: {d}");
    assert_eq!(w.receiver.got().len(), 1, "sent once: {}", two.log());
    drop(two);
    drop(one);
}
