//! ETC gantry monitoring (seed 001, `PROTOCOLS.md` section 2): gantries post their PCs' and
//! cabinets' status to `/hooks/{id}/etc/monitor.do`, signed with `binfile-md5` (MD5 of the
//! raw body) and `binfile-auth` (the auth code); the platform answers `{"code", "msg"}`, keeps
//! a device per PC, cabinet and cabinet unit, raises and clears alarms, sends control
//! commands to an in-process fake gantry that checks the same signature, and fetches and
//! keeps the picture of every door opening.

use crate::utils::client::GqlError;
use crate::utils::fake::etc::{AUTH_CODE, FakeGantry, battery_test_result, md5_hex, picture};
use crate::utils::{Client, TestApp, nodes, quick_jobs, spawn_app_with, tenant_with_admin};
use md5::{Digest, Md5};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const GANTRY: &str = "G000211001002110010";

/// Section 2.1.3's example, as the document prints it.
const PC_EXAMPLE: &str = r#"{
 "gantryId": "G000211001002110010",
 "method": "computerStatusUpdate",
 "timeStamp": "1564734526",
 "version": "1001",
 "computerStatus": [{
   "id": "1",
   "isMonitorComputer":"0",
   "isMainComputer":"1",
   "sysDiskUsage": "99.99",
   "sysDiskSize": "10485760",
   "dataDiskUsage": "99.99",
   "dataDiskSize": "10485760",
   "memoryUsage": "99.99",
   "memorySize": "8388608",
   "netUsage": "99.99",
   "cpuUsage": "99.99",
   "cpuTemperature": "40",
   "ip": "192.168.1.1"
  },
  {
   "id": "2",
   "isMonitorComputer":"0",
   "isMainComputer":"0",
   "sysDiskUsage": "99.99",
   "sysDiskSize": "10485760",
   "dataDiskUsage": "99.99",
   "dataDiskSize": "10485760",
   "memoryUsage": "99.99",
   "memorySize": "8388608",
   "netUsage": "99.99",
   "cpuUsage": "99.99",
   "cpuTemperature": "40",
   "ip": "192.168.1.2"
  }
 ]
}"#;

/// Section 3.1.3's example, as the document prints it (its keys `" thunderSpd"` and
/// `" lightningCount "` included).
const CABINET_EXAMPLE: &str = include_str!("../fixtures/etc/cabinet_status_update.json");

/// The `binfile-md5` test vector of `PROTOCOLS.md`.
const VECTOR_BODY: &str = r#"{"gantryId":"G000211001002110010","method":"computerControl","timeStamp":"1564734526","version":"1001","computerControl":{"updateNow":"1"}}"#;
const VECTOR_MD5: &str = "2d0289bdb69305618fea47d7dc2249dd";

const DEVICES: &str =
    "query($i:ID){ devices(filter:{integrationId:$i}, first:100){ edges{ node{ id externalId kind latest } } } }";
const READINGS: &str = "query($d:ID!,$m:String){ device(id:$d){ readings(last:20, metric:$m){ metric value ts } } }";
const EVENTS: &str = "query($i:ID){ inboundEvents(filter:{integrationId:$i}, first:100){ totalCount
    edges{ node{ protocol kind state body error } } } }";
const ALARMS: &str =
    "query($f:AlarmFilterInput){ alarms(filter:$f, first:100){ edges{ node{ id kind state deviceId occurrences } } } }";
const SEND: &str = "mutation($d:ID!,$m:String!,$p:JSON!){ sendGantryCommand(input:{deviceId:$d, method:$m, params:$p}){
    id state kind result attempts{ vendorCode } } }";
const DELIVERY: &str = "query($i:ID!){ delivery(id:$i){ id state kind result attempts{ vendorCode outcome } } }";
const FILES: &str = "query($d:ID!){ deviceFiles(deviceId:$d){ filename contentType size md5 state downloadUrl } }";

/// A delivery that reached the gantry (the contract's name, and the delivery engine's).
const DELIVERED: [&str; 2] = ["DELIVERED", "SUCCEEDED"];
const FINAL: [&str; 4] = ["DELIVERED", "SUCCEEDED", "FAILED", "DEAD"];

struct Etc {
    app: TestApp,
    api: Client,
    /// The tenant admin's token (file downloads).
    token: String,
    integration: String,
}

