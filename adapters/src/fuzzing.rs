//! Entry points for the fuzz targets in `fuzz/` (issue 17: no tenant- or vendor-reachable
//! panic). Each takes the untrusted bytes of one wire format and runs them through the real
//! parse steps of its vendor module (no copies), after authentication: a signature or
//! token check would stop the fuzzer at its first byte, so the header checks that come
//! before it are fed the same bytes and their verdict is ignored.
//!
//! Every entry point returns what the parse came to (`Ok` with a short summary, `Err` with
//! the refusal); the only failure a fuzzer looks for is a panic. Built with the `fuzzing`
//! feature and in this crate's tests (which run each on a few seed inputs).
// Parsers of tenant and vendor input (issue 17): no indexing that can panic.
#![cfg_attr(not(test), warn(clippy::indexing_slicing))]

use crate::vendors::{dingding, etc, goldcard, hazchem, huzhou, telemetry};
use chrono::{DateTime, TimeZone, Utc};
use domain::devices::{Device, DeviceKind};
use domain::ids::{DeviceId, InboundEventId, IntegrationId, TenantId};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// A fixed time for the parsers that read the clock, so a run is reproducible.
fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000, 0).single().unwrap_or_default()
}

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// A device as the repositories would return it, for the mappers that take one.
fn device(external_id: &str, kind: DeviceKind, latest: Value) -> Device {
    Device {
        id: DeviceId::new(),
        tenant_id: TenantId::new(),
        integration_id: IntegrationId::new(),
        external_id: external_id.to_owned(),
        kind,
        name: external_id.to_owned(),
        home_id: None,
        room_id: None,
        online: Some(false),
        online_changed_at: None,
        battery: None,
        signal: None,
        last_seen_at: None,
        attributes: json!({"deviceCode": external_id}),
        latest,
        created_at: now(),
        updated_at: now(),
    }
}

/// `POST /hooks/{id}/dingding` (seed 002 8, 9, 12, 13, 16): the body's JSON check and sign
/// computation, then everything `accept` does once the sign checks out (the callback, its
/// name, dedup key and redacted copy).
///
/// # Errors
/// The `ErrMsg` of the refusal.
pub fn dingding_callback(data: &[u8]) -> Result<String, String> {
    let refused =
        |a: crate::vendors::inbound::HookAnswer| Err(a.body.get("ErrMsg").map(Value::to_string).unwrap_or_default());
    let (raw, fields) = match dingding::inbound::unsigned(data) {
        Ok(x) => x,
        Err(a) => return refused(a),
    };
    let given = fields.get("sign").and_then(Value::as_str).unwrap_or_default();
    let _ = dingding::sign::verify("http://127.0.0.1/hooks/x/dingding", raw, given);
    match dingding::inbound::signed(raw, fields) {
        Ok(a) => Ok(format!("{} {}", a.kind, a.dedup_key)),
        Err(a) => refused(a),
    }
}

/// Dingding open-API answers (seed 002 4.3): the envelope, then every read's result type
/// and its mapping (homes, devices, passwords, work orders, plaintexts, command answers),
/// and the `access_token` answer (4.2).
///
/// # Errors
/// The call error the answer comes to.
pub fn dingding_answer(data: &[u8]) -> Result<String, String> {
    let _ = dingding::client::token_answer(data);
    let rest = dingding::client::answer_of("fuzz", data).map_err(|e| e.to_string())?;
    let v = Value::Object(rest.clone());
    let of = |v: &Value| -> Option<dingding::wire::DeviceInfo> { serde_json::from_value(v.clone()).ok() };
    let info = of(&v)
        .or_else(|| serde_json::from_value::<dingding::wire::InfoWrapped>(v.clone()).ok().and_then(|w| w.info))
        .unwrap_or_default();
    let mut devices = Vec::new();
    if let Ok(list) = serde_json::from_value::<dingding::wire::HomeList>(v.clone()) {
        devices.extend(list.home_list.into_iter().flat_map(|h| h.devices));
    }
    if let Ok(found) = serde_json::from_value::<dingding::wire::HomeDevices>(v.clone()) {
        devices.extend(found.result.into_values().flatten());
    }
    let passwords = serde_json::from_value::<dingding::wire::Passwords>(v.clone())
        .map(dingding::map::passwords)
        .unwrap_or_default();
    for entry in &devices {
        if let Some(kind) = entry.kind.as_deref().and_then(dingding::map::kind_of_name) {
            let _ = dingding::map::synced_device(kind, entry, &info, passwords.clone());
        }
    }
    if let Ok(list) = serde_json::from_value::<dingding::wire::HomeTickets>(v.clone()) {
        for t in list.home_ticket_list {
            let _ = dingding::map::synced_ticket("home", t);
        }
    }
    let _ = serde_json::from_value::<dingding::wire::Plaintext>(v);
    let _ = dingding::map::accepted(rest);
    Ok(format!("{} devices", devices.len()))
}

