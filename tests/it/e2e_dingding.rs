//! Dingding (`PROTOCOLS.md` 3) against an in-process fake Dingding that checks the token,
//! decrypts `encrypted_password` with the token's first 16 bytes, checks request shapes,
//! and against signed callbacks sent to the running server (each at least twice).

use crate::utils::fake::dingding::{CLIENT_ID, CLIENT_SECRET, FakeDingding};
use crate::utils::{Client, TenantFixture, TestApp, eventually, nodes, spawn_app, tenant_with_admin, unique};
use adapters::vendors::dingding::sign;
use serde_json::{Value, json};
use std::time::Duration;

pub struct Setup {
    pub app: TestApp,
    /// The GraphQL client acting as the tenant admin.
    pub api: Client,
    pub fake: FakeDingding,
    pub tenant: TenantFixture,
    pub integration: String,
    pub hook_url: String,
}

pub async fn setup() -> Setup {
    let fake = FakeDingding::start().await;
    let app = spawn_app().await;
    let platform = app.admin_token().await;
    let tenant = tenant_with_admin(&app, &platform).await;
    let api = tenant.api.clone();
    let i = api
        .integration(
            json!({"kind": "DINGDING", "name": format!("dd-{}", unique()), "settings": {"baseUrl": fake.base()},
                            "credentials": {"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET}}),
        )
        .await;
    let (integration, hook_url) = (i.id, i.hook_url);
    let prefix = format!("https://linkyard.test/hooks/{integration}/dingding/");
    let token = hook_url.strip_prefix(&prefix).unwrap_or_else(|| panic!("hookUrl {hook_url} carries a token"));
    assert!(token.len() >= 16 && token.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'), "{token}");
    Setup { app, api, fake, tenant, integration, hook_url }
}

impl Setup {
    /// The path of the hook URL the tenant admin sees (with its hook token).
    pub fn hook_path(&self) -> String {
        crate::utils::hook_path(&self.hook_url)
    }

    pub async fn gql(&self, query: &str, vars: Value) -> crate::utils::Gql {
        self.api.gql(query, vars).await
    }

    pub async fn device(&self, uuid: &str, kind: &str, attributes: Value) -> String {
        self.api.device(&self.integration, uuid, kind, uuid, attributes).await
    }

    /// Signs `body` for the integration's hook URL and posts it; answers status and body.
    pub async fn callback(&self, body: Value) -> (u16, Value) {
        self.post_raw(self.signed(body)).await
    }

    /// `body` with its `sign` for the integration's hook URL, as Dingding sends it.
    pub fn signed(&self, body: Value) -> String {
        let s = sign::callback_sign(&self.hook_url, &body.to_string()).expect("sign");
        let mut signed = body;
        signed["sign"] = json!(s);
        signed.to_string()
    }

    pub async fn post_raw(&self, raw: String) -> (u16, Value) {
        let resp = self
            .app
            .http
            .post(self.app.url(&self.hook_path()))
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
        self.api.inbound_events(&self.integration).await
    }

    pub async fn alarms(&self, device: &str) -> Vec<Value> {
        let r = self
            .gql(
                "query($d:ID){ alarms(filter:{deviceId:$d}, first:100){ edges { node { kind severity state occurrences } } } }",
                json!({"d": device}),
            )
            .await;
        nodes(&r.data()["alarms"])
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

pub fn now_ms() -> i64 {
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
    let call = s.fake.first_call("add_password").await;
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
    s.fake.first_call("frozen_password").await;
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
    assert_eq!(s.fake.first_call("unfrozen_password").await.params["password_id"], json!(1001));
    let upd = format!("mutation($i:UpdateLockPasswordInput!){{ updateLockPassword(input:$i){{ {PASSWORD_FIELDS} }} }}");
    s.gql(&upd, json!({"i": {"id": pid, "password": "654321", "name": "Du Fu"}})).await.data();
    let call = s.fake.first_call("update_password").await;
    assert_eq!((call.password.as_deref(), &call.params["password_id"]), (Some("654321"), &json!(1001)));
    s.callback_twice(json!({"service": "Password_Update_Service", "serviceid": "9005", "uuid": "lock-uuid-1",
                            "result": {"id": 1001, "ErrNo": 1000}}))
        .await;
    assert_eq!(password(&s, &pid).await["name"], "Du Fu");
    s.gql("mutation($i:ID!){ deleteLockPassword(id:$i){ id } }", json!({"i": pid})).await.data();
    let call = s.fake.first_call("delete_password").await;
    assert_eq!((&call.params["uuid"], &call.params["password_id"]), (&json!("lock-uuid-1"), &json!(1001)));
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
    let e = s.api.query(add, json!({"i": {"deviceId": lock, "password": "999999", "name": "sixth"}})).await;
    let e = e.expect_err("the sixth add is refused");
    assert_eq!(e.code.as_deref(), Some("RATE_LIMITED"), "{e}");
    assert!(e.extensions["retryAfterSeconds"].as_u64().is_some_and(|s| s > 0 && s <= 120), "{e}");
    s.fake.wait_calls("add_password", |c| c.len() == 5).await;
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
    s.fake.wait_calls("add_password", |c| c.len() == 1).await;
    assert_eq!(s.fake.token_count(), 1, "the token is cached");
    s.fake.expire_next();
    s.gql(add, json!({"i": {"deviceId": lock, "password": "246801", "name": "second"}})).await.data();
    s.fake.wait_calls("add_password", |c| c.len() == 2).await;
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
