//! Subscriptions over graphql-transport-ws: `alarmChanged` and `deviceChanged` reach the
//! subscribers of their tenant only; a subscription needs a valid token; and with Redis a
//! change made through one server process reaches subscribers of another.

use crate::utils::child::Child;
use crate::utils::{Client, TenantFixture, TestApp, USER_PASSWORD, spawn_app, tenant_with_admin, unique};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long a message that must come may take (a bound, not a performance claim).
const WAIT: Duration = Duration::from_secs(20);
/// How long a subscriber that must hear nothing is listened to.
const QUIET: Duration = Duration::from_millis(500);

const ALARM_SUB: &str = "subscription{ alarmChanged{ action alarm{ id kind state severity occurrences deviceId } } }";
const DEVICE_SUB: &str = "subscription{ deviceChanged{ id name externalId homeId } }";

async fn report(api: &Client, device: &str, kind: &str, severity: &str) -> String {
    let d = api
        .data(
            "mutation($d:ID!,$k:String!,$s:AlarmSeverity!){ reportAlarm(input:{deviceId:$d, kind:$k, severity:$s}){ id } }",
            json!({"d": device, "k": kind, "s": severity}),
        )
        .await;
    d["reportAlarm"]["id"].as_str().expect("alarm id").to_owned()
}

async fn upsert(api: &Client, integration: &str, external: &str, name: &str) -> String {
    api.device(integration, external, "GANTRY_CABINET", name, json!({})).await
}

async fn act(api: &Client, mutation: &str, alarm: &str) {
    let q = format!("mutation($id:ID!){{ {mutation}(id:$id){{ id }} }}");
    api.data(&q, json!({"id": alarm})).await;
}

/// One graphql-transport-ws connection.
struct Ws {
    socket: Socket,
}

impl Ws {
    /// Connects and sends `connection_init` with `payload`; returns the server's first answer.
    async fn connect(base: &str, payload: Value) -> (Self, Value) {
        let url = format!("{base}/graphql/ws").replacen("http://", "ws://", 1);
        let mut req = url.into_client_request().expect("request");
        req.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().expect("header"));
        let (socket, resp) = tokio_tungstenite::connect_async(req).await.expect("websocket");
        assert_eq!(
            resp.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok()),
            Some("graphql-transport-ws")
        );
        let mut ws = Self { socket };
        ws.send(json!({"type": "connection_init", "payload": payload})).await;
        let first = ws.recv(WAIT).await.expect("an answer to connection_init");
        (ws, first)
    }

    /// Connects, is acknowledged, and subscribes (`id` "1") to `query`.
    async fn subscribe(base: &str, payload: Value, query: &str) -> Self {
        let (mut ws, first) = Self::connect(base, payload).await;
        assert_eq!(first["type"], "connection_ack", "{first}");
        ws.send(json!({"id": "1", "type": "subscribe", "payload": {"query": query}})).await;
        ws
    }

    async fn send(&mut self, v: Value) {
        self.socket.send(Message::text(v.to_string())).await.expect("send");
    }

    /// The next protocol message within `within` (pings answered, frames skipped); `None`
    /// when nothing came; a close frame comes back as `{"type": "close"}`.
    async fn recv(&mut self, within: Duration) -> Option<Value> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.socket.next()).await {
                Err(_) => return None,
                Ok(None) => return Some(json!({"type": "close"})),
                Ok(Some(Err(e))) => panic!("websocket error: {e}"),
                Ok(Some(Ok(Message::Text(t)))) => {
                    let v: Value = serde_json::from_str(t.as_str()).expect("JSON message");
                    if v["type"] == "ping" {
                        self.send(json!({"type": "pong"})).await;
                        continue;
                    }
                    return Some(v);
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return Some(json!({"type": "close", "frame": format!("{frame:?}")}));
                }
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// The `data` of the next `next` message of subscription "1", if one comes in `within`.
    async fn next_data(&mut self, within: Duration) -> Option<Value> {
        let m = self.recv(within).await?;
        assert_eq!(m["type"], "next", "{m}");
        assert_eq!(m["id"], "1", "{m}");
        assert!(m["payload"].get("errors").is_none(), "{m}");
        Some(m["payload"]["data"].clone())
    }

    /// Waits for the change of `entity` (by id under `field`), skipping changes of `skip`.
    async fn expect(&mut self, field: &str, entity: &str, skip: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let data = self.next_data(left).await.unwrap_or_else(|| panic!("no change of {entity} arrived"));
            let got = if field == "alarmChanged" { &data[field]["alarm"]["id"] } else { &data[field]["id"] };
            if got == entity {
                return data[field].clone();
            }
            assert_eq!(got, skip, "an unexpected change: {data}");
        }
    }

    /// Everything of subscription "1" heard within `QUIET`.
    async fn heard(&mut self) -> Vec<Value> {
        let deadline = Instant::now() + QUIET;
        let mut out = Vec::new();
        while let Some(d) = self.next_data(deadline.saturating_duration_since(Instant::now())).await {
            out.push(d);
        }
        out
    }
}

