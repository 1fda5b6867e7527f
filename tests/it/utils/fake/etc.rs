//! An ETC gantry's own control server (seed 001 sections 2.2, 3.2, 3.3; `PROTOCOLS.md`
//! section 2b) as a fake: `POST /remotecontrol.do`. It checks what the device would on every
//! request: `binfile-auth` is the gantry's auth code (else `1001`), `binfile-md5` the MD5 of
//! the raw body in either case (else `1004`); both count as signature failures. It records
//! every request and answers by `method`: `computerControl` / `cabinetControl` with `1000`
//! (or a scripted `1007`), `cmd` 10 with its `batterysTestResult`; `getCabinetImageVedio`
//! with a scripted number of `1009` first, then the picture as a file with its headers.
//! Protocol slips that a device would not refuse (a missing common field, a value that is
//! not a string, a stale `timeStamp`) go to `errors()`, which a test asserts empty.

use super::until;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use md5::{Digest, Md5};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The document's test auth code.
pub const AUTH_CODE: &str = "123456";

/// Lower-case hex MD5 of `bytes` (what `binfile-md5` carries).
pub fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

/// The door-opening picture the fake serves: a small JPEG-looking blob (SOI, APP0, some
/// bytes of every value, EOI).
pub fn picture() -> Vec<u8> {
    let mut p = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01, 0x01, 0x00];
    p.extend((0..1024u32).map(|i| ((i * 37 + 11) % 256) as u8));
    p.extend([0xFF, 0xD9]);
    p
}

/// The battery test result the fake answers to `cabinetControl` `cmd` 10.
pub fn battery_test_result() -> Value {
    json!({"testStartTime": "2019-11-02 10:00:00.000", "testResult": "2", "efficiency": "95",
           "dischargeTime": "1.5", "dischargeEndVoltage": "47", "dischargeAvCurrent": "10",
           "dischargeAhCurrent": "15", "testTemperature": "25", "testEndCourse": "1"})
}

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct GantryRequest {
    pub path: String,
    pub headers: HeaderMap,
    pub raw: Bytes,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: Value,
    /// The body's `method` ("" when absent).
    pub method: String,
    /// The `code` it was answered with, or `"file"` for the picture.
    pub answered: String,
    /// False when the auth code or the MD5 was wrong.
    pub signed: bool,
}

impl GantryRequest {
    /// A header's value ("" when absent or not text).
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }
}

/// How many more times a scripted answer is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Times {
    Next(u32),
    Always,
}

impl Times {
    /// Whether the script answers this request (and counts it).
    fn take(&mut self) -> bool {
        match self {
            Self::Always => true,
            Self::Next(0) => false,
            Self::Next(n) => {
                *n -= 1;
                true
            }
        }
    }
}

struct St {
    auth: String,
    requests: Vec<GantryRequest>,
    signature_failures: usize,
    errors: Vec<String>,
    control_failures: Times,
    missing_pictures: Times,
    wrong_md5: Times,
}

/// The fake gantry; clones share it.
#[derive(Clone)]
pub struct FakeGantry {
    addr: String,
    state: Arc<Mutex<St>>,
}

fn lock(m: &Mutex<St>) -> MutexGuard<'_, St> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl FakeGantry {
    /// A gantry whose auth code is the document's `123456`.
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(St {
            auth: AUTH_CODE.to_owned(),
            requests: Vec::new(),
            signature_failures: 0,
            errors: Vec::new(),
            control_failures: Times::Next(0),
            missing_pictures: Times::Next(0),
            wrong_md5: Times::Next(0),
        }));
        let app = Router::new().fallback(handle).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake gantry");
        let addr = listener.local_addr().expect("addr").to_string();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, state }
    }

    /// `127.0.0.1:<port>`: what `deviceHosts` maps the gantry to.
    pub fn host(&self) -> String {
        self.addr.clone()
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<GantryRequest> {
        lock(&self.state).requests.clone()
    }

    /// The correctly signed requests of `method`, in arrival order.
    pub fn signed(&self, method: &str) -> Vec<GantryRequest> {
        self.requests().into_iter().filter(|r| r.signed && r.method == method).collect()
    }

    /// How many requests came with a wrong auth code or MD5.
    pub fn signature_failures(&self) -> usize {
        lock(&self.state).signature_failures
    }

    /// The protocol slips found so far.
    pub fn errors(&self) -> Vec<String> {
        lock(&self.state).errors.clone()
    }

    /// Every control command from now on answers `1007`.
    pub fn fail_all_controls(&self) {
        lock(&self.state).control_failures = Times::Always;
    }

    /// The next `n` picture requests answer `1009` (no picture yet).
    pub fn missing_pictures_first(&self, n: u32) {
        lock(&self.state).missing_pictures = Times::Next(n);
    }

    /// Every picture request from now on answers `1009`.
    pub fn no_pictures(&self) {
        lock(&self.state).missing_pictures = Times::Always;
    }

    /// The next `n` pictures are sent with a `binfile-md5` that is not theirs.
    pub fn wrong_picture_md5_first(&self, n: u32) {
        lock(&self.state).wrong_md5 = Times::Next(n);
    }

    /// Waits (at most `within`) until `done` holds for the requests so far; answers them.
    pub async fn wait_for(
        &self,
        what: &str,
        within: Duration,
        done: impl Fn(&[GantryRequest]) -> bool,
    ) -> Vec<GantryRequest> {
        until(what, within, || done(&lock(&self.state).requests)).await;
        self.requests()
    }
}