/// An `ETC_GANTRY` integration with `settings` and the document's auth code.
async fn setup(settings: Value) -> Etc {
    let app = spawn_app_with(quick_jobs).await;
    let root = app.admin_token().await;
    let tenant = tenant_with_admin(&app, &root).await;
    let api = tenant.api.clone();
    let i = api
        .integration(json!({"kind": "ETC_GANTRY", "name": "门架监测", "settings": settings,
                            "credentials": {"authCode": AUTH_CODE}}))
        .await;
    assert!(i.hook_url.ends_with(&format!("/hooks/{}/etc/monitor.do", i.id)), "hookUrl {}", i.hook_url);
    Etc { app, api, token: tenant.admin_token, integration: i.id }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A document example with its `timeStamp` replaced by `ts` and its gantry by `gantry`;
/// nothing else changes, byte for byte.
fn example(raw: &str, gantry: &str, ts: i64) -> String {
    raw.replace("\"timeStamp\": \"1564734526\"", &format!("\"timeStamp\": \"{ts}\"")).replace(GANTRY, gantry)
}

/// One industrial PC as section 2.1.2 names its fields, with healthy values and `changes`.
fn pc(id: &str, changes: Value) -> Value {
    let main = if id == "1" { "1" } else { "0" };
    let mut pc = json!({"id": id, "isMonitorComputer": "0", "isMainComputer": main,
        "sysDiskUsage": "50.00", "sysDiskSize": "10485760", "dataDiskUsage": "50.00", "dataDiskSize": "10485760",
        "memoryUsage": "50.00", "memorySize": "8388608", "netUsage": "10.00", "cpuUsage": "10.00",
        "cpuTemperature": "40", "ip": format!("192.168.1.{id}")});
    for (k, v) in changes.as_object().into_iter().flatten() {
        pc[k] = v.clone();
    }
    pc
}

fn pc_report(gantry: &str, ts: i64, pcs: Value) -> String {
    json!({"gantryId": gantry, "method": "computerStatusUpdate", "timeStamp": ts.to_string(), "version": "1001",
           "computerStatus": pcs})
    .to_string()
}

/// The example's `cabinetStatus` (stray-space keys kept) after `change`.
fn cabinet(change: impl FnOnce(&mut Value)) -> Value {
    let example: Value = serde_json::from_str(CABINET_EXAMPLE).expect("the example is JSON");
    let mut c = example["cabinetStatus"].clone();
    change(&mut c);
    c
}

fn cabinet_report(gantry: &str, ts: i64, cabinet: Value) -> String {
    json!({"gantryId": gantry, "method": "cabinetStatusUpdate", "timeStamp": ts.to_string(), "version": "1001",
           "cabinetStatus": cabinet})
    .to_string()
}

/// A JSON answer's `code` ("" when absent).
fn code(answer: &Value) -> &str {
    answer["code"].as_str().unwrap_or_default()
}

/// A metric's value in `latest` (`{metric: {value, ts}}`; a bare value is taken as it is).
fn latest(device: &Value, metric: &str) -> Value {
    let m = &device["latest"][metric];
    if m.is_object() && m.get("value").is_some() { m["value"].clone() } else { m.clone() }
}

/// Asserts that `v` is a JSON number equal to `want`.
fn assert_num(v: &Value, want: f64, what: &str) {
    assert!(v.as_f64().is_some_and(|x| (x - want).abs() < 1e-9), "{what}: {v} is not the number {want}");
}

/// The readings' values as numbers, newest first (`None` for one that is not a number).
fn numbers(readings: &[Value]) -> Vec<Option<f64>> {
    readings.iter().map(|r| r["value"].as_f64()).collect()
}

/// Polls `f` (every 200 ms, at most `within`) until it answers `Some`.
async fn poll<T, F, Fut>(what: &str, within: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl Etc {
    fn hook(&self) -> String {
        self.app.url(&format!("/hooks/{}/etc/monitor.do", self.integration))
    }

    /// Posts `body` as it is to `url` with the headers given; the HTTP status and JSON answer.
    async fn post_to(&self, url: &str, body: &[u8], md5: Option<&str>, auth: Option<&str>) -> (u16, Value) {
        let mut req = self.app.http.post(url).header("content-type", "application/json").body(body.to_vec());
        if let Some(m) = md5 {
            req = req.header("binfile-md5", m);
        }
        if let Some(a) = auth {
            req = req.header("binfile-auth", a);
        }
        let resp = req.send().await.expect("post");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let answer: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not a JSON answer: {text}"));
        assert!(answer["msg"].as_str().is_some_and(|m| !m.is_empty()), "an answer carries its msg: {answer}");
        (status, answer)
    }

    async fn post_raw(&self, body: &[u8], md5: Option<&str>, auth: Option<&str>) -> (u16, Value) {
        self.post_to(&self.hook(), body, md5, auth).await
    }

    /// A gantry's report, signed as the document says.
    async fn post_report(&self, body: &str) -> (u16, Value) {
        self.post_raw(body.as_bytes(), Some(&md5_hex(body.as_bytes())), Some(AUTH_CODE)).await
    }

    /// The code a signed report is answered with (asserting HTTP 200).
    async fn answer(&self, body: &str) -> String {
        let (status, answer) = self.post_report(body).await;
        assert_eq!(status, 200, "{answer}");
        code(&answer).to_owned()
    }

    /// Posts a report that must be accepted.
    async fn ok(&self, body: &str) {
        let (status, answer) = self.post_report(body).await;
        assert_eq!((status, code(&answer)), (200, "1000"), "{answer} for {body}");
    }

    async fn devices(&self) -> Vec<Value> {
        nodes(&self.api.data(DEVICES, json!({"i": self.integration})).await["devices"])
    }

    /// The device with `external` id, once it exists.
    async fn device(&self, external: &str) -> Value {
        poll(&format!("device {external}"), Duration::from_secs(15), || async {
            self.devices().await.into_iter().find(|d| d["externalId"] == external)
        })
        .await
    }

    async fn device_id(&self, external: &str) -> String {
        self.device(external).await["id"].as_str().expect("id").to_owned()
    }

    /// Waits until `metric` of `external` is `value` in `latest`.
    async fn wait_latest(&self, external: &str, metric: &str, value: Value) -> Value {
        poll(&format!("{external} {metric} = {value}"), Duration::from_secs(15), || async {
            let d = self.devices().await.into_iter().find(|d| d["externalId"] == external)?;
            (latest(&d, metric) == value).then_some(d)
        })
        .await
    }

    async fn readings(&self, device: &str, metric: &str) -> Vec<Value> {
        let d = self.api.data(READINGS, json!({"d": device, "m": metric})).await;
        d["device"]["readings"].as_array().cloned().unwrap_or_default()
    }

    async fn events(&self) -> Vec<Value> {
        nodes(&self.api.data(EVENTS, json!({"i": self.integration})).await["inboundEvents"])
    }

    /// Waits until `n` events are stored and none waits to be processed; answers them.
    async fn settled(&self, n: usize) -> Vec<Value> {
        poll(&format!("{n} events processed"), Duration::from_secs(15), || async {
            let events = self.events().await;
            (events.len() == n && events.iter().all(|e| e["state"] != "RECEIVED")).then_some(events)
        })
        .await
    }

    async fn alarms(&self, filter: Value) -> Vec<Value> {
        nodes(&self.api.data(ALARMS, json!({"f": filter})).await["alarms"])
    }

    /// Waits until `device` has an alarm of `kind` in `state`; answers it.
    async fn wait_alarm(&self, kind: &str, device: &str, state: &str) -> Value {
        poll(&format!("{kind} {state} on {device}"), Duration::from_secs(15), || async {
            let filter = json!({"kind": kind, "deviceId": device, "state": state});
            self.alarms(filter).await.into_iter().next()
        })
        .await
    }

    /// `sendGantryCommand`, its delivery or the error.
    async fn command(&self, device: &str, method: &str, params: Value) -> Result<Value, GqlError> {
        let d = self.api.query(SEND, json!({"d": device, "m": method, "p": params})).await?;
        Ok(d["sendGantryCommand"].clone())
    }

    /// Waits until the delivery `id` is in a final state (45 s at most); answers it.
    async fn settle_delivery(&self, id: &str) -> Value {
        poll(&format!("delivery {id} final"), Duration::from_secs(45), || async {
            let d = self.api.data(DELIVERY, json!({"i": id})).await["delivery"].clone();
            FINAL.contains(&d["state"].as_str().unwrap_or_default()).then_some(d)
        })
        .await
    }

    async fn files(&self, device: &str) -> Vec<Value> {
        let d = self.api.data(FILES, json!({"d": device})).await;
        d["deviceFiles"].as_array().cloned().unwrap_or_else(|| panic!("deviceFiles is not a list: {d}"))
    }

    /// `url` (absolute, or a path) on this app's own address.
    fn local(&self, url: &str) -> String {
        let path = match url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")) {
            Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]).to_owned(),
            None if url.starts_with('/') => url.to_owned(),
            None => format!("/{url}"),
        };
        self.app.url(&path)
    }

    /// GETs `url` as the tenant admin: status, content type, bytes.
    async fn download(&self, url: &str) -> (u16, String, Vec<u8>) {
        let resp = self.app.http.get(url).bearer_auth(&self.token).send().await.expect("download");
        let status = resp.status().as_u16();
        let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        (status, ct, resp.bytes().await.expect("bytes").to_vec())
    }
}