/// `POST /hooks/{id}/goldcard/api/collect/meter/{2001,2002,2003}` (seed 003 2.4.11-13): the
/// first byte picks the report, the rest is its body; the headers' parse is fed the bytes
/// as text. A reading becomes its status and readings, an alarm its alarm fact.
///
/// # Errors
/// The `echoMsg` of the refusal.
pub fn goldcard_report(data: &[u8]) -> Result<String, String> {
    let (pick, body) = data.split_first().unwrap_or((&0, &[]));
    let header = text(body);
    let _ = goldcard::sign::verify(Some(&header), Some(&header), "00000072", "s3cret", now());
    let code = ["2001", "2002", "2003"].get(usize::from(*pick % 3)).copied().unwrap_or("2001");
    let report = goldcard::inbound::parse(code, body).map_err(|m| m.0)?;
    let serial = report.head().serial_no.clone();
    match report {
        goldcard::inbound::Report::Reading(r) => {
            let _ = goldcard::map::observed(&r);
        }
        goldcard::inbound::Report::Alarm(a) => {
            let meter = device(&a.head.meter_no, DeviceKind::GasMeter, json!({}));
            let _ = goldcard::map::alarm(&meter, &a, InboundEventId::new(), now());
        }
        goldcard::inbound::Report::Result(_) => {}
    }
    Ok(format!("{code} {serial}"))
}

/// `GET|POST /hooks/{id}/huzhou/elev_api` (seed 000 7.x): the first byte's low bit picks
/// the method; the text up to the first newline is the query string, the rest the body.
/// The credential check, then what `accept` stores and what 7.4 reads of the call.
///
/// # Errors
/// The `ret_msg` of the refusal.
pub fn huzhou_elev_api(data: &[u8]) -> Result<String, String> {
    let (first, rest) = data.split_first().unwrap_or((&0, &[]));
    let method = if first & 1 == 1 { "POST" } else { "GET" };
    let (query, body) = match rest.iter().position(|b| *b == b'\n') {
        Some(i) => rest.split_at(i),
        None => (rest, &[][..]),
    };
    let query: HashMap<String, String> = url::form_urlencoded::parse(query).into_owned().collect();
    let param = |k: &str| query.get(k).map(String::as_str);
    let mut creds = Map::new();
    creds.insert("inboundAppKey".into(), json!("key"));
    creds.insert("inboundAppSecret".into(), json!("secret"));
    let _ = huzhou::HuzhouService::check_credentials(&creds, param("app_key"), param("app_secret"));
    let accepted = huzhou::inbound::recorded(method.to_owned(), query, body, Some("application/json"), 1_700_000_000);
    let Some(call) = accepted.work.downcast_ref::<huzhou::inbound::Call>() else {
        return Err("not a call".into());
    };
    let (ids, subscribe) = call.notice_params().map_err(|r| r.message())?;
    let ids = huzhou::service::notice_ids(ids.as_deref()).map_err(|r| r.message())?;
    let on = huzhou::service::notice_subscribe(subscribe.as_deref()).map_err(|r| r.message())?;
    Ok(format!("{} {} ids, subscribe {on}", accepted.kind, ids.len()))
}

