//! Operating the inbound and outbound flows (issue 18.4): `replayInboundEvent` processes a
//! stored callback again (an applied one changes nothing, a failed or ignored one is applied
//! once its cause is fixed), and `replayDeliveries` sends a window of an integration's
//! deliveries again with their idempotency keys; both tenant-scoped.

use crate::e2e_dingding::{Setup, now_ms, setup};
use crate::utils::fake::goldcard::{APP_CODE, APP_SECRET, COMPANY, FACTOR, FakeDas, headers, serial};
use crate::utils::fake::{Answer, FakeVendor, Judgement};
use crate::utils::{
    Client, TestApp, USER_PASSWORD, eventually, nodes, quick_jobs, spawn_app_with, tenant_with_admin, unique,
};
use async_trait::async_trait;
use domain::deliveries::{Delivery, DeliveryKind, DeliverySender, NewDelivery, SendReport, Verdict};
use domain::events::NewInboundEvent;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

const REPLAY: &str = "mutation($id:ID!){ replayInboundEvent(id:$id){ id state error kind } }";
const EVENTS: &str = "query($f:InboundEventFilterInput){ inboundEvents(filter:$f, first:100){ edges{ node{ id kind state error processedAt } } } }";

async fn events(api: &Client, filter: Value) -> Vec<Value> {
    nodes(&api.data(EVENTS, json!({"f": filter})).await["inboundEvents"])
}

/// The one event of `kind` of the Dingding integration.
async fn event_of(s: &Setup, kind: &str) -> Value {
    let all = events(&s.api, json!({"integrationId": s.integration, "kind": kind})).await;
    assert_eq!(all.len(), 1, "{all:?}");
    all[0].clone()
}

/// A user of the tenant with `role`; answers a client acting as them.
async fn member(s: &Setup, role: &str) -> Client {
    let email = format!("{}-{}@{}.example.com", role.to_lowercase(), unique(), s.tenant.slug);
    s.api.create_user(&s.tenant.id, &email, USER_PASSWORD, role).await;
    let token = s.app.login(&email, USER_PASSWORD).await;
    s.app.api(&token)
}

/// What the callbacks of `lock` left: its alarms with their occurrences, its door readings,
/// its battery, and the tenant's deliveries.
async fn facts(s: &Setup, lock: &str) -> (Vec<Value>, usize, Value, Value) {
    let deliveries = s.api.data("{ deliveries{ totalCount } }", json!({})).await["deliveries"]["totalCount"].clone();
    (
        s.alarms(lock).await,
        s.readings(lock, "door_opened").await.len(),
        s.device_state(lock).await["battery"].clone(),
        deliveries,
    )
}

#[tokio::test]
async fn replaying_an_applied_callback_changes_nothing() {
    let s = setup().await;
    let lock = s.device("rp-lock", "LOCK", json!({})).await;
    let battery = json!({"event": "batteryAlarm", "time": now_ms(), "uuid": "rp-lock", "home_id": "dd-h", "detail": {"battery_level": 8}});
    let opened = json!({"event": "lockerOpenAlarm", "time": now_ms() + 1, "uuid": "rp-lock", "home_id": "dd-h",
                        "detail": {"source": 2, "sourceid": 1020, "source_name": "密码 1020"}});
    for body in [battery, opened] {
        assert_eq!(s.callback(body).await, (200, json!({"ErrNo": 0, "ErrMsg": "ok"})));
    }
    let applied = facts(&s, &lock).await;
    assert_eq!(applied.0.len(), 1, "{applied:?}");
    assert_eq!((applied.0[0]["occurrences"].clone(), applied.1, applied.2.clone()), (json!(1), 1, json!(8)));

    for kind in ["batteryAlarm", "lockerOpenAlarm"] {
        let e = event_of(&s, kind).await;
        assert_eq!(e["state"], "PROCESSED");
        for _ in 0..2 {
            let r = s.api.data(REPLAY, json!({"id": e["id"]})).await["replayInboundEvent"].clone();
            assert_eq!(
                (r["id"].clone(), r["state"].clone(), r["error"].clone()),
                (e["id"].clone(), json!("PROCESSED"), Value::Null)
            );
        }
        assert_eq!(event_of(&s, kind).await, e, "the stored event is as it was");
    }
    assert_eq!(facts(&s, &lock).await, applied, "no second occurrence, reading or delivery");
}

