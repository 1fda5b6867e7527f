//! Dingding wire structs (seed 002, sections 4-17), private to this module. Field names
//! are those of the document; numbers that arrive as strings (and strings that arrive as
//! numbers, e.g. `serviceid`) are accepted.
// Parsers of tenant and vendor input (issue 17): no indexing that can panic.
#![cfg_attr(not(test), warn(clippy::indexing_slicing))]

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// HTTP method and API version of an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// Every interface of `PROTOCOLS.md` section 3a (and `elemeter_charge`, named in the
/// seed's change log for `trade_num`), with its method and path version.
pub const INTERFACES: &[(&str, Method, u8)] = {
    use Method::{Get as G, Post as P};
    &[
        ("access_token", P, 1),
        // 5.x homes and rooms
        ("add_home", P, 1),
        ("update_home", P, 1),
        ("del_home", P, 1),
        ("find_home_device", G, 1),
        ("find_home_devices", P, 1),
        ("add_room", P, 1),
        ("add_rooms", P, 1),
        ("update_room", P, 1),
        ("del_room", P, 1),
        ("get_home_info", G, 1),
        ("search_home_info", G, 1),
        ("count_home_info", G, 1),
        // 6.x locks and gateways
        ("get_center_info", G, 1),
        ("get_center_info_arr", G, 1),
        ("get_lock_info", G, 1),
        ("fetch_passwords", G, 1),
        ("get_default_password_plaintext", G, 1),
        ("get_dynamic_password_plaintext", G, 1),
        ("add_password", P, 1),
        ("update_password", P, 1),
        ("delete_password", P, 1),
        ("frozen_password", P, 1),
        ("unfrozen_password", P, 1),
        ("get_lock_events", G, 1),
        ("count_lock_events", G, 1),
        ("add_password_without_center", P, 1),
        ("update_password_without_center", P, 1),
        ("get_device_uuid", P, 1),
        ("get_device_info", P, 1),
        // 7.x operation log
        ("search_device_op_log", G, 1),
        ("count_device_op_log", G, 1),
        // 10.x work orders
        ("add_ticket", P, 1),
        ("update_ticket", P, 1),
        ("delete_ticket", P, 1),
        ("get_ticket_by_id", G, 1),
        ("get_ticket_by_home", G, 1),
        ("update_ticket_state", P, 1),
        // 11.x electricity meters and collectors
        ("get_elemeter_info", G, 1),
        ("elemeter_update_overdraft", P, 1),
        ("elemeter_reset_by_collector", P, 1),
        ("elemeter_update_max_capacity", P, 1),
        ("elemeter_read", P, 1),
        ("elemeter_switch_on", P, 1),
        ("elemeter_switch_off", P, 1),
        ("elemeter_count_charge_history", G, 1),
        ("elemeter_fetch_charge_history", G, 1),
        ("elemeter_count_power_history", G, 1),
        ("elemeter_fetch_power_history", G, 1),
        ("get_elecollector_info", G, 1),
        ("get_elecollector_info_arr", G, 1),
        ("elemeter_fetch_power_consumption", G, 1),
        ("elemeter_set_eleprice", P, 1),
        ("elemeter_set_eleprice_by_home", P, 1),
        ("elemeter_set_eleprice_way", P, 1),
        ("elemeter_get_price_and_way", G, 1),
        ("elemeter_charge_query", G, 1),
        ("elemeter_charge_reset", P, 1),
        ("elemeter_syn_data", P, 1),
        ("refresh_devices_lqi", P, 1),
        ("set_room_pay_type", P, 1),
        ("elemeter_force_open", P, 1),
        ("elemeter_charge", P, 1),
        // 14.x bluetooth (v2)
        ("auth_room", P, 2),
        ("unauth_room", P, 2),
        ("app_token", G, 2),
        // 15.x water meters
        ("get_water_gateway_info", G, 1),
        ("get_watermeter_info", G, 1),
        ("read_watermeter", G, 1),
        ("read_watermeter_status", G, 1),
        ("get_meter_record", G, 1),
        ("count_meter_record", P, 1),
        // 17.x exceptions
        ("device_fetch_exceptions", G, 1),
        ("device_count_exceptions", G, 1),
    ]
};