fn code(code: &str, msg: &str) -> (Response, String) {
    ((StatusCode::OK, axum::Json(json!({"code": code, "msg": msg}))).into_response(), code.to_owned())
}

fn text(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// Every leaf under `v` must be a string: the document types every field `String`.
fn strings_only(v: &Value, at: &str, errors: &mut Vec<String>) {
    match v {
        Value::String(_) => {}
        Value::Object(m) => m.iter().for_each(|(k, v)| strings_only(v, &format!("{at}.{k}"), errors)),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, v)| strings_only(v, &format!("{at}[{i}]"), errors)),
        other => errors.push(format!("{at} is {other}, not a string")),
    }
}

/// The common fields of section 1.5 and the method's own object.
fn check_common(body: &Value, headers: &HeaderMap, errors: &mut Vec<String>) {
    let method = text(body, "method");
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type.contains("json") {
        errors.push(format!("{method}: Content-Type {content_type:?} is not JSON"));
    }
    let Some(fields) = body.as_object() else {
        errors.push("the body is not a JSON object".into());
        return;
    };
    for k in ["gantryId", "method", "timeStamp", "version"] {
        if fields.get(k).and_then(Value::as_str).is_none_or(str::is_empty) {
            errors.push(format!("{method}: {k} missing or not a string"));
        }
    }
    if text(body, "version") != "1001" {
        errors.push(format!("{method}: version {:?}", body.get("version")));
    }
    match text(body, "timeStamp").parse::<i64>() {
        Ok(t) if (chrono::Utc::now().timestamp() - t).abs() <= 300 => {}
        _ => errors.push(format!("{method}: timeStamp {:?} is not Unix seconds of now", body.get("timeStamp"))),
    }
    match fields.get(&method) {
        Some(own @ Value::Object(_)) => strings_only(own, &method, errors),
        _ => errors.push(format!("{method}: no {method:?} object")),
    }
    let extra: Vec<&String> = fields
        .keys()
        .filter(|k| !["gantryId", "method", "timeStamp", "version", method.as_str()].contains(&k.as_str()))
        .collect();
    if !extra.is_empty() {
        errors.push(format!("{method}: unexpected fields {extra:?}"));
    }
}

fn judge(s: &mut St, path: &str, headers: &HeaderMap, raw: &[u8], body: &Value) -> (Response, String) {
    if path != "/remotecontrol.do" {
        s.errors.push(format!("request to {path}"));
        return ((StatusCode::NOT_FOUND, "not found").into_response(), "404".into());
    }
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    if h("binfile-auth") != s.auth {
        s.signature_failures += 1;
        return code("1001", "无权使用该接口");
    }
    if !h("binfile-md5").eq_ignore_ascii_case(&md5_hex(raw)) {
        s.signature_failures += 1;
        return code("1004", "无效的签名");
    }
    check_common(body, headers, &mut s.errors);
    let method = text(body, "method");
    match method.as_str() {
        "computerControl" | "cabinetControl" => {
            if s.control_failures.take() {
                return code("1007", "执行控制命令失败");
            }
            let mut answer = json!({"code": "1000", "msg": "成功"});
            if method == "cabinetControl" && body["cabinetControl"]["cmd"] == "10" {
                answer["batterysTestResult"] = battery_test_result();
            }
            ((StatusCode::OK, axum::Json(answer)).into_response(), "1000".into())
        }
        "getCabinetImageVedio" => {
            let query = &body["getCabinetImageVedio"];
            let opened = text(query, "doorOpenTime");
            if text(query, "cabinetId").is_empty()
                || chrono::NaiveDateTime::parse_from_str(&opened, "%Y-%m-%d %H:%M:%S%.3f").is_err()
            {
                s.errors.push(format!("getCabinetImageVedio: {query}"));
                return code("1002", "参数有误");
            }
            if s.missing_pictures.take() {
                return code("1009", "无对应图像/视频");
            }
            let stamp: String = opened.chars().filter(char::is_ascii_digit).collect();
            let filename = format!("{}_{stamp}.jpg", text(body, "gantryId"));
            let file = picture();
            let md5 = if s.wrong_md5.take() { md5_hex(b"another file") } else { md5_hex(&file) };
            let mut resp = (StatusCode::OK, file).into_response();
            let hs = resp.headers_mut();
            hs.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
            let disposition = format!("attachment;filename={filename}");
            hs.insert(header::CONTENT_DISPOSITION, HeaderValue::from_str(&disposition).expect("header"));
            hs.insert("binfile-md5", HeaderValue::from_str(&md5).expect("header"));
            hs.insert("binfile-auth", HeaderValue::from_str(&s.auth).expect("header"));
            (resp, "file".into())
        }
        other => {
            s.errors.push(format!("unknown method {other:?}"));
            code("1002", "参数有误")
        }
    }
}

async fn handle(State(state): State<Arc<Mutex<St>>>, uri: Uri, headers: HeaderMap, raw: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let mut s = lock(&state);
    let before = s.signature_failures;
    let (resp, answered) = judge(&mut s, uri.path(), &headers, &raw, &body);
    let signed = s.signature_failures == before;
    let method = text(&body, "method");
    s.requests.push(GantryRequest { path: uri.path().to_owned(), headers, raw, body, method, answered, signed });
    resp
}
