//! Seed 003 wire formats, parsed in this one place: the DAS's reports (2.4.11 `2001`,
//! 2.4.12 `2002`, 2.4.13 `2003`) and the envelope of every answer (`echoCode`, `echoMsg`).
//!
//! The seed types every field `String` but its own examples send numbers too
//! (`"total": 1`): a scalar of either shape is read as text. A required field that is
//! missing or empty is refused naming it (`echoCode` 9999).
// Parsers of tenant and vendor input (issue 17): no indexing that can panic.
#![cfg_attr(not(test), warn(clippy::indexing_slicing))]

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Why a report is refused (`echoCode` 9999, the text names the field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Malformed(pub String);

impl Malformed {
    fn missing(field: &str) -> Self {
        Self(format!("参数异常: {field} is required"))
    }
    fn invalid(field: &str, why: &str) -> Self {
        Self(format!("参数异常: {field} {why}"))
    }
}

/// A JSON object's fields, read as text.
pub(crate) struct Fields(Map<String, Value>);

impl Fields {
    /// # Errors
    /// When the body is not a JSON object.
    pub fn parse(body: &[u8]) -> Result<Self, Malformed> {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => Ok(Self(m)),
            Ok(_) => Err(Malformed("参数异常: the body must be a JSON object".into())),
            Err(_) => Err(Malformed("参数异常: the body is not JSON".into())),
        }
    }

    /// The field as trimmed text; `None` when absent, null, empty or not a scalar.
    pub fn opt(&self, k: &str) -> Option<String> {
        let s = match self.0.get(k)? {
            Value::String(s) => s.trim().to_owned(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return None,
        };
        (!s.is_empty()).then_some(s)
    }

    /// # Errors
    /// Naming `k` when it is missing or empty.
    pub fn req(&self, k: &str) -> Result<String, Malformed> {
        self.opt(k).ok_or_else(|| Malformed::missing(k))
    }

    fn decimal(&self, k: &str, required: bool) -> Result<Option<Decimal>, Malformed> {
        let Some(s) = (if required { Some(self.req(k)?) } else { self.opt(k) }) else { return Ok(None) };
        domain::tariffs::parse_decimal(k, &s).map(Some).map_err(|_| Malformed::invalid(k, "is not a decimal number"))
    }

    fn object(&self, k: &str) -> Option<&Map<String, Value>> {
        self.0.get(k).and_then(Value::as_object)
    }
}

/// The fields every report carries.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Head {
    pub serial_no: String,
    pub user_no: String,
    pub device_id: Option<String>,
    pub factor_no: String,
    pub meter_no: String,
    pub company_code: String,
}

impl Head {
    fn read(f: &Fields) -> Result<Self, Malformed> {
        let serial_no = f.req("serialNo")?;
        if serial_no.chars().count() > 64 {
            return Err(Malformed::invalid("serialNo", "is longer than 64 characters"));
        }
        Ok(Self {
            serial_no,
            user_no: f.req("userNo")?,
            device_id: f.opt("deviceId"),
            factor_no: f.req("factorNo")?,
            meter_no: f.req("meterNo")?,
            company_code: f.req("companyCode")?,
        })
    }
}

/// 2.4.11 `2001`: a reading.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reading {
    pub head: Head,
    /// `billingModel` 1 表端结算 (the meter bills itself) or 2 中心计费.
    pub meter_side: bool,
    /// `readNum`: the register, 4 decimals.
    pub read_num: Decimal,
    /// `addGas`: readings of days the meter could not report, by date.
    pub add_gas: BTreeMap<NaiveDate, Decimal>,
    /// `readDate` + `readTime`, Asia/Shanghai.
    pub read_at: DateTime<Utc>,
    /// `batteryCap`: the battery voltage.
    pub battery_voltage: Option<Decimal>,
    /// `semaphore`: signal strength in percent ("98" or "59.0%").
    pub signal: Option<i32>,
    pub temperature: Option<Decimal>,
    pub pressure: Option<Decimal>,
    pub standard_total: Option<Decimal>,
    pub work_total: Option<Decimal>,
    pub standard_instant: Option<Decimal>,
    pub work_instant: Option<Decimal>,
    /// `valveState` 2 open, 3 closed.
    pub valve_open: Option<bool>,
    /// Meter-side billing only: the meter's own price, balance and totals.
    pub cur_price: Option<Decimal>,
    pub meter_balance: Option<Decimal>,
    pub sum_use_gas: Option<Decimal>,
    pub sum_use_amount: Option<Decimal>,
}

