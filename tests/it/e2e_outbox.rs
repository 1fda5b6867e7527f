//! The outbox and the workers, end to end: alarm changes reach a tenant's webhook as
//! signed, ordered deliveries written in the alarm's own transaction; a worker killed
//! with SIGKILL mid-attempt leaves nothing lost (another worker process completes it).

use crate::utils::child::Child;
use crate::utils::fake::webhook::FakeWebhook;
use crate::utils::{TenantFixture, TestApp, spawn_app_with, tenant_with_admin};
use domain::alarms::{AlarmKind, AlarmRepo, AlarmSeverity, RaiseAlarm};
use domain::deliveries::{DeliveryKind, NewDelivery};
use domain::ids::{IntegrationId, TenantId};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const SECRET: &str = "whsec-test-signing-secret-0123456789";

struct World {
    app: TestApp,
    tenant: TenantFixture,
    receiver: FakeWebhook,
    webhook: String,
    device: String,
}

async fn world(tweak: impl FnOnce(&mut api::config::Config)) -> World {
    let receiver = FakeWebhook::start(SECRET).await;
    let url = receiver.url();
    let app = spawn_app_with(|c| {
        c.job_poll = Duration::from_millis(100);
        tweak(c);
    })
    .await;
    let root = app.admin_token().await;
    let tenant = tenant_with_admin(&app, &root).await;
    let api = &tenant.api;
    let webhook = api
        .integration(json!({"kind": "WEBHOOK", "name": "ops-hook", "settings": {"url": url, "retry": {"initialDelaySecs": 1, "maxDelaySecs": 2}},
                            "credentials": {"signingSecret": SECRET}}))
        .await
        .id;
    let etc =
        api.integration(json!({"kind": "ETC_GANTRY", "name": "gantries", "credentials": {"authCode": "123456"}})).await;
    let device = api.device(&etc.id, "G0001", "GANTRY_CABINET", "cabinet 1", json!({})).await;
    World { app, tenant, receiver, webhook, device }
}

impl World {
    async fn report(&self, kind: &str) -> String {
        let r = self
            .app
            .gql(
                Some(&self.tenant.admin_token),
                "mutation($d:ID!,$k:String!){ reportAlarm(input:{deviceId:$d, kind:$k, severity:MAJOR, message:\"door\"}){ id } }",
                json!({"d": self.device, "k": kind}),
            )
            .await;
        r.data()["reportAlarm"]["id"].as_str().expect("alarm").to_owned()
    }

    async fn webhook_deliveries(&self) -> Vec<Value> {
        self.tenant.api.deliveries(json!({"integrationId": self.webhook})).await
    }