/// Huzhou data-center answers (seed 000 3.2, 4.x): the token answer (`token_valid_time`
/// included) and a push's `ret_status`.
///
/// # Errors
/// What the token answer comes to when it gives no token.
pub fn huzhou_answer(data: &[u8]) -> Result<String, String> {
    let _ = huzhou::client::push_outcome(data);
    let t = huzhou::client::token_outcome(200, &text(data), now()).map_err(|e| e.to_string())?;
    Ok(format!("expires {}", t.expires_at))
}

/// `POST /hooks/{id}/etc/monitor.do` (seed 001 1.5-1.8, 2.1, 3.1): the header checks fed
/// the bytes, the report (with the clock check and without it), its devices, and its
/// facts against devices whose previous values are the report's own.
///
/// # Errors
/// The `code` and `msg` of the refusal.
pub fn etc_report(data: &[u8]) -> Result<String, String> {
    let header = text(data);
    let _ = etc::sign::auth_matches(Some(&header), "123456");
    let _ = etc::sign::md5_matches(Some(&header), data);
    let _ = etc::wire::parse(data, 1_564_734_526, 300);
    let report = etc::wire::parse(data, 0, i64::MAX).map_err(|r| format!("{} {}", r.code.as_str(), r.detail))?;
    let _ = report.series();
    let named = etc::map::devices_of(&report);
    let devices: HashMap<String, Device> = named
        .iter()
        .map(|n| {
            let latest: Map<String, Value> = n
                .unit
                .map(|u| u.fields.iter().map(|(k, v)| (k.clone(), json!({"value": v}))).collect())
                .unwrap_or_default();
            (n.external_id.clone(), device(&n.external_id, n.kind, Value::Object(latest)))
        })
        .collect();
    let thresholds = etc::map::Thresholds::of(&json!({}));
    let mapped = etc::map::facts(&report, &named, &devices, thresholds, InboundEventId::new());
    Ok(format!("{} devices, {} facts", named.len(), mapped.facts.len()))
}

/// ETC device answers to control and picture requests (seed 001 1.6, 3.3.3): the answer
/// and its code's verdict, and a `Content-Disposition` file name.
///
/// # Errors
/// When the bytes are no answer.
pub fn etc_answer(data: &[u8]) -> Result<String, String> {
    let _ = etc::wire::attachment_name(&text(data));
    let a = etc::wire::answer(data).ok_or("no answer")?;
    let _ = etc::client::classify(&a.code, &a.msg);
    Ok(a.code)
}

/// Hazchem regulator answers (seed 004 二.1-5): the answer, its verdict, the login token,
/// and the failed permits its text names (`失败的作业票 id有[...]`), also of the bytes as
/// text.
///
/// # Errors
/// When the bytes are no answer.
pub fn hazchem_answer(data: &[u8]) -> Result<String, String> {
    let _ = hazchem::wire::failed_permits(&text(data));
    let a = hazchem::wire::answer(data).ok_or("no answer")?;
    let _ = hazchem::client::classify(200, Some(&a));
    let _ = hazchem::wire::login_token(&a);
    let failed = hazchem::wire::failed_permits(&hazchem::client::answer_text(&a)).unwrap_or_default();
    Ok(format!("code {}, {} failed", a.code(), failed.len()))
}