#[tokio::test]
async fn an_ignored_callback_is_applied_when_replayed_after_its_device_exists_and_only_by_its_tenant() {
    let s = setup().await;
    let body = json!({"event": "batteryAlarm", "time": now_ms(), "uuid": "late-1", "home_id": "dd-h", "detail": {"battery_level": 7}});
    assert_eq!(s.callback(body).await.0, 200);
    // Not applied, and visible with why.
    let ignored = events(&s.api, json!({"integrationId": s.integration, "state": "IGNORED"})).await;
    assert_eq!(ignored.len(), 1, "{ignored:?}");
    assert_eq!(ignored[0]["error"], "unknown device late-1");
    let id = ignored[0]["id"].clone();

    // Replayed before the fix: still ignored, for the same reason.
    let r = s.api.data(REPLAY, json!({"id": id})).await["replayInboundEvent"].clone();
    assert_eq!((r["state"].as_str(), r["error"].as_str()), (Some("IGNORED"), Some("unknown device late-1")));

    // Other tenants, viewers and the anonymous cannot replay it.
    let root = s.app.admin_token().await;
    let other = tenant_with_admin(&s.app, &root).await;
    assert_eq!(other.api.gql(REPLAY, json!({"id": id})).await.code(), "NOT_FOUND");
    assert!(events(&other.api, json!({})).await.is_empty(), "another tenant reads none of it");
    assert_eq!(member(&s, "VIEWER").await.gql(REPLAY, json!({"id": id})).await.code(), "FORBIDDEN");
    assert_eq!(s.app.anon().gql(REPLAY, json!({"id": id})).await.code(), "UNAUTHENTICATED");
    assert_eq!(s.api.gql(REPLAY, json!({"id": uuid::Uuid::new_v4()})).await.code(), "NOT_FOUND");
    assert_eq!(event_of(&s, "batteryAlarm").await["state"], "IGNORED");

    // The device is created; an operator replays the callback: applied, once.
    let lock = s.device("late-1", "LOCK", json!({})).await;
    let operator = member(&s, "OPERATOR").await;
    let r = operator.data(REPLAY, json!({"id": id})).await["replayInboundEvent"].clone();
    assert_eq!((r["state"].clone(), r["error"].clone()), (json!("PROCESSED"), Value::Null), "{r}");
    assert_eq!(s.device_state(&lock).await["battery"], 7);
    let alarms = s.alarms(&lock).await;
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    assert_eq!((alarms[0]["kind"].as_str(), alarms[0]["occurrences"].as_i64()), (Some("LOCK_LOW_BATTERY"), Some(1)));
    operator.data(REPLAY, json!({"id": id})).await;
    assert_eq!(s.alarms(&lock).await, alarms, "a second replay changes nothing");

    // A protocol that cannot read its stored events again says so.
    let key = s.api.create_api_key(&s.integration).await;
    let resp = s
        .app
        .http
        .post(s.app.url(&format!("/hooks/{}/telemetry", s.integration)))
        .header("x-api-key", key)
        .json(
            &json!({"readings": [{"externalId": "nobody", "ts": chrono::Utc::now().to_rfc3339(), "values": {"v": 1}}]}),
        )
        .send()
        .await
        .expect("telemetry");
    assert_eq!(resp.status(), 200);
    let failed = events(&s.api, json!({"integrationId": s.integration, "state": "FAILED"})).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["error"], "all 1 readings rejected");
    let r = s.api.gql(REPLAY, json!({"id": failed[0]["id"]})).await;
    assert_eq!(r.code(), "BAD_USER_INPUT", "{}", r.raw);
    assert_eq!(r.body["errors"][0]["extensions"]["field"], "id");
}

