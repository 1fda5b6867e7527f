//! Dingding (`PROTOCOLS.md` 3) against an in-process fake Dingding that checks the token,
//! decrypts `encrypted_password` with the token's first 16 bytes, checks request shapes,
//! and against signed callbacks sent to the running server (each at least twice).

use crate::utils::{TenantFixture, TestApp, spawn_app, tenant_with_admin, unique};
use adapters::vendors::dingding::sign;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method};
use axum::routing::any;
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CLIENT_ID: &str = "cid-test";
const CLIENT_SECRET: &str = "csecret-test";

/// One call the fake received: interface, parameters (token removed), the decrypted
/// password if one was sent, and the token used.
#[derive(Debug, Clone)]
pub struct Call {
    pub name: String,
    pub params: Map<String, Value>,
    pub password: Option<String>,
    pub token: String,
}

#[derive(Default)]
struct Inner {
    tokens: Vec<String>,
    valid: Vec<String>,
    calls: Vec<Call>,
    /// The next business call is answered ErrNo 102 and its token revoked.
    expire_next: bool,
    next_password_id: i64,
    next_service: i64,
    rejected: Vec<String>,
}

/// The fake Dingding open API.
#[derive(Clone, Default)]
pub struct FakeDingding {
    inner: Arc<Mutex<Inner>>,
}

impl FakeDingding {
    pub fn calls(&self, name: &str) -> Vec<Call> {
        self.inner.lock().expect("lock").calls.iter().filter(|c| c.name == name).cloned().collect()
    }
    pub fn token_count(&self) -> usize {
        self.inner.lock().expect("lock").tokens.len()
    }
    pub fn expire_next(&self) {
        self.inner.lock().expect("lock").expire_next = true;
    }
    /// Requests the fake refused for their shape (must stay empty).
    pub fn rejected(&self) -> Vec<String> {
        self.inner.lock().expect("lock").rejected.clone()
    }
}

fn err(no: i64, msg: &str) -> Json<Value> {
    Json(json!({"ErrNo": no, "ErrMsg": msg}))
}

fn ok(mut v: Value) -> Json<Value> {
    v["ErrNo"] = json!(0);
    v["ErrMsg"] = json!("");
    Json(v)
}

/// Fields each state-changing interface must carry (seed 002).
fn required(name: &str) -> &'static [&'static str] {
    match name {
        "add_home" => &["home_id", "home_name", "country", "city", "zone", "location", "block"],
        "add_room" => &["home_id", "room_id", "room_name", "room_description"],
        "add_password" => &["uuid", "encrypted_password", "name", "is_default"],
        "update_password" => &["uuid", "password_id", "encrypted_password", "name"],
        "delete_password" | "frozen_password" | "unfrozen_password" => &["uuid", "password_id"],
        "add_password_without_center" => &["uuid", "phonenummer", "CMD", "name"],
        "add_ticket" => &["home_id", "service_target", "service_type", "room_ids", "subscribe"],
        "update_ticket_state" => &["ticket_id", "ticket_state"],
        "elemeter_switch_on" | "elemeter_switch_off" | "elemeter_read" => &["uuid"],
        "elemeter_charge" => &["uuid", "amount", "trade_num"],
        "elemeter_update_overdraft" => &["uuid", "overdraft"],
        "elemeter_set_eleprice_way" => &["uuid", "eleprice_way"],
        "read_watermeter" => &["uuid", "manufactory"],
        "auth_room" | "unauth_room" => &["phone", "home_id", "room_ids"],
        _ => &[],
    }
}

