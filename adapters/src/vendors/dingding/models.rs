//! Lock passwords, device operations and the commands sent to Dingding (seed 002,
//! sections 3.2, 3.3, 6.4-6.15, 11, 13).

use chrono::{DateTime, Utc};
use domain::ids::{DeviceId, IntegrationId, TenantId};
use domain::string_enum;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use domain::ids::{LockPasswordId, OperationId};

string_enum!(
    /// Where a password comes from (3.3 password id rules).
    PasswordKind, "kind" {
        /// 1001-1050: sent by the platform (`add_password`).
        Platform = "PLATFORM",
        /// 999: the lock's administrator password.
        Admin = "ADMIN",
        /// 0-99: added on the lock's keypad.
        Local = "LOCAL",
        /// 3000-3048: an activation code (`add_password_without_center`).
        ActivationCode = "ACTIVATION_CODE",
    }
);

string_enum!(
    /// `pwd_state` of `fetch_passwords` (6.4).
    PwdState, "pwdState" {
        /// 1 初始状态.
        Initial = "INITIAL",
        /// 2 已生效: the only state in which the password opens the lock.
        Effective = "EFFECTIVE",
        /// 3 将生效: valid from a future time.
        Upcoming = "UPCOMING",
        /// 4 已过期.
        Expired = "EXPIRED",
        /// 5 已冻结.
        Frozen = "FROZEN",
    }
);

impl PwdState {
    /// From Dingding's code.
    pub fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            1 => Self::Initial,
            2 => Self::Effective,
            3 => Self::Upcoming,
            4 => Self::Expired,
            5 => Self::Frozen,
            _ => return None,
        })
    }
}

string_enum!(
    /// A password operation (`operation` of 6.4; one per 9.2 service).
    PasswordOperation, "operation" {
        Add = "ADD",
        Delete = "DELETE",
        Update = "UPDATE",
        Freeze = "FREEZE",
        Unfreeze = "UNFREEZE",
    }
);

string_enum!(
    /// Where an operation is (`operation_stage`: 1 in progress, 2 failed, 3 succeeded).
    OperationStage, "stage" {
        /// Sent (or about to be), waiting for the device's answer.
        Pending = "PENDING",
        Failed = "FAILED",
        Succeeded = "SUCCEEDED",
    }
);

/// A password of a lock and its current operation.
#[derive(Debug, Clone, PartialEq)]
pub struct LockPassword {
    pub id: LockPasswordId,
    pub tenant_id: TenantId,
    pub integration_id: IntegrationId,
    pub device_id: DeviceId,
    /// The password id at the lock (3.3), once Dingding has given one.
    pub vendor_id: Option<i64>,
    pub kind: PasswordKind,
    pub name: String,
    /// Who it was sent to (`send_to`, e.g. the tenant's phone).
    pub phone: Option<String>,
    pub begins_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub pwd_state: Option<PwdState>,
    pub operation: Option<PasswordOperation>,
    pub stage: Option<OperationStage>,
    /// Why the last operation failed (3.2), e.g. `5104 password too similar ...`.
    pub error: Option<String>,
    /// The plaintext sealed with the app's secret box; never shown.
    pub sealed_secret: Option<String>,
    pub deleted: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

string_enum!(
    /// What `sendMeterCommand` (and `rechargeMeter`) can ask of a Dingding meter (11.x, 15.3).
    MeterCommand, "command" {
        /// `elemeter_switch_on` 合闸.
        SwitchOn = "SWITCH_ON",
        /// `elemeter_switch_off` 跳闸.
        SwitchOff = "SWITCH_OFF",
        /// `elemeter_read`, or `read_watermeter` for a water meter.
        Read = "READ",
        /// `elemeter_charge` with a `trade_num`.
        Recharge = "RECHARGE",
        /// `elemeter_update_overdraft` (`params.overdraft` or `amount`).
        SetOverdraft = "SET_OVERDRAFT",
        /// `elemeter_update_max_capacity` (`params.capacity` or `amount`).
        SetMaxCapacity = "SET_MAX_CAPACITY",
        /// `elemeter_reset_by_collector` 电表清零.
        Reset = "RESET",
        /// `elemeter_charge_reset` 充值清零.
        ChargeReset = "CHARGE_RESET",
        /// `elemeter_syn_data`.
        SyncData = "SYNC_DATA",
        /// `elemeter_set_eleprice` (`params.roomPrice`, `params.clientPrice`).
        SetPrice = "SET_PRICE",
        /// `elemeter_set_eleprice_by_home` (`params.price`).
        SetHomePrice = "SET_HOME_PRICE",
        /// `elemeter_set_eleprice_way` (`params.way`: HOME, UNIFIED or ROOM).
        SetPriceWay = "SET_PRICE_WAY",
        /// `set_room_pay_type` (`params.payType`: PREPAID or POSTPAID, `params.overdraft`).
        SetPayType = "SET_PAY_TYPE",
        /// `elemeter_force_open` (`params.enabled`: true or false).
        ForceOpen = "FORCE_OPEN",
        /// `refresh_devices_lqi`.
        RefreshSignal = "REFRESH_SIGNAL",
    }
);

impl MeterCommand {
    /// The `operation_type` of 13.2 results that answers this command.
    pub const fn operation_type(self) -> Option<i64> {
        match self {
            Self::Recharge => Some(1),
            Self::SetOverdraft => Some(2),
            Self::Reset => Some(3),
            Self::SetMaxCapacity => Some(4),
            Self::Read => Some(5),
            Self::SwitchOff => Some(6),
            Self::SwitchOn => Some(7),
            _ => None,
        }
    }