/// `readDate` (`YYYYMMDD`) and `readTime` (`HHMMSS`; the seed's examples also send
/// `HH:MM:SS`) in Asia/Shanghai time.
fn read_at(date: &str, time: &str) -> Result<DateTime<Utc>, Malformed> {
    let d = NaiveDate::parse_from_str(date, "%Y%m%d")
        .or_else(|_| NaiveDate::parse_from_str(date, "%Y-%m-%d"))
        .map_err(|_| Malformed::invalid("readDate", "is not YYYYMMDD"))?;
    let t = NaiveTime::parse_from_str(time, "%H%M%S")
        .or_else(|_| NaiveTime::parse_from_str(time, "%H:%M:%S"))
        .map_err(|_| Malformed::invalid("readTime", "is not HHMMSS"))?;
    shanghai_to_utc(NaiveDateTime::new(d, t)).ok_or_else(|| Malformed::invalid("readTime", "is not a valid time"))
}

pub(crate) fn shanghai_to_utc(t: NaiveDateTime) -> Option<DateTime<Utc>> {
    super::sign::shanghai().from_local_datetime(&t).single().map(|t| t.with_timezone(&Utc))
}

/// `"59.0%"`, `"98"` -> 59, 98 (clamped to 0-100).
fn percent(s: &str) -> Option<i32> {
    let n: f64 = s.trim().trim_end_matches('%').trim().parse().ok()?;
    n.is_finite().then(|| n.round().clamp(0.0, 100.0) as i32)
}

impl Reading {
    /// # Errors
    /// Naming the first missing or malformed field.
    pub fn read(f: &Fields) -> Result<Self, Malformed> {
        let head = Head::read(f)?;
        let meter_side = match f.req("billingModel")?.as_str() {
            "1" => true,
            "2" | "3" => false,
            _ => return Err(Malformed::invalid("billingModel", "must be 1 or 2")),
        };
        let read_num = f.decimal("readNum", true)?.unwrap_or_default();
        if read_num < Decimal::ZERO {
            return Err(Malformed::invalid("readNum", "must not be negative"));
        }
        let read_at = read_at(&f.req("readDate")?, &f.req("readTime")?)?;
        let mut add_gas = BTreeMap::new();
        if let Some(days) = f.object("addGas") {
            for (day, v) in days {
                let d = NaiveDate::parse_from_str(day.trim(), "%Y-%m-%d")
                    .map_err(|_| Malformed::invalid("addGas", "keys must be yyyy-MM-dd dates"))?;
                let text = match v {
                    Value::String(s) => s.trim().to_owned(),
                    Value::Number(n) => n.to_string(),
                    _ => return Err(Malformed::invalid("addGas", "values must be readings")),
                };
                let n = domain::tariffs::parse_decimal("addGas", &text)
                    .map_err(|_| Malformed::invalid("addGas", "values must be decimal readings"))?;
                add_gas.insert(d, n);
            }
        }
        let valve_open = match f.req("valveState")?.as_str() {
            "2" => Some(true),
            "3" => Some(false),
            _ => None,
        };
        let battery = f.req("batteryCap")?;
        let semaphore = f.req("semaphore")?;
        let dec = |k: &str| f.decimal(k, false);
        Ok(Self {
            head,
            meter_side,
            read_num,
            add_gas,
            read_at,
            battery_voltage: domain::tariffs::parse_decimal("batteryCap", &battery).ok(),
            signal: percent(&semaphore),
            temperature: dec("temperature")?,
            pressure: dec("pressureValue")?,
            standard_total: dec("standardTotalValue")?,
            work_total: dec("workTotalValue")?,
            standard_instant: dec("standardInstantValue")?,
            work_instant: dec("workInstantValue")?,
            valve_open,
            cur_price: dec("curPrice")?,
            meter_balance: dec("meterBalance")?,
            sum_use_gas: dec("sumUseGas")?,
            sum_use_amount: dec("sumUseAmount")?,
        })
    }
}

/// 2.4.12 `2002`: the result of a `1004` command.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CommandResult {
    pub head: Head,
    /// `sendSerialNo`: the `serialNo` of the `1004`.
    pub send_serial_no: String,
    pub param_no: String,
    /// `excuteState` 1 成功.
    pub succeeded: bool,
}

impl CommandResult {
    /// # Errors
    /// Naming the first missing or malformed field.
    pub fn read(f: &Fields) -> Result<Self, Malformed> {
        let head = Head::read(f)?;
        let succeeded = match f.req("excuteState")?.as_str() {
            "1" => true,
            "2" => false,
            _ => return Err(Malformed::invalid("excuteState", "must be 1 or 2")),
        };
        Ok(Self { head, send_serial_no: f.req("sendSerialNo")?, param_no: f.req("paramNo")?, succeeded })
    }
}

/// 2.4.13 `2003`: an alarm.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AlarmReport {
    pub head: Head,
    /// Appendix 2: 01-07.
    pub alarm_type: String,
    pub content: String,
    /// 1 低, 2 中, 3 高.
    pub priority: u8,
    /// `sdateTime` when it parses (the seed shows `yyyy-MM-dd HH:mm:ss`).
    pub at: Option<DateTime<Utc>>,
}

