//! Seed 004's messages: the login body, the upload envelope, the `data` items of
//! `workTicket`, `gasAlarm` and `departureAlarm`, and the answers.

use chrono::{DateTime, FixedOffset, Utc};
use domain::alarms::Alarm;
use domain::tickets::Ticket;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Seed 004 二.2: the `data` item keys of `workTicket`, in the seed's table order.
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

/// `POST /auth/login`: the password travels base64-encoded (seed 004 二.1).
pub fn login_body(username: &str, password: &str) -> Value {
    use base64::Engine;
    json!({"username": username, "password": base64::engine::general_purpose::STANDARD.encode(password)})
}

/// Every answer: `code` 200 on success, 401 when the token is refused.
#[derive(Debug, Deserialize)]
pub struct Answer {
    pub code: Value,
    #[serde(default)]
    pub msg: Option<String>,
    #[serde(default)]
    pub data: Value,
}

impl Answer {
    /// `code` as text (the regulator may send a number or a string).
    pub fn code(&self) -> String {
        match &self.code {
            Value::String(s) => s.trim().to_owned(),
            v => v.to_string(),
        }
    }
}

/// The login answer's `data`.
#[derive(Debug, Deserialize)]
pub struct LoginData {
    pub token: String,
}

/// The upload envelope (seed 004 二.2-5): `dataId` is new for every request.
pub fn envelope(system_name: &str, area_code: &str, data_id: &str, items: Vec<Value>) -> Value {
    json!({"systemName": system_name, "areaCode": area_code, "dataId": data_id, "data": items})
}

/// The id a permit goes by at the regulator: its `id` field when given, else the ticket's.
pub fn permit_id(t: &Ticket) -> String {
    t.fields
        .get("id")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map_or_else(|| t.id.to_string(), str::to_owned)
}

/// A permit's `workTicket` item: the seed's keys only, as strings (the field table has
/// already normalised them), absent optional ones empty.
pub fn permit_item(t: &Ticket) -> Value {
    let mut item = Map::new();
    for key in PERMIT_KEYS {
        let v = match *key {
            "id" => Value::String(permit_id(t)),
            k => match t.fields.get(k) {
                Some(Value::String(s)) => Value::String(s.clone()),
                Some(Value::Null) | None => Value::String(String::new()),
                Some(other) => Value::String(other.to_string()),
            },
        };
        item.insert((*key).to_owned(), v);
    }
    Value::Object(item)
}

/// Seed 004 alarm times: `yyyy-MM-dd HH:mm:ss`, China time.
pub fn alarm_time(at: DateTime<Utc>) -> String {
    let china = FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| unreachable!("8 h is a valid offset"));
    at.with_timezone(&china).format("%Y-%m-%d %H:%M:%S").to_string()
}