    /// Whether the meter answers with a service callback (13.x); the others are done
    /// when Dingding accepts them.
    pub const fn has_service_result(self) -> bool {
        self.operation_type().is_some()
    }
}

/// A state-changing operation on a device.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceOperation {
    pub id: OperationId,
    pub tenant_id: TenantId,
    pub integration_id: IntegrationId,
    pub device_id: DeviceId,
    pub command: MeterCommand,
    pub params: Value,
    /// `serviceid` Dingding answered, which its 13.x result carries.
    pub service_id: Option<String>,
    /// The payer's trade number of a recharge (`trade_num`).
    pub trade_no: Option<String>,
    pub stage: OperationStage,
    pub error: Option<String>,
    /// What the result reported (amounts, consumption ...).
    pub result: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The meaning of a 3.2 password error code (`description` of `fetch_passwords`).
pub fn password_error_text(code: i64) -> String {
    let text = match code {
        5101 => "服务器超时，未得到来自设备的服务结果数据 (timed out waiting for the device)",
        5102 => "设备操作成功，但数据库执行出错 (done on the device, but Dingding's database failed)",
        5103 => "门锁在执行对应服务时出现错误 (the lock failed the operation)",
        5104 => "密码内容相似 (4 or more consecutive digits equal to another password)",
        5105 => "锁内已经存在一个该序号的密码 (a password with this id exists on the lock)",
        5106 => "密码无效，permission 内容无效 (invalid validity window)",
        5107 => "密码池满，无法添加新密码 (the lock's password slots are full)",
        5108 => "门锁本地无此密码记录 (the lock has no such password)",
        5199 => "门锁本地被重置 (the lock was reset locally)",
        _ => "unknown error",
    };
    format!("{code} {text}")
}

/// The message of a 3.1 API error code.
pub fn api_error_text(code: i64) -> &'static str {
    match code {
        101 => "token invalid",
        102 => "token expired",
        11000 => "duplicate object",
        14001 => "invalid parameters",
        14003 => "database error",
        15000 => "internal error",
        15006 => "record not found",
        15007 => "method not implemented",
        15008 => "the room already has a bound lock",
        15009 => "the home already has a bound gateway",
        15010 => "device record exists",
        15011 => "device bound by someone else",
        15012 => "room not found",
        15013 => "the admin password cannot be deleted or frozen",
        15014 => "permission denied",
        _ => "vendor error",
    }
}

/// A password as the lock's list (`fetch_passwords`) reports it, for the sync.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncedPassword {
    pub vendor_id: i64,
    pub is_default: bool,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub begins_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub pwd_state: Option<PwdState>,
    pub operation: Option<PasswordOperation>,
    pub stage: Option<OperationStage>,
    pub description: Option<String>,
}

/// A device as the sync sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncedDevice {
    pub uuid: String,
    pub kind: domain::devices::DeviceKind,
    pub name: String,
    pub room_external_id: Option<String>,
    pub online: Option<bool>,
    pub battery: Option<i32>,
    pub signal: Option<i32>,
    /// sn, model, versions, center uuid ...
    pub attributes: Value,
    /// Locks only.
    pub passwords: Vec<SyncedPassword>,
}