/// Repeats an alarm on `device` through `api` until `ws` hears of it (subscriptions and the
/// Redis relay start asynchronously); returns that alarm's id.
async fn alarms_live(ws: &mut Ws, api: &Client, token: &str, device: &str) -> String {
    for _ in 0..40 {
        let id = report(&api.as_user(token), device, "WARM_UP", "INFO").await;
        if let Some(d) = ws.next_data(Duration::from_millis(500)).await {
            assert_eq!(d["alarmChanged"]["alarm"]["id"], json!(id), "{d}");
            return id;
        }
    }
    panic!("the alarm subscription never delivered");
}

/// The same for `deviceChanged`: upserts a warm-up device until `ws` hears of it.
async fn devices_live(ws: &mut Ws, api: &Client, token: &str, integration: &str) -> String {
    for n in 0..40 {
        let id = upsert(&api.as_user(token), integration, "warm-up", &format!("warm-up {n}")).await;
        if let Some(d) = ws.next_data(Duration::from_millis(500)).await {
            assert_eq!(d["deviceChanged"]["id"], json!(id), "{d}");
            return id;
        }
    }
    panic!("the device subscription never delivered");
}

fn bearer(token: &str) -> Value {
    json!({"Authorization": format!("Bearer {token}")})
}

async fn member(app: &TestApp, t: &TenantFixture, role: &str) -> String {
    let email = format!("{}-{}@{}.example.com", role.to_lowercase(), unique(), t.slug);
    app.create_user(&t.admin_token, &t.id, &email, USER_PASSWORD, role).await;
    app.login(&email, USER_PASSWORD).await
}

/// A tenant with an ETC gantry integration and one device: (integration, device).
async fn equipped(t: &TenantFixture) -> (String, String) {
    let input = json!({"kind": "ETC_GANTRY", "name": "gantry", "settings": {}, "credentials": {"authCode": format!("a-{}", unique())}});
    let integ = t.api.integration(input).await.id;
    let device = upsert(&t.api, &integ, "cab-1", "Cabinet").await;
    (integ, device)
}

#[tokio::test]
async fn alarm_changes_reach_the_subscribers_of_their_tenant_only() {
    let app = spawn_app().await;
    let api = app.anon();
    let root = app.admin_token().await;
    let a = tenant_with_admin(&app, &root).await;
    let b = tenant_with_admin(&app, &root).await;
    let (_, a_dev) = equipped(&a).await;
    let (_, b_dev) = equipped(&b).await;
    let a_op = member(&app, &a, "OPERATOR").await;
    let b_viewer = member(&app, &b, "VIEWER").await;

    // A's operator with `Authorization`, B's viewer with the `token` form.
    let mut on_a = Ws::subscribe(&app.base, bearer(&a_op), ALARM_SUB).await;
    let mut on_b = Ws::subscribe(&app.base, json!({"token": b_viewer}), ALARM_SUB).await;
    let a_warm = alarms_live(&mut on_a, &api, &a.admin_token, &a_dev).await;
    let b_warm = alarms_live(&mut on_b, &api, &b.admin_token, &b_dev).await;

    // Each step of A's alarm reaches A's subscriber, in order.
    let admin = a.admin_token.as_str();
    let alarm = report(&api.as_user(admin), &a_dev, "LOCK_TAMPER", "MAJOR").await;
    let c = on_a.expect("alarmChanged", &alarm, &a_warm).await;
    assert_eq!(c["action"], "RAISED", "{c}");
    assert_eq!(c["alarm"]["kind"], "LOCK_TAMPER");
    assert_eq!(c["alarm"]["state"], "RAISED");
    assert_eq!(c["alarm"]["deviceId"], json!(a_dev));
    assert_eq!(report(&api.as_user(admin), &a_dev, "LOCK_TAMPER", "CRITICAL").await, alarm);
    let c = on_a.expect("alarmChanged", &alarm, &a_warm).await;
    assert_eq!(c["action"], "REPEATED", "{c}");
    assert_eq!(c["alarm"]["occurrences"], 2);
    assert_eq!(c["alarm"]["severity"], "CRITICAL");
    act(&api.as_user(admin), "acknowledgeAlarm", &alarm).await;
    let c = on_a.expect("alarmChanged", &alarm, &a_warm).await;
    assert_eq!(c["action"], "ACKNOWLEDGED", "{c}");
    assert_eq!(c["alarm"]["state"], "ACKNOWLEDGED");
    api.as_user(admin)
        .data("mutation($id:ID!){ commentAlarm(id:$id, text:\"on it\"){ id } }", json!({"id": alarm}))
        .await;
    let c = on_a.expect("alarmChanged", &alarm, &a_warm).await;
    assert_eq!(c["action"], "COMMENTED", "{c}");
    act(&api.as_user(admin), "clearAlarm", &alarm).await;
    let c = on_a.expect("alarmChanged", &alarm, &a_warm).await;
    assert_eq!(c["action"], "CLEARED", "{c}");
    assert_eq!(c["alarm"]["state"], "CLEARED");

    // B's subscriber, live all along, heard nothing of A: at most its own warm-up repeats.
    let heard = on_b.heard().await;
    for d in &heard {
        assert_eq!(d["alarmChanged"]["alarm"]["id"], json!(b_warm), "tenant B heard of another tenant: {d}");
    }
    // ...while it does hear its own tenant.
    let b_alarm = report(&api.as_user(&b.admin_token), &b_dev, "LOCK_TAMPER", "MINOR").await;
    let c = on_b.expect("alarmChanged", &b_alarm, &b_warm).await;
    assert_eq!(c["action"], "RAISED");
    let heard = on_a.heard().await;
    for d in &heard {
        assert_eq!(d["alarmChanged"]["alarm"]["id"], json!(a_warm), "tenant A heard of another tenant: {d}");
    }
}