/// `POST /hooks/{id}/telemetry` (`CONTRACT.md` "Telemetry batch"): the batch, each
/// reading, and an elevator's reading rule (its values, and the `lift_alarm` they make).
///
/// # Errors
/// The `error` of a refused batch.
pub fn telemetry_batch(data: &[u8]) -> Result<String, String> {
    let readings = telemetry::batch(data).map_err(|a| a.body.get("error").map(Value::to_string).unwrap_or_default())?;
    let lift = device("204150", DeviceKind::Elevator, json!({}));
    let mut accepted = 0;
    for r in &readings {
        let Ok((_, _, values)) = telemetry::reading(r, now()) else { continue };
        if huzhou::state::check_values(values).is_ok() {
            let _ = huzhou::state::lift_alarm(&lift, "internal", values, false);
            accepted += 1;
        }
    }
    Ok(format!("{accepted} of {} readings", readings.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dingding_callbacks_parse_or_are_refused() {
        let ok = dingding_callback(br#"{"event":"batteryAlarm","uuid":"u","time":1,"sign":"x"}"#);
        assert_eq!(ok.as_deref(), Ok("batteryAlarm event:u:batteryAlarm:1"));
        assert!(dingding_callback(b"\xff").is_err());
        assert!(dingding_callback(b"[1]").is_err());
        let odd = dingding_callback(br#"{"time":{"a":1}}"#);
        assert!(odd.as_deref().is_ok_and(|k| k.starts_with("unknown body:")), "{odd:?}");
    }

    #[test]
    fn dingding_answers_parse_or_are_refused() {
        let homes = br#"{"ErrNo":0,"home_list":[{"home_id":"h","devices":[{"uuid":"d","type":"lock"}]}]}"#;
        assert_eq!(dingding_answer(homes).as_deref(), Ok("1 devices"));
        assert!(dingding_answer(br#"{"ErrNo":102}"#).is_err());
        assert!(dingding_answer(b"<html>").is_err());
    }

    #[test]
    fn gas_reports_parse_or_are_refused() {
        let alarm = br#"{"serialNo":"s","userNo":"u","factorNo":"f","meterNo":"m","alarmType":"02","alarmContent":"x","alarmPriority":"3","companyCode":"c"}"#;
        let mut data = vec![2u8];
        data.extend_from_slice(alarm);
        assert_eq!(goldcard_report(&data).as_deref(), Ok("2003 s"));
        data[0] = 0;
        assert!(goldcard_report(&data).is_err_and(|e| e.contains("billingModel")));
        assert!(goldcard_report(b"").is_err());
    }

    #[test]
    fn elev_api_calls_parse_or_are_refused() {
        let call = b"\x01action=put_rt_notice&token=t\n{\"unique_ids\":\"1,2,1\",\"subscribe\":2}";
        assert_eq!(huzhou_elev_api(call).as_deref(), Ok("put_rt_notice 2 ids, subscribe false"));
        assert!(huzhou_elev_api(b"\x00action=put_rt_notice&unique_ids=1&subscribe=3").is_err());
        assert!(huzhou_elev_api(b"\x01a=b\nnot json").is_err());
    }

    #[test]
    fn data_center_answers_parse_or_are_refused() {
        let ok = br#"{"ret_status":{"ret_code":200},"ret_data":{"app_token":"t","token_valid_time":60}}"#;
        assert!(huzhou_answer(ok).is_ok());
        assert!(huzhou_answer(br#"{"ret_status":{"ret_code":"300"},"ret_data":{}}"#).is_err());
    }

    #[test]
    fn etc_reports_and_answers_parse_or_are_refused() {
        let report = br#"{"gantryId":"G1","method":"cabinetStatusUpdate","timeStamp":"1564734526","version":"1001","cabinetStatus":{"doors":{"frontDoorClosed":"0","frontDoorChangeTime":"t"}}}"#;
        assert!(etc_report(report).is_ok_and(|s| s.starts_with("3 devices")), "{:?}", etc_report(report));
        assert!(etc_report(b"{}").is_err_and(|e| e.starts_with("1006")));
        assert_eq!(etc_answer(br#"{"code":"1000","msg":"ok"}"#).as_deref(), Ok("1000"));
        assert!(etc_answer(b"garbage").is_err());
    }

    #[test]
    fn regulator_answers_parse_or_are_refused() {
        let a = r#"{"code":200,"data":"失败的作业票 id有[a,b]。 错误原因为[x;y]"}"#;
        assert_eq!(hazchem_answer(a.as_bytes()).as_deref(), Ok("code 200, 2 failed"));
        assert!(hazchem_answer(b"").is_err());
    }

    #[test]
    fn telemetry_batches_parse_or_are_refused() {
        let b = br#"{"readings":[{"externalId":"204150","ts":"2023-11-14T00:00:00Z","values":{"message_code":"02"}},{"ts":1}]}"#;
        assert_eq!(telemetry_batch(b).as_deref(), Ok("1 of 2 readings"));
        assert!(telemetry_batch(b"{}").is_err());
    }
}
