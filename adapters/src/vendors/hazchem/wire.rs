//! Seed 004's messages: the login body, the upload envelope, the `data` items of
//! `workTicket`, `gasAlarm` and `departureAlarm`, and the answers.
// Parsers of tenant and vendor input (issue 17): no indexing that can panic.
#![cfg_attr(not(test), warn(clippy::indexing_slicing))]

use chrono::{DateTime, FixedOffset, Utc};
use domain::alarms::Alarm;
use domain::tickets::Ticket;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Seed 004 二.2: the `data` item keys of `workTicket`: the names of the `WORK_PERMIT`
/// field table (which follows the seed's table), one list for both.
pub fn permit_keys() -> impl Iterator<Item = &'static str> {
    super::tickets::WORK_PERMIT.fields.iter().map(|f| f.name)
}

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

/// An answer from its bytes; `None` when they are no answer.
pub fn answer(bytes: &[u8]) -> Option<Answer> {
    serde_json::from_slice(bytes).ok()
}

/// The token of a login answer (`code` 200 and a non-blank `data.token`).
pub fn login_token(a: &Answer) -> Option<String> {
    if a.code() != "200" {
        return None;
    }
    serde_json::from_value::<LoginData>(a.data.clone()).ok().map(|d| d.token).filter(|t| !t.trim().is_empty())
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
    for key in permit_keys() {
        let v = match key {
            "id" => Value::String(permit_id(t)),
            k => match t.fields.get(k) {
                Some(Value::String(s)) => Value::String(s.clone()),
                Some(Value::Null) | None => Value::String(String::new()),
                Some(other) => Value::String(other.to_string()),
            },
        };
        item.insert(key.to_owned(), v);
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
                let paired = if parts.len() == ids.len() { parts.get(i) } else { None };
                let reason = paired.unwrap_or(&whole).clone();
                (id.clone(), reason)
            })
            .collect(),
    )
}