/// `url` with one character of its token changed: the longest query value, else the longest
/// path segment that is not the file's name.
fn tamper(url: &str) -> String {
    let (path, query) = url.split_once('?').map_or((url, None), |(p, q)| (p, Some(q)));
    let pick =
        |s: &str, offset: usize| -> Option<(usize, usize)> { (s.len() >= 8).then_some((offset, offset + s.len())) };
    let mut target = None;
    if let Some(q) = query {
        let mut at = path.len() + 1;
        for pair in q.split('&') {
            let value_at = pair.find('=').map_or(at, |i| at + i + 1);
            let value = pair.split_once('=').map_or(pair, |(_, v)| v);
            if let Some(span) = pick(value, value_at)
                && target.is_none_or(|(a, b)| b - a < span.1 - span.0)
            {
                target = Some(span);
            }
            at += pair.len() + 1;
        }
    }
    if target.is_none() {
        let mut at = 0;
        for seg in path.split('/') {
            if !seg.contains('.')
                && let Some(span) = pick(seg, at)
                && target.is_none_or(|(a, b)| b - a < span.1 - span.0)
            {
                target = Some(span);
            }
            at += seg.len() + 1;
        }
    }
    let (from, to) = target.unwrap_or_else(|| panic!("no token in {url}"));
    let mut chars: Vec<char> = url.chars().collect();
    let middle = (from..to).map(|i| (i, chars[i])).find(|(i, c)| *i >= (from + to) / 2 && c.is_ascii_alphanumeric());
    let (i, c) = middle.unwrap_or_else(|| panic!("no character to change in {url}"));
    chars[i] = match c {
        '0' => '1',
        '0'..='9' => '0',
        'a' => 'b',
        'A' => 'B',
        c if c.is_ascii_uppercase() => 'A',
        _ => 'a',
    };
    chars.into_iter().collect()
}

#[tokio::test]
async fn the_md5_test_vector_holds_and_update_now_goes_out_as_the_document_shows() {
    assert_eq!(hex::encode(Md5::digest(VECTOR_BODY.as_bytes())), VECTOR_MD5);
    assert_eq!(md5_hex(VECTOR_BODY.as_bytes()), VECTOR_MD5, "the helper the tests sign with");
    let fake = FakeGantry::start().await;
    let e = setup(json!({"deviceHosts": {GANTRY: fake.host()}})).await;
    e.ok(&example(PC_EXAMPLE, GANTRY, now())).await;
    let gantry = e.device_id(GANTRY).await;
    let before = now();
    let sent = e.command(&gantry, "computerControl", json!({"updateNow": "1"})).await.expect("accepted");
    let id = sent["id"].as_str().expect("delivery id");
    let done = e.settle_delivery(id).await;
    assert!(DELIVERED.contains(&done["state"].as_str().unwrap_or_default()), "{done}");
    assert_eq!(done["attempts"][0]["vendorCode"], "1000", "{done}");
    let reqs = fake.signed("computerControl");
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    let r = &reqs[0];
    assert_eq!(r.path, "/remotecontrol.do");
    assert!(r.header("binfile-md5").eq_ignore_ascii_case(&md5_hex(&r.raw)), "binfile-md5 of the bytes sent");
    assert_eq!(r.header("binfile-auth"), AUTH_CODE);
    let b = r.body.as_object().expect("a JSON object");
    let keys: Vec<&str> = b.keys().map(String::as_str).collect();
    let mut want = vec!["computerControl", "gantryId", "method", "timeStamp", "version"];
    let mut got = keys.clone();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want, "exactly the document's fields: {}", r.body);
    assert_eq!(r.body["gantryId"], GANTRY);
    assert_eq!(r.body["method"], "computerControl");
    assert_eq!(r.body["version"], "1001");
    assert_eq!(r.body["computerControl"], json!({"updateNow": "1"}));
    let ts: i64 = r.body["timeStamp"].as_str().expect("timeStamp is a string").parse().expect("Unix seconds");
    assert!((before - 5..=now() + 5).contains(&ts), "timeStamp {ts} is now in Unix seconds");
    assert_eq!(fake.signature_failures(), 0);
    assert!(fake.errors().is_empty(), "{:?}", fake.errors());
}

/// A body, its `binfile-md5` and `binfile-auth` (`None`: no header), the code it must get.
type HeaderCase<'a> = (&'a [u8], Option<&'a str>, Option<&'a str>, &'a str);