/// A gas integration against a fake DAS, as a tenant admin.
async fn gas() -> (TestApp, Client, String, FakeDas, String) {
    let das = FakeDas::start().await;
    let app = spawn_app_with(quick_jobs).await;
    let root = app.admin_token().await;
    let tenant = tenant_with_admin(&app, &root).await;
    let api = tenant.api.clone();
    let integration = api
        .integration(json!({"kind": "GOLDCARD", "name": "gas", "settings": {
                                "baseUrl": das.base(), "companyCode": COMPANY, "factorNo": FACTOR},
                            "credentials": {"appCode": APP_CODE, "appSecret": APP_SECRET}}))
        .await
        .id;
    (app, api, integration, das, tenant.id)
}

/// Registers the prepaid, centre-billed meter `meter_no` on a two-tier tariff (1, then 2
/// above 10 m3) with 100 paid in; answers its device id.
async fn register(api: &Client, integration: &str, meter_no: &str) -> String {
    let tariff = api
        .data(
            "mutation($i:SaveTariffInput!){ saveTariff(input:$i){ id } }",
            json!({"i": {"integrationId": integration, "code": "G1", "utility": "GAS", "cycleMonths": 1,
                         "tiers": [{"upTo": "10", "price": "1"}, {"price": "2"}],
                         "effectiveFrom": (chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339()}}),
        )
        .await["saveTariff"]["id"]
        .clone();
    let device = api
        .device(
            integration,
            meter_no,
            "GAS_METER",
            "late meter",
            json!({"userNo": "u-late", "meterType": "441",
                "priceCode": "G1", "initialReading": "0", "payModel": "PREPAID", "billingModel": "CENTRE"}),
        )
        .await;
    api.data(
        "mutation($d:ID!,$t:ID!){ assignTariff(deviceId:$d, tariffId:$t){ id } }",
        json!({"d": device, "t": tariff}),
    )
    .await;
    api.data(
        "mutation($i:RechargeMeterInput!){ rechargeMeter(input:$i){ entry{ id } } }",
        json!({"i": {"deviceId": device, "amount": "100", "tradeNo": format!("init-{meter_no}")}}),
    )
    .await;
    device
}

#[tokio::test]
async fn a_failed_gas_reading_is_charged_once_when_replayed_after_its_meter_is_registered() {
    let (app, api, integration, _das, _) = gas().await;
    let today = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("offset"))
        .format("%Y%m%d")
        .to_string();
    let report = json!({
        "serialNo": serial(), "userNo": "u-late", "deviceId": "", "factorNo": FACTOR, "meterNo": "880001",
        "billingModel": "2", "readNum": "15", "addGas": "", "readDate": today, "readTime": "101010",
        "batteryCap": "6.14", "semaphore": "59.0%", "valveState": "2", "curPrice": "0", "meterBalance": "0",
        "companyCode": COMPANY, "sdateTime": "2020-02-27"
    });
    let (token, auth) = headers(APP_CODE, APP_SECRET, 0);
    let answer: Value = app
        .http
        .post(app.url(&format!("/hooks/{integration}/goldcard/api/collect/meter/2001")))
        .header("content-type", "application/json;charset=utf-8")
        .header("AccessToken", token)
        .header("Authorization", auth)
        .body(report.to_string())
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("JSON");
    assert_eq!(answer["echoCode"], "9999", "{answer}");
    let failed = events(&api, json!({"integrationId": integration, "state": "FAILED"})).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["error"], "meter 880001 is not registered");
    let id = failed[0]["id"].clone();

    // The meter is registered with 100 paid in; the reading is replayed.
    let device = register(&api, &integration, "880001").await;
    let account = || async {
        api.data(
            "query($d:ID!){ meterAccount(deviceId:$d){ balance ledger(first:50){ edges{ node{ kind amount } } } } }",
            json!({"d": device}),
        )
        .await["meterAccount"]
            .clone()
    };
    assert_eq!(account().await["balance"], "100");
    let r = api.data(REPLAY, json!({"id": id})).await["replayInboundEvent"].clone();
    assert_eq!((r["state"].clone(), r["error"].clone()), (json!("PROCESSED"), Value::Null), "{r}");
    let charged = account().await;
    assert_eq!(charged["balance"], "80", "15 m3: 10x1 + 5x2");
    api.data(REPLAY, json!({"id": id})).await;
    assert_eq!(account().await, charged, "charged once");
}