/// Method and version of `name`; unknown names are POST v1.
pub fn interface(name: &str) -> (Method, u8) {
    INTERFACES.iter().find(|(n, _, _)| *n == name).map_or((Method::Post, 1), |(_, m, v)| (*m, *v))
}

/// A number, or a string holding one.
fn lenient_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub fn de_opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(v.as_ref().and_then(|v| match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse::<i64>().ok().or_else(|| s.trim().parse::<f64>().ok().map(|f| f as i64)),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }))
}

pub fn de_opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(Option::<Value>::deserialize(d)?.as_ref().and_then(lenient_f64))
}

/// A string, or a number given where a string was documented.
pub fn de_opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        _ => None,
    })
}

/// Every answer: `ErrNo` 0 is success; the rest is the interface's result.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    #[serde(rename = "ErrNo", default, deserialize_with = "de_opt_i64")]
    pub err_no: Option<i64>,
    #[serde(rename = "ErrMsg", default, deserialize_with = "de_opt_string")]
    pub err_msg: Option<String>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// 4.2 `access_token` request.
#[derive(Serialize)]
pub struct TokenRequest<'a> {
    pub client_id: &'a str,
    pub client_secret: &'a str,
}

/// 4.2 `access_token` answer.
#[derive(Deserialize)]
pub struct TokenAnswer {
    #[serde(default)]
    pub access_token: Option<String>,
    /// Unix seconds.
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub expires_time: Option<i64>,
}

/// Addressing a device: by uuid (3.4), with home and room ids where an interface takes them.
#[derive(Serialize, Default)]
pub struct Target {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub home_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
}