#[tokio::test]
async fn every_answer_code_in_the_order_of_the_checks() {
    let e = setup(json!({})).await;
    let t = now();
    let good = pc_report(GANTRY, t, json!([pc("1", json!({}))]));
    let g = good.as_bytes();
    let md5_owned = md5_hex(g);
    let md5: &str = &md5_owned;
    let signed = |b: &str| (b.as_bytes().to_vec(), Some(md5_hex(b.as_bytes())));

    // An integration that does not exist: 404 in the protocol's envelope.
    let nowhere = e.app.url(&format!("/hooks/{}/etc/monitor.do", uuid::Uuid::new_v4()));
    let (s, a) = e.post_to(&nowhere, g, Some(md5), Some(AUTH_CODE)).await;
    assert_eq!((s, code(&a)), (404, "1001"), "{a}");

    // 1001 before 1004: a wrong or missing auth code, whatever the MD5.
    let zeros_owned = "0".repeat(32);
    let zeros: &str = &zeros_owned;
    let cases: Vec<HeaderCase<'_>> = vec![
        (g, Some(md5), None, "1001"),
        (g, Some(md5), Some("654321"), "1001"),
        (g, Some(zeros), Some("654321"), "1001"),
        (g, None, None, "1001"),
        // 1004: a wrong or missing MD5, before the body is read.
        (g, None, Some(AUTH_CODE), "1004"),
        (g, Some(zeros), Some(AUTH_CODE), "1004"),
        (&b"not json at all"[..], Some(zeros), Some(AUTH_CODE), "1004"),
    ];
    for (body, md5, auth, want) in cases {
        let (s, a) = e.post_raw(body, md5, auth).await;
        assert_eq!((s, code(&a)), (200, want), "{a} for md5 {md5:?} auth {auth:?}");
    }

    // 1002 for a body that is not JSON; then version (1006) before timeStamp (1003) before
    // the fields (1002).
    let stale = t - 400;
    let report = |fields: Value| fields.to_string();
    let cases: Vec<(String, &str)> = vec![
        ("{\"gantryId\": \"G000211001002110010\", ".into(), "1002"),
        ("not json at all".into(), "1002"),
        (
            report(json!({"gantryId": GANTRY, "method": "computerStatusUpdate", "timeStamp": stale.to_string(),
                          "version": "1002", "computerStatus": [pc("1", json!({}))]})),
            "1006",
        ),
        (
            report(json!({"gantryId": GANTRY, "method": "computerStatusUpdate", "timeStamp": stale.to_string(),
                          "version": "1001", "computerStatus": [pc("1", json!({}))]})),
            "1003",
        ),
        (
            report(json!({"gantryId": GANTRY, "method": "computerStatusUpdate", "timeStamp": (t + 400).to_string(),
                          "version": "1001", "computerStatus": [pc("1", json!({}))]})),
            "1003",
        ),
        (
            report(json!({"method": "computerStatusUpdate", "timeStamp": stale.to_string(), "version": "1001",
                          "computerStatus": [pc("1", json!({}))]})),
            "1003",
        ),
        (
            report(json!({"method": "computerStatusUpdate", "timeStamp": t.to_string(), "version": "1001",
                          "computerStatus": [pc("1", json!({}))]})),
            "1002",
        ),
        (
            report(json!({"gantryId": GANTRY, "timeStamp": t.to_string(), "version": "1001",
                          "computerStatus": [pc("1", json!({}))]})),
            "1002",
        ),
        (
            report(json!({"gantryId": GANTRY, "method": "computerStatusUpdate", "timeStamp": t.to_string(),
                          "version": "1001"})),
            "1002",
        ),
        (
            report(json!({"gantryId": GANTRY, "method": "computerStatusUpdate", "timeStamp": t.to_string(),
                          "version": "1001", "computerStatus": pc("1", json!({}))})),
            "1002",
        ),
        (
            report(json!({"gantryId": GANTRY, "method": "cabinetStatusUpdate", "timeStamp": t.to_string(),
                          "version": "1001"})),
            "1002",
        ),
        (
            report(json!({"gantryId": GANTRY, "method": "cabinetStatusUpdate", "timeStamp": t.to_string(),
                          "version": "1001", "cabinetStatus": [cabinet(|_| {})]})),
            "1002",
        ),
    ];
    for (body, want) in &cases {
        let (bytes, md5) = signed(body);
        let (s, a) = e.post_raw(&bytes, md5.as_deref(), Some(AUTH_CODE)).await;
        assert_eq!((s, code(&a)), (200, *want), "{a} for {body}");
    }
    assert!(e.events().await.is_empty(), "refused requests are not stored");

    // An upper-case MD5 is the same MD5.
    let (s, a) = e.post_raw(g, Some(&md5.to_uppercase()), Some(AUTH_CODE)).await;
    assert_eq!((s, code(&a)), (200, "1000"), "{a}");
    // A method the document does not have: 1008, and the request is kept as failed.
    let rsu = report(json!({"gantryId": GANTRY, "method": "rsuStatusUpdate", "timeStamp": t.to_string(),
                            "version": "1001", "rsuStatus": [{"id": "1", "status": "1"}]}));
    assert_eq!(e.answer(&rsu).await, "1008");
    let events = e.settled(2).await;
    let by_kind: BTreeMap<&str, &Value> =
        events.iter().map(|ev| (ev["kind"].as_str().unwrap_or_default(), ev)).collect();
    let rsu_event = by_kind.get("rsuStatusUpdate").unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!((rsu_event["protocol"].as_str(), rsu_event["state"].as_str()), (Some("ETC_GANTRY"), Some("FAILED")));
    assert_eq!(rsu_event["body"], rsu, "the raw request as it came");
    let pc_event = by_kind.get("computerStatusUpdate").unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!((pc_event["protocol"].as_str(), pc_event["state"].as_str()), (Some("ETC_GANTRY"), Some("PROCESSED")));
}

#[tokio::test]
async fn a_report_sent_twice_is_answered_twice_and_applied_once() {
    let e = setup(json!({})).await;
    let t = now();
    let pcs = pc_report(GANTRY, t, json!([pc("1", json!({"cpuTemperature": "45"}))]));
    let smoke = cabinet_report(GANTRY, t, cabinet(|c| c["smokeSensor"]["isWarning"] = json!("1")));
    for _ in 0..2 {
        e.ok(&pcs).await;
        e.ok(&smoke).await;
    }
    // Once more, both copies at the same moment.
    let (a, b) = tokio::join!(e.post_report(&smoke), e.post_report(&smoke));
    assert_eq!((code(&a.1), code(&b.1)), ("1000", "1000"), "{a:?} {b:?}");
    let events = e.settled(2).await;
    assert!(events.iter().all(|ev| ev["state"] == "PROCESSED"), "{events:?}");
    let pc1 = e.device_id(&format!("{GANTRY}/pc/1")).await;
    let temps = e.readings(&pc1, "cpuTemperature").await;
    assert_eq!(temps.len(), 1, "{temps:?}");
    let sensor = e.device_id(&format!("{GANTRY}/cabinet/1/smokeSensor")).await;
    e.wait_alarm("SMOKE_ALARM", &sensor, "RAISED").await;
    let alarms = e.alarms(json!({"kind": "SMOKE_ALARM", "deviceId": sensor})).await;
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    assert_eq!(alarms[0]["occurrences"], 1, "{alarms:?}");
}

#[tokio::test]
async fn reports_closer_than_the_minimum_interval_are_refused_per_gantry_method_and_cabinet() {
    let e = setup(json!({"minReportIntervalSeconds": 60})).await;
    let t = now() - 120;
    let pcs = |ts: i64, usage: &str| pc_report(GANTRY, ts, json!([pc("1", json!({"cpuUsage": usage}))]));
    let cab = |ts: i64, id: &str, temp: &str| {
        cabinet_report(
            GANTRY,
            ts,
            cabinet(|c| {
                c["id"] = json!(id);
                c["thermohygrometer"]["temperature"] = json!(temp);
            }),
        )
    };
    e.ok(&pcs(t, "10.00")).await;
    // The same gantry and method: 1005 whether the timestamp is the same or 30 s later.
    assert_eq!(e.answer(&pcs(t, "11.00")).await, "1005");
    assert_eq!(e.answer(&pcs(t + 30, "12.00")).await, "1005");
    // Another gantry, another method: accepted.
    e.ok(&pc_report("G000211001002110020", t + 1, json!([pc("1", json!({}))]))).await;
    e.ok(&cab(t, "1", "30")).await;
    // The same cabinet again: 1005; another cabinet of the gantry: accepted.
    assert_eq!(e.answer(&cab(t + 10, "1", "31")).await, "1005");
    e.ok(&cab(t + 10, "2", "31")).await;
    // 60 s after the last accepted one: accepted.
    e.ok(&pcs(t + 60, "13.00")).await;
    e.ok(&cab(t + 60, "1", "32")).await;
    let events = e.settled(6).await;
    assert!(events.iter().all(|ev| ev["state"] == "PROCESSED"), "the refused ones are not stored: {events:?}");
    let pc1 = e.device_id(&format!("{GANTRY}/pc/1")).await;
    let usage = numbers(&e.readings(&pc1, "cpuUsage").await);
    assert_eq!(usage, vec![Some(13.0), Some(10.0)], "only the accepted reports' readings");
}