#[tokio::test]
async fn a_stale_gas_alarm_report_is_swept_up_by_its_own_report_path() {
    let (app, api, integration, _das, tenant) = gas().await;
    let device = register(&api, &integration, "880002").await;
    // A 2003 stored by a process that stopped before applying it; the three report paths
    // share the GOLDCARD protocol, and the 2001 path comes first.
    let body = json!({"serialNo": serial(), "userNo": "u-late", "deviceId": "", "factorNo": FACTOR,
                      "meterNo": "880002", "alarmType": "02", "alarmContent": "燃气泄漏", "alarmPriority": "3",
                      "companyCode": COMPANY, "sdateTime": "2019-11-21 16:32:50"});
    let stored = NewInboundEvent {
        integration_id: integration.parse().expect("integration"),
        protocol: "GOLDCARD".into(),
        kind: "2003".into(),
        dedup_key: format!("2003:{}", body["serialNo"].as_str().unwrap_or_default()),
        headers: json!({}),
        body: body.to_string(),
        received_at: chrono::Utc::now() - chrono::Duration::minutes(30),
    };
    app.state.events.record(tenant.parse().expect("tenant"), stored).await.expect("stored");
    assert_eq!(app.state.inbound_backlog.sweep(chrono::Utc::now()).await.expect("sweep"), 1);
    eventually("the swept report applied", || async {
        events(&api, json!({"integrationId": integration, "kind": "2003"})).await[0]["state"] != "RECEIVED"
    })
    .await;
    let e = &events(&api, json!({"integrationId": integration, "kind": "2003"})).await[0];
    assert_eq!((e["state"].as_str(), e["error"].clone()), (Some("PROCESSED"), Value::Null), "{e}");
    let q = "query($d:ID){ alarms(filter:{deviceId:$d}){ edges{ node{ kind occurrences } } } }";
    let alarms = nodes(&api.data(q, json!({"d": device})).await["alarms"]);
    assert_eq!(alarms, vec![json!({"kind": "GAS_LEAK", "occurrences": 1})]);
}

/// Posts each delivery to the fake vendor with its idempotency key as `Request-Id`.
struct KeySender {
    http: reqwest::Client,
    base: String,
}

#[async_trait]
impl DeliverySender for KeySender {
    async fn send(&self, d: &Delivery, _fresh_token: bool) -> SendReport {
        let sent = self.http.post(format!("{}/push", self.base)).header("request-id", &d.idempotency_key).send().await;
        let verdict = match sent {
            Ok(r) if r.status().is_success() => Verdict::Delivered,
            Ok(r) => Verdict::Retry(format!("HTTP {}", r.status())),
            Err(e) => Verdict::Retry(e.to_string()),
        };
        SendReport { request: "POST /push".into(), http_status: None, vendor_code: None, vendor_message: None, verdict }
    }
}

