//! The hazardous-chemicals regulator (seed 004, `PROTOCOLS.md` section 5) as a fake: it
//! checks what the real one would: the login's base64 password, the bearer token on every
//! upload (HTTP 401 without a valid one), the envelope (`systemName`, `areaCode`, a `dataId`
//! never seen before), each `data` item's field names, string types, time formats,
//! coordinates and codes, and the multipart shape of attachments. What it finds wrong goes
//! to `errors()`, which a test asserts empty. It names failed permit ids in its answer text
//! as the seed's answer does.

use super::{Answer, FakeVendor, Judgement, Request};
use axum::http::{Method, StatusCode};
use base64::Engine;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

pub const USERNAME: &str = "textaccount";
pub const PASSWORD: &str = "textpassword";
pub const SYSTEM_NAME: &str = "**数据上报系统";
pub const AREA_CODE: &str = "370211";

/// The seed's `workTicket` item keys.
pub const PERMIT_KEYS: &[&str] = &[
    "id",
    "ticket_type",
    "ticket_level",
    "start_time",
    "end_time",
    "ticket_position",
    "ticket_content",
    "harm_type",
    "company_social_code",
    "gas_analyse",
    "safe_measure",
    "ticket_status",
    "lng",
    "lat",
    "supervisor",
    "supervisor_name",
    "worker",
    "worker_name",
    "workDept",
    "workDept_name",
    "video_code",
    "is_contractor_task",
    "major_person",
    "major_person_mobile",
    "is_changed",
    "changed_reason",
    "is_cancelled",
    "cancelled_reason",
];

/// One attachment as the regulator received it.
#[derive(Debug, Clone)]
pub struct FileUpload {
    pub wid: String,
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
    pub at: Instant,
}

#[derive(Default)]
struct RegState {
    tokens: Vec<String>,
    issued: usize,
    /// The login bodies received.
    logins: Vec<Value>,
    errors: Vec<String>,
    data_ids: HashSet<String>,
    /// Permit id -> the reason the regulator refuses it (while present).
    refuse: HashMap<String, String>,
    files: Vec<FileUpload>,
}

/// The fake regulator.
#[derive(Clone)]
pub struct FakeRegulator {
    pub server: FakeVendor,
    state: Arc<Mutex<RegState>>,
}

fn lock(m: &Mutex<RegState>) -> MutexGuard<'_, RegState> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn is_time(s: &str, format: &str) -> bool {
    chrono::NaiveDateTime::parse_from_str(s, format).is_ok_and(|t| t.format(format).to_string() == s)
}

fn coordinate(s: &str, max: f64) -> bool {
    s.parse::<f64>().is_ok_and(|v| v.is_finite() && v.abs() <= max)
}

/// Seed 004's permit rules, as the regulator would check them.
fn check_permit(item: &Value, errors: &mut Vec<String>) {
    let Some(o) = item.as_object() else { return errors.push(format!("permit item not an object: {item}")) };
    let mut keys: Vec<&str> = o.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut want = PERMIT_KEYS.to_vec();
    want.sort_unstable();
    if keys != want {
        errors.push(format!("permit keys {keys:?}"));
    }
    let s = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("\u{0}");
    for k in PERMIT_KEYS {
        if !o.get(*k).is_some_and(Value::is_string) {
            errors.push(format!("{k} is not a string"));
        }
    }
    for k in ["start_time", "end_time"] {
        if !is_time(s(k), "%Y-%m-%d %H:%M") {
            errors.push(format!("{k} {:?} is not yyyy-MM-dd HH:mm", s(k)));
        }
    }
    if !coordinate(s("lng"), 180.0) || !coordinate(s("lat"), 90.0) {
        errors.push(format!("coordinates {} {}", s("lng"), s("lat")));
    }
    if !["0", "1", "3", "4", "5"].contains(&s("ticket_status")) {
        errors.push(format!("ticket_status {}", s("ticket_status")));
    }
    let levels: &[&str] = match s("ticket_type") {
        "01" => &["00", "01", "02"],
        "04" => &["01", "02", "03", "04"],
        "05" => &["01", "02", "03"],
        _ => &[""],
    };
    if !levels.contains(&s("ticket_level")) {
        errors.push(format!("ticket_type {} with ticket_level {:?}", s("ticket_type"), s("ticket_level")));
    }
    let harm = s("harm_type");
    if !harm.is_empty()
        && !harm.split(',').all(|h| h.len() == 2 && h.parse::<u8>().is_ok_and(|n| (1..=20).contains(&n)))
    {
        errors.push(format!("harm_type {harm}"));
    }
    for k in ["gas_analyse", "safe_measure", "is_contractor_task", "is_changed", "is_cancelled"] {
        if !["0", "1"].contains(&s(k)) {
            errors.push(format!("{k} {}", s(k)));
        }
    }
}

