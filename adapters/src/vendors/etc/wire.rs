//! The wire format of ETC gantry monitoring (seed 001): the common fields (1.5), the answer
//! codes (1.7), the error values (1.8), the PC and cabinet status reports (2.1, 3.1) and the
//! control requests (2.2, 3.2, 3.3). Parsed here and nowhere else.
//!
//! Devices send keys with stray spaces (the seed's own example has `" thunderSpd"` and
//! `" lightningCount "`): keys are matched after trimming, at every depth. Every value is
//! a string on the wire; a decimal number becomes a JSON number, anything else (the error
//! values `NoData`, `GetFailed`, `NotSupport` included) is kept as sent.
// Parsers of tenant and vendor input (issue 17): no indexing that can panic.
#![cfg_attr(not(test), warn(clippy::indexing_slicing))]

use domain::DomainError;
use serde_json::{Map, Value, json};

/// The one protocol version (1.5).
pub(crate) const VERSION: &str = "1001";

domain::string_enum!(
    /// The business answer codes (1.7).
    Code, "code" {
        /// 成功.
        Ok = "1000",
        /// 无权使用该接口: a wrong `binfile-auth`.
        NoPermission = "1001",
        /// 参数有误.
        BadParams = "1002",
        /// 系统时间偏差太大.
        ClockSkew = "1003",
        /// 无效的签名: a wrong `binfile-md5`.
        BadSignature = "1004",
        /// 请求过于频繁.
        TooFrequent = "1005",
        /// 未知的接口版本号.
        UnknownVersion = "1006",
        /// 执行控制命令失败.
        CommandFailed = "1007",
        /// 未知系统异常.
        Unknown = "1008",
        /// 无对应图像/视频.
        NoMedia = "1009",
    }
);

impl Code {
    /// The seed's text of the code.
    pub(crate) const fn msg(self) -> &'static str {
        match self {
            Self::Ok => "成功",
            Self::NoPermission => "无权使用该接口",
            Self::BadParams => "参数有误",
            Self::ClockSkew => "系统时间偏差太大",
            Self::BadSignature => "无效的签名",
            Self::TooFrequent => "请求过于频繁",
            Self::UnknownVersion => "未知的接口版本号",
            Self::CommandFailed => "执行控制命令失败",
            Self::Unknown => "未知系统异常",
            Self::NoMedia => "无对应图像/视频",
        }
    }

    /// `{"code", "msg"}`, the text followed by `detail` when there is one.
    pub(crate) fn answer(self, detail: Option<&str>) -> Value {
        let msg = match detail {
            Some(d) => format!("{}: {d}", self.msg()),
            None => self.msg().to_owned(),
        };
        json!({"code": self.as_str(), "msg": msg})
    }
}

/// The three error values a metric may carry instead of a value (1.8).
pub(crate) const ERROR_VALUES: [&str; 3] = ["NoData", "GetFailed", "NotSupport"];

/// `v` with every object key trimmed and every string value trimmed, at every depth.
pub(crate) fn normalize(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k.trim().to_owned(), normalize(v))).collect()),
        Value::Array(a) => Value::Array(a.into_iter().map(normalize).collect()),
        Value::String(s) => Value::String(s.trim().to_owned()),
        other => other,
    }
}