#[tokio::test]
async fn replay_deliveries_sends_exactly_the_windows_deliveries_again_with_their_keys() {
    let vendor = FakeVendor::start_with(|_| Judgement::Accept(None)).await;
    vendor.answer_default(Answer::ok(json!({"code": "OK"})));
    let sender = Arc::new(KeySender { http: reqwest::Client::new(), base: vendor.base().to_owned() });
    let app = spawn_app_with(|c| {
        c.senders = jobs::SenderRegistry::default().with("fake", sender);
        quick_jobs(c);
    })
    .await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    let integration = t
        .api
        .integration(json!({"kind": "ETC_GANTRY", "name": "g", "settings": {}, "credentials": {"authCode": "auth-1"}}))
        .await
        .id;
    let enqueue = |key: &'static str| {
        let input = NewDelivery {
            integration_id: integration.parse().expect("integration"),
            kind: DeliveryKind::parse("fake.push").expect("kind"),
            idempotency_key: key.into(),
            order_key: None,
            payload: json!({}),
            subject: None,
        };
        let (state, tenant) = (app.state.clone(), t.id.parse().expect("tenant"));
        async move { state.deliveries.enqueue(tenant, input).await.expect("enqueue").id.to_string() }
    };
    // Created one after the other: `before`, then the window's two, then `after`.
    let tick = || async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let at = chrono::Utc::now();
        tokio::time::sleep(Duration::from_millis(20)).await;
        at
    };
    let before = enqueue("k-before").await;
    let since = tick().await;
    let in1 = enqueue("k-in-1").await;
    let in2 = enqueue("k-in-2").await;
    let until = tick().await;
    let after = enqueue("k-after").await;
    let all = [before.clone(), in1.clone(), in2.clone(), after.clone()];
    let calls = |key: &str| vendor.requests().iter().filter(|r| r.header("request-id") == key).count();
    let state_of = |id: String| {
        let api = t.api.clone();
        async move {
            api.data("query($id:ID!){ delivery(id:$id){ state attemptCount } }", json!({"id": id})).await["delivery"]
                .clone()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    for id in &all {
        while state_of(id.clone()).await["state"] != "SUCCEEDED" {
            assert!(Instant::now() < deadline, "never delivered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    const REPLAY_D: &str =
        "mutation($i:ID!,$s:DateTime!,$u:DateTime!){ replayDeliveries(integrationId:$i, since:$s, until:$u) }";
    let window = json!({"i": integration, "s": since.to_rfc3339(), "u": until.to_rfc3339()});
    // Only tenant admins, only their own integrations, only bounded windows.
    let op_email = format!("op-{}@{}.example.com", unique(), t.slug);
    t.api.create_user(&t.id, &op_email, USER_PASSWORD, "OPERATOR").await;
    let op = app.api(&app.login(&op_email, USER_PASSWORD).await);
    assert_eq!(op.gql(REPLAY_D, window.clone()).await.code(), "FORBIDDEN");
    let other = tenant_with_admin(&app, &root).await;
    assert_eq!(other.api.gql(REPLAY_D, window.clone()).await.code(), "NOT_FOUND");
    let reversed = json!({"i": integration, "s": until.to_rfc3339(), "u": since.to_rfc3339()});
    let r = t.api.gql(REPLAY_D, reversed).await;
    assert_eq!(
        (r.code(), r.body["errors"][0]["extensions"]["field"].clone()),
        ("BAD_USER_INPUT".into(), json!("until"))
    );
    let long =
        json!({"i": integration, "s": (until - chrono::Duration::days(8)).to_rfc3339(), "u": until.to_rfc3339()});
    assert_eq!(t.api.gql(REPLAY_D, long).await.code(), "BAD_USER_INPUT");
    assert_eq!(["k-before", "k-in-1", "k-in-2", "k-after"].map(calls), [1, 1, 1, 1], "nothing replayed by a refusal");

    let n = t.api.data(REPLAY_D, window).await["replayDeliveries"].clone();
    assert_eq!(n, 2);
    for id in [&in1, &in2] {
        while state_of(id.clone()).await != json!({"state": "SUCCEEDED", "attemptCount": 2}) {
            assert!(Instant::now() < deadline + Duration::from_secs(30), "never delivered again");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert_eq!(
        ["k-before", "k-in-1", "k-in-2", "k-after"].map(calls),
        [1, 2, 2, 1],
        "the window's two, again, same keys"
    );
    for id in [&before, &after] {
        assert_eq!(state_of(id.clone()).await["attemptCount"], 1);
    }
}