impl AlarmReport {
    /// # Errors
    /// Naming the first missing or malformed field.
    pub fn read(f: &Fields) -> Result<Self, Malformed> {
        let head = Head::read(f)?;
        let alarm_type = f.req("alarmType")?;
        if !(alarm_type.len() <= 8 && alarm_type.bytes().all(|b| b.is_ascii_alphanumeric())) {
            return Err(Malformed::invalid("alarmType", "must be an appendix-2 code such as 02"));
        }
        let priority = match f.req("alarmPriority")?.as_str() {
            "1" => 1,
            "2" => 2,
            "3" => 3,
            _ => return Err(Malformed::invalid("alarmPriority", "must be 1, 2 or 3")),
        };
        let content = f.req("alarmContent")?.chars().take(500).collect();
        let at = f.opt("sdateTime").and_then(|s| {
            ["%Y-%m-%d %H:%M:%S", "%Y%m%d%H%M%S"]
                .iter()
                .find_map(|fmt| NaiveDateTime::parse_from_str(&s, fmt).ok())
                .and_then(shanghai_to_utc)
        });
        Ok(Self { head, alarm_type, content, priority, at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(v: Value) -> Fields {
        Fields::parse(v.to_string().as_bytes()).expect("object")
    }

    /// The seed's own 4.11 example.
    fn example_2001() -> Value {
        serde_json::json!({
            "serialNo":"8dc0fb2575ff4f37bccd63288dfb18a2", "userNo":"11368453",
            "deviceId":"f522a7db7b164d60aca67c355fa46fe6", "factorNo":"0013", "meterNo":"181932242531",
            "billingModel":"2", "readNum":"0.3", "addGas":"", "sumUseGas":"0", "sumUseAmount":"0",
            "readDate":"20200227", "readTime":"111615", "batteryCap":"6.14", "semaphore":"59.0%",
            "temperature":"", "standardTotalValue":"", "workTotalValue":"", "standardInstantValue":"",
            "workInstantValue":"", "pressureValue":"", "valveState":"2", "curPrice":"1", "meterBalance":"0",
            "companyCode":"10001212", "sdateTime":"2020-02-27"
        })
    }

    #[test]
    fn the_seed_example_reading_parses() {
        let r = Reading::read(&fields(example_2001())).expect("parses");
        assert_eq!(r.head.meter_no, "181932242531");
        assert!(!r.meter_side);
        assert_eq!(r.read_num, Decimal::new(3, 1));
        assert_eq!(r.read_at, Utc.with_ymd_and_hms(2020, 2, 27, 3, 16, 15).single().expect("t"));
        assert_eq!(r.signal, Some(59));
        assert_eq!(r.valve_open, Some(true));
        assert!(r.add_gas.is_empty());
        assert_eq!(r.temperature, None);
    }

    #[test]
    fn missing_and_malformed_fields_are_named() {
        for (field, bad) in [
            ("serialNo", Value::Null),
            ("meterNo", Value::String(String::new())),
            ("readNum", Value::String("abc".into())),
            ("readDate", Value::String("2020-13-45".into())),
            ("billingModel", Value::String("9".into())),
        ] {
            let mut v = example_2001();
            v[field] = bad;
            let Err(Malformed(msg)) = Reading::read(&fields(v)) else { panic!("{field} accepted") };
            assert!(msg.contains(field), "{msg} names {field}");
        }
        assert!(Fields::parse(b"{not json").is_err());
        assert!(Fields::parse(b"[1]").is_err());
    }

    #[test]
    fn backfilled_days_parse() {
        let mut v = example_2001();
        v["addGas"] = serde_json::json!({"2018-05-20": "1.5", "2018-05-21": 2});
        let r = Reading::read(&fields(v)).expect("parses");
        assert_eq!(r.add_gas.len(), 2);
        assert_eq!(r.add_gas.values().copied().collect::<Vec<_>>(), vec![Decimal::new(15, 1), Decimal::from(2)]);
    }

    #[test]
    fn the_seed_example_alarm_and_command_result_parse() {
        let a = AlarmReport::read(&fields(serde_json::json!({
            "serialNo":"0f8a1f70b91b42aa8685b0b3c320c11a19", "userNo":"090909123123",
            "deviceId":"23343239825f44be8d539ec920704d00", "factorNo":"0018", "meterNo":"090909123123",
            "alarmType":"05", "alarmContent":"阀门直通", "alarmPriority":"3", "companyCode":"10001058",
            "sdateTime":"2019-11-21 16:32:50"
        })))
        .expect("alarm");
        assert_eq!((a.alarm_type.as_str(), a.priority), ("05", 3));
        assert!(a.at.is_some());
        let c = CommandResult::read(&fields(serde_json::json!({
            "serialNo":"s1", "userNo":"u", "factorNo":"0013", "meterNo":"m", "sendSerialNo":"abc",
            "paramNo":"03", "excuteState":2, "companyCode":"c", "sdateTime":"20191121120000"
        })))
        .expect("result");
        assert!(!c.succeeded);
        assert_eq!(c.send_serial_no, "abc");
    }
}