#[tokio::test]
async fn device_changes_reach_the_subscribers_of_their_tenant_only() {
    let app = spawn_app().await;
    let api = app.anon();
    let root = app.admin_token().await;
    let a = tenant_with_admin(&app, &root).await;
    let b = tenant_with_admin(&app, &root).await;
    let (a_integ, _) = equipped(&a).await;
    let (b_integ, _) = equipped(&b).await;
    let a_viewer = member(&app, &a, "VIEWER").await;

    let mut on_a = Ws::subscribe(&app.base, bearer(&a_viewer), DEVICE_SUB).await;
    let mut on_b = Ws::subscribe(&app.base, bearer(&b.admin_token), DEVICE_SUB).await;
    let a_warm = devices_live(&mut on_a, &api, &a.admin_token, &a_integ).await;
    let b_warm = devices_live(&mut on_b, &api, &b.admin_token, &b_integ).await;

    let dev = upsert(&api.as_user(&a.admin_token), &a_integ, "cab-77", "East cabinet").await;
    let d = on_a.expect("deviceChanged", &dev, &a_warm).await;
    assert_eq!(d["name"], "East cabinet");
    assert_eq!(d["externalId"], "cab-77");
    assert_eq!(upsert(&api.as_user(&a.admin_token), &a_integ, "cab-77", "East cabinet (moved)").await, dev);
    let d = on_a.expect("deviceChanged", &dev, &a_warm).await;
    assert_eq!(d["name"], "East cabinet (moved)", "the change carries the device as it is now");

    for d in on_b.heard().await {
        assert_eq!(d["deviceChanged"]["id"], json!(b_warm), "tenant B heard of another tenant: {d}");
    }
}

#[tokio::test]
async fn a_subscription_needs_a_valid_token_of_a_tenant_user() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    // The handshake is acknowledged whatever the payload; the subscription itself is refused.
    for (payload, code) in [
        (json!({}), "UNAUTHENTICATED"),
        (json!({"Authorization": "Bearer not-a-token"}), "UNAUTHENTICATED"),
        (json!({"token": "not-a-token"}), "UNAUTHENTICATED"),
        (bearer(&root), "FORBIDDEN"),
    ] {
        for query in [ALARM_SUB, DEVICE_SUB] {
            let (mut ws, first) = Ws::connect(&app.base, payload.clone()).await;
            assert_eq!(first["type"], "connection_ack", "{first}");
            ws.send(json!({"id": "1", "type": "subscribe", "payload": {"query": query}})).await;
            let m = ws.recv(WAIT).await.expect("an answer to subscribe");
            assert_eq!(m["type"], "next", "{payload}: {m}");
            assert_eq!(m["payload"]["data"], Value::Null, "{m}");
            assert_eq!(m["payload"]["errors"][0]["extensions"]["code"], code, "{payload}: {m}");
            let end = ws.recv(WAIT).await.expect("the end of the subscription");
            assert_eq!(end["type"], "complete", "{end}");
            assert_eq!(end["id"], "1");
        }
    }
    // Invalid subscriptions over WebSocket carry a code like every other error.
    let t = tenant_with_admin(&app, &root).await;
    let (mut ws, first) = Ws::connect(&app.base, bearer(&t.admin_token)).await;
    assert_eq!(first["type"], "connection_ack", "{first}");
    ws.send(json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { alarmChanged { nope } }"}}))
        .await;
    let m = ws.recv(WAIT).await.expect("an answer to an invalid subscribe");
    let errors = if m["type"] == "error" { &m["payload"] } else { &m["payload"]["errors"] };
    assert_eq!(errors[0]["extensions"]["code"], "BAD_USER_INPUT", "{m}");
}