fn attr(alarm: &Alarm, key: &str) -> String {
    match alarm.attributes.get(key) {
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// What a clear adds: when, and what was done (the clear note, or a plain default).
fn handled(alarm: &Alarm, item: &mut Map<String, Value>, note_key: &str) {
    if let Some(at) = alarm.cleared_at {
        item.insert("handle_time".into(), Value::String(alarm_time(at)));
        let note = alarm.clear_note.clone().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| "已销警".into());
        item.insert(note_key.into(), Value::String(note));
    }
}

/// A `gasAlarm` item (seed 004 二.4); cleared alarms carry `handle_time`.
pub fn gas_alarm_item(alarm: &Alarm, permit: &str) -> Value {
    let mut item = Map::new();
    item.insert("id".into(), json!(alarm.id.to_string()));
    item.insert("ticket_id".into(), json!(permit));
    item.insert("alarm_time".into(), json!(alarm_time(alarm.raised_at)));
    item.insert("alarm_type".into(), json!(attr(alarm, "alarm_type")));
    handled(alarm, &mut item, "handle_result");
    Value::Object(item)
}

/// A `departureAlarm` item (seed 004 二.5); cleared alarms carry `handle_time`.
pub fn departure_alarm_item(alarm: &Alarm, permit: &str) -> Value {
    let mut item = Map::new();
    item.insert("id".into(), json!(alarm.id.to_string()));
    item.insert("ticket_id".into(), json!(permit));
    item.insert("alarm_time".into(), json!(alarm_time(alarm.raised_at)));
    for key in ["alarm_type", "person_name", "person_type", "card_no", "alarm_lng", "alarm_lat"] {
        let v = attr(alarm, key);
        if key != "person_type" || !v.is_empty() {
            item.insert(key.into(), json!(v));
        }
    }
    handled(alarm, &mut item, "handle_remark");
    Value::Object(item)
}

/// What the `workTicket` answer's text says failed: the ids in `失败的作业票 id有[...]`,
/// each with its reason from `错误原因为[...]` (paired in order when the counts agree, else
/// the whole reason text). `None` when the text names no failed-id list.
pub fn failed_permits(text: &str) -> Option<Vec<(String, String)>> {
    let ids = bracketed(text, "失败的作业票")?;
    let ids: Vec<String> = split_list(&ids);
    let reasons = bracketed(text, "错误原因").unwrap_or_default();
    let parts = split_list(&reasons);
    let whole =
        if reasons.trim().is_empty() { "refused by the regulator".to_owned() } else { reasons.trim().to_owned() };
    Some(
        ids.iter()
            .enumerate()
            .map(|(i, id)| {
                let reason = if parts.len() == ids.len() { parts[i].clone() } else { whole.clone() };
                (id.clone(), reason)
            })
            .collect(),
    )
}

/// The text between the `[` after `label` and its `]`.
fn bracketed(text: &str, label: &str) -> Option<String> {
    let rest = &text[text.find(label)? + label.len()..];
    let open = rest.find(['[', '【'])?;
    let inner = &rest[open..];
    let inner = inner.char_indices().nth(1).map_or("", |(i, _)| &inner[i..]);
    let close = inner.find([']', '】'])?;
    Some(inner[..close].to_owned())
}

fn split_list(s: &str) -> Vec<String> {
    s.split([',', '，', ';', '；'])
        .map(|p| p.trim().trim_matches('"').trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_password_is_the_seeds_vector() {
        assert_eq!(login_body("textaccount", "textpassword")["password"], "dGV4dHBhc3N3b3Jk");
    }

    #[test]
    fn the_seeds_answer_names_no_failures() {
        let text = "作业票同步结束,成功 1条,失败 0条。作业票储存成功的作业票 id有\
                    [12833a0c-54b3-48c2-86f7-96d0f195cc7e],失败的作业票 id有[]。 错误原因为[]";
        assert_eq!(failed_permits(text), Some(vec![]));
    }

    #[test]
    fn failed_ids_are_read_with_their_reasons() {
        let text = "作业票同步结束,成功 1条,失败 2条。作业票储存成功的作业票 id有[a],失败的作业票 id有[b, c]。 \
                    错误原因为[ticket_level 为空,lat 超出范围]";
        assert_eq!(
            failed_permits(text),
            Some(vec![("b".into(), "ticket_level 为空".into()), ("c".into(), "lat 超出范围".into())])
        );
        let one_reason = "失败的作业票 id有[b,c]。 错误原因为[数据格式错误]";
        assert_eq!(
            failed_permits(one_reason),
            Some(vec![("b".into(), "数据格式错误".into()), ("c".into(), "数据格式错误".into())])
        );
        assert_eq!(failed_permits("作业票同步结束"), None);
        assert_eq!(
            failed_permits("失败的作业票 id有【x】"),
            Some(vec![("x".into(), "refused by the regulator".into())])
        );
    }

    #[test]
    fn alarm_times_are_china_time() {
        let at = DateTime::parse_from_rfc3339("2021-12-17T06:55:41Z").expect("time").with_timezone(&Utc);
        assert_eq!(alarm_time(at), "2021-12-17 14:55:41");
    }
}