/// 5.1 `add_home`.
#[derive(Serialize)]
pub struct AddHome {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub home_type: Option<i64>,
    pub country: String,
    pub city: String,
    pub zone: String,
    pub location: String,
    pub block: String,
    pub home_id: String,
    pub home_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// 5.2 `update_home`.
#[derive(Serialize)]
pub struct UpdateHome {
    pub home_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sp_state: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub home_name: Option<String>,
}

/// 5.3 `del_home`; 5.4 `find_home_device`.
#[derive(Serialize)]
pub struct HomeRef {
    pub home_id: String,
}

/// 5.5 `find_home_devices`.
#[derive(Serialize)]
pub struct HomeRefs {
    pub home_id: Vec<String>,
}

/// 5.6 `add_room`, 5.8 `update_room`.
#[derive(Serialize)]
pub struct RoomBody {
    pub home_id: String,
    pub room_id: String,
    pub room_name: String,
    pub room_description: String,
}

/// One room of 5.7 `add_rooms`.
#[derive(Serialize)]
pub struct RoomItem {
    pub room_id: String,
    pub room_name: String,
    pub room_description: String,
}

/// 5.7 `add_rooms`.
#[derive(Serialize)]
pub struct AddRooms {
    pub home_id: String,
    pub rooms: Vec<RoomItem>,
}

/// 5.9 `del_room`.
#[derive(Serialize)]
pub struct DelRoom {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub home_id: Option<String>,
    pub room_id: String,
}

/// 5.11 `search_home_info` (GET).
#[derive(Serialize)]
pub struct SearchHomes {
    pub offset: i64,
}

/// A device of 5.5 `find_home_devices` / 5.10 `devices`.
#[derive(Debug, Deserialize)]
pub struct HomeDevice {
    #[serde(default, deserialize_with = "de_opt_string")]
    pub uuid: Option<String>,
    #[serde(default, rename = "type", deserialize_with = "de_opt_string")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub sn: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub room_id: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub center_uuid: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub manufactory: Option<String>,
}

/// A room of 5.10/5.11.
#[derive(Debug, Deserialize)]
pub struct HomeRoom {
    #[serde(default, deserialize_with = "de_opt_string")]
    pub room_id: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub room_name: Option<String>,
}

/// A home of 5.11 `home_list` (and 5.10 `result`).
#[derive(Debug, Deserialize)]
pub struct HomeInfo {
    #[serde(default, deserialize_with = "de_opt_string")]
    pub home_id: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub home_name: Option<String>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub home_type: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub country: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub province: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub city: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub zone: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub block: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub location: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub description: Option<String>,
    #[serde(default)]
    pub rooms: Vec<HomeRoom>,
    #[serde(default)]
    pub devices: Vec<HomeDevice>,
}

/// 5.11 answer.
#[derive(Debug, Deserialize)]
pub struct HomeList {
    #[serde(default)]
    pub home_list: Vec<HomeInfo>,
}

/// 5.5 answer: `result` maps each home id to its devices.
#[derive(Debug, Deserialize)]
pub struct HomeDevices {
    #[serde(default)]
    pub result: std::collections::HashMap<String, Vec<HomeDevice>>,
}

/// The status fields shared by 6.1, 6.3, 11.1, 11.12, 15.1 and 15.2 answers.
#[derive(Debug, Deserialize, Default)]
pub struct DeviceInfo {
    #[serde(default, deserialize_with = "de_opt_string")]
    pub uuid: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub sn: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub mac: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub model: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub model_name: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub brand: Option<String>,
    /// 1 online, 2 offline (6.1, 6.3, 11.12).
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub onoff_line: Option<i64>,
    /// 1 online (15.1, 15.2).
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub onoff: Option<i64>,
    /// Battery percent, -1 unknown (6.3).
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub power: Option<i64>,
    /// Signal, -1 unknown.
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub lqi: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub center_uuid: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub elecollector_uuid: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub parent: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub manufactory: Option<String>,
    #[serde(default)]
    pub versions: Option<Value>,
    /// 11.1: -1 unknown, 1 switched on, 2 switched off.
    #[serde(default, deserialize_with = "de_opt_f64")]
    pub enable_state: Option<f64>,
    #[serde(default, deserialize_with = "de_opt_f64")]
    pub consume_amount: Option<f64>,
    #[serde(default, deserialize_with = "de_opt_f64")]
    pub power_total: Option<f64>,
    #[serde(default, deserialize_with = "de_opt_f64")]
    pub overdraft: Option<f64>,
    #[serde(default, deserialize_with = "de_opt_f64")]
    pub capacity: Option<f64>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub meter_type: Option<i64>,
}

/// 15.1/15.2 answers wrap the device in `info`.
#[derive(Debug, Deserialize)]
pub struct InfoWrapped {
    #[serde(default)]
    pub info: Option<DeviceInfo>,
}

/// 6.4 `permission`.
#[derive(Debug, Deserialize, Default)]
pub struct Permission {
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub begin: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub end: Option<i64>,
    /// 1 permanent, 2 time-limited.
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub status: Option<i64>,
}

/// A password of 6.4 `fetch_passwords`.
#[derive(Debug, Deserialize)]
pub struct PasswordInfo {
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub id: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub is_default: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub pwd_state: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub operation: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub operation_stage: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub send_to: Option<String>,
    #[serde(default)]
    pub permission: Option<Permission>,
}

/// 6.4 answer: `passwords` is a list, or an object keyed by id.
#[derive(Debug, Deserialize)]
pub struct Passwords {
    #[serde(default)]
    pub passwords: Value,
}

/// 6.5 / 6.6 answers.
#[derive(Deserialize)]
pub struct Plaintext {
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub invalid_time: Option<i64>,
}

/// 6.7 `add_password`, 6.8 `update_password` (only `encrypted_password` carries the
/// digits; the plaintext `password` is never sent).
#[derive(Serialize)]
pub struct PasswordBody {
    #[serde(flatten)]
    pub target: Target,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_default: Option<i64>,
    /// 6.7 spells it `phonenummer`, 6.8 `phonenumber`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phonenummer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phonenumber: Option<String>,
    pub encrypted_password: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permission_begin: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permission_end: Option<i64>,
}

/// 6.9-6.11.
#[derive(Serialize)]
pub struct PasswordRef {
    #[serde(flatten)]
    pub target: Target,
    pub password_id: i64,
}

/// 6.14 `add_password_without_center`, 6.15 `update_password_without_center`.
#[derive(Serialize)]
pub struct ActivationBody {
    #[serde(flatten)]
    pub target: Target,
    pub phonenummer: String,
    #[serde(rename = "CMD", skip_serializing_if = "Option::is_none")]
    pub cmd: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_id: Option<i64>,
    pub name: String,
    pub is_send_msg: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permission_end: Option<i64>,
}

/// Answers that carry a password id (6.7, 6.14, 6.15) or a `serviceid` (5.3, 11.x).
#[derive(Debug, Deserialize)]
pub struct CommandAnswer {
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub id: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub serviceid: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub code: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub ticket_id: Option<String>,
}

/// A work order of 10.4 `ticket_info` / 10.5 `home_ticket_list`.
#[derive(Debug, Deserialize)]
pub struct TicketInfo {
    #[serde(default, deserialize_with = "de_opt_string")]
    pub ticket_id: Option<String>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub ticket_state: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub service_type: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub service_target: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub ticket_description: Option<String>,
    #[serde(default)]
    pub relate_home: Option<Value>,
    #[serde(default)]
    pub subscribe: Option<Value>,
    #[serde(default)]
    pub confirm: Option<Value>,
    #[serde(default)]
    pub room_ids: Option<Vec<String>>,
}

/// 10.5 answer.
#[derive(Debug, Deserialize)]
pub struct HomeTickets {
    #[serde(default)]
    pub home_ticket_list: Vec<TicketInfo>,
}

/// Time-ranged, paged reads (6.12, 7.3, 11.8-11.11, 17.2).
#[derive(Serialize)]
pub struct Ranged {
    #[serde(flatten)]
    pub target: Target,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub op_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
}

/// 15.x water meter reads.
#[derive(Serialize)]
pub struct WaterRef {
    pub uuid: String,
    pub manufactory: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub begin: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<i64>,
}

/// 10.1 `add_ticket`.
#[derive(Serialize)]
pub struct AddTicket {
    pub home_id: String,
    pub service_target: i64,
    pub service_type: i64,
    pub room_ids: Vec<String>,
    pub subscribe: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket_description: Option<String>,
}

/// 10.2 `update_ticket`.
#[derive(Serialize)]
pub struct UpdateTicket {
    pub ticket_id: String,
    pub room_ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket_description: Option<String>,
}

/// 10.3, 10.4, 10.6.
#[derive(Serialize)]
pub struct TicketRef {
    pub ticket_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket_state: Option<i64>,
}

/// 14.1 `auth_room`, 14.2 `unauth_room`.
#[derive(Serialize)]
pub struct AuthRoom {
    pub phone: String,
    pub home_id: String,
    pub room_ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_type: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permission: Option<Value>,
}

/// A callback body (8.1, 9.1, 12.1, 13.1, 16.1): events carry `event`, results `service`.
#[derive(Debug, Deserialize)]
pub struct CallbackBody {
    #[serde(default, deserialize_with = "de_opt_string")]
    pub event: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub service: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub serviceid: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub uuid: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub old_uuid: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub gateway_uuid: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub home_id: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub room_id: Option<String>,
    /// Milliseconds.
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub time: Option<i64>,
    #[serde(default)]
    pub detail: Value,
    #[serde(default)]
    pub result: Value,
    #[serde(default)]
    pub histories: Value,
}

/// `detail` of battery events (8.2.1 `battery_level`, 8.2.9 `battery`).
#[derive(Debug, Deserialize, Default)]
pub struct BatteryDetail {
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub battery_level: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub battery: Option<i64>,
}

/// `{id, password}` of 8.2.4 and 8.2.5 (the plaintext is not kept).
#[derive(Debug, Deserialize)]
pub struct LocalPassword {
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub id: Option<i64>,
}

/// `detail` of 8.2.4 `pwdSync`.
#[derive(Debug, Deserialize, Default)]
pub struct PwdSyncDetail {
    #[serde(default)]
    pub passwords: Vec<LocalPassword>,
}

/// `detail` of 8.2.5.
#[derive(Debug, Deserialize, Default)]
pub struct PwdLocalDetail {
    #[serde(default)]
    pub password: Option<LocalPassword>,
}

/// `detail` of 8.2.6 `lockerOpenAlarm`.
#[derive(Debug, Deserialize, Default)]
pub struct OpenDetail {
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub source: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub sourceid: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub source_name: Option<String>,
}

/// `detail` of 8.2.11/8.2.12/16.2.x: device type, and a water meter's reading.
#[derive(Debug, Deserialize, Default)]
pub struct InstallDetail {
    #[serde(default, rename = "type", deserialize_with = "de_opt_i64")]
    pub kind: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_f64")]
    pub amount: Option<f64>,
}

/// `detail` of the meter events of 12.2 and 16.2.6.
#[derive(Debug, Deserialize, Default)]
pub struct MeterDetail {
    #[serde(default, deserialize_with = "de_opt_f64")]
    pub consume_amount: Option<f64>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub consume_amount_time: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_f64")]
    pub amount: Option<f64>,
    #[serde(default, deserialize_with = "de_opt_f64")]
    pub capacity: Option<f64>,
    #[serde(default)]
    pub powers: Vec<PowerPoint>,
}

/// One entry of 12.2.9 `powers`.
#[derive(Debug, Deserialize)]
pub struct PowerPoint {
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub time: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_f64")]
    pub amount: Option<f64>,
}

/// One entry of 12.2.2 `histories`.
#[derive(Debug, Deserialize)]
pub struct HistoryEntry {
    #[serde(default, deserialize_with = "de_opt_string")]
    pub uuid: Option<String>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub eventid: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub time: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_f64")]
    pub amount: Option<f64>,
    #[serde(default, deserialize_with = "de_opt_f64")]
    pub capacity: Option<f64>,
}

/// `result` of 9.2 and 13.2.
#[derive(Debug, Deserialize, Default)]
pub struct ServiceResultBody {
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub id: Option<i64>,
    #[serde(rename = "ErrNo", default, deserialize_with = "de_opt_i64")]
    pub err_no: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub operation_type: Option<i64>,
}

/// The envelope a callback is answered with.
#[derive(Serialize)]
pub struct CallbackAnswer<'a> {
    #[serde(rename = "ErrNo")]
    pub err_no: i64,
    #[serde(rename = "ErrMsg")]
    pub err_msg: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_strings_and_strings_as_numbers_are_accepted() {
        let b: CallbackBody = serde_json::from_str(
            r#"{"service":"Password_Add_Service","serviceid":12345,"uuid":"u1","time":"1467785486059","result":{"id":"1001","ErrNo":"1000"}}"#,
        )
        .expect("parse");
        assert_eq!(b.serviceid.as_deref(), Some("12345"));
        assert_eq!(b.time, Some(1_467_785_486_059));
        let r: ServiceResultBody = serde_json::from_value(b.result).expect("result");
        assert_eq!((r.id, r.err_no), (Some(1001), Some(1000)));
        let d: BatteryDetail = serde_json::from_str(r#"{"battery":"45"}"#).expect("battery");
        assert_eq!(d.battery, Some(45));
        let e: Envelope = serde_json::from_str(r#"{"ErrNo":"102","ErrMsg":"expired"}"#).expect("env");
        assert_eq!(e.err_no, Some(102));
    }

    #[test]
    fn every_interface_has_its_method() {
        assert_eq!(interface("get_lock_info"), (Method::Get, 1));
        assert_eq!(interface("add_password"), (Method::Post, 1));
        assert_eq!(interface("auth_room"), (Method::Post, 2));
        assert_eq!(interface("read_watermeter"), (Method::Get, 1));
        assert_eq!(INTERFACES.len(), 74);
    }

    #[test]
    fn password_body_sends_only_the_encrypted_digits() {
        let body = PasswordBody {
            target: Target { uuid: Some("u".into()), ..Target::default() },
            password_id: None,
            is_default: Some(0),
            phonenummer: None,
            phonenumber: None,
            encrypted_password: "x".into(),
            name: "n".into(),
            permission_begin: Some(1),
            permission_end: Some(2),
        };
        let v = serde_json::to_value(&body).expect("json");
        assert!(v.get("password").is_none());
        assert_eq!(v["uuid"], "u");
        assert_eq!(v["encrypted_password"], "x");
    }
}
