//! The gas DAS (seed 003, `PROTOCOLS.md` section 4) as a fake: it checks what the real one
//! would on every call: `AccessToken` = uppercase MD5 of appCode + appSecret + time,
//! `Authorization` = base64 of `appCode:time` with the same time within 300 s, the JSON
//! content type, a 32-hex `serialNo`, `companyCode` and `factorNo`, and each code's
//! required fields in the seed's names. It keeps its own meters, prices and commands and
//! answers as the seed does (9999 for an unknown meter, 2004 for a price that exists).
//! Violations go to `errors()`, which a test asserts empty. It also signs the DAS's own
//! reports to the platform (`post`).

use super::{Answer, FakeVendor, Judgement, Request, WAIT};
use base64::Engine as _;
use chrono::{FixedOffset, NaiveDateTime, TimeZone, Utc};
use md5::{Digest, Md5};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

pub const APP_CODE: &str = "00000072";
pub const APP_SECRET: &str = "gc-secret-K2";
pub const COMPANY: &str = "10001058";
pub const FACTOR: &str = "0013";

fn shanghai() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("offset")
}

/// `time`, `AccessToken` and `Authorization` for `now + skew_secs`.
pub fn headers(app_code: &str, secret: &str, skew_secs: i64) -> (String, String) {
    let time = (Utc::now() + chrono::Duration::seconds(skew_secs)).with_timezone(&shanghai()).format("%Y%m%d%H%M%S");
    let time = time.to_string();
    let token = hex::encode_upper(Md5::digest(format!("{app_code}{secret}{time}").as_bytes()));
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{app_code}:{time}"));
    (token, auth)
}

/// A 32-hex serial.
pub fn serial() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// What the fake DAS knows.
#[derive(Default)]
pub struct DasState {
    /// meterNo -> userNo.
    pub meters: HashMap<String, String>,
    /// priceCode -> versions sent.
    pub prices: HashMap<String, Vec<Value>>,
    /// 1004 serialNo -> body.
    pub commands: HashMap<String, Value>,
    pub serials: HashSet<String>,
    pub errors: Vec<String>,
    /// meterNo -> (readNum, readDate `yyyy-MM-dd HH:mm:ss`): what 1013 answers.
    pub latest: HashMap<String, (String, String)>,
    /// meterNo -> 1015 `gasData` rows.
    pub usage: HashMap<String, Vec<Value>>,
}

fn required(code: &str) -> &'static [&'static str] {
    match code {
        "1001" => &[
            "serialNo",
            "userNo",
            "factorNo",
            "meterType",
            "meterNo",
            "initNum",
            "billingModel",
            "payModel",
            "companyCode",
            "sdateTime",
            "priceCode",
        ],
        "1002" => &["serialNo", "userNo", "factorNo", "meterNo", "initNum", "reason", "companyCode", "sdateTime"],
        "1004" => &["serialNo", "userNo", "factorNo", "meterNo", "paramNo", "paramContext", "companyCode", "sdateTime"],
        "1005" => &["serialNo", "userNo", "meterNo", "sendSerialNo", "companyCode"],
        "1007" => &[
            "serialNo",
            "factorNo",
            "companyCode",
            "priceCode",
            "priceVersion",
            "priceProperty",
            "priceType",
            "priceDetail",
        ],
        "1008" => &["serialNo", "userNo", "factorNo", "meterNo", "newPriceCode", "companyCode"],
        "1009" => &[
            "serialNo",
            "userNo",
            "meterNo",
            "factorNo",
            "newMeterType",
            "newMeterNo",
            "oldNum",
            "newNum",
            "companyCode",
        ],
        "1013" => &["serialNo", "companyCode", "factorNo"],
        "1014" | "1015" => &["serialNo", "userNo", "factorNo", "meterNo", "companyCode"],
        _ => &[],
    }
}

fn ok(serial: &str, device: &str) -> Answer {
    let rdate = Utc::now().with_timezone(&shanghai()).format("%Y%m%d%H%M%S").to_string();
    Answer::ok(json!({"echoCode": "0000", "echoMsg": {"serialNo": serial, "deviceId": device, "rdateTime": rdate}}))
}