/// A metric as stored: a decimal number as a JSON number, anything else as sent.
pub(crate) fn metric(v: &Value) -> Value {
    let Value::String(s) = v else { return v.clone() };
    if is_decimal(s) {
        if let Ok(n) = s.parse::<i64>() {
            return Value::from(n);
        }
        if let Some(n) = s.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
            return Value::Number(n);
        }
    }
    v.clone()
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?`: a number as a device writes one (a card number with a
/// leading zero stays text).
fn is_decimal(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let int_ok = !int.is_empty()
        && int.len() <= 18
        && int.bytes().all(|b| b.is_ascii_digit())
        && (int == "0" || !int.starts_with('0'));
    int_ok && frac.is_none_or(|f| !f.is_empty() && f.len() <= 12 && f.bytes().all(|b| b.is_ascii_digit()))
}

/// The common fields (1.5).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Head {
    pub gantry_id: String,
    pub method: String,
    /// Unix seconds.
    pub time_stamp: i64,
}

/// What a cabinet or a PC is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnitKind {
    /// An industrial PC (2.1).
    Pc,
    Elec,
    Rectifier,
    Ups,
    AirConditioner,
    Thermohygrometer,
    WaterSensor,
    Doors,
    SmokeSensor,
    ThunderSpd,
}

impl UnitKind {
    /// The cabinet's units: their key in `cabinetStatus`, whether the seed sends a list.
    pub(crate) const CABINET: [(Self, &'static str, bool); 9] = [
        (Self::Elec, "elec", true),
        (Self::Rectifier, "rectifier", true),
        (Self::Ups, "ups", true),
        (Self::AirConditioner, "airConditioners", true),
        (Self::Thermohygrometer, "thermohygrometer", false),
        (Self::WaterSensor, "waterloggingSensor", false),
        (Self::Doors, "doors", false),
        (Self::SmokeSensor, "smokeSensor", false),
        (Self::ThunderSpd, "thunderSpd", true),
    ];

    /// The segment naming a unit of this kind in its external id.
    pub(crate) const fn segment(self) -> &'static str {
        match self {
            Self::Pc => "pc",
            Self::Elec => "elec",
            Self::Rectifier => "rectifier",
            Self::Ups => "ups",
            Self::AirConditioner => "airConditioner",
            Self::Thermohygrometer => "thermohygrometer",
            Self::WaterSensor => "waterloggingSensor",
            Self::Doors => "doors",
            Self::SmokeSensor => "smokeSensor",
            Self::ThunderSpd => "thunderSpd",
        }
    }
}

/// One PC or cabinet unit as reported.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Unit {
    pub kind: UnitKind,
    /// Its `id`; `None` for the cabinet's single units sent as one object.
    pub id: Option<String>,
    /// Its fields but `id`, as metrics.
    pub fields: Map<String, Value>,
}

/// A cabinet's report (3.1).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cabinet {
    pub id: String,
    pub units: Vec<Unit>,
}

/// What a report carries.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Body {
    /// `computerStatusUpdate`.
    Computers(Vec<Unit>),
    /// `cabinetStatusUpdate`.
    Cabinet(Cabinet),
    /// A method this platform does not know (answered 1008, kept).
    Other,
}

/// A parsed status report.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Report {
    pub head: Head,
    pub body: Body,
}

impl Report {
    /// Reports of one gantry and method (and cabinet) may not come closer than the
    /// integration's minimum interval: this names the series.
    pub(crate) fn series(&self) -> String {
        match &self.body {
            Body::Cabinet(c) => format!("{}/{}/{}", self.head.gantry_id, self.head.method, c.id),
            _ => format!("{}/{}", self.head.gantry_id, self.head.method),
        }
    }
}

/// Why a report is refused before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refused {
    pub code: Code,
    pub detail: String,
}

fn refused(code: Code, detail: impl Into<String>) -> Refused {
    Refused { code, detail: detail.into() }
}

/// A field as text: strings as they are, numbers as written.
fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Parses a report, checking in the seed's order: JSON (1002), `version` (1006),
/// `timeStamp` within `max_skew` seconds of `now` (1003), `gantryId` and `method` (1002),
/// then the method's own body (1002). An unknown method parses as [`Body::Other`].
pub(crate) fn parse(bytes: &[u8], now: i64, max_skew: i64) -> Result<Report, Refused> {
    let v: Value = serde_json::from_slice(bytes).map_err(|_| refused(Code::BadParams, "the body is not JSON"))?;
    let Value::Object(m) = normalize(v) else {
        return Err(refused(Code::BadParams, "the body is not a JSON object"));
    };
    let version = text(m.get("version")).unwrap_or_default();
    if version != VERSION {
        return Err(refused(Code::UnknownVersion, format!("version must be {VERSION}")));
    }
    let ts = text(m.get("timeStamp")).ok_or_else(|| refused(Code::BadParams, "timeStamp is required"))?;
    let ts: i64 = ts.parse().map_err(|_| refused(Code::BadParams, "timeStamp must be Unix seconds"))?;
    if now.abs_diff(ts) > max_skew.unsigned_abs() {
        return Err(refused(Code::ClockSkew, format!("timeStamp is more than {max_skew} s from the platform's time")));
    }
    let field = |k: &str| text(m.get(k)).filter(|s| !s.is_empty());
    let gantry_id = field("gantryId").ok_or_else(|| refused(Code::BadParams, "gantryId is required"))?;
    if gantry_id.chars().count() > 64 || gantry_id.chars().any(|c| c.is_control() || c == '/') {
        return Err(refused(Code::BadParams, "gantryId is not a gantry number"));
    }
    let method = field("method").ok_or_else(|| refused(Code::BadParams, "method is required"))?;
    let body = match method.as_str() {
        "computerStatusUpdate" => Body::Computers(computers(m.get("computerStatus"))?),
        "cabinetStatusUpdate" => Body::Cabinet(cabinet(m.get("cabinetStatus"))?),
        _ => Body::Other,
    };
    Ok(Report { head: Head { gantry_id, method, time_stamp: ts }, body })
}

/// A unit's fields as metrics, its `id` apart.
fn unit(kind: UnitKind, v: &Value, index: usize, listed: bool) -> Option<Unit> {
    let Value::Object(m) = v else { return None };
    let id = text(m.get("id")).filter(|s| !s.is_empty() && !s.contains('/') && s.chars().count() <= 32);
    let id = if listed { Some(id.unwrap_or_else(|| (index + 1).to_string())) } else { id };
    let fields =
        m.iter().filter(|(k, _)| k.as_str() != "id" && !k.is_empty()).map(|(k, v)| (k.clone(), metric(v))).collect();
    Some(Unit { kind, id, fields })
}

/// Units sent as a list (or, leniently, as one object).
fn units(kind: UnitKind, v: Option<&Value>) -> Vec<Unit> {
    match v {
        Some(Value::Array(a)) => a.iter().enumerate().filter_map(|(i, u)| unit(kind, u, i, true)).collect(),
        Some(o @ Value::Object(_)) => unit(kind, o, 0, true).into_iter().collect(),
        _ => Vec::new(),
    }
}

fn computers(v: Option<&Value>) -> Result<Vec<Unit>, Refused> {
    match v {
        Some(Value::Array(_)) => Ok(units(UnitKind::Pc, v)),
        _ => Err(refused(Code::BadParams, "computerStatus must be an array of PCs")),
    }
}

fn cabinet(v: Option<&Value>) -> Result<Cabinet, Refused> {
    let Some(Value::Object(m)) = v else {
        return Err(refused(Code::BadParams, "cabinetStatus must be an object"));
    };
    let id = text(m.get("id")).filter(|s| !s.is_empty()).unwrap_or_else(|| "1".to_owned());
    if id.contains('/') || id.chars().count() > 32 {
        return Err(refused(Code::BadParams, "cabinetStatus.id is not a cabinet number"));
    }
    let mut all = Vec::new();
    for (kind, key, listed) in UnitKind::CABINET {
        match m.get(key) {
            // A single unit sent as a list of one is still that unit.
            Some(Value::Array(a)) if !listed && a.len() <= 1 => {
                all.extend(a.first().and_then(|u| unit(kind, u, 0, false)));
            }
            Some(Value::Object(_)) if !listed => all.extend(m.get(key).and_then(|u| unit(kind, u, 0, false))),
            other => all.extend(units(kind, other)),
        }
    }
    Ok(Cabinet { id, units: all })
}

/// A control request's parameter rules (2.2.2, 3.2.2).
enum Rule {
    /// One of these values.
    OneOf(&'static [&'static str]),
    /// An integer in the range.
    Int(i64, i64),
    /// A decimal number.
    Number,
    /// Non-empty text.
    Text,
    /// `cardInfos`: a list of `{cardId, expireDate yyyy-MM-dd}`.
    Cards,
}

/// The parameters each `cmd` takes (3.2.2); `cabinetId` is taken by the commands that
/// name a cabinet.
fn cmd_params(cmd: &str) -> Option<&'static [(&'static str, Rule)]> {
    use Rule::*;
    const CABINET: (&str, Rule) = ("cabinetId", Int(1, 99));
    Some(match cmd {
        "1" => &[("rebootIp", Text), ("rebootPort", Int(1, 65535))],
        "2" => &[CABINET, ("unlockDoorId", OneOf(&["1", "2"]))],
        "3" => &[CABINET, ("airId", OneOf(&["0", "1", "2"])), ("airOperate", OneOf(&["1", "2"]))],
        "4" => &[
            CABINET,
            ("airId", OneOf(&["0", "1", "2"])),
            ("autoRefrigerationTemp", Number),
            ("autoHeatingTemp", Number),
        ],
        "5" => &[("mode", OneOf(&["0", "1", "2", "3"]))],
        "6" => &[("isDoorDefend", OneOf(&["0", "1"]))],
        "7" => &[("cardInfos", Cards)],
        "8" => &[CABINET, ("onOff", OneOf(&["0", "1"]))],
        "9" => &[CABINET, ("testStartStop", OneOf(&["0", "1"]))],
        "10" => &[CABINET],
        _ => return None,
    })
}

/// The parameters that need a value when their `cmd` is sent (`cabinetId` defaults to 1).
const REQUIRED: [&str; 11] = [
    "unlockDoorId",
    "airId",
    "airOperate",
    "mode",
    "isDoorDefend",
    "cardInfos",
    "onOff",
    "testStartStop",
    "rebootIp",
    "autoRefrigerationTemp",
    "autoHeatingTemp",
];

fn is_date(s: &str) -> bool {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() && s.len() == 10
}

fn check(name: &str, rule: &Rule, v: &Value) -> Result<Value, DomainError> {
    let field = format!("params.{name}");
    if let Rule::Cards = rule {
        let Some(cards) = v.as_array().filter(|a| !a.is_empty() && a.len() <= 1000) else {
            return Err(DomainError::invalid(field, "a list of 1-1000 {cardId, expireDate}"));
        };
        let mut out = Vec::new();
        for c in cards {
            let card = text(c.get("cardId")).map(|s| s.trim().to_owned()).filter(|s| !s.is_empty() && s.len() <= 64);
            let expire = text(c.get("expireDate")).filter(|s| is_date(s));
            let extra = c.as_object().is_some_and(|m| m.keys().any(|k| k != "cardId" && k != "expireDate"));
            match (card, expire, extra) {
                (Some(card), Some(expire), false) => out.push(json!({"cardId": card, "expireDate": expire})),
                _ => return Err(DomainError::invalid(field, "each card needs cardId and expireDate yyyy-MM-dd")),
            }
        }
        return Ok(Value::Array(out));
    }
    let Some(s) = text(Some(v)).map(|s| s.trim().to_owned()) else {
        return Err(DomainError::invalid(field, "must be a string"));
    };
    let ok = match rule {
        Rule::OneOf(allowed) => allowed.contains(&s.as_str()),
        Rule::Int(lo, hi) => s.parse::<i64>().is_ok_and(|n| (*lo..=*hi).contains(&n)),
        Rule::Number => is_decimal(&s),
        Rule::Text => !s.is_empty() && s.len() <= 128 && !s.chars().any(char::is_control),
        Rule::Cards => false,
    };
    let why = match rule {
        Rule::OneOf(allowed) => format!("one of {}", allowed.join(", ")),
        Rule::Int(lo, hi) => format!("an integer from {lo} to {hi}"),
        Rule::Number => "a number".to_owned(),
        Rule::Text | Rule::Cards => "1-128 printable characters".to_owned(),
    };
    if ok { Ok(Value::String(s)) } else { Err(DomainError::invalid(field, why)) }
}

/// The methods a user may send to a gantry.
pub(crate) const CONTROL_METHODS: [&str; 2] = ["computerControl", "cabinetControl"];

/// Checks a control request's parameters and renders them as sent (every value a string):
/// `updateNow` ("1"), `setServer` (an address), `setFrequency` (seconds), and for
/// `cabinetControl` one `cmd` 1-10 with its own parameters.
///
/// # Errors
/// `Invalid { field: "method" | "params" | "params.<name>" }`.
pub(crate) fn control(method: &str, params: &Value) -> Result<Map<String, Value>, DomainError> {
    if !CONTROL_METHODS.contains(&method) {
        return Err(DomainError::invalid("method", "computerControl or cabinetControl"));
    }
    let Some(given) = params.as_object() else {
        return Err(DomainError::invalid("params", "must be a JSON object"));
    };
    let mut out = Map::new();
    let common: [(&str, Rule); 3] =
        [("updateNow", Rule::OneOf(&["1"])), ("setServer", Rule::Text), ("setFrequency", Rule::Int(10, 86_400))];
    for (name, rule) in &common {
        if let Some(v) = given.get(*name) {
            out.insert((*name).to_owned(), check(name, rule, v)?);
        }
    }
    let cmd = given.get("cmd").map(|v| text(Some(v)).unwrap_or_default());
    let allowed: &[(&str, Rule)] = match (&cmd, method) {
        (None, _) => &[],
        (Some(_), "computerControl") => {
            return Err(DomainError::invalid("params.cmd", "computerControl takes no cmd"));
        }
        (Some(c), _) => cmd_params(c).ok_or_else(|| DomainError::invalid("params.cmd", "a command from 1 to 10"))?,
    };
    if let Some(c) = &cmd {
        out.insert("cmd".to_owned(), Value::String(c.clone()));
        for (name, rule) in allowed {
            match given.get(*name) {
                Some(v) => {
                    out.insert((*name).to_owned(), check(name, rule, v)?);
                }
                None if REQUIRED.contains(name) => {
                    return Err(DomainError::invalid(format!("params.{name}"), format!("is required by cmd {c}")));
                }
                None => {}
            }
        }
    }
    if let Some(k) = given
        .keys()
        .find(|k| k.as_str() != "cmd" && !common.iter().any(|(n, _)| n == k) && !allowed.iter().any(|(n, _)| n == k))
    {
        return Err(DomainError::invalid(format!("params.{k}"), format!("is not a parameter of {method}")));
    }
    if out.is_empty() {
        return Err(DomainError::invalid("params", "updateNow, setServer, setFrequency or cmd"));
    }
    Ok(out)
}

/// A request to a device (2.2.3, 3.2.4, 3.3.2): the common fields and the method's own
/// object, under the method's name.
pub(crate) fn request(gantry_id: &str, method: &str, time_stamp: i64, params: &Value) -> Vec<u8> {
    // Written field by field: the seed's order, whatever the JSON map's.
    let s = |v: &str| Value::from(v).to_string();
    format!(
        r#"{{"gantryId":{},"method":{},"timeStamp":{},"version":{},{}:{}}}"#,
        s(gantry_id),
        s(method),
        s(&time_stamp.to_string()),
        s(VERSION),
        s(method),
        params
    )
    .into_bytes()
}

/// A device's answer (1.6): its code, its text, and for cmd 10 `batterysTestResult`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answer {
    pub code: String,
    pub msg: String,
    pub battery: Option<Value>,
}

/// `None` when the body is no answer.
pub(crate) fn answer(bytes: &[u8]) -> Option<Answer> {
    let Value::Object(m) = normalize(serde_json::from_slice(bytes).ok()?) else { return None };
    let code = text(m.get("code"))?;
    let battery = m.get("batterysTestResult").filter(|v| v.is_object()).cloned();
    Some(Answer { code, msg: text(m.get("msg")).unwrap_or_default(), battery })
}

/// The file name of `attachment;filename=...` (3.3.3), stripped of any path.
pub(crate) fn attachment_name(disposition: &str) -> Option<String> {
    let (_, rest) = disposition.split_once("filename=")?;
    let name = rest.split(';').next()?.trim().trim_matches('"');
    let name = name.rsplit(['/', '\\']).next()?.trim();
    (!name.is_empty() && name.len() <= 200 && !name.chars().any(char::is_control)).then(|| name.to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn numbers_become_numbers_and_the_rest_stays_as_sent() {
        assert_eq!(metric(&json!("40")), json!(40));
        assert_eq!(metric(&json!("99.99")), json!(99.99));
        assert_eq!(metric(&json!("99.00")), json!(99.0));
        assert_eq!(metric(&json!("-5")), json!(-5));
        for kept in
            ["NoData", "GetFailed", "NotSupport", "0012", "192.168.1.1", "", "1.", ".5", "1e5", "交流 L1 相缺相"]
        {
            assert_eq!(metric(&json!(kept)), json!(kept), "{kept}");
        }
    }

    #[test]
    fn keys_are_trimmed_at_every_depth() {
        let body = br#"{"gantryId":"G1","method":"cabinetStatusUpdate","timeStamp":"100","version":"1001",
            "cabinetStatus":{"id":"1"," thunderSpd":[{"id":"1" ,"status":"1"," lightningCount ":"3"}]}}"#;
        let r = parse(body, 100, 300).unwrap();
        let Body::Cabinet(c) = r.body else { panic!("a cabinet") };
        assert_eq!(c.units.len(), 1);
        assert_eq!(c.units[0].kind, UnitKind::ThunderSpd);
        assert_eq!(c.units[0].fields.get("lightningCount"), Some(&json!(3)));
    }

    #[test]
    fn refusals_come_in_the_seed_order() {
        let code = |b: &str| parse(b.as_bytes(), 1_000, 300).err().map(|r| r.code);
        assert_eq!(code("not json"), Some(Code::BadParams));
        assert_eq!(
            code(r#"{"gantryId":"G","method":"m","timeStamp":"1000","version":"1002"}"#),
            Some(Code::UnknownVersion)
        );
        assert_eq!(code(r#"{"gantryId":"G","method":"m","timeStamp":"1301","version":"1001"}"#), Some(Code::ClockSkew));
        assert_eq!(code(r#"{"gantryId":"G","method":"m","timeStamp":"1300","version":"1001"}"#), None);
        assert_eq!(code(r#"{"method":"m","timeStamp":"1000","version":"1001"}"#), Some(Code::BadParams));
        assert_eq!(code(r#"{"gantryId":"G","timeStamp":"1000","version":"1001"}"#), Some(Code::BadParams));
        let no_list = r#"{"gantryId":"G","method":"computerStatusUpdate","timeStamp":"1000","version":"1001"}"#;
        assert_eq!(code(no_list), Some(Code::BadParams));
    }

    #[test]
    fn control_parameters_are_checked_per_cmd() {
        let ok = control("cabinetControl", &json!({"cmd": "2", "cabinetId": "1", "unlockDoorId": "2"})).unwrap();
        assert_eq!(Value::Object(ok), json!({"cmd": "2", "cabinetId": "1", "unlockDoorId": "2"}));
        let cards = json!({"cmd": "7", "cardInfos": [{"cardId": "0012", "expireDate": "2027-01-31"}]});
        assert!(control("cabinetControl", &cards).is_ok());
        for (method, bad, field) in [
            ("cabinetControl", json!({"cmd": "11"}), "params.cmd"),
            ("cabinetControl", json!({"cmd": "2", "unlockDoorId": "3"}), "params.unlockDoorId"),
            ("cabinetControl", json!({"setFrequency": "abc"}), "params.setFrequency"),
            ("computerControl", json!({"cmd": "1"}), "params.cmd"),
            ("fooControl", json!({"updateNow": "1"}), "method"),
            (
                "cabinetControl",
                json!({"cmd": "7", "cardInfos": [{"cardId": "1", "expireDate": "2020/01/01"}]}),
                "params.cardInfos",
            ),
            ("cabinetControl", json!({"cmd": "5", "mode": "1", "colour": "red"}), "params.colour"),
            ("cabinetControl", json!({"cmd": "5"}), "params.mode"),
            ("cabinetControl", json!({}), "params"),
        ] {
            match control(method, &bad) {
                Err(DomainError::Invalid { field: f, .. }) => assert_eq!(f, field, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_protocols_vector_is_the_request_rendered() {
        use md5::{Digest, Md5};
        let body = request("G000211001002110010", "computerControl", 1_564_734_526, &json!({"updateNow": "1"}));
        let expected = r#"{"gantryId":"G000211001002110010","method":"computerControl","timeStamp":"1564734526","version":"1001","computerControl":{"updateNow":"1"}}"#;
        assert_eq!(String::from_utf8(body.clone()).unwrap(), expected);
        assert_eq!(hex::encode(Md5::digest(&body)), "2d0289bdb69305618fea47d7dc2249dd");
    }

    #[test]
    fn attachment_names_lose_their_path() {
        assert_eq!(
            attachment_name("attachment;filename=G1_20191102100000123.jpg").as_deref(),
            Some("G1_20191102100000123.jpg")
        );
        assert_eq!(attachment_name("attachment; filename=\"../../x.avi\"").as_deref(), Some("x.avi"));
        assert_eq!(attachment_name("inline"), None);
    }
}
