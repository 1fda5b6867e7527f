//! The Huzhou elevator data center (seed 000, `PROTOCOLS.md` section 1) as a fake: it checks
//! what the real one would: the token request's `sign`, every push's `signature`,
//! `Authorization`, the `Request-Id` format, and the field names, string types, time format
//! and enums of each action's `req_info`. What it finds wrong goes to `errors()`, which a
//! test asserts empty.

use super::{Answer, Exchange, FakeVendor, Judgement, Request, WAIT};
use axum::http::{Method, StatusCode};
use md5::{Digest, Md5};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

pub const APP_KEY: &str = "hz-app-key";
pub const APP_SECRET: &str = "hz-app-secret-Q9";

fn md5_upper(s: &str) -> String {
    hex::encode_upper(Md5::digest(s.as_bytes()))
}

/// One push as the fake data center saw it.
#[derive(Debug, Clone)]
pub struct Push {
    pub request_id: String,
    pub token: String,
    pub info: Value,
    pub at: Instant,
    /// The `ret_code` it was answered with ("500" for an HTTP 500).
    pub answered: String,
}

#[derive(Default)]
struct DcState {
    /// Tokens the data center accepts now.
    tokens: Vec<String>,
    /// Tokens issued so far.
    issued: usize,
    /// Protocol violations the fake found (a test fails when any is here).
    errors: Vec<String>,
    /// Answer the next n pushes with ret_code 301 and forget the token.
    expire: u32,
}

/// The fake data center; its base URL serves both hosts (`/api_lift`, `/api_dc`).
#[derive(Clone)]
pub struct FakeDataCenter {
    pub server: FakeVendor,
    state: Arc<Mutex<DcState>>,
}

fn is_ts15(s: &str) -> bool {
    s.len() == 15 && chrono::NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%S").is_ok()
}

const TIMES: &[&str] = &[
    "report_time",
    "arrive_time",
    "finish_time",
    "use_starttime",
    "use_endtime",
    "recv_time",
    "fault_start_time",
    "alarm_accept_time",
    "task_open_time",
    "task_accept_time",
    "rescue_time",
];

/// The seed's fields per action: (required, optional).
fn fields(action: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match action {
        "lift_alarm" => (
            &[
                "unique_id",
                "internal_id",
                "lift_type",
                "service_mode",
                "car_status",
                "car_direction",
                "door_zone",
                "car_position",
                "door_status",
                "passenger_status",
                "message_code",
            ],
            &["device_id", "total_running_time", "present_counter_value", "message_body"],
        ),
        "lift_maintain" => (
            &[
                "unique_id",
                "internal_id",
                "lift_type",
                "maintain_type",
                "fault_type",
                "fault_info",
                "fault_cause",
                "deal_result",
                "deal_time",
                "deal_engineer",
                "contact_name",
                "contact_phone",
                "use_company",
                "report_no",
                "report_time",
                "arrive_time",
                "finish_time",
                "response_time",
            ],
            &["device_id", "use_city", "use_street", "passengers_info"],
        ),
        "lift_notify" => (
            &["unique_id", "lift_type", "use_type", "is_current_count", "use_count", "use_starttime", "use_endtime"],
            &["device_id", "comments"],
        ),
        "put_ie_elev_things" => (
            &[
                "unique_id",
                "serial_num",
                "recv_time",
                "run_trend",
                "elev_speed",
                "open_close_count",
                "run_count",
                "curr_floor",
                "passenger_state",
                "door_state",
            ],
            &[],
        ),
        "put_ie_elev_paras" => (
            &["unique_id"],
            &[
                "elev_provider_id",
                "elev_name",
                "elev_loc",
                "elev_floors",
                "elev_lat",
                "elev_lng",
                "video_pos",
                "video_url",
                "stream_url",
                "rescue_url",
                "dev_type",
                "live_state",
            ],
        ),
        "put_ie_trap_fault" => (
            &[
                "unique_id",
                "data_source",
                "serial_num",
                "main_company_name",
                "use_company_name",
                "is_examine",
                "primary_rescue_company",
                "device_location",
                "fault_start_time",
                "handle_result",
                "trap_people",
                "scene_describe",
                "fault_cause",
                "area_num",
                "alarm_accept_time",
                "task_open_time",
                "task_accept_time",
                "arrive_time",
                "rescue_time",
                "rescue_level",
            ],
            &["secondary_rescue_company"],
        ),
        _ => (&[], &[]),
    }
}

