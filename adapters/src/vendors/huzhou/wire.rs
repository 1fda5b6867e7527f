//! Seed 000 wire types, private to the Huzhou module. Field names and order are the
//! seed's; every value is a string (the seed's examples quote numbers). Optional fields
//! (the seed's 是否必填 N) are left out when empty.
// Parsers of tenant and vendor input (issue 17): no indexing that can panic.
#![cfg_attr(not(test), warn(clippy::indexing_slicing))]

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `ret_status` of every answer (and the whole 7.x inbound answers use `ret_code` flat).
#[derive(Debug, Deserialize)]
pub(super) struct RetStatus {
    /// `"200"`; some servers send a number.
    pub ret_code: Value,
    #[serde(default)]
    pub ret_msg: Option<String>,
}

/// 3.2 token answer.
#[derive(Debug, Deserialize)]
pub(super) struct TokenAnswer {
    pub ret_status: RetStatus,
    #[serde(default)]
    pub ret_data: Option<TokenData>,
}

#[derive(Debug, Deserialize)]
pub(super) struct TokenData {
    /// Absent in a refusal (`"ret_data": {}`).
    #[serde(default)]
    pub app_token: String,
    /// Seconds, `"7200"` by default.
    #[serde(default)]
    pub token_valid_time: Option<Value>,
}

/// Answer of every push.
#[derive(Debug, Deserialize)]
pub(super) struct PushAnswer {
    pub ret_status: RetStatus,
}

/// `req_context` of every push (the body is `{"req_context", "req_info"}`).
#[derive(Debug, Serialize)]
pub(super) struct ReqContext {
    pub version: &'static str,
    pub timestamp: String,
    pub signature: String,
}

fn empty(s: &Option<Text>) -> bool {
    s.as_ref().is_none_or(|t| t.0.is_empty())
}

/// A seed value: always a string on the wire; a payload's number or boolean is taken as
/// its text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub(super) struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(Self(s.trim().to_owned())),
            Value::Number(n) => Ok(Self(n.to_string())),
            Value::Bool(b) => Ok(Self(if b { "1" } else { "0" }.to_owned())),
            Value::Null => Ok(Self::default()),
            other => Err(serde::de::Error::custom(format!("expected a string, got {other}"))),
        }
    }
}

/// A time the platform generated: RFC 3339 in the payload, the seed's 15 characters on
/// the wire (a value already in that form is kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub(super) struct Time(pub String);

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Self(match chrono::DateTime::parse_from_rfc3339(&s) {
            Ok(t) => super::sign::timestamp(t.with_timezone(&chrono::Utc)),
            Err(_) => s,
        }))
    }
}

/// 4.1 `lift_alarm`.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct LiftAlarm {
    pub unique_id: Text,
    #[serde(default, skip_serializing_if = "empty")]
    pub device_id: Option<Text>,
    pub internal_id: Text,
    pub lift_type: Text,
    pub service_mode: Text,
    pub car_status: Text,
    pub car_direction: Text,
    pub door_zone: Text,
    pub car_position: Text,
    pub door_status: Text,
    pub passenger_status: Text,
    #[serde(default, skip_serializing_if = "empty")]
    pub total_running_time: Option<Text>,
    #[serde(default, skip_serializing_if = "empty")]
    pub present_counter_value: Option<Text>,
    pub message_code: Text,
    #[serde(default)]
    pub message_body: Text,
}

/// 4.2 `lift_maintain`.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct LiftMaintain {
    pub unique_id: Text,
    #[serde(default, skip_serializing_if = "empty")]
    pub device_id: Option<Text>,
    pub internal_id: Text,
    pub lift_type: Text,
    pub maintain_type: Text,
    pub fault_type: Text,
    pub fault_info: Text,
    pub fault_cause: Text,
    pub deal_result: Text,
    pub deal_time: Text,
    pub deal_engineer: Text,
    pub contact_name: Text,
    pub contact_phone: Text,
    pub use_company: Text,
    #[serde(default, skip_serializing_if = "empty")]
    pub use_city: Option<Text>,
    #[serde(default, skip_serializing_if = "empty")]
    pub use_street: Option<Text>,
    pub report_no: Text,
    pub report_time: Text,
    pub arrive_time: Text,
    pub finish_time: Text,
    pub response_time: Text,
    #[serde(default, skip_serializing_if = "empty")]
    pub passengers_info: Option<Text>,
}

/// 4.3 `lift_notify`.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct LiftNotify {
    pub unique_id: Text,
    #[serde(default, skip_serializing_if = "empty")]
    pub device_id: Option<Text>,
    pub lift_type: Text,
    pub use_type: Text,
    pub is_current_count: Text,
    pub use_count: Text,
    pub use_starttime: Time,
    pub use_endtime: Time,
    #[serde(default)]
    pub comments: Text,
}

/// 7.5 `put_ie_elev_things`.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ElevThings {
    pub rt_data: Vec<ThingsItem>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ThingsItem {
    pub unique_id: Text,
    pub serial_num: Text,
    pub recv_time: Time,
    pub run_trend: Text,
    pub elev_speed: Text,
    pub open_close_count: Text,
    pub run_count: Text,
    pub curr_floor: Text,
    pub passenger_state: Text,
    pub door_state: Text,
}

/// 7.7 `put_ie_elev_paras`: an empty field is not updated at the data center, so none is sent.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ElevParas {
    pub rt_paras: Vec<ParasItem>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ParasItem {
    pub unique_id: Text,
    #[serde(default, skip_serializing_if = "empty")]
    pub elev_provider_id: Option<Text>,
    #[serde(default, skip_serializing_if = "empty")]
    pub elev_name: Option<Text>,
    #[serde(default, skip_serializing_if = "empty")]
    pub elev_loc: Option<Text>,
    #[serde(default, skip_serializing_if = "empty")]
    pub elev_floors: Option<Text>,
    #[serde(default, skip_serializing_if = "empty")]
    pub elev_lat: Option<Text>,
    #[serde(default, skip_serializing_if = "empty")]
    pub elev_lng: Option<Text>,
    #[serde(default, skip_serializing_if = "empty")]
    pub video_pos: Option<Text>,
    #[serde(default, skip_serializing_if = "empty")]
    pub video_url: Option<Text>,
    #[serde(default, skip_serializing_if = "empty")]
    pub stream_url: Option<Text>,
    #[serde(default, skip_serializing_if = "empty")]
    pub rescue_url: Option<Text>,
    #[serde(default, skip_serializing_if = "empty")]
    pub dev_type: Option<Text>,
    #[serde(default, skip_serializing_if = "empty")]
    pub live_state: Option<Text>,
}

/// 7.8 `put_ie_trap_fault`.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct TrapFault {
    pub unique_id: Text,
    pub data_source: Text,
    pub serial_num: Text,
    pub main_company_name: Text,
    pub use_company_name: Text,
    pub is_examine: Text,
    pub primary_rescue_company: Text,
    #[serde(default)]
    pub secondary_rescue_company: Text,
    pub device_location: Text,
    pub fault_start_time: Text,
    pub handle_result: Text,
    pub trap_people: Text,
    pub scene_describe: Text,
    pub fault_cause: Text,
    pub area_num: Text,
    pub alarm_accept_time: Text,
    pub task_open_time: Text,
    pub task_accept_time: Text,
    pub arrive_time: Text,
    pub rescue_time: Text,
    pub rescue_level: Text,
}