fn fail(code: &str, msg: &str) -> Answer {
    Answer::ok(json!({"echoCode": code, "echoMsg": msg}))
}

fn check_headers(r: &Request) -> Result<(), String> {
    let auth = base64::engine::general_purpose::STANDARD
        .decode(r.header("authorization"))
        .map_err(|_| "Authorization is not base64")?;
    let auth = String::from_utf8(auth).map_err(|_| "Authorization is not text")?;
    let (code, time) = auth.split_once(':').ok_or("Authorization is not appCode:time")?;
    if code != APP_CODE {
        return Err(format!("appCode {code}"));
    }
    let at = NaiveDateTime::parse_from_str(time, "%Y%m%d%H%M%S").map_err(|_| format!("time {time:?}"))?;
    let at = shanghai().from_local_datetime(&at).single().ok_or("time")?;
    if (Utc::now() - at.with_timezone(&Utc)).num_seconds().abs() > 300 {
        return Err(format!("time {time} is stale"));
    }
    let want = hex::encode_upper(Md5::digest(format!("{APP_CODE}{APP_SECRET}{time}").as_bytes()));
    if r.header("accesstoken") != want {
        return Err("AccessToken does not match".into());
    }
    if !r.header("content-type").starts_with("application/json") {
        return Err("Content-Type is not application/json".into());
    }
    Ok(())
}