async fn fake_endpoint(
    State(f): State<FakeDingding>,
    Path((version, name)): Path<(String, String)>,
    method: Method,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Json<Value> {
    let mut params: Map<String, Value> = if method == Method::POST {
        let json_ct = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("application/json"));
        if !json_ct {
            return err(14001, "Content-Type must be application/json");
        }
        match serde_json::from_slice(&body) {
            Ok(Value::Object(m)) => m,
            _ => return err(14001, "body must be a JSON object"),
        }
    } else {
        query.into_iter().map(|(k, v)| (k, Value::String(v))).collect()
    };
    let mut g = f.inner.lock().expect("lock");
    if name == "access_token" {
        if params.get("client_id") != Some(&json!(CLIENT_ID))
            || params.get("client_secret") != Some(&json!(CLIENT_SECRET))
        {
            return err(14001, "bad client");
        }
        let token = format!("t{:02}x{}", g.tokens.len(), "0123456789abcdefghij");
        g.tokens.push(token.clone());
        g.valid.push(token.clone());
        let expires = chrono::Utc::now().timestamp() + 7200;
        return ok(json!({"access_token": token, "expires_time": expires}));
    }
    let v2 = matches!(name.as_str(), "auth_room" | "unauth_room" | "app_token");
    if (version == "v2") != v2 {
        g.rejected.push(format!("{name} on {version}"));
        return err(15007, "wrong version");
    }
    let token = params.remove("access_token").and_then(|t| t.as_str().map(str::to_owned)).unwrap_or_default();
    if !g.valid.contains(&token) {
        return err(101, "token invalid");
    }
    if g.expire_next {
        g.expire_next = false;
        g.valid.retain(|t| *t != token);
        return err(102, "token expired");
    }
    for field in required(&name) {
        if params.get(*field).is_none_or(Value::is_null) {
            g.rejected.push(format!("{name} without {field}"));
            return err(14001, "missing parameter");
        }
    }
    if params.contains_key("password") {
        g.rejected.push(format!("{name} with a plaintext password"));
        return err(14001, "plaintext password");
    }
    let password = match params.get("encrypted_password").and_then(Value::as_str) {
        Some(ct) => match sign::decrypt_password(&token, ct) {
            Ok(p) => Some(p),
            Err(_) => {
                g.rejected.push(format!("{name} with an undecryptable password"));
                return err(14001, "cannot decrypt");
            }
        },
        None => None,
    };
    g.calls.push(Call { name: name.clone(), params: params.clone(), password, token });
    match name.as_str() {
        "add_password" => {
            g.next_password_id += 1;
            ok(json!({"id": 1000 + g.next_password_id}))
        }
        "add_password_without_center" => ok(json!({"id": "3025", "password": "654321", "code": "7788990011"})),
        n if (n.starts_with("elemeter_") && !["fetch", "count", "query", "get_"].iter().any(|w| n.contains(w)))
            || n == "read_watermeter" =>
        {
            g.next_service += 1;
            ok(json!({"serviceid": format!("svc-{}", g.next_service)}))
        }
        "search_home_info" => {
            let offset = params.get("offset").and_then(Value::as_str).unwrap_or("0");
            if offset != "0" {
                return ok(json!({"home_list": []}));
            }
            ok(json!({"home_list": [{
                "home_id": "dd-home-1", "home_name": "FYBJ1607050013", "home_type": 1, "country": "中国",
                "city": "北京市", "zone": "昌平区", "block": "西环里小区", "location": "27号楼3单元602室",
                "rooms": [{"room_name": "A", "room_id": "dd-room-a"}],
                "devices": []
            }]}))
        }
        "find_home_devices" => ok(json!({"result": {"dd-home-1": [
            {"type": "gateway", "sn": "cnjl0003", "uuid": "sync-gw", "room_id": ""},
            {"type": "room_lock", "sn": "lkjl0007", "uuid": "sync-lock", "room_id": "dd-room-a"},
            {"type": "elemeter", "sn": "em01", "uuid": "sync-meter", "room_id": "dd-room-a"},
            {"type": "watermeter", "sn": "wm01", "uuid": "sync-water", "room_id": "dd-room-a", "manufactory": "cy"}
        ]}})),
        "get_center_info" => ok(json!({"uuid": "sync-gw", "sn": "cnjl0003", "onoff_line": 1, "name": "gateway 5462",
            "versions": {"app_version": "0.1.4.12"}})),
        "get_lock_info" => {
            ok(json!({"uuid": "sync-lock", "sn": "lkjl0007", "onoff_line": "2", "power": "64", "lqi": 117,
            "name": "lock 602", "center_uuid": "sync-gw", "versions": {"kernel_version": "0.0.3.0"}}))
        }
        "get_elemeter_info" => {
            ok(json!({"uuid": "sync-meter", "onoff_line": 1, "name": "meter", "consume_amount": "12.5",
            "enable_state": 1, "versions": {"elemeter_potocol_version": "07"}}))
        }
        "get_watermeter_info" => {
            ok(json!({"info": {"uuid": "sync-water", "onoff": 1, "manufactory": "cy", "meter_type": 1}}))
        }
        "fetch_passwords" => ok(json!({"passwords": [
            {"id": 999, "is_default": 1, "pwd_state": 2, "operation": 1, "operation_stage": 3, "name": "admin",
             "send_to": "", "permission": {"begin": 0, "end": 0, "status": 1}},
            {"id": "1002", "is_default": 0, "pwd_state": "5", "operation": 4, "operation_stage": 2, "description": "5108",
             "name": "tenant", "send_to": "13800000000", "permission": {"begin": 1700000000, "end": 1900000000, "status": 2}}
        ]})),
        "get_default_password_plaintext" => ok(json!({"password": "112233"})),
        "get_dynamic_password_plaintext" => ok(json!({"password": "445566", "invalid_time": 1900000000000i64})),
        "get_lock_events" => ok(
            json!({"lock_events": [{"time": 1467785486059i64, "eventid": 1, "source": 2, "sourceid": 1001, "source_name": "tenant"}]}),
        ),
        "count_lock_events" | "count_device_op_log" | "device_count_exceptions" | "elemeter_count_power_history" => {
            ok(json!({"count": 1}))
        }
        "search_device_op_log" => ok(json!({"op_list": [{"op_id": "20001", "timestamp": 1467785486059i64}]})),
        "device_fetch_exceptions" => {
            ok(json!({"device_exceptions": [{"type": 9106, "uuid": "x", "time": 1497507613599i64}]}))
        }
        "elemeter_fetch_power_history" => ok(json!({"history": [{"consume_amount": 0.16, "time": 1460801268345i64}]})),
        "elemeter_charge_query" => ok(json!({"charge_stage": 3})),
        "get_meter_record" => ok(
            json!({"records": [{"type": 1, "uuid": "wm", "manufactory": "cy", "device_amount": 7, "ctime": "2017-04-26T06:57:53.027Z", "room_amount": 7}]}),
        ),
        "count_meter_record" => ok(json!({"count": 1})),
        "app_token" => ok(json!({"token": "app-token-1"})),
        "get_ticket_by_home" if params.get("service_type").and_then(Value::as_str) == Some("2") => {
            ok(json!({"home_ticket_list": [{
                "ticket_id": "20160511_81299", "ticket_state": 3, "service_type": 2, "service_target": 1,
                "relate_home": {"home_id": "dd-home-1", "rooms": [{"room_id": "dd-room-a", "room_name": "A"}]},
                "ticket_description": "维修",
                "confirm": {"name": "测试", "phone": "18588787458", "date": 1464998400000i64, "time": "102", "note": "测试"}
            }]}))
        }
        "get_ticket_by_home" => err(15006, "no record"),
        _ => ok(json!({})),
    }
}

