//! An elevator's facts as the seed's interfaces want them: the live state (the device's
//! newest reading per metric, named as `lift_alarm`'s `req_info`, see `CONTRACT.md`
//! "Telemetry batch") and the static parameters (device attributes). Pure functions.
//!
//! Device attributes of an elevator (`upsertDevice(attributes)`): `deviceCode` (18-digit
//! 设备代码), `providerId` (供应商内部码), `address`, `floors` (`-2,-1,1,2`), `lat`, `lng`,
//! `videoPos`, `videoUrl`, `streamUrl`, `rescueUrl`, `liveState` (7.7: 0 未安装, 1 离线,
//! 2 在线, 3 已拆除).
// Parsers of tenant and vendor input (issue 17): no indexing that can panic.
#![cfg_attr(not(test), warn(clippy::indexing_slicing))]

use chrono::{DateTime, Utc};
use domain::devices::{Device, DeviceKind};
use serde_json::{Map, Value, json};

/// The telemetry values of an elevator reading (`lift_alarm` `req_info` plus counters).
pub const VALUE_NAMES: &[&str] = &[
    "service_mode",
    "car_status",
    "car_direction",
    "door_zone",
    "car_position",
    "door_status",
    "passenger_status",
    "total_running_time",
    "present_counter_value",
    "message_code",
    "message_body",
    "speed",
    "run_count",
    "open_close_count",
];

/// A JSON value as the seed's string-typed numbers: strings as they are, numbers and
/// booleans as their text; `None` for null, objects and arrays.
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "1" } else { "0" }.to_owned()),
        _ => None,
    }
}

/// Checks one elevator reading's values: known names only, scalar values, and
/// `message_code` a list of two-digit codes (`02,04,06`).
///
/// # Errors
/// A reason naming the offending value.
pub fn check_values(values: &Map<String, Value>) -> Result<(), String> {
    for (k, v) in values {
        if !VALUE_NAMES.contains(&k.as_str()) {
            return Err(format!("unknown value {k:?}"));
        }
        if text(v).is_none() {
            return Err(format!("{k} must be a string or a number"));
        }
    }
    if let Some(code) = values.get("message_code").and_then(text) {
        let ok = !code.is_empty()
            && code.split(',').all(|c| c.trim().len() == 2 && c.trim().bytes().all(|b| b.is_ascii_alphanumeric()));
        if !ok {
            return Err("message_code must be GB/T 24476 codes such as 01 or 02,04".into());
        }
    }
    Ok(())
}

/// The newest value of a metric as text.
pub fn live(latest: &Value, metric: &str) -> Option<String> {
    latest.get(metric).and_then(|m| m.get("value")).and_then(text).filter(|s| !s.is_empty())
}

/// When the newest reading was taken.
pub fn live_at(latest: &Value) -> Option<DateTime<Utc>> {
    latest
        .as_object()?
        .values()
        .filter_map(|m| m.get("ts").and_then(Value::as_str))
        .filter_map(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .max()
}

/// A string attribute, trimmed; `None` when absent or empty.
pub fn attr(device: &Device, name: &str) -> Option<String> {
    device.attributes.get(name).and_then(text).filter(|s| !s.is_empty())
}

/// 4.1 `lift_type`: 1 elevator, 2 escalator.
pub fn lift_type(kind: DeviceKind) -> &'static str {
    if kind == DeviceKind::Escalator { "2" } else { "1" }
}

/// Whether the device is one this integration reports on.
pub fn is_lift(kind: DeviceKind) -> bool {
    matches!(kind, DeviceKind::Elevator | DeviceKind::Escalator)
}

/// 4.1 `req_info` of a fault (or, with `message_code` `00`, of its recovery): the
/// reading's values over the live state; the seed's "unknown" codes where neither has one.
pub fn lift_alarm(device: &Device, internal_id: &str, values: &Map<String, Value>, recovered: bool) -> Value {
    let get = |k: &str| values.get(k).and_then(text).filter(|s| !s.is_empty()).or_else(|| live(&device.latest, k));
    let escalator = device.kind == DeviceKind::Escalator;
    let or = |k: &str, default: &str| get(k).unwrap_or_else(|| default.to_owned());
    let mut m = Map::new();
    m.insert("unique_id".into(), json!(device.external_id));
    if let Some(code) = attr(device, "deviceCode") {
        m.insert("device_id".into(), json!(code));
    }
    m.insert("internal_id".into(), json!(internal_id));
    m.insert("lift_type".into(), json!(lift_type(device.kind)));
    // 7 未知; 0 停止/无方向/未知 for the others; escalators report 0 for the car fields.
    m.insert("service_mode".into(), json!(or("service_mode", "7")));
    m.insert("car_status".into(), json!(or("car_status", "0")));
    m.insert("car_direction".into(), json!(or("car_direction", "0")));
    for k in ["door_zone", "car_position", "door_status", "passenger_status"] {
        let v = if escalator { "0".to_owned() } else { or(k, "0") };
        m.insert(k.into(), json!(v));
    }
    for k in ["total_running_time", "present_counter_value"] {
        if let Some(v) = get(k) {
            m.insert(k.into(), json!(v));
        }
    }
    if recovered {
        m.insert("message_code".into(), json!("00"));
        m.insert("message_body".into(), json!("已自动恢复"));
    } else {
        m.insert("message_code".into(), json!(or("message_code", "00")));
        m.insert("message_body".into(), json!(get("message_body").unwrap_or_default()));
    }
    Value::Object(m)
}