fn text(b: &Value, k: &str) -> String {
    match b.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

fn handle(st: &mut DasState, r: &Request) -> Judgement {
    let Some(code) = r.path.rsplit('/').next().map(str::to_owned) else {
        return Judgement::Refuse(fail("9999", "no code"));
    };
    if let Err(e) = check_headers(r) {
        st.errors.push(format!("{code}: {e}"));
        return Judgement::Refuse(fail("0101", "Token 校验未通过"));
    }
    let b = r.json();
    if !b.is_object() {
        st.errors.push(format!("{code}: body is not a JSON object"));
        return Judgement::Refuse(fail("9999", "参数异常"));
    }
    for f in required(&code) {
        let v = b.get(*f);
        if v.is_none() || v == Some(&Value::Null) || v == Some(&json!("")) {
            st.errors.push(format!("{code}: {f} missing"));
            return Judgement::Refuse(fail("9999", &format!("参数异常 {f}")));
        }
    }
    for (k, v) in b.as_object().into_iter().flatten() {
        if !(v.is_string() || v.is_object()) {
            st.errors.push(format!("{code}: {k} is not a string"));
        }
    }
    let serial = text(&b, "serialNo");
    if serial.len() != 32 || !serial.bytes().all(|c| c.is_ascii_hexdigit()) {
        st.errors.push(format!("{code}: serialNo {serial:?} is not 32 hex"));
    }
    if text(&b, "companyCode") != COMPANY || (b.get("factorNo").is_some() && text(&b, "factorNo") != FACTOR) {
        return Judgement::Accept(Some(fail("0404", "厂商编码(factorNo)错误")));
    }
    let meter = text(&b, "meterNo");
    let answer = match code.as_str() {
        "1001" => {
            if st.meters.contains_key(&meter) {
                fail("9999", &format!("用户号 {} 已存在，表具注册失败！", text(&b, "userNo")))
            } else {
                st.meters.insert(meter.clone(), text(&b, "userNo"));
                ok(&serial, &format!("das-{meter}"))
            }
        }
        "1002" => match st.meters.remove(&meter) {
            Some(_) => ok(&serial, ""),
            None => fail("9999", "用户不存在"),
        },
        "1004" | "1008" | "1014" | "1015" if !st.meters.contains_key(&meter) => fail("9999", "用户不存在 "),
        "1004" => {
            st.commands.insert(serial.clone(), b.clone());
            ok(&serial, "")
        }
        "1007" => {
            let code = text(&b, "priceCode");
            let exists = st.prices.contains_key(&code);
            match text(&b, "priceProperty").as_str() {
                "1" if exists => fail("2004", "价格信息已存在"),
                "2" if !exists => fail("9999", "价格不存在"),
                "2" if b.get("priceBeginDate").is_none() => {
                    st.errors.push("1007: an adjustment without priceBeginDate".into());
                    fail("9999", "参数异常 priceBeginDate")
                }
                _ => {
                    st.prices.entry(code).or_default().push(b.clone());
                    ok(&serial, "")
                }
            }
        }
        "1008" => {
            if st.prices.contains_key(&text(&b, "newPriceCode")) {
                ok(&serial, "")
            } else {
                fail("9999", "价格不存在")
            }
        }
        "1013" => {
            let data: Vec<Value> = st
                .latest
                .iter()
                .map(|(m, (num, date))| json!({"userArchivesNum": m, "valveState": "0", "gasMeterNo": m,
                    "readNum": num, "readDate": date, "meterBalance": "0", "sumGas": "0", "deviceId": "", "sumMoney": "0"}))
                .collect();
            Answer::ok(json!({"echoCode": "0000", "echoMsg": {"serialNo": serial,
                "readingData": {"total": data.len().to_string(), "data": data}}}))
        }
        "1014" => {
            let (num, date) = st.latest.get(&meter).cloned().unwrap_or_else(|| ("0".into(), String::new()));
            Answer::ok(json!({"echoCode": "0000", "echoMsg": {"serialNo": serial, "deviceId": format!("das-{meter}"),
                "meterNo": meter, "meterState": "2", "setUpTime": "2026-01-05", "beseNum": "0", "readingNum": num,
                "valveState": "2", "balance": "12.5", "price": "2.5", "priceCode": "P1", "lastReadingTime": date,
                "lastRechargeAmount": "50", "lastRechargeDate": "2026-02-01 10:00:00", "rechargeCount": "2",
                "voltage": "3.6", "signalStrength": "80", "userName": st.meters.get(&meter).cloned().unwrap_or_default()}}))
        }
        "1015" => {
            let rows = st.usage.get(&meter).cloned().unwrap_or_default();
            for k in ["startTime", "endTime"] {
                if chrono::NaiveDate::parse_from_str(&text(&b, k), "%Y-%m-%d").is_err() {
                    st.errors.push(format!("1015: {k} is not yyyy-mm-dd"));
                }
            }
            Answer::ok(json!({"echoCode": "0000", "echoMsg": {"serialNo": serial, "gasData": rows}}))
        }
        "1009" => match st.meters.remove(&meter) {
            Some(user) => {
                st.meters.insert(text(&b, "newMeterNo"), user);
                ok(&serial, "")
            }
            None => fail("9999", "用户不存在 "),
        },
        _ => ok(&serial, ""),
    };
    st.serials.insert(serial);
    Judgement::Accept(Some(answer))
}

/// The fake DAS.
#[derive(Clone)]
pub struct FakeDas {
    pub server: FakeVendor,
    state: Arc<Mutex<DasState>>,
}

impl FakeDas {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(DasState::default()));
        let st = state.clone();
        let server = FakeVendor::start_with(move |r| handle(&mut st.lock().expect("lock"), r)).await;
        Self { server, state }
    }

    pub fn base(&self) -> &str {
        self.server.base()
    }

    pub fn st(&self) -> MutexGuard<'_, DasState> {
        self.state.lock().expect("lock")
    }

    pub fn errors(&self) -> Vec<String> {
        self.st().errors.clone()
    }

    /// The accepted requests of `code`, their bodies in arrival order.
    pub fn bodies(&self, code: &str) -> Vec<Value> {
        let suffix = format!("/{code}");
        self.server.exchanges().iter().filter(|e| e.request.path.ends_with(&suffix)).map(|e| e.request.json()).collect()
    }

    /// The answers of `code`'s requests (their `echoCode`s).
    pub fn answers(&self, code: &str) -> Vec<String> {
        let suffix = format!("/{code}");
        self.server
            .exchanges()
            .iter()
            .filter(|e| e.request.path.ends_with(&suffix))
            .map(|e| text(&e.answer.body, "echoCode"))
            .collect()
    }

    /// Waits (30 s at most) until `done` holds.
    pub async fn until(&self, what: &str, done: impl FnMut() -> bool) {
        super::until(what, WAIT, done).await;
    }
}