/// Checks one `req_info` object (or one list item) the way the data center would.
fn check_item(action: &str, item: &Value, errors: &mut Vec<String>) {
    let (required, optional) = fields(action);
    let Some(m) = item.as_object() else {
        errors.push(format!("{action}: item is not an object"));
        return;
    };
    for r in required {
        if !m.contains_key(*r) {
            errors.push(format!("{action}: missing {r}"));
        }
    }
    for (k, v) in m {
        if !required.contains(&k.as_str()) && !optional.contains(&k.as_str()) {
            errors.push(format!("{action}: unknown field {k}"));
        }
        let Some(s) = v.as_str() else {
            errors.push(format!("{action}: {k} is not a string: {v}"));
            continue;
        };
        if TIMES.contains(&k.as_str()) && !is_ts15(s) {
            errors.push(format!("{action}: {k} is not a 15-character timestamp: {s}"));
        }
        let allowed: &[&str] = match k.as_str() {
            "lift_type" => &["1", "2"],
            "dev_type" => &["3"],
            "data_source" => &["1", "2", "3"],
            "is_examine" => &["T", "F"],
            "rescue_level" => &["1", "2", "3"],
            "live_state" => &["0", "1", "2", "3"],
            "run_trend" if action == "put_ie_elev_things" => &["1", "2", "3"],
            "passenger_state" => &["1", "2", "3"],
            "door_state" => &["1", "2", "3", "4", "5"],
            _ => &[],
        };
        if !allowed.is_empty() && !allowed.contains(&s) {
            errors.push(format!("{action}: {k} = {s:?} is not one of {allowed:?}"));
        }
        if action == "put_ie_elev_paras" && s.is_empty() {
            errors.push(format!("{action}: empty {k} is sent"));
        }
    }
}

fn ret(code: &str) -> Answer {
    Answer::ok(json!({"ret_status": {"ret_code": code, "ret_msg": "x"}, "ret_data": {}}))
}

/// 3.2: the token request.
fn token(st: &mut DcState, r: &Request) -> Judgement {
    if r.param("action") != "token" {
        st.errors.push(format!("token: action {}", r.param("action")));
    }
    let ts = r.param("timestamp");
    if !is_ts15(ts) {
        st.errors.push(format!("token: timestamp {ts}"));
    }
    if r.param("appKey") != APP_KEY || r.param("appSecret") != APP_SECRET {
        return Judgement::Refuse(Answer::ok(
            json!({"ret_status": {"ret_code": "300", "ret_msg": "应用、私匙或公匙已失效"}}),
        ));
    }
    if r.param("sign") != md5_upper(&format!("{APP_KEY}{APP_SECRET}{ts}")) {
        st.errors.push("token: wrong sign".into());
        return Judgement::Refuse(Answer::ok(json!({"ret_status": {"ret_code": "310", "ret_msg": "签名错误"}})));
    }
    st.issued += 1;
    let t = format!("TOKEN{}", st.issued);
    st.tokens.push(t.clone());
    Judgement::Accept(Some(Answer::ok(json!({"ret_status": {"ret_code": "200", "ret_msg": "访问成功"},
                "ret_data": {"app_token": t, "token_valid_time": "7200"}}))))
}

fn bearer(r: &Request) -> &str {
    r.header("authorization").strip_prefix("Bearer ").unwrap_or_default()
}