/// 7.3 `run_trend` text: 上, 下 or 停车.
fn trend_text(direction: Option<&str>) -> &'static str {
    match direction {
        Some("1") => "上",
        Some("2") => "下",
        _ => "停车",
    }
}

/// 7.3 answer fields from the live state.
pub fn rt_info(device: &Device) -> Value {
    let l = &device.latest;
    let run_state = match live(l, "car_status").as_deref() {
        Some("1") => "运行",
        _ => "停车",
    };
    let door_state = match live(l, "door_status").as_deref() {
        Some("1") => "关",
        Some("2") => "开",
        _ => "",
    };
    let passenger_state = match live(l, "passenger_status").as_deref() {
        Some("1") => "有人",
        Some("2") => "无人",
        _ => "",
    };
    json!({
        "state_num": live_at(l).map(|t| t.timestamp_millis().to_string()).unwrap_or_default(),
        "elev_id": device.external_id,
        "elev_provider_id": attr(device, "providerId").unwrap_or_default(),
        "curr_floor": live(l, "car_position").unwrap_or_default(),
        "curr_speed": live(l, "speed").unwrap_or_default(),
        "run_state": run_state,
        "run_trend": trend_text(live(l, "car_direction").as_deref()),
        "door_state": door_state,
        "passenger_state": passenger_state,
    })
}

/// 7.2 answer fields from the static parameters.
pub fn dev_info(device: &Device) -> Value {
    let a = |k: &str| attr(device, k).unwrap_or_default();
    json!({
        "elev_id": device.external_id,
        "elev_provider_id": a("providerId"),
        "elev_name": device.name,
        "elev_loc": a("address"),
        "elev_floors": a("floors"),
        "elev_lat": a("lat"),
        "elev_lng": a("lng"),
        "video_url": a("videoUrl"),
    })
}

/// One 7.5 `rt_data` item from a live state. `recv_time` is RFC 3339 here (the adapter
/// formats it); the codes are the provincial ones the seed lists (t01 1 上行 2 下行 3 停止,
/// t06 1 有人 2 无人 3 无法确认, t07 1 打开 2 关闭 5 无法确认).
pub fn things_item(unique_id: &str, latest: &Value, now: DateTime<Utc>) -> Value {
    let at = live_at(latest).unwrap_or(now);
    let run_trend = match (live(latest, "car_status").as_deref(), live(latest, "car_direction").as_deref()) {
        (Some("1"), Some("1")) => "1",
        (Some("1"), Some("2")) => "2",
        _ => "3",
    };
    let passenger = match live(latest, "passenger_status").as_deref() {
        Some("1") => "1",
        Some("2") => "2",
        _ => "3",
    };
    // GB/T 24476 door_status: 1 关门到位 (closed), 2 无关门到位信号 (not closed: open).
    let door = match live(latest, "door_status").as_deref() {
        Some("1") => "2",
        Some("2") => "1",
        _ => "5",
    };
    json!({
        "unique_id": unique_id,
        "serial_num": format!("{unique_id}{}", at.timestamp_millis()),
        "recv_time": at.to_rfc3339(),
        "run_trend": run_trend,
        "elev_speed": live(latest, "speed").unwrap_or_else(|| "0".into()),
        "open_close_count": live(latest, "open_close_count").unwrap_or_else(|| "0".into()),
        "run_count": live(latest, "run_count").or_else(|| live(latest, "present_counter_value")).unwrap_or_else(|| "0".into()),
        "curr_floor": live(latest, "car_position").unwrap_or_else(|| "0".into()),
        "passenger_state": passenger,
        "door_state": door,
    })
}

/// 7.7 `live_state` of the smart device: the `liveState` attribute, else online (2) or
/// offline (1) from the device's status.
fn live_state(device: &Device) -> String {
    attr(device, "liveState").unwrap_or_else(|| if device.online == Some(false) { "1" } else { "2" }.to_owned())
}

