//! Seed 000 wire types, private to the Huzhou module. Field names and order are the
//! seed's; every value is a string (the seed's examples quote numbers). Optional fields
//! (the seed's 是否必填 N) are left out when empty.

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

/// `{"req_context", "req_info"}` of every push.
#[derive(Debug, Serialize)]
pub(super) struct Body<T: Serialize> {
    pub req_context: ReqContext,
    pub req_info: T,
}

#[derive(Debug, Serialize)]
pub(super) struct ReqContext {
    pub version: &'static str,
    pub timestamp: String,
    pub signature: String,
}

fn empty(s: &Option<String>) -> bool {
    s.as_deref().is_none_or(str::is_empty)
}

/// 4.1 `lift_alarm`.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct LiftAlarm {
    pub unique_id: String,
    #[serde(default, skip_serializing_if = "empty")]
    pub device_id: Option<String>,
    pub internal_id: String,
    pub lift_type: String,
    pub service_mode: String,
    pub car_status: String,
    pub car_direction: String,
    pub door_zone: String,
    pub car_position: String,
    pub door_status: String,
    pub passenger_status: String,
    #[serde(default, skip_serializing_if = "empty")]
    pub total_running_time: Option<String>,
    #[serde(default, skip_serializing_if = "empty")]
    pub present_counter_value: Option<String>,
    pub message_code: String,
    #[serde(default)]
    pub message_body: String,
}

/// 4.2 `lift_maintain`.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct LiftMaintain {
    pub unique_id: String,
    #[serde(default, skip_serializing_if = "empty")]
    pub device_id: Option<String>,
    pub internal_id: String,
    pub lift_type: String,
    pub maintain_type: String,
    pub fault_type: String,
    pub fault_info: String,
    pub fault_cause: String,
    pub deal_result: String,
    pub deal_time: String,
    pub deal_engineer: String,
    pub contact_name: String,
    pub contact_phone: String,
    pub use_company: String,
    #[serde(default, skip_serializing_if = "empty")]
    pub use_city: Option<String>,
    #[serde(default, skip_serializing_if = "empty")]
    pub use_street: Option<String>,
    pub report_no: String,
    pub report_time: String,
    pub arrive_time: String,
    pub finish_time: String,
    pub response_time: String,
    #[serde(default, skip_serializing_if = "empty")]
    pub passengers_info: Option<String>,
}

/// 4.3 `lift_notify`.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct LiftNotify {
    pub unique_id: String,
    #[serde(default, skip_serializing_if = "empty")]
    pub device_id: Option<String>,
    pub lift_type: String,
    pub use_type: String,
    pub is_current_count: String,
    pub use_count: String,
    pub use_starttime: String,
    pub use_endtime: String,
    #[serde(default)]
    pub comments: String,
}

/// 7.5 `put_ie_elev_things`.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ElevThings {
    pub rt_data: Vec<ThingsItem>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ThingsItem {
    pub unique_id: String,
    pub serial_num: String,
    pub recv_time: String,
    pub run_trend: String,
    pub elev_speed: String,
    pub open_close_count: String,
    pub run_count: String,
    pub curr_floor: String,
    pub passenger_state: String,
    pub door_state: String,
}

/// 7.7 `put_ie_elev_paras`: an empty field is not updated at the data center, so none is sent.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ElevParas {
    pub rt_paras: Vec<ParasItem>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ParasItem {
    pub unique_id: String,
    #[serde(default, skip_serializing_if = "empty")]
    pub elev_provider_id: Option<String>,
    #[serde(default, skip_serializing_if = "empty")]
    pub elev_name: Option<String>,
    #[serde(default, skip_serializing_if = "empty")]
    pub elev_loc: Option<String>,
    #[serde(default, skip_serializing_if = "empty")]
    pub elev_floors: Option<String>,
    #[serde(default, skip_serializing_if = "empty")]
    pub elev_lat: Option<String>,
    #[serde(default, skip_serializing_if = "empty")]
    pub elev_lng: Option<String>,
    #[serde(default, skip_serializing_if = "empty")]
    pub video_pos: Option<String>,
    #[serde(default, skip_serializing_if = "empty")]
    pub video_url: Option<String>,
    #[serde(default, skip_serializing_if = "empty")]
    pub stream_url: Option<String>,
    #[serde(default, skip_serializing_if = "empty")]
    pub rescue_url: Option<String>,
    #[serde(default, skip_serializing_if = "empty")]
    pub dev_type: Option<String>,
    #[serde(default, skip_serializing_if = "empty")]
    pub live_state: Option<String>,
}

/// 7.8 `put_ie_trap_fault`.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct TrapFault {
    pub unique_id: String,
    pub data_source: String,
    pub serial_num: String,
    pub main_company_name: String,
    pub use_company_name: String,
    pub is_examine: String,
    pub primary_rescue_company: String,
    #[serde(default)]
    pub secondary_rescue_company: String,
    pub device_location: String,
    pub fault_start_time: String,
    pub handle_result: String,
    pub trap_people: String,
    pub scene_describe: String,
    pub fault_cause: String,
    pub area_num: String,
    pub alarm_accept_time: String,
    pub task_open_time: String,
    pub task_accept_time: String,
    pub arrive_time: String,
    pub rescue_time: String,
    pub rescue_level: String,
}