/// Starts the fake on 127.0.0.1; answers its base URL.
pub async fn start_fake() -> (FakeDingding, String) {
    let fake = FakeDingding::default();
    let app = Router::new().route("/openapi/{version}/{name}", any(fake_endpoint)).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (fake, format!("http://{addr}"))
}

pub struct Setup {
    pub app: TestApp,
    pub fake: FakeDingding,
    pub tenant: TenantFixture,
    pub integration: String,
    pub hook_url: String,
}

pub async fn setup() -> Setup {
    let (fake, base) = start_fake().await;
    let app = spawn_app().await;
    let platform = app.admin_token().await;
    let tenant = tenant_with_admin(&app, &platform).await;
    let r = app
        .configure_integration(
            &tenant.admin_token,
            json!({"kind": "DINGDING", "name": format!("dd-{}", unique()), "settings": {"baseUrl": base},
                   "credentials": {"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET}}),
        )
        .await;
    let integration = r.data()["configureIntegration"]["id"].as_str().expect("id").to_owned();
    let hook_url = r.data()["configureIntegration"]["hookUrl"].as_str().expect("hookUrl").to_owned();
    assert_eq!(hook_url, format!("https://linkyard.test/hooks/{integration}/dingding"));
    Setup { app, fake, tenant, integration, hook_url }
}

impl Setup {
    pub async fn gql(&self, query: &str, vars: Value) -> crate::utils::Gql {
        self.app.gql(Some(&self.tenant.admin_token), query, vars).await
    }

    pub async fn device(&self, uuid: &str, kind: &str, attributes: Value) -> String {
        let r = self
            .gql(
                "mutation($i:UpsertDeviceInput!){ upsertDevice(input:$i){ id } }",
                json!({"i": {"integrationId": self.integration, "externalId": uuid, "kind": kind, "name": uuid, "attributes": attributes}}),
            )
            .await;
        r.data()["upsertDevice"]["id"].as_str().expect("device id").to_owned()
    }

    /// Signs `body` for the integration's hook URL and posts it; answers status and body.
    pub async fn callback(&self, body: Value) -> (u16, Value) {
        let raw = body.to_string();
        let s = sign::callback_sign(&self.hook_url, &raw).expect("sign");
        let mut signed = body;
        signed["sign"] = json!(s);
        self.post_raw(signed.to_string()).await
    }

    pub async fn post_raw(&self, raw: String) -> (u16, Value) {
        let resp = self
            .app
            .http
            .post(self.app.url(&format!("/hooks/{}/dingding", self.integration)))
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .expect("callback");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Sends the callback twice, asserting the documented answer both times.
    pub async fn callback_twice(&self, body: Value) {
        for _ in 0..2 {
            let (status, answer) = self.callback(body.clone()).await;
            assert_eq!(status, 200, "{body} -> {answer}");
            assert_eq!(answer, json!({"ErrNo": 0, "ErrMsg": "ok"}));
        }
    }

    pub async fn inbound(&self) -> Vec<Value> {
        let r = self
            .gql(
                "query($i:ID){ inboundEvents(filter:{integrationId:$i}, first:100){ totalCount edges { node { kind dedupKey state body error } } } }",
                json!({"i": self.integration}),
            )
            .await;
        r.data()["inboundEvents"]["edges"].as_array().expect("edges").iter().map(|e| e["node"].clone()).collect()
    }

    pub async fn alarms(&self, device: &str) -> Vec<Value> {
        let r = self
            .gql(
                "query($d:ID){ alarms(filter:{deviceId:$d}, first:100){ edges { node { kind severity state occurrences } } } }",
                json!({"d": device}),
            )
            .await;
        r.data()["alarms"]["edges"].as_array().expect("edges").iter().map(|e| e["node"].clone()).collect()
    }

    pub async fn device_state(&self, id: &str) -> Value {
        let r = self
            .gql(
                "query($d:ID!){ device(id:$d){ id externalId online battery signal homeId roomId attributes latest } }",
                json!({"d": id}),
            )
            .await;
        r.data()["device"].clone()
    }

    pub async fn readings(&self, id: &str, metric: &str) -> Vec<Value> {
        let r = self
            .gql(
                "query($d:ID!,$m:String){ device(id:$d){ readings(last:50, metric:$m){ metric value } } }",
                json!({"d": id, "m": metric}),
            )
            .await;
        r.data()["device"]["readings"].as_array().expect("readings").clone()
    }
}

/// Polls `check` until it answers true (at most 15 s).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..150 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

const PASSWORD_FIELDS: &str = "id passwordId kind name phone pwdState operation stage error";

async fn password(s: &Setup, id: &str) -> Value {
    let q = format!("query($i:ID!){{ lockPassword(id:$i){{ {PASSWORD_FIELDS} }} }}");
    s.gql(&q, json!({"i": id})).await.data()["lockPassword"].clone()
}

#[tokio::test]
async fn lock_passwords_go_out_encrypted_and_follow_the_locks_results() {
    let s = setup().await;
    let lock = s.device("lock-uuid-1", "LOCK", json!({})).await;
    let add = format!("mutation($i:AddLockPasswordInput!){{ addLockPassword(input:$i){{ {PASSWORD_FIELDS} }} }}");
    let r = s
        .gql(
            &add,
            json!({"i": {"deviceId": lock, "password": "123456", "name": "Li Bai", "phone": "13800000000",
                         "beginsAt": "2026-01-01T00:00:00Z", "endsAt": "2036-01-01T00:00:00Z"}}),
        )
        .await;
    let p = r.data()["addLockPassword"].clone();
    assert_eq!(p["stage"], "PENDING");
    assert_eq!(p["operation"], "ADD");
    let pid = p["id"].as_str().expect("id").to_owned();

    // The fake decrypted the digits with the token's first 16 bytes.
    let fake = s.fake.clone();
    eventually("add_password", || {
        let fake = fake.clone();
        async move { !fake.calls("add_password").is_empty() }
    })
    .await;
    let call = s.fake.calls("add_password").remove(0);
    assert_eq!(call.password.as_deref(), Some("123456"));
    assert_eq!(call.params["uuid"], "lock-uuid-1");
    assert_eq!(call.params["name"], "Li Bai");
    assert_eq!(call.params["phonenummer"], "13800000000");
    assert_eq!(call.params["permission_begin"], json!(1_767_225_600));
    assert_eq!(call.params["is_default"], json!(0));
    eventually("the password id", || async { password(&s, &pid).await["passwordId"] == json!(1001) }).await;

    // Nothing secret in the delivery or its attempts.
    let deliveries = "query($i:ID){ deliveries(filter:{integrationId:$i, kind:\"dingding.add_password\"}){ edges { node { payload state attempts { request } } } } }";
    eventually("the delivery succeeded", || async {
        s.gql(deliveries, json!({"i": s.integration})).await.data()["deliveries"]["edges"][0]["node"]["state"]
            == "SUCCEEDED"
    })
    .await;
    let shown = s.gql(deliveries, json!({"i": s.integration})).await.raw;
    assert!(shown.contains("SUCCEEDED"), "{shown}");
    assert!(!shown.contains("123456"), "plaintext in deliveries: {shown}");
    assert!(!shown.contains(&call.token), "token in deliveries: {shown}");

    // The lock's result (twice: Dingding retries) moves it to SUCCEEDED once.
    let result = json!({"service": "Password_Add_Service", "serviceid": 9001, "uuid": "lock-uuid-1",
                        "result": {"id": "1001", "ErrNo": 1000}});
    s.callback_twice(result).await;
    let p = password(&s, &pid).await;
    assert_eq!((p["stage"].as_str(), p["pwdState"].as_str()), (Some("SUCCEEDED"), Some("EFFECTIVE")));

    // Freeze: the lock refuses with 5104; the error text of 3.2 is kept.
    let r = s
        .gql(&format!("mutation($i:ID!){{ freezeLockPassword(id:$i){{ {PASSWORD_FIELDS} }} }}"), json!({"i": pid}))
        .await;
    assert_eq!(r.data()["freezeLockPassword"]["stage"], "PENDING");
    let again = s.gql("mutation($i:ID!){ freezeLockPassword(id:$i){ id } }", json!({"i": pid})).await;
    assert_eq!(again.code(), "CONFLICT", "an operation in progress");
    let fake = s.fake.clone();
    eventually("frozen_password", || {
        let fake = fake.clone();
        async move { !fake.calls("frozen_password").is_empty() }
    })
    .await;
    assert_eq!(s.fake.calls("frozen_password")[0].params["password_id"], json!(1001));
    s.callback_twice(json!({"service": "Password_Frozen_Service", "serviceid": "9002", "uuid": "lock-uuid-1",
                            "result": {"id": 1001, "ErrNo": "5104"}}))
        .await;
    let p = password(&s, &pid).await;
    assert_eq!(p["stage"], "FAILED");
    assert!(p["error"].as_str().is_some_and(|e| e.starts_with("5104")), "{p}");

    // Freeze again, succeeding; then unfreeze; then update with new digits; then delete.
    for (op, service, state) in [
        ("freezeLockPassword", "Password_Frozen_Service", "FROZEN"),
        ("unfreezeLockPassword", "Password_Unfrozen_Service", "EFFECTIVE"),
    ] {
        s.gql(&format!("mutation($i:ID!){{ {op}(id:$i){{ id }} }}"), json!({"i": pid})).await.data();
        s.callback_twice(json!({"service": service, "serviceid": format!("{op}-1"), "uuid": "lock-uuid-1",
                                "result": {"id": 1001, "ErrNo": 1000}}))
            .await;
        let p = password(&s, &pid).await;
        assert_eq!((p["stage"].as_str(), p["pwdState"].as_str()), (Some("SUCCEEDED"), Some(state)), "{op}");
    }
    let upd = format!("mutation($i:UpdateLockPasswordInput!){{ updateLockPassword(input:$i){{ {PASSWORD_FIELDS} }} }}");
    s.gql(&upd, json!({"i": {"id": pid, "password": "654321", "name": "Du Fu"}})).await.data();
    let fake = s.fake.clone();
    eventually("update_password", || {
        let fake = fake.clone();
        async move { !fake.calls("update_password").is_empty() }
    })
    .await;
    let call = s.fake.calls("update_password").remove(0);
    assert_eq!((call.password.as_deref(), &call.params["password_id"]), (Some("654321"), &json!(1001)));
    s.callback_twice(json!({"service": "Password_Update_Service", "serviceid": "9005", "uuid": "lock-uuid-1",
                            "result": {"id": 1001, "ErrNo": 1000}}))
        .await;
    assert_eq!(password(&s, &pid).await["name"], "Du Fu");
    s.gql("mutation($i:ID!){ deleteLockPassword(id:$i){ id } }", json!({"i": pid})).await.data();
    s.callback_twice(json!({"service": "Password_Delete_Service", "serviceid": "9006", "uuid": "lock-uuid-1",
                            "result": {"id": 1001, "ErrNo": 1000}}))
        .await;
    let gone = s.gql("query($i:ID!){ lockPassword(id:$i){ id } }", json!({"i": pid})).await;
    assert_eq!(gone.code(), "NOT_FOUND");
    assert!(s.fake.rejected().is_empty(), "{:?}", s.fake.rejected());

    // Each service result stored once however often it came.
    let events = s.inbound().await;
    let services: Vec<_> =
        events.iter().filter(|e| e["kind"].as_str().is_some_and(|k| k.ends_with("_Service"))).collect();
    assert_eq!(services.len(), 6, "{events:?}");
    assert!(services.iter().all(|e| e["state"] == "PROCESSED"), "{services:?}");
}

#[tokio::test]
async fn the_sixth_password_add_in_two_minutes_is_refused_up_front() {
    let s = setup().await;
    let lock = s.device("lock-rate", "LOCK", json!({})).await;
    let add = "mutation($i:AddLockPasswordInput!){ addLockPassword(input:$i){ id } }";
    for n in 0..5 {
        let r = s
            .gql(add, json!({"i": {"deviceId": lock, "password": format!("12345{n}"), "name": format!("p{n}")}}))
            .await;
        r.data();
    }
    let r = s.gql(add, json!({"i": {"deviceId": lock, "password": "999999", "name": "sixth"}})).await;
    assert_eq!(r.code(), "RATE_LIMITED");
    assert!(r.body["errors"][0]["extensions"]["retryAfterSeconds"].as_u64().is_some_and(|s| s > 0 && s <= 120));
    let fake = s.fake.clone();
    eventually("five adds", || {
        let fake = fake.clone();
        async move { fake.calls("add_password").len() == 5 }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.fake.calls("add_password").len(), 5, "the sixth never went out");
    let listed = s.gql("query($d:ID!){ lockPasswords(deviceId:$d){ id } }", json!({"d": lock})).await;
    assert_eq!(listed.data()["lockPasswords"].as_array().map(Vec::len), Some(5));

    // Bad input gets BAD_USER_INPUT; another lock is not limited.
    let bad = s.gql(add, json!({"i": {"deviceId": lock, "password": "12ab", "name": "x"}})).await;
    assert_eq!(bad.code(), "BAD_USER_INPUT");
    let other = s.device("lock-rate-2", "LOCK", json!({})).await;
    s.gql(add, json!({"i": {"deviceId": other, "password": "111111", "name": "ok"}})).await.data();
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_and_the_call_repeated() {
    let s = setup().await;
    let lock = s.device("lock-token", "LOCK", json!({})).await;
    let add = "mutation($i:AddLockPasswordInput!){ addLockPassword(input:$i){ id } }";
    s.gql(add, json!({"i": {"deviceId": lock, "password": "135790", "name": "first"}})).await.data();
    let fake = s.fake.clone();
    eventually("first add", || {
        let fake = fake.clone();
        async move { fake.calls("add_password").len() == 1 }
    })
    .await;
    assert_eq!(s.fake.token_count(), 1, "the token is cached");
    s.fake.expire_next();
    s.gql(add, json!({"i": {"deviceId": lock, "password": "246801", "name": "second"}})).await.data();
    let fake = s.fake.clone();
    eventually("second add", || {
        let fake = fake.clone();
        async move { fake.calls("add_password").len() == 2 }
    })
    .await;
    let calls = s.fake.calls("add_password");
    assert_eq!(s.fake.token_count(), 2, "one refresh");
    assert_ne!(calls[0].token, calls[1].token);
    assert_eq!(calls[1].password.as_deref(), Some("246801"), "encrypted with the new token");
    // Reads refresh too: revoke, then read.
    s.fake.expire_next();
    let r =
        s.gql("mutation($d:ID!){ revealLockPassword(deviceId:$d, which:ADMIN){ password } }", json!({"d": lock})).await;
    assert_eq!(r.data()["revealLockPassword"]["password"], "112233");
    assert_eq!(s.fake.token_count(), 3);
}

#[tokio::test]
async fn callbacks_with_a_bad_sign_or_body_are_refused_and_not_stored() {
    let s = setup().await;
    s.device("lock-sign", "LOCK", json!({})).await;
    let body = json!({"event": "batteryAlarm", "time": now_ms(), "uuid": "lock-sign", "home_id": "h1", "detail": {"battery_level": 9}});
    let mut wrong = body.clone();
    wrong["sign"] = json!("0123456789abcdef0123456789abcdef");
    let (status, answer) = s.post_raw(wrong.to_string()).await;
    assert_eq!(status, 401);
    assert_eq!(answer["ErrNo"], 15014);
    let (status, _) = s.post_raw(body.to_string()).await;
    assert_eq!(status, 401, "missing sign");
    // Signed for another URL.
    let raw = body.to_string();
    let mut other = body.clone();
    other["sign"] = json!(sign::callback_sign("https://linkyard.test/hooks/other/dingding", &raw).expect("sign"));
    assert_eq!(s.post_raw(other.to_string()).await.0, 401);
    let (status, answer) = s.post_raw("{not json".into()).await;
    assert_eq!((status, answer["ErrNo"].as_i64()), (400, Some(14001)));
    let (status, _) = s.post_raw("[1,2]".into()).await;
    assert_eq!(status, 400);
    assert!(s.inbound().await.is_empty(), "nothing stored");
    // The same callback signed properly is accepted; an upper-case sign too.
    let mut upper = body.clone();
    upper["sign"] = json!(sign::callback_sign(&s.hook_url, &raw).expect("sign").to_uppercase());
    assert_eq!(s.post_raw(upper.to_string()).await.0, 200);
    assert_eq!(s.inbound().await.len(), 1);
    // Unknown integration ids answer 404 in the envelope.
    let resp = s
        .app
        .http
        .post(s.app.url(&format!("/hooks/{}/dingding", uuid::Uuid::new_v4())))
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 404);
}