/// A home with its rooms and devices, as the sync sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncedHome {
    pub external_id: String,
    pub name: String,
    pub address: Option<String>,
    pub attributes: Value,
    pub rooms: Vec<(String, String)>,
    pub devices: Vec<SyncedDevice>,
    /// Its work orders (10.5), installations and repairs.
    pub tickets: Vec<SyncedTicket>,
}

/// A work order as Dingding reports it (10.4, 10.5).
#[derive(Debug, Clone, PartialEq)]
pub struct SyncedTicket {
    pub ticket_id: String,
    /// 1 booked installation, 2 repair.
    pub service_type: i64,
    /// `ticket_state` 1-5.
    pub state: i64,
    /// The ticket's fields as `saveTicket` takes them (service_target, room_ids, subscribe ...).
    pub fields: Value,
}

/// Which plaintext `revealLockPassword` reads (6.5, 6.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reveal {
    Admin,
    Dynamic,
}

/// A plaintext password read from Dingding.
#[derive(Clone, PartialEq)]
pub struct Revealed {
    pub password: String,
    pub expires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for Revealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revealed").field("password", &"***").field("expires_at", &self.expires_at).finish()
    }
}

/// A read-only question to Dingding; the answer is its result object as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "query", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Query {
    /// `get_lock_events` and `count_lock_events` (6.12, 6.13).
    LockEvents { uuid: String, offset: i64, count: i64, from: Option<i64>, to: Option<i64> },
    /// `search_device_op_log` and `count_device_op_log` (7.3, 7.4).
    OperationLog { uuid: String, op_id: Option<String>, offset: i64, count: i64, from: Option<i64>, to: Option<i64> },
    /// `device_fetch_exceptions` and `device_count_exceptions` (17.2, 17.3).
    Exceptions { uuid: String, offset: i64, count: i64, from: Option<i64>, to: Option<i64> },
    /// `elemeter_charge_query` (11.19).
    ChargeStatus { trade_no: String },
    /// `elemeter_fetch_charge_history` and its count (11.8, 11.9).
    ChargeHistory { uuid: String, offset: i64, count: i64, from: Option<i64>, to: Option<i64> },
    /// `elemeter_fetch_power_history` and its count (11.10, 11.11).
    PowerHistory { uuid: String, offset: i64, count: i64, from: Option<i64>, to: Option<i64> },
    /// `elemeter_fetch_power_consumption` (11.14).
    PowerConsumption { uuid: String, from: Option<i64>, to: Option<i64> },
    /// `elemeter_get_price_and_way` (11.18).
    PriceAndWay { uuid: String },
    /// `get_elemeter_info` (11.1).
    MeterInfo { uuid: String },
    /// `get_device_info` (6.17).
    DeviceInfo { uuid: String },
    /// `get_device_uuid` (6.16).
    DeviceUuid { sn: String },
    /// `get_meter_record` and `count_meter_record` (15.5, 15.6).
    WaterRecords { uuid: String, manufactory: String, offset: i64, count: i64, from: Option<i64>, to: Option<i64> },
    /// `read_watermeter_status` (15.4).
    WaterReadStatus { uuid: String, manufactory: String },
    /// `get_ticket_by_id` (10.4).
    Ticket { ticket_id: String },
    /// `get_ticket_by_home` (10.5).
    HomeTickets { home_id: String, service_type: i64 },
    /// `count_home_info` (5.12): how many homes match (each filter fuzzy, all optional).
    CountHomes {
        home_name: Option<String>,
        city: Option<String>,
        zone: Option<String>,
        block: Option<String>,
        location: Option<String>,
    },
    /// `find_home_device` (5.4): the devices of one home.
    HomeDevices { home_id: String },
    /// `get_home_info` (5.10): a home with its rooms and devices, by home or by a device's
    /// uuid (a water meter's with its `manufactory`); neither: all homes.
    HomeInfo { home_id: Option<String>, uuid: Option<String>, manufactory: Option<String> },
    /// `get_center_info_arr` (6.2): the gateways of a home (or of the account).
    Gateways { home_id: Option<String> },
    /// `get_elecollector_info_arr` (11.13): the collectors of a home, or one by uuid.
    Collectors { home_id: Option<String>, uuid: Option<String> },
    /// `app_token` (14.3, v2).
    AppToken { phone: String },
}

impl Serialize for MeterCommand {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MeterCommand {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}