fn check_alarm(path: &str, item: &Value, errors: &mut Vec<String>) {
    let s = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or("\u{0}").to_owned();
    let required: &[&str] = if path.ends_with("gasAlarm") {
        &["id", "ticket_id", "alarm_time", "alarm_type"]
    } else {
        &["id", "ticket_id", "alarm_time", "alarm_type", "person_name", "card_no", "alarm_lng", "alarm_lat"]
    };
    for k in required {
        if s(k) == "\u{0}" || s(k).is_empty() {
            errors.push(format!("{path}: {k} missing"));
        }
    }
    if !is_time(&s("alarm_time"), "%Y-%m-%d %H:%M:%S") {
        errors.push(format!("alarm_time {}", s("alarm_time")));
    }
    if item.get("handle_time").is_some() && !is_time(&s("handle_time"), "%Y-%m-%d %H:%M:%S") {
        errors.push(format!("handle_time {}", s("handle_time")));
    }
}

/// One part of a multipart body: (name, filename, content type, content).
type Part = (String, String, String, Vec<u8>);

/// The parts of a multipart body.
fn multipart(r: &Request) -> Option<Vec<Part>> {
    let ct = r.header("content-type");
    let boundary = ct.strip_prefix("multipart/form-data")?.split("boundary=").nth(1)?.trim_matches('"');
    let delimiter = format!("--{boundary}");
    let body = &r.body[..];
    let mut parts = Vec::new();
    let find = |hay: &[u8], needle: &[u8], from: usize| {
        hay[from..].windows(needle.len()).position(|w| w == needle).map(|p| p + from)
    };
    let mut at = find(body, delimiter.as_bytes(), 0)? + delimiter.len();
    while let Some(next) = find(body, delimiter.as_bytes(), at) {
        let part = &body[at..next];
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let split = find(part, b"\r\n\r\n", 0)?;
        let head = String::from_utf8_lossy(&part[..split]).to_string();
        let content = part[split + 4..].strip_suffix(b"\r\n").unwrap_or(&part[split + 4..]).to_vec();
        let disposition =
            head.lines().find(|l| l.to_ascii_lowercase().starts_with("content-disposition")).unwrap_or("");
        let attr = |key: &str| {
            disposition
                .split(';')
                .map(str::trim)
                .find_map(|p| p.strip_prefix(&format!("{key}=\"")))
                .map(|v| v.trim_end_matches('"').to_owned())
        };
        let ctype =
            head.lines().find_map(|l| l.strip_prefix("Content-Type: ").or_else(|| l.strip_prefix("content-type: ")));
        parts.push((
            attr("name").unwrap_or_default(),
            attr("filename").unwrap_or_default(),
            ctype.unwrap_or("").to_owned(),
            content,
        ));
        at = next + delimiter.len();
    }
    Some(parts)
}

fn answer(code: u16, msg: &str, data: Value) -> Answer {
    Answer::ok(json!({"code": code, "msg": msg, "data": data}))
}