/// Every push, on either host.
fn push(st: &mut DcState, r: &Request) -> Judgement {
    let action = r.param("action");
    let token = bearer(r);
    let request_id = r.header("request-id");
    if request_id.len() != 32 || !request_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        st.errors.push(format!("{action}: Request-Id {request_id:?}"));
    }
    if !r.is_json() {
        st.errors.push(format!("{action}: Content-Type {:?}", r.header("content-type")));
    }
    let body = r.json();
    let ctx = &body["req_context"];
    let ts = ctx["timestamp"].as_str().unwrap_or_default();
    if !is_ts15(ts) {
        st.errors.push(format!("{action}: req_context.timestamp {ts:?}"));
    }
    let want_version = if action.starts_with("lift_") { "2.0" } else { "1.0" };
    if ctx["version"] != want_version {
        st.errors.push(format!("{action}: version {}", ctx["version"]));
    }
    if !st.tokens.iter().any(|t| t == token) {
        return Judgement::Refuse(ret("301"));
    }
    if ctx["signature"] != md5_upper(&format!("&action={action}&timestamp={ts}&token={token}&")).as_str() {
        st.errors.push(format!("{action}: wrong signature"));
        return Judgement::Refuse(ret("310"));
    }
    let info = &body["req_info"];
    let mut errors = Vec::new();
    match action {
        "put_ie_elev_things" | "put_ie_elev_paras" => {
            let list = if action == "put_ie_elev_things" { &info["rt_data"] } else { &info["rt_paras"] };
            match list.as_array() {
                Some(items) if !items.is_empty() && items.len() <= 100 => {
                    items.iter().for_each(|i| check_item(action, i, &mut errors));
                }
                _ => errors.push(format!("{action}: 1-100 items expected")),
            }
        }
        _ => check_item(action, info, &mut errors),
    }
    st.errors.extend(errors);
    if st.expire > 0 {
        st.expire -= 1;
        st.tokens.retain(|t| t != token);
        return Judgement::Refuse(ret("301"));
    }
    Judgement::Accept(Some(ret("200")))
}

/// `action:unique_id` of a push (7.7 names its elevator inside its one-item list).
fn key(r: &Request) -> String {
    let info = &r.json()["req_info"];
    let unique_id = info["unique_id"].as_str().or_else(|| info["rt_paras"][0]["unique_id"].as_str());
    format!("{}:{}", r.param("action"), unique_id.unwrap_or_default())
}

fn to_push(e: &Exchange) -> Push {
    let r = &e.request;
    Push {
        request_id: r.header("request-id").to_owned(),
        token: bearer(r).to_owned(),
        info: r.json()["req_info"].clone(),
        at: r.at,
        answered: e.answer.body["ret_status"]["ret_code"].as_str().unwrap_or_default().to_owned(),
    }
}

impl FakeDataCenter {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(DcState::default()));
        let st = state.clone();
        let server = FakeVendor::start_with(move |r| {
            let mut st = st.lock().expect("lock");
            match (&r.method, r.path.as_str()) {
                (&Method::GET, "/api_lift") => token(&mut st, r),
                (&Method::POST, "/api_lift" | "/api_dc") => push(&mut st, r),
                _ => Judgement::Refuse(Answer::status(StatusCode::NOT_FOUND, json!({}))),
            }
        })
        .await;
        Self { server, state }
    }

    pub fn base(&self) -> &str {
        self.server.base()
    }

    fn st(&self) -> MutexGuard<'_, DcState> {
        self.state.lock().expect("lock")
    }

    /// Every push of `action`, whatever it was answered.
    pub fn all(&self, action: &str) -> Vec<Push> {
        let exchanges = self.server.exchanges();
        let pushes =
            exchanges.iter().filter(|e| e.request.method == Method::POST && e.request.param("action") == action);
        pushes.map(to_push).collect()
    }

    /// The pushes of `action` answered 200.
    pub fn pushes(&self, action: &str) -> Vec<Push> {
        self.all(action).into_iter().filter(|p| p.answered == "200").collect()
    }

    /// Waits (30 s at most) until `done` holds.
    pub async fn until(&self, what: &str, done: impl FnMut() -> bool) {
        super::until(what, WAIT, done).await;
    }

    /// Tokens issued so far.
    pub fn issued(&self) -> usize {
        self.st().issued
    }

    pub fn errors(&self) -> Vec<String> {
        self.st().errors.clone()
    }

    /// Answers the next `n` pushes with ret_code 301 and forgets their token.
    pub fn expire_next(&self, n: u32) {
        self.st().expire = n;
    }

    /// Answers the next `n` pushes of `action` for `unique_id` with HTTP 500.
    pub fn fail_next(&self, action: &str, unique_id: &str, n: u32) {
        let want = format!("{action}:{unique_id}");
        let answer = Answer { status: StatusCode::INTERNAL_SERVER_ERROR, ..ret("500") };
        self.server.answer_when(move |r| key(r) == want, Some(n), answer);
    }

    /// Answers every push of `action` for `unique_id` ret_code 330 (必要数据参数缺失或无效).
    pub fn reject(&self, action: &str, unique_id: &str) {
        let want = format!("{action}:{unique_id}");
        self.server.answer_when(move |r| key(r) == want, None, ret("330"));
    }
}