    /// Waits until `n` webhook deliveries exist and all are SUCCEEDED.
    async fn until_delivered(&self, n: usize, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let ds = self.webhook_deliveries().await;
            if ds.len() == n && ds.iter().all(|d| d["state"] == "SUCCEEDED") {
                return ds;
            }
            assert!(Instant::now() < deadline, "webhook deliveries not all delivered: {ds:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test]
async fn alarm_changes_reach_the_tenant_webhook_signed_once_each_and_in_order() {
    let w = world(|_| {}).await;
    let alarm = w.report("CABINET_DOOR_OPEN").await;
    // A repeat of the open alarm is an occurrence, not a new event.
    assert_eq!(w.report("CABINET_DOOR_OPEN").await, alarm);
    let r = w
        .app
        .gql(
            Some(&w.tenant.admin_token),
            "mutation($id:ID!){ clearAlarm(id:$id, note:\"closed\"){ state } }",
            json!({"id": alarm}),
        )
        .await;
    assert_eq!(r.data()["clearAlarm"]["state"], "CLEARED");
    let ds = w.until_delivered(2, Duration::from_secs(30)).await;
    for d in &ds {
        assert_eq!(d["kind"], "webhook.alarm");
        assert_eq!(d["orderKey"], format!("alarm:{alarm}"));
        // The attempt record keeps the URL without its query string (which can hold secrets).
        let request = d["attempts"][0]["request"].as_str().expect("request");
        assert!(request.starts_with("POST http://127.0.0.1:") && !request.contains("query-secret-1"), "{request}");
    }
    let got = w.receiver.got();
    assert_eq!(w.receiver.bad_signatures(), 0);
    let events: Vec<(&str, &str)> = got.iter().map(|g| (g.event.as_str(), g.key.as_str())).collect();
    let raised_key = format!("alarm.raised:{alarm}");
    let cleared_key = format!("alarm.cleared:{alarm}");
    assert_eq!(events, vec![("alarm.raised", raised_key.as_str()), ("alarm.cleared", cleared_key.as_str())]);
    assert!(got.iter().all(|g| g.alarm_id == alarm));
    // The attempts show in the metrics.
    let metrics = w.app.http.get(w.app.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("linkyard_delivery_attempts_total")
                && l.contains("vendor=\"webhook\"")
                && l.contains("outcome=\"SUCCEEDED\"")
        })
        .unwrap_or_else(|| panic!("no attempts metric in {metrics}"));
    let n: f64 = line.rsplit(' ').next().and_then(|v| v.parse().ok()).expect("a count");
    assert!(n >= 2.0, "{line}");
    assert!(metrics.contains("linkyard_delivery_latency_seconds"), "{metrics}");
    // Another tenant sees none of these deliveries.
    let root = w.app.admin_token().await;
    let other = tenant_with_admin(&w.app, &root).await;
    let q = "{ deliveries(filter:{kind:\"webhook.alarm\"}){ totalCount } }";
    assert_eq!(w.app.gql(Some(&other.admin_token), q, json!({})).await.data()["deliveries"]["totalCount"], 0);
}

#[tokio::test]
async fn a_change_and_its_deliveries_commit_together_or_not_at_all() {
    let w = world(|c| {
        c.sweep_every = Duration::from_secs(1);
        c.scheduler_tick = Duration::from_secs(1);
        c.delivery_stale_after = Duration::from_secs(2);
    })
    .await;
    let tenant: TenantId = w.tenant.id.parse().expect("tenant");
    let webhook: IntegrationId = w.webhook.parse().expect("integration");
    let repo = adapters::db::repos::SqlAlarmRepo::new(w.app.state.db.clone());
    let raise = RaiseAlarm {
        device_id: Some(w.device.parse().expect("device")),
        integration_id: None,
        ticket_id: None,
        kind: AlarmKind::parse("OUTBOX_PROBE").expect("kind"),
        severity: AlarmSeverity::Minor,
        message: "probe".into(),
        vendor_code: None,
        vendor_text: None,
        inbound_event_id: None,
        raised_at: chrono::Utc::now(),
        attributes: json!({}),
    };
    // An outbox whose second delivery breaks a uniqueness rule: the whole change rolls back.
    let broken = |_: &_| {
        let d = NewDelivery {
            integration_id: webhook,
            kind: DeliveryKind::from_static("webhook.alarm"),
            idempotency_key: "same-key".into(),
            order_key: None,
            payload: json!({}),
            subject: None,
        };
        vec![d.clone(), d]
    };
    assert!(repo.raise(tenant, raise.clone(), &broken).await.is_err());
    let q = "{ alarms(filter:{kind:\"OUTBOX_PROBE\"}){ totalCount } }";
    assert_eq!(w.app.gql(Some(&w.tenant.admin_token), q, json!({})).await.data()["alarms"]["totalCount"], 0);
    assert!(w.webhook_deliveries().await.is_empty(), "no delivery without its change");
    // A sound outbox commits both.
    let sound = |_: &_| {
        vec![NewDelivery {
            integration_id: webhook,
            kind: DeliveryKind::from_static("webhook.alarm"),
            idempotency_key: "probe-key".into(),
            order_key: None,
            payload: json!({"event": "probe"}),
            subject: None,
        }]
    };
    let (_, _, sent) = repo.raise(tenant, raise, &sound).await.expect("raise");
    assert_eq!(sent.len(), 1);
    assert_eq!(w.app.gql(Some(&w.tenant.admin_token), q, json!({})).await.data()["alarms"]["totalCount"], 1);
    // Written but never dispatched: the sweep finds it and it is delivered all the same.
    w.until_delivered(1, Duration::from_secs(60)).await;
}

#[tokio::test]
async fn a_worker_killed_mid_attempt_leaves_the_delivery_to_the_next_worker() {
    // The test's own app serves the API only; workers are separate `linkyard worker`
    // processes on the same database (and Redis when configured), as in production.
    let w = world(|c| c.run_workers = false).await;
    // The first request is never answered: the worker holding it is killed meanwhile.
    w.receiver.delay_first(Duration::from_secs(3600));
    let mut env = vec![
        ("LINKYARD_JOB_HEARTBEAT_SECS", "1".to_owned()),
        ("LINKYARD_DELIVERY_STALE_SECS", "3".to_owned()),
        ("LINKYARD_SWEEP_SECS", "1".to_owned()),
        ("LINKYARD_SCHEDULER_TICK_SECS", "1".to_owned()),
    ];
    if let Some(redis) = std::env::var("TEST_REDIS_URL").ok().filter(|u| !u.is_empty()) {
        env.push(("REDIS_URL", redis));
    }
    let mut first = Child::start(&w.app, "worker", &env);
    let alarm = w.report("CABINET_SMOKE").await;
    tokio::time::timeout(Duration::from_secs(60), w.receiver.first_arrived())
        .await
        .unwrap_or_else(|_| panic!("the first worker never sent: {}", first.log()));
    let ds = w.webhook_deliveries().await;
    assert_eq!(ds[0]["state"], "IN_FLIGHT", "{ds:?}");
    first.kill_hard();

    let second = Child::start(&w.app, "worker", &env);
    let ds = w.until_delivered(1, Duration::from_secs(60)).await;
    let d = &ds[0];
    assert_eq!(d["attemptCount"], 2, "the killed attempt counts: {d}");
    // Only the finished attempt has a record: the killed one died before it could write.
    let attempts = d["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 1, "{d}");
    assert_eq!(attempts[0]["number"], 2);
    assert_eq!(attempts[0]["outcome"], "SUCCEEDED");
    let got = w.receiver.got();
    assert_eq!(got.len(), 2, "sent twice: once to the killed worker, once to the next; {got:?}");
    let key = format!("alarm.raised:{alarm}");
    assert!(got.iter().all(|g| g.key == key), "one idempotency key for both: {got:?}");
    drop(second);
}

#[tokio::test]
async fn shutdown_lets_the_attempt_in_flight_finish() {
    let w = world(|_| {}).await;
    w.receiver.delay_first(Duration::from_millis(1500));
    let alarm = w.report("CABINET_WATER").await;
    tokio::time::timeout(Duration::from_secs(30), w.receiver.first_arrived()).await.expect("sent");
    // SIGTERM's path: the shutdown token. The vendor is still answering.
    w.app.state.shutdown.cancel();
    let tenant: TenantId = w.tenant.id.parse().expect("tenant");
    let filter = domain::deliveries::DeliveryFilter::default();
    let actor =
        domain::Actor { user_id: domain::ids::UserId::new(), tenant_id: Some(tenant), role: domain::Role::Viewer };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page =
            w.app.state.deliveries.list(&actor, &filter, domain::PageRequest::new(Some(10), None).expect("page")).await;
        let ds = page.expect("list").items;
        if ds.iter().any(|d| {
            d.idempotency_key == format!("alarm.raised:{alarm}")
                && d.state == domain::deliveries::DeliveryState::Succeeded
        }) {
            break;
        }
        if Instant::now() >= deadline {
            let logs = crate::utils::logs::captured();
            let ids: Vec<String> = ds.iter().map(|d| d.id.to_string()).collect();
            let related: Vec<&str> = logs
                .lines()
                .filter(|l| ids.iter().any(|id| l.contains(id.as_str())) || l.contains("WARN") || l.contains("ERROR"))
                .collect();
            panic!("the attempt in flight did not finish: {ds:?}\nlogs:\n{}", related.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(w.receiver.got().len(), 1, "sent once");
}