fn judge(state: &Mutex<RegState>, r: &Request) -> Judgement {
    let mut st = lock(state);
    if r.method != Method::POST {
        return Judgement::Refuse(Answer::status(StatusCode::METHOD_NOT_ALLOWED, json!({})));
    }
    if r.path == "/auth/login" {
        let body = r.json();
        st.logins.push(body.clone());
        let encoded = base64::engine::general_purpose::STANDARD.encode(PASSWORD);
        if body["username"] != USERNAME || body["password"] != encoded.as_str() {
            return Judgement::Refuse(answer(500, "用户名或密码错误", Value::Null));
        }
        st.issued += 1;
        let token = format!("Bq{}{}=", st.issued, uuid::Uuid::new_v4().simple());
        st.tokens.push(token.clone());
        return Judgement::Accept(Some(answer(200, "请求成功", json!({"username": USERNAME, "token": token}))));
    }
    let bearer = r.header("authorization").strip_prefix("Bearer ").unwrap_or_default().to_owned();
    if !st.tokens.contains(&bearer) {
        return Judgement::Refuse(Answer::status(StatusCode::UNAUTHORIZED, json!({"code": 401, "msg": "认证失败"})));
    }
    if r.path == "/data/workorder/ticketFile" {
        let Some(parts) = multipart(r) else {
            st.errors.push(format!("ticketFile is not multipart: {}", r.header("content-type")));
            return Judgement::Refuse(answer(400, "bad request", Value::Null));
        };
        let wid = parts.iter().find(|p| p.0 == "wid").map(|p| String::from_utf8_lossy(&p.3).to_string());
        let file = parts.iter().find(|p| p.0 == "file");
        let (Some(wid), Some(file)) = (wid, file) else {
            st.errors.push("ticketFile without wid or file".into());
            return Judgement::Refuse(answer(400, "bad request", Value::Null));
        };
        if parts.len() != 2 {
            st.errors.push(format!("ticketFile has {} parts", parts.len()));
        }
        st.files.push(FileUpload {
            wid,
            filename: file.1.clone(),
            content_type: file.2.clone(),
            bytes: file.3.clone(),
            at: r.at,
        });
        return Judgement::Accept(Some(answer(200, "请求成功", json!("附件上传成功"))));
    }
    if !r.is_json() {
        st.errors.push(format!("{} is not JSON", r.path));
    }
    let body = r.json();
    for k in ["systemName", "areaCode", "dataId"] {
        if body[k].as_str().is_none_or(str::is_empty) {
            st.errors.push(format!("{}: {k} missing", r.path));
        }
    }
    if body["systemName"] != SYSTEM_NAME || body["areaCode"] != AREA_CODE {
        st.errors.push(format!("{}: systemName/areaCode {} {}", r.path, body["systemName"], body["areaCode"]));
    }
    let data_id = body["dataId"].as_str().unwrap_or_default().to_owned();
    if !st.data_ids.insert(data_id.clone()) {
        st.errors.push(format!("dataId {data_id} used twice"));
    }
    let items = body["data"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        st.errors.push(format!("{}: no data", r.path));
    }
    match r.path.as_str() {
        "/data/workorder/workTicket" => {
            let mut errors = Vec::new();
            for item in &items {
                check_permit(item, &mut errors);
            }
            st.errors.extend(errors);
            let ids: Vec<String> = items.iter().filter_map(|i| i["id"].as_str().map(str::to_owned)).collect();
            let (failed, ok): (Vec<&String>, Vec<&String>) = ids.iter().partition(|id| st.refuse.contains_key(*id));
            let reasons: Vec<String> = failed.iter().map(|id| st.refuse[*id].clone()).collect();
            let join = |v: &[&String]| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",");
            let text = format!(
                "作业票同步结束,成功 {}条,失败 {}条。作业票储存成功的作业票 id有[{}],失败的作业票 id有[{}]。 错误原因为[{}]",
                ok.len(),
                failed.len(),
                join(&ok),
                join(&failed),
                reasons.join(",")
            );
            Judgement::Accept(Some(answer(200, "请求成功", json!(text))))
        }
        "/data/workorder/gasAlarm" | "/data/workorder/departureAlarm" => {
            let mut errors = Vec::new();
            for item in &items {
                check_alarm(&r.path, item, &mut errors);
            }
            st.errors.extend(errors);
            Judgement::Accept(Some(answer(
                200,
                "请求成功",
                json!(format!("同步结束，成功 {}条，失败 0条;", items.len())),
            )))
        }
        _ => Judgement::Refuse(Answer::status(StatusCode::NOT_FOUND, json!({}))),
    }
}

impl FakeRegulator {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(RegState::default()));
        let judged = state.clone();
        let server = FakeVendor::start_with(move |r| judge(&judged, r)).await;
        Self { server, state }
    }

    pub fn base(&self) -> &str {
        self.server.base()
    }

    /// Protocol violations seen so far.
    pub fn errors(&self) -> Vec<String> {
        lock(&self.state).errors.clone()
    }

    /// Tokens issued so far.
    pub fn issued(&self) -> usize {
        lock(&self.state).issued
    }

    pub fn logins(&self) -> Vec<Value> {
        lock(&self.state).logins.clone()
    }

    /// Forgets every token: the next upload gets HTTP 401.
    pub fn revoke_tokens(&self) {
        lock(&self.state).tokens.clear();
    }

    /// Refuses the permit `id` with `reason` until `accept` is called.
    pub fn refuse(&self, id: &str, reason: &str) {
        lock(&self.state).refuse.insert(id.to_owned(), reason.to_owned());
    }

    pub fn accept(&self, id: &str) {
        lock(&self.state).refuse.remove(id);
    }

    /// The accepted requests to `path`, in arrival order, as JSON bodies.
    pub fn bodies(&self, path: &str) -> Vec<Value> {
        self.server
            .exchanges()
            .into_iter()
            .filter(|e| e.accepted && e.request.path == path)
            .map(|e| e.request.json())
            .collect()
    }

    /// Every request to `path` (accepted or not) with its HTTP status.
    pub fn statuses(&self, path: &str) -> Vec<u16> {
        self.server
            .exchanges()
            .into_iter()
            .filter(|e| e.request.path == path)
            .map(|e| e.answer.status.as_u16())
            .collect()
    }

    pub fn files(&self) -> Vec<FileUpload> {
        lock(&self.state).files.clone()
    }

    /// The settings and credentials of an integration that talks to this fake.
    pub fn integration(&self, name: &str) -> Value {
        json!({"kind": "HAZCHEM", "name": name,
               "settings": {"baseUrl": self.base(), "systemName": SYSTEM_NAME, "areaCode": AREA_CODE,
                            "retry": {"initialDelaySecs": 1, "maxDelaySecs": 1, "maxAttempts": 20}},
               "credentials": {"username": USERNAME, "password": PASSWORD}})
    }
}