#[tokio::test]
async fn the_documents_examples_create_the_gantry_its_pcs_its_cabinet_and_every_unit() {
    let e = setup(json!({})).await;
    let t = now() - 20;
    e.ok(&example(PC_EXAMPLE, GANTRY, t)).await;
    e.ok(&example(CABINET_EXAMPLE, GANTRY, t)).await;
    e.settled(2).await;
    let c = format!("{GANTRY}/cabinet/1");
    let want: BTreeMap<String, &str> = [
        (GANTRY.to_owned(), "GANTRY"),
        (format!("{GANTRY}/pc/1"), "GANTRY_COMPUTER"),
        (format!("{GANTRY}/pc/2"), "GANTRY_COMPUTER"),
        (c.clone(), "GANTRY_CABINET"),
        (format!("{c}/elec/1"), "GANTRY_MAINS"),
        (format!("{c}/rectifier/1"), "GANTRY_RECTIFIER"),
        (format!("{c}/ups/1"), "GANTRY_UPS"),
        (format!("{c}/airConditioner/1"), "GANTRY_AIR_CONDITIONER"),
        (format!("{c}/airConditioner/2"), "GANTRY_AIR_CONDITIONER"),
        (format!("{c}/thunderSpd/1"), "GANTRY_LIGHTNING_PROTECTION"),
        (format!("{c}/thermohygrometer"), "GANTRY_THERMOHYGROMETER"),
        (format!("{c}/waterloggingSensor"), "GANTRY_WATER_SENSOR"),
        (format!("{c}/doors"), "GANTRY_DOORS"),
        (format!("{c}/smokeSensor"), "GANTRY_SMOKE_SENSOR"),
    ]
    .into_iter()
    .collect();
    let devices = e.devices().await;
    let got: BTreeMap<String, &str> = devices
        .iter()
        .map(|d| (d["externalId"].as_str().unwrap_or_default().to_owned(), d["kind"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(got, want);
    let find = |ext: &str| devices.iter().find(|d| d["externalId"] == ext).cloned().expect("device");
    // Values under their document names, numbers as numbers, text as text.
    let pc1 = find(&format!("{GANTRY}/pc/1"));
    assert_num(&latest(&pc1, "cpuTemperature"), 40.0, "pc 1 cpuTemperature");
    assert_num(&latest(&pc1, "sysDiskUsage"), 99.99, "pc 1 sysDiskUsage");
    assert_num(&latest(&pc1, "memorySize"), 8_388_608.0, "pc 1 memorySize");
    assert_eq!(latest(&pc1, "ip"), json!("192.168.1.1"), "{pc1}");
    assert_eq!(latest(&find(&format!("{GANTRY}/pc/2")), "ip"), json!("192.168.1.2"));
    let spd = find(&format!("{c}/thunderSpd/1"));
    assert_num(&latest(&spd, "lightningCount"), 1.0, "lightningCount, its key trimmed");
    let th = find(&format!("{c}/thermohygrometer"));
    assert_num(&latest(&th, "temperature"), 40.0, "thermohygrometer temperature");
    assert_num(&latest(&th, "humidity"), 20.0, "thermohygrometer humidity");
    assert_num(&latest(&find(&format!("{c}/ups/1")), "surplusTime"), 3600.0, "ups surplusTime");
    assert_num(&latest(&find(&format!("{c}/elec/1")), "voltage"), 220.0, "mains voltage");
    assert_num(&latest(&find(&format!("{c}/rectifier/1")), "outputVoltage"), 50.0, "rectifier outputVoltage");

    // A second report: a second reading; the history keeps both, newest first.
    let pc1_id = pc1["id"].as_str().expect("id").to_owned();
    e.ok(&pc_report(GANTRY, t + 5, json!([pc("1", json!({"cpuTemperature": "41"}))]))).await;
    poll("the second reading", Duration::from_secs(15), || async {
        let temps = numbers(&e.readings(&pc1_id, "cpuTemperature").await);
        (temps.len() == 2).then_some(temps)
    })
    .await;
    let temps = numbers(&e.readings(&pc1_id, "cpuTemperature").await);
    assert_eq!(temps, vec![Some(41.0), Some(40.0)], "newest first");
    assert_num(&latest(&e.device(&format!("{GANTRY}/pc/1")).await, "cpuTemperature"), 41.0, "the newest is latest");
    // The document's error values are kept as they are.
    let errors = json!({"cpuUsage": "NoData", "cpuTemperature": "GetFailed", "netUsage": "NotSupport"});
    e.ok(&pc_report(GANTRY, t + 10, json!([pc("1", errors)]))).await;
    let pc1 = e.wait_latest(&format!("{GANTRY}/pc/1"), "cpuTemperature", json!("GetFailed")).await;
    assert_eq!(latest(&pc1, "cpuUsage"), json!("NoData"), "{pc1}");
    assert_eq!(latest(&pc1, "netUsage"), json!("NotSupport"), "{pc1}");
    assert_num(&latest(&pc1, "sysDiskUsage"), 50.0, "pc 1 sysDiskUsage");
    let events = e.settled(4).await;
    assert!(events.iter().all(|ev| ev["state"] == "PROCESSED"), "{events:?}");
}

#[tokio::test]
async fn cabinet_alarms_are_raised_on_their_unit_and_cleared_by_a_normal_report() {
    let e = setup(json!({})).await;
    let t = now() - 20;
    let c = format!("{GANTRY}/cabinet/1");
    e.ok(&cabinet_report(
        GANTRY,
        t,
        cabinet(|c| {
            c["smokeSensor"]["isWarning"] = json!("1");
            c["doors"]["frontDoorOpenIllegally"] = json!("1");
            c["waterloggingSensor"]["isWarning"] = json!("1");
            c["ups"][0]["warningMsg"] = json!("电池熔丝断");
            c["rectifier"][0]["status"] = json!("0");
        }),
    ))
    .await;
    let smoke = e.device_id(&format!("{c}/smokeSensor")).await;
    let doors = e.device_id(&format!("{c}/doors")).await;
    let water = e.device_id(&format!("{c}/waterloggingSensor")).await;
    let ups = e.device_id(&format!("{c}/ups/1")).await;
    let rectifier = e.device_id(&format!("{c}/rectifier/1")).await;
    let elec = e.device_id(&format!("{c}/elec/1")).await;
    let spd = e.device_id(&format!("{c}/thunderSpd/1")).await;
    e.wait_alarm("SMOKE_ALARM", &smoke, "RAISED").await;
    e.wait_alarm("DOOR_OPENED_ILLEGALLY", &doors, "RAISED").await;
    e.wait_alarm("WATER_LEAK", &water, "RAISED").await;
    e.wait_alarm("GANTRY_UNIT_FAULT", &ups, "RAISED").await;
    e.wait_alarm("GANTRY_UNIT_FAULT", &rectifier, "RAISED").await;
    e.settled(1).await;
    assert!(e.alarms(json!({"deviceId": elec})).await.is_empty(), "healthy mains raise nothing");
    assert!(e.alarms(json!({"kind": "LIGHTNING_STRIKE"})).await.is_empty(), "a first count is no strike");
    // All normal again, and two more strikes counted: smoke clears, the strike is raised.
    e.ok(&cabinet_report(GANTRY, t + 5, cabinet(|c| c[" thunderSpd"][0][" lightningCount "] = json!("3")))).await;
    e.wait_alarm("SMOKE_ALARM", &smoke, "CLEARED").await;
    e.wait_alarm("LIGHTNING_STRIKE", &spd, "RAISED").await;
    let strikes = e.alarms(json!({"kind": "LIGHTNING_STRIKE"})).await;
    assert_eq!(strikes.len(), 1, "{strikes:?}");
    assert_eq!(strikes[0]["deviceId"], json!(spd));
    let open_smoke = e.alarms(json!({"kind": "SMOKE_ALARM", "deviceId": smoke, "state": "RAISED"})).await;
    assert!(open_smoke.is_empty(), "{open_smoke:?}");
}

#[tokio::test]
async fn pc_thresholds_raise_their_alarms_and_clear_when_back_under() {
    let e = setup(json!({})).await;
    let t = now() - 20;
    let hot = json!({"sysDiskUsage": "95.00", "cpuUsage": "97", "cpuTemperature": "85"});
    e.ok(&pc_report(
        GANTRY,
        t,
        json!([pc("1", hot), pc("2", json!({"sysDiskUsage": "89.00", "cpuTemperature": "79"}))]),
    ))
    .await;
    let pc1 = e.device_id(&format!("{GANTRY}/pc/1")).await;
    let pc2 = e.device_id(&format!("{GANTRY}/pc/2")).await;
    let kinds = ["PC_DISK_USAGE_HIGH", "PC_CPU_USAGE_HIGH", "PC_TEMPERATURE_HIGH"];
    for kind in kinds {
        e.wait_alarm(kind, &pc1, "RAISED").await;
    }
    e.settled(1).await;
    assert!(e.alarms(json!({"deviceId": pc2})).await.is_empty(), "pc 2 is under every threshold");
    e.ok(&pc_report(GANTRY, t + 5, json!([pc("1", json!({})), pc("2", json!({}))]))).await;
    for kind in kinds {
        e.wait_alarm(kind, &pc1, "CLEARED").await;
        let open = e.alarms(json!({"kind": kind, "deviceId": pc1, "state": "RAISED"})).await;
        assert!(open.is_empty(), "{open:?}");
    }
}

#[tokio::test]
async fn a_silent_gantry_goes_offline_and_its_next_report_brings_it_back() {
    let e = setup(json!({"reportIntervalSeconds": 1})).await;
    e.ok(&example(PC_EXAMPLE, GANTRY, now())).await;
    e.ok(&example(CABINET_EXAMPLE, GANTRY, now())).await;
    e.settled(2).await;
    let gantry = e.device_id(GANTRY).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let r = e.api.run_scheduled_job(&e.integration, "HEARTBEAT_CHECK").await;
    assert_eq!(r.data()["runScheduledJob"]["outcome"], "SUCCEEDED", "{}", r.raw);
    let offline = e.wait_alarm("DEVICE_OFFLINE", &gantry, "RAISED").await;
    let all = e.alarms(json!({"kind": "DEVICE_OFFLINE"})).await;
    assert_eq!(all.len(), 1, "the gantry only, not its PCs or units: {all:?}");
    assert_eq!(all[0]["id"], offline["id"]);
    // Its next report clears it without another check.
    e.ok(&example(PC_EXAMPLE, GANTRY, now())).await;
    e.wait_alarm("DEVICE_OFFLINE", &gantry, "CLEARED").await;
    assert!(e.alarms(json!({"kind": "DEVICE_OFFLINE", "state": "RAISED"})).await.is_empty());
}

/// A gantry with its devices, reachable at the fake.
async fn control_setup(fake: &FakeGantry) -> Etc {
    let e = setup(json!({"deviceHosts": {GANTRY: fake.host()},
                         "retry": {"initialDelaySecs": 1, "maxDelaySecs": 1, "maxAttempts": 2}}))
    .await;
    e.ok(&example(PC_EXAMPLE, GANTRY, now() - 5)).await;
    e.ok(&example(CABINET_EXAMPLE, GANTRY, now() - 5)).await;
    e.settled(2).await;
    e
}

#[tokio::test]
async fn every_control_command_reaches_the_gantry_as_sent() {
    let fake = FakeGantry::start().await;
    let e = control_setup(&fake).await;
    let gantry = e.device_id(GANTRY).await;
    let pc1 = e.device_id(&format!("{GANTRY}/pc/1")).await;
    let cab = e.device_id(&format!("{GANTRY}/cabinet/1")).await;
    let (gantry, pc1, cab) = (gantry.as_str(), pc1.as_str(), cab.as_str());
    let commands: Vec<(&str, &str, Value)> = vec![
        (gantry, "computerControl", json!({"updateNow": "1"})),
        (pc1, "computerControl", json!({"setServer": "192.168.1.1/monitor.do"})),
        (gantry, "computerControl", json!({"setFrequency": "300"})),
        (cab, "cabinetControl", json!({"updateNow": "1"})),
        (gantry, "cabinetControl", json!({"setServer": "192.168.1.1/monitor.do"})),
        (gantry, "cabinetControl", json!({"setFrequency": "600"})),
        (gantry, "cabinetControl", json!({"cmd": "1", "rebootIp": "192.168.1.20", "rebootPort": "8080"})),
        (cab, "cabinetControl", json!({"cmd": "2", "cabinetId": "1", "unlockDoorId": "2"})),
        (gantry, "cabinetControl", json!({"cmd": "3", "cabinetId": "1", "airId": "0", "airOperate": "2"})),
        (
            gantry,
            "cabinetControl",
            json!({"cmd": "4", "cabinetId": "1", "airId": "1", "autoRefrigerationTemp": "30", "autoHeatingTemp": "5"}),
        ),
        (gantry, "cabinetControl", json!({"cmd": "5", "mode": "1"})),
        (gantry, "cabinetControl", json!({"cmd": "6", "isDoorDefend": "1"})),
        (
            gantry,
            "cabinetControl",
            json!({"cmd": "7", "cardInfos": [{"cardId": "1234567890", "expireDate": "2030-12-31"},
                                              {"cardId": "0987654321", "expireDate": "2031-01-01"}]}),
        ),
        (gantry, "cabinetControl", json!({"cmd": "8", "cabinetId": "1", "onOff": "0"})),
        (gantry, "cabinetControl", json!({"cmd": "9", "cabinetId": "1", "testStartStop": "1"})),
        (gantry, "cabinetControl", json!({"cmd": "10", "cabinetId": "1"})),
    ];
    for (device, method, params) in commands {
        let before = fake.signed(method).len();
        let sent = e
            .command(device, method, params.clone())
            .await
            .unwrap_or_else(|err| panic!("{method} {params} refused: {err}"));
        let id = sent["id"].as_str().expect("delivery id").to_owned();
        let done = e.settle_delivery(&id).await;
        assert!(DELIVERED.contains(&done["state"].as_str().unwrap_or_default()), "{method} {params}: {done}");
        assert_eq!(done["attempts"][0]["vendorCode"], "1000", "{done}");
        let reqs = fake.signed(method);
        assert_eq!(reqs.len(), before + 1, "{method} {params} sent once");
        let r = reqs.last().expect("the request");
        assert_eq!(r.body[method], params, "as sent");
        assert_eq!((r.body["gantryId"].as_str(), r.body["version"].as_str()), (Some(GANTRY), Some("1001")));
        assert_eq!(r.answered, "1000");
        if params["cmd"] == "10" {
            assert_eq!(done["result"]["batterysTestResult"]["testResult"], "2", "{done}");
            assert_eq!(done["result"]["batterysTestResult"], battery_test_result(), "{done}");
        }
    }
    assert_eq!(fake.signature_failures(), 0);
    assert!(fake.errors().is_empty(), "{:?}", fake.errors());
}

#[tokio::test]
async fn a_failed_command_ends_failed_and_invalid_ones_send_nothing() {
    let fake = FakeGantry::start().await;
    let e = control_setup(&fake).await;
    let gantry = e.device_id(GANTRY).await;
    fake.fail_all_controls();
    let sent = e
        .command(&gantry, "cabinetControl", json!({"cmd": "2", "cabinetId": "1", "unlockDoorId": "1"}))
        .await
        .expect("accepted");
    let done = e.settle_delivery(sent["id"].as_str().expect("id")).await;
    assert!(["FAILED", "DEAD"].contains(&done["state"].as_str().unwrap_or_default()), "{done}");
    assert_eq!(done["attempts"][0]["vendorCode"], "1007", "{done}");
    assert!(fake.signed("cabinetControl").iter().all(|r| r.answered == "1007"));

    let before = fake.requests().len();
    let invalid: Vec<(&str, Value)> = vec![
        ("cabinetControl", json!({"cmd": "11"})),
        ("cabinetControl", json!({"cmd": "2", "cabinetId": "1", "unlockDoorId": "3"})),
        ("computerControl", json!({"setFrequency": "abc"})),
        ("fooControl", json!({"updateNow": "1"})),
        ("computerControl", json!({"cmd": "1", "rebootIp": "192.168.1.20", "rebootPort": "8080"})),
        ("cabinetControl", json!({"cmd": "7", "cardInfos": [{"cardId": "1234567890", "expireDate": "2020/01/01"}]})),
        ("cabinetControl", json!({"updateNow": "1", "rebootNow": "1"})),
    ];
    for (method, params) in invalid {
        let err = e.command(&gantry, method, params.clone()).await.expect_err("refused");
        assert_eq!(err.code.as_deref(), Some("BAD_USER_INPUT"), "{method} {params}: {err}");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(fake.requests().len(), before, "nothing sent for refused commands");
    assert_eq!(fake.signature_failures(), 0);
    assert!(fake.errors().is_empty(), "{:?}", fake.errors());
}

/// The example cabinet with its front door opened at `opened`.
fn door_opened(opened: &str) -> Value {
    cabinet(|c| {
        c["doors"]["frontDoorClosed"] = json!("0");
        c["doors"]["frontDoorLocked"] = json!("0");
        c["doors"]["frontDoorUnlockType"] = json!("1");
        c["doors"]["frontDoorUnlockCardId"] = json!("1234567890");
        c["doors"]["frontDoorChangeTime"] = json!(opened);
    })
}

const OPENED: &str = "2019-11-02 10:00:00.123";

async fn media_setup(fake: &FakeGantry, attempts: u32) -> Etc {
    setup(json!({"deviceHosts": {GANTRY: fake.host()},
                 "retry": {"initialDelaySecs": 1, "maxDelaySecs": 1, "maxAttempts": attempts}}))
    .await
}

/// Waits until the cabinet's files list an entry in `state`; answers the list.
async fn files_in_state(e: &Etc, cabinet: &str, state: &str) -> Vec<Value> {
    poll(&format!("a {state} file"), Duration::from_secs(60), || async {
        let files = e.files(cabinet).await;
        files.iter().any(|f| f["state"] == state).then_some(files)
    })
    .await
}

#[tokio::test]
async fn a_door_opening_fetches_its_picture_and_keeps_it_for_the_tenant() {
    let fake = FakeGantry::start().await;
    fake.missing_pictures_first(2);
    let e = media_setup(&fake, 10).await;
    e.ok(&cabinet_report(GANTRY, now(), door_opened(OPENED))).await;
    let reqs = fake
        .wait_for("the picture", Duration::from_secs(60), |rs| {
            rs.iter().any(|r| r.method == "getCabinetImageVedio" && r.answered == "file")
        })
        .await;
    let asks: Vec<_> = reqs.iter().filter(|r| r.method == "getCabinetImageVedio").collect();
    let answers: Vec<&str> = asks.iter().map(|r| r.answered.as_str()).collect();
    assert_eq!(answers, ["1009", "1009", "file"]);
    for r in &asks {
        assert_eq!(r.body["getCabinetImageVedio"], json!({"cabinetId": "1", "doorOpenTime": OPENED}));
        assert_eq!(r.body["gantryId"], GANTRY);
    }
    assert_eq!(fake.signature_failures(), 0);
    assert!(fake.errors().is_empty(), "{:?}", fake.errors());

    let cabinet = e.device_id(&format!("{GANTRY}/cabinet/1")).await;
    let files = files_in_state(&e, &cabinet, "STORED").await;
    assert_eq!(files.len(), 1, "{files:?}");
    let f = &files[0];
    let blob = picture();
    assert_eq!(f["filename"], "G000211001002110010_20191102100000123.jpg", "{f}");
    assert_eq!(f["contentType"], "image/jpeg");
    assert_eq!(f["size"], json!(blob.len()));
    assert!(f["md5"].as_str().is_some_and(|m| m.eq_ignore_ascii_case(&md5_hex(&blob))), "{f}");
    let url = e.local(f["downloadUrl"].as_str().expect("downloadUrl"));
    let (status, ct, bytes) = e.download(&url).await;
    assert_eq!(status, 200, "{url}");
    assert!(ct.starts_with("image/jpeg"), "{ct}");
    assert!(bytes == blob, "the bytes the gantry sent ({} bytes, {} expected)", bytes.len(), blob.len());
    let broken = tamper(&url);
    let (status, _, _) = e.download(&broken).await;
    assert!((400..500).contains(&status), "{broken}: {status}");

    // Another tenant does not see it.
    let root = e.app.admin_token().await;
    let other = tenant_with_admin(&e.app, &root).await;
    match other.api.query(FILES, json!({"d": cabinet})).await {
        Err(err) => assert_eq!(err.code.as_deref(), Some("NOT_FOUND"), "{err}"),
        Ok(d) => assert_eq!(d["deviceFiles"], json!([]), "{d}"),
    }
}

#[tokio::test]
async fn a_door_opening_without_a_picture_is_listed_as_no_file() {
    let fake = FakeGantry::start().await;
    fake.no_pictures();
    let e = media_setup(&fake, 3).await;
    e.ok(&cabinet_report(GANTRY, now(), door_opened(OPENED))).await;
    let cabinet = e.device_id(&format!("{GANTRY}/cabinet/1")).await;
    let files = files_in_state(&e, &cabinet, "NO_FILE").await;
    assert_eq!(files.len(), 1, "{files:?}");
    let asks = fake.signed("getCabinetImageVedio");
    assert!((2..=3).contains(&asks.len()), "asked again before giving up, at most maxAttempts: {}", asks.len());
    assert!(asks.iter().all(|r| r.answered == "1009"));
    assert!(fake.errors().is_empty(), "{:?}", fake.errors());
}

#[tokio::test]
async fn a_picture_that_fails_its_md5_is_asked_for_again() {
    let fake = FakeGantry::start().await;
    fake.wrong_picture_md5_first(1);
    let e = media_setup(&fake, 10).await;
    e.ok(&cabinet_report(GANTRY, now(), door_opened(OPENED))).await;
    let cabinet = e.device_id(&format!("{GANTRY}/cabinet/1")).await;
    let files = files_in_state(&e, &cabinet, "STORED").await;
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0]["md5"].as_str().is_some_and(|m| m.eq_ignore_ascii_case(&md5_hex(&picture()))), "{files:?}");
    let asks = fake.signed("getCabinetImageVedio");
    assert_eq!(asks.len(), 2, "the mismatched file is not kept: {}", asks.len());
}

#[test]
fn tamper_changes_one_character_of_the_token() {
    let cases = [
        "http://127.0.0.1:1/files/abc/download?token=0123456789abcdef",
        "http://127.0.0.1:1/files/3f2a6c1e-5b7d-4e8a-9c0b-1d2e3f4a5b6c/G000211001002110010_20191102100000123.jpg",
    ];
    for url in cases {
        let t = tamper(url);
        assert_eq!(t.len(), url.len());
        assert_eq!(t.chars().zip(url.chars()).filter(|(a, b)| a != b).count(), 1, "{url} -> {t}");
        assert!(!t.contains("G000211001002110010_20191102100000124"), "not the file name: {t}");
    }
    assert!(tamper(cases[0]).starts_with("http://127.0.0.1:1/files/abc/download?token="));
}

/// Keeps the time helpers honest: the example's timestamp is the only thing replaced.
#[test]
fn examples_change_only_their_timestamp() {
    let b = example(CABINET_EXAMPLE, GANTRY, 1_700_000_000);
    assert_eq!(b.len(), CABINET_EXAMPLE.len());
    assert!(b.contains("\"timeStamp\": \"1700000000\"") && b.contains("\" lightningCount \""));
    let v: Value = serde_json::from_str(&example(PC_EXAMPLE, "G1", 1)).expect("JSON");
    assert_eq!((v["gantryId"].as_str(), v["timeStamp"].as_str()), (Some("G1"), Some("1")));
}

/// The fake itself, without the platform: what it refuses, counts and answers.
#[tokio::test]
async fn the_fake_gantry_checks_signatures_and_answers_by_method() {
    let fake = FakeGantry::start().await;
    let http = reqwest::Client::new();
    let url = format!("http://{}/remotecontrol.do", fake.host());
    let send = |method: &str, own: Value, md5: Option<String>, auth: &str| {
        let body = json!({"gantryId": GANTRY, "method": method, "timeStamp": now().to_string(), "version": "1001",
                          method: own})
        .to_string();
        let md5 = md5.unwrap_or_else(|| md5_hex(body.as_bytes()).to_uppercase());
        http.post(&url)
            .header("content-type", "application/json")
            .header("binfile-md5", md5)
            .header("binfile-auth", auth)
            .body(body)
            .send()
    };
    let answer = |r: reqwest::Response| async move { r.json::<Value>().await.expect("JSON")["code"].clone() };
    let r = send("computerControl", json!({"updateNow": "1"}), None, "654321").await.expect("send");
    assert_eq!(answer(r).await, "1001");
    let r = send("computerControl", json!({"updateNow": "1"}), Some("0".repeat(32)), AUTH_CODE).await.expect("send");
    assert_eq!(answer(r).await, "1004");
    assert_eq!(fake.signature_failures(), 2);
    let r = send("computerControl", json!({"updateNow": "1"}), None, AUTH_CODE).await.expect("send");
    assert_eq!(answer(r).await, "1000");
    let r = send("cabinetControl", json!({"cmd": "10", "cabinetId": "1"}), None, AUTH_CODE).await.expect("send");
    assert_eq!(r.json::<Value>().await.expect("JSON")["batterysTestResult"], battery_test_result());
    fake.fail_all_controls();
    let r = send("cabinetControl", json!({"cmd": "5", "mode": "1"}), None, AUTH_CODE).await.expect("send");
    assert_eq!(answer(r).await, "1007");
    fake.missing_pictures_first(1);
    fake.wrong_picture_md5_first(1);
    let ask = json!({"cabinetId": "1", "doorOpenTime": OPENED});
    let r = send("getCabinetImageVedio", ask.clone(), None, AUTH_CODE).await.expect("send");
    assert_eq!(answer(r).await, "1009");
    for wrong in [true, false] {
        let r = send("getCabinetImageVedio", ask.clone(), None, AUTH_CODE).await.expect("send");
        let h = |n: &str| r.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        assert_eq!(h("content-type"), "image/jpeg");
        assert_eq!(h("content-disposition"), "attachment;filename=G000211001002110010_20191102100000123.jpg");
        assert_eq!(h("binfile-md5") == md5_hex(&picture()), !wrong);
        assert_eq!(r.bytes().await.expect("bytes").to_vec(), picture());
    }
    fake.no_pictures();
    let r = send("getCabinetImageVedio", ask, None, AUTH_CODE).await.expect("send");
    assert_eq!(answer(r).await, "1009");
    let answered: Vec<String> = fake.requests().into_iter().map(|r| r.answered).collect();
    assert_eq!(answered, ["1001", "1004", "1000", "1000", "1007", "1009", "file", "file", "1009"]);
    assert_eq!(fake.signed("getCabinetImageVedio").len(), 4);
    assert!(fake.errors().is_empty(), "{:?}", fake.errors());
}