/// One 7.7 `rt_paras` item with only the non-empty fields (an empty field is not updated
/// at the data center); `rescue_url` overrides the attribute (a rescue's start or `#`).
pub fn paras_item(device: &Device, rescue_url: Option<&str>) -> Value {
    let mut m = Map::new();
    m.insert("unique_id".into(), json!(device.external_id));
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            m.insert(k.into(), json!(v));
        }
    };
    put("elev_provider_id", attr(device, "providerId"));
    put("elev_name", Some(device.name.clone()));
    put("elev_loc", attr(device, "address"));
    put("elev_floors", attr(device, "floors"));
    put("elev_lat", attr(device, "lat"));
    put("elev_lng", attr(device, "lng"));
    put("video_pos", attr(device, "videoPos"));
    put("video_url", attr(device, "videoUrl"));
    put("stream_url", attr(device, "streamUrl"));
    put("rescue_url", rescue_url.map(str::to_owned));
    put("dev_type", Some("3".into()));
    put("live_state", Some(live_state(device)));
    Value::Object(m)
}

/// The static parameters 7.7 sends, to tell whether an upsert changed them.
pub fn static_params(device: &Device) -> Value {
    let mut v = paras_item(device, None);
    if let Some(m) = v.as_object_mut() {
        m.remove("live_state");
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::ids::{DeviceId, IntegrationId, TenantId};

    fn lift(latest: Value, attributes: Value) -> Device {
        Device {
            id: DeviceId::new(),
            tenant_id: TenantId::new(),
            integration_id: IntegrationId::new(),
            external_id: "204150".into(),
            kind: DeviceKind::Elevator,
            name: "1号梯".into(),
            home_id: None,
            room_id: None,
            online: None,
            online_changed_at: None,
            battery: None,
            signal: None,
            last_seen_at: None,
            attributes,
            latest,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn v(x: Value) -> Value {
        json!({"value": x, "ts": "2026-01-01T08:00:00+08:00"})
    }

    #[test]
    fn alarm_takes_the_reading_over_the_live_state_as_strings() {
        let d = lift(
            json!({"car_position": v(json!(3)), "door_status": v(json!("1"))}),
            json!({"deviceCode": "3110102872020C0151"}),
        );
        let values = json!({"message_code": "01", "car_position": 5, "service_mode": 1});
        let a = lift_alarm(&d, "abc", values.as_object().expect("obj"), false);
        assert_eq!(a["car_position"], "5");
        assert_eq!(a["door_status"], "1");
        assert_eq!(a["service_mode"], "1");
        assert_eq!(a["car_status"], "0");
        assert_eq!(a["device_id"], "3110102872020C0151");
        assert_eq!(a["lift_type"], "1");
        assert!(a.get("total_running_time").is_none());
        let r = lift_alarm(&d, "abc", values.as_object().expect("obj"), true);
        assert_eq!((r["message_code"].as_str(), r["internal_id"].as_str()), (Some("00"), Some("abc")));
    }

    #[test]
    fn values_are_checked() {
        let ok = json!({"message_code": "02,04", "car_position": -1});
        assert!(check_values(ok.as_object().expect("o")).is_ok());
        for bad in [json!({"message_code": "1"}), json!({"nope": 1}), json!({"speed": {"x": 1}})] {
            assert!(check_values(bad.as_object().expect("o")).is_err(), "{bad}");
        }
    }

    #[test]
    fn things_items_use_the_provincial_codes() {
        let l = json!({"car_status": v(json!(1)), "car_direction": v(json!(2)), "door_status": v(json!(1)),
                       "passenger_status": v(json!(0)), "speed": v(json!(1.5)), "car_position": v(json!(-1))});
        let t = things_item("204150", &l, Utc::now());
        assert_eq!(
            (t["run_trend"].as_str(), t["door_state"].as_str(), t["passenger_state"].as_str()),
            (Some("2"), Some("2"), Some("3"))
        );
        assert_eq!((t["elev_speed"].as_str(), t["curr_floor"].as_str()), (Some("1.5"), Some("-1")));
    }

    #[test]
    fn paras_leave_out_empty_fields() {
        let d = lift(json!({}), json!({"address": "湖州", "videoUrl": ""}));
        let p = paras_item(&d, Some("#"));
        assert_eq!(p["elev_loc"], "湖州");
        assert!(p.get("video_url").is_none());
        assert_eq!(
            (p["rescue_url"].as_str(), p["dev_type"].as_str(), p["live_state"].as_str()),
            (Some("#"), Some("3"), Some("2"))
        );
    }
}