#[tokio::test]
async fn with_redis_a_change_made_on_one_process_reaches_subscribers_of_another() {
    let Some(redis) = std::env::var("TEST_REDIS_URL").ok().filter(|u| !u.is_empty()) else {
        eprintln!("skipped: TEST_REDIS_URL is not set (two processes only share changes through Redis)");
        return;
    };
    let app = spawn_app().await;
    let one = app.anon();
    let mut child = Child::start(&app, "serve", &[("REDIS_URL", redis.clone())]);
    child.wait_ready().await;
    let two = Client::new(app.http.clone(), &child.base);

    let root = app.admin_token().await;
    let a = tenant_with_admin(&app, &root).await;
    let (_, dev) = equipped(&a).await;
    let op = member(&app, &a, "OPERATOR").await;
    let admin = a.admin_token.as_str();
    // Tokens issued by one process are good on the other: same key, same database.
    let me = two.as_user(&op).data("{ me { role tenantId } }", json!({})).await;
    assert_eq!(me["me"]["tenantId"], json!(a.id));

    // Subscribed on process 2, raised through process 1.
    let mut on_two = Ws::subscribe(&child.base, bearer(&op), ALARM_SUB).await;
    let warm_two = alarms_live(&mut on_two, &one, admin, &dev).await;
    let alarm = report(&one.as_user(admin), &dev, "ELEVATOR_FAULT", "CRITICAL").await;
    let c = on_two.expect("alarmChanged", &alarm, &warm_two).await;
    assert_eq!(c["action"], "RAISED", "{c}");
    assert_eq!(c["alarm"]["state"], "RAISED");

    // Subscribed on process 1, acted on through process 2: both subscribers hear it.
    let mut on_one = Ws::subscribe(&app.base, bearer(&op), ALARM_SUB).await;
    let warm_one = alarms_live(&mut on_one, &two, admin, &dev).await;
    assert_eq!(warm_one, warm_two, "the same open warm-up alarm, repeated");
    act(&two.as_user(admin), "acknowledgeAlarm", &alarm).await;
    for ws in [&mut on_one, &mut on_two] {
        let c = ws.expect("alarmChanged", &alarm, &warm_one).await;
        assert_eq!(c["action"], "ACKNOWLEDGED", "{c}");
        assert_eq!(c["alarm"]["state"], "ACKNOWLEDGED");
    }
    let other = report(&two.as_user(admin), &dev, "ELEVATOR_DOOR_FAULT", "MINOR").await;
    let c = on_one.expect("alarmChanged", &other, &warm_one).await;
    assert_eq!(c["action"], "RAISED", "{c}");
    assert_eq!(c["alarm"]["kind"], "ELEVATOR_DOOR_FAULT");
    drop(child);
}

/// A change that starts from a vendor callback (a Dingding lock reporting its battery)
/// reaches subscribers the way one made through GraphQL does: the same event, carrying the
/// device as it is now.
#[tokio::test]
async fn a_dingding_originated_device_change_emits_the_same_event_as_a_graphql_one() {
    const SUB: &str = "subscription{ deviceChanged{ id name externalId homeId battery } }";
    let s = crate::e2e_dingding::setup().await;
    let api = s.app.anon();
    let token = s.tenant.admin_token.clone();
    let (etc, _) = equipped(&s.tenant).await;
    let mut ws = Ws::subscribe(&s.app.base, bearer(&token), SUB).await;
    let warm = devices_live(&mut ws, &api, &token, &etc).await;

    let lock = s.device("sub-lock-1", "LOCK", json!({})).await;
    let from_graphql = ws.expect("deviceChanged", &lock, &warm).await;
    assert_eq!(from_graphql["externalId"], "sub-lock-1", "{from_graphql}");

    let body = json!({"event": "batteryAsync", "time": chrono::Utc::now().timestamp_millis(), "uuid": "sub-lock-1",
                      "home_id": "dd-h", "detail": {"battery": "42"}});
    assert_eq!(s.callback(body).await, (200, json!({"ErrNo": 0, "ErrMsg": "ok"})));
    let from_callback = ws.expect("deviceChanged", &lock, &warm).await;
    assert_eq!(from_callback["battery"], 42, "the change carries the device as the callback left it");
    let same = |v: &Value| json!([v["id"], v["name"], v["externalId"], v["homeId"]]);
    assert_eq!(same(&from_callback), same(&from_graphql), "the same event as a GraphQL change");
}