/// The text between the `[` after `label` and its `]`.
fn bracketed(text: &str, label: &str) -> Option<String> {
    let (_, rest) = text.split_once(label)?;
    let (_, inner) = rest.split_once(['[', '【'])?;
    let (inner, _) = inner.split_once([']', '】'])?;
    Some(inner.to_owned())
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

/// Nothing a tenant enters makes the upload malformed: whatever the permit table accepts is
/// sent with the seed's keys only, and the item read back (as the regulator parses it) is
/// accepted by the same table as the same permit.
#[cfg(test)]
mod props {
    use super::*;
    use domain::ids::{TenantId, TicketId};
    use domain::tickets::{TicketFields, TicketKind, TicketStatus};
    use proptest::prelude::*;

    fn table() -> TicketFields {
        TicketFields::new().with(super::super::TICKET_RULES)
    }

    /// Anything a user may type: any text, quotes, separators, control characters, emoji,
    /// and values of the wrong JSON type.
    fn wild() -> BoxedStrategy<Value> {
        prop_oneof![
            "\\PC{0,30}".prop_map(Value::from),
            "[ ,，\"\\\\\n\t]{0,6}[a-z张王]{0,4}[ ,\"]{0,3}".prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            Just(Value::Null),
            Just(json!([])),
            Just(json!({"a": 1})),
        ]
        .boxed()
    }

    /// Mostly what a careful user types (`good`), now and then anything.
    fn mostly(good: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
        prop_oneof![30 => good, 1 => wild()].boxed()
    }

    /// Free text: quotes, backslashes, commas, newlines, CJK and emoji included.
    fn text() -> BoxedStrategy<Value> {
        mostly("[a-z张王李硫胺酯焊接\"\\\\,，;#{}<>&' \n😀]{0,40}[a-z张]".prop_map(Value::from).boxed())
    }

    fn code(codes: &'static [&'static str]) -> BoxedStrategy<Value> {
        mostly(proptest::sample::select(codes).prop_map(Value::from).boxed())
    }

    fn coordinate(max: f64) -> BoxedStrategy<Value> {
        mostly(
            prop_oneof![(-max..max).prop_map(|v| Value::from(v.to_string())), (-max..max).prop_map(Value::from)]
                .boxed(),
        )
    }

    fn names() -> BoxedStrategy<Value> {
        mostly(
            proptest::collection::vec("[张王李赵\"'][一-龥a-z ]{1,3}", 1..4)
                .prop_map(|v| Value::from(v.join(",")))
                .boxed(),
        )
    }

    /// A type with one of its levels (or none where it takes none), now and then a mismatch.
    fn type_and_level() -> BoxedStrategy<(Value, Value)> {
        const LEVELS: &[(&str, &[&str])] = &[
            ("01", &["00", "01", "02"]),
            ("02", &[]),
            ("03", &[]),
            ("04", &["01", "02", "03", "04"]),
            ("05", &["01", "02", "03"]),
            ("06", &[]),
            ("12", &[]),
        ];
        let good = proptest::sample::select(LEVELS).prop_flat_map(|(t, levels)| {
            let level = if levels.is_empty() {
                prop_oneof![Just(Value::Null), Just(Value::from(""))].boxed()
            } else {
                proptest::sample::select(levels).prop_map(Value::from).boxed()
            };
            (Just(Value::from(t)), level)
        });
        prop_oneof![30 => good, 1 => (wild(), wild())].boxed()
    }

    /// Start and end, the end after the start, now and then anything.
    fn times() -> BoxedStrategy<(Value, Value)> {
        let good = (2020i32..2030, 1u32..13, 1u32..29, 0u32..24, 0u32..60, 1i64..100_000).prop_map(
            |(y, mo, d, h, mi, minutes)| {
                let start =
                    chrono::NaiveDate::from_ymd_opt(y, mo, d).and_then(|d| d.and_hms_opt(h, mi, 0)).unwrap_or_default();
                let end = start + chrono::Duration::minutes(minutes);
                let f = |t: chrono::NaiveDateTime| Value::from(t.format("%Y-%m-%d %H:%M").to_string());
                (f(start), f(end))
            },
        );
        prop_oneof![30 => good, 1 => (wild(), wild())].boxed()
    }

    prop_compose! {
        fn permit()(
            (ticket_type, ticket_level) in type_and_level(),
            (start, end) in times(),
            position in text(), content in text(),
            harm in prop_oneof![code(&["01", "02", "19,20", "08, 09", "20", ""]), Just(Value::Null)],
            credit in mostly(Just(Value::from("91370200163569824H")).boxed()),
            flags in proptest::collection::vec(code(&["0", "1"]), 5),
            lng in coordinate(180.0), lat in coordinate(90.0),
            supervisor_name in names(), worker_name in names(), dept_name in names(),
            major in text(),
            mobile in mostly(Just(Value::from("19844112314")).boxed()),
            reasons in proptest::collection::vec(prop_oneof![text(), Just(Value::Null)], 2),
            video in prop_oneof![Just(Value::Null), mostly("[a-f0-9]{32}(,[a-f0-9]{32}){0,2}".prop_map(Value::from).boxed())],
            id in prop_oneof![Just(Value::Null), "[a-f0-9-]{1,36}".prop_map(Value::from), text()],
        ) -> Value {
            let mut p = json!({
                "ticket_type": ticket_type, "ticket_level": ticket_level, "start_time": start, "end_time": end,
                "ticket_position": position, "ticket_content": content, "harm_type": harm,
                "company_social_code": credit, "gas_analyse": flags[0], "safe_measure": flags[1],
                "lng": lng, "lat": lat, "supervisor_name": supervisor_name, "worker_name": worker_name,
                "workDept_name": dept_name, "is_contractor_task": flags[2], "major_person": major,
                "major_person_mobile": mobile, "is_changed": flags[3], "is_cancelled": flags[4],
                "changed_reason": reasons[0], "cancelled_reason": reasons[1], "video_code": video, "id": id,
            });
            if let Some(o) = p.as_object_mut() {
                o.retain(|_, v| !v.is_null());
            }
            p
        }
    }

    fn ticket(fields: Value, status: &str) -> Ticket {
        let now = chrono::Utc::now();
        Ticket {
            id: TicketId::new(),
            tenant_id: TenantId::new(),
            kind: TicketKind::WorkPermit,
            integration_id: None,
            device_id: None,
            home_id: None,
            status: TicketStatus::parse(TicketKind::WorkPermit, status).expect("status"),
            fields,
            external_id: None,
            created_by: None,
            created_at: now,
            updated_at: now,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn what_is_sent_parses_back_to_the_same_permit(
            given in permit(),
            status in proptest::sample::select(&["APPLIED", "ISSUED", "ACCEPTED", "VOIDED", "REVOKED"]),
        ) {
            let Ok(stored) = table().validate(TicketKind::WorkPermit, status, &given) else {
                // Refused input is never stored, so never sent.
                return Ok(());
            };
            let t = ticket(stored.clone(), status);
            let body = envelope("系统", "370211", "90fa0266d5444f4f9f8bba64b1ba0b14", vec![permit_item(&t)]);
            let wire_text = serde_json::to_string(&body).expect("serialises");
            let back: Value = serde_json::from_str(&wire_text).expect("the regulator can parse it");
            let item = back["data"][0].as_object().expect("an object").clone();
            let keys: Vec<&str> = item.keys().map(String::as_str).collect();
            let mut want: Vec<&str> = permit_keys().collect();
            want.sort_unstable();
            prop_assert_eq!(keys, want, "the seed's keys, no more, no less");
            prop_assert!(item.values().all(Value::is_string), "every value a string");
            let id = permit_id(&t);
            prop_assert_eq!(item["id"].as_str(), Some(id.as_str()));
            // Read back by the same table, the item is the permit as stored.
            let mut again = item.clone();
            again.remove("id");
            let reread = table().validate(TicketKind::WorkPermit, status, &Value::Object(again));
            prop_assert!(reread.is_ok(), "the sent item is a valid permit: {:?} {:?}", reread, item);
            let reread = reread.unwrap_or_default();
            for key in permit_keys().filter(|k| *k != "id") {
                let sent = item[key].as_str().unwrap_or_default();
                let kept = stored.get(key).and_then(Value::as_str).unwrap_or_default();
                prop_assert_eq!(sent, kept, "{} as stored", key);
                let read = reread.get(key).and_then(Value::as_str).unwrap_or_default();
                prop_assert_eq!(read, kept, "{} read back", key);
            }
        }
    }
}
