//! What a Dingding callback means (seed 002 sections 8, 9, 12, 13, 16), after the hook has
//! checked its sign and stored it raw.
// Parsers of tenant and vendor input (issue 17): no indexing that can panic.
#![cfg_attr(not(test), warn(clippy::indexing_slicing))]

use super::PasswordOperation;
use chrono::{DateTime, Utc};
use domain::devices::DeviceKind;

/// One callback, in domain terms.
#[derive(Debug, Clone, PartialEq)]
pub enum Callback {
    /// An event (8.x, 12.x, 16.x) about device `uuid`.
    Event { uuid: Option<String>, home_id: Option<String>, room_id: Option<String>, at: DateTime<Utc>, fact: Fact },
    /// An operation result (9.x, 13.x).
    Service { service_id: String, uuid: Option<String>, result: ServiceResult },
    /// A callback this version does not know: stored only.
    Unknown { name: String },
}

/// The fact an event reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    /// `batteryAlarm`: battery under 10 %.
    BatteryLow { level: Option<i32> },
    /// `clearBatteryAlarm`.
    BatteryRecovered { level: Option<i32> },
    /// `batteryAsync`: a battery reading.
    Battery { level: Option<i32> },
    /// `brokenAlarm`: the lock was forced.
    Tampered,
    /// `wrongPwdAlarm`: three wrong passwords in a row.
    WrongPassword,
    /// `pwdSync`: the admin password (ids only; the plaintext is dropped).
    AdminPasswordSynced { ids: Vec<i64> },
    /// `pwdAddLocal`, `pwdUpdateLocal`.
    LocalPasswordSet { id: i64, updated: bool },
    /// `pwdDelLocal`.
    LocalPasswordDeleted { id: i64 },
    /// `lockerOpenAlarm`.
    DoorOpened { source: Option<i64>, source_id: Option<i64>, source_name: Option<String> },
    /// `centerOfflineAlarm` (true) / `clearCenterOfflineAlarm` (false).
    GatewayOffline(bool),
    /// `lockOfflineAlarm` / `clearLockOfflineAlarm` (locks, collectors, zigbee meters).
    DeviceOffline(bool),
    /// `waterGatewayOfflineAlarm` / `waterGatewayOnlineAlarm`.
    WaterGatewayOffline(bool),
    /// `installerSubmit`: the installer submitted the home.
    InstallerSubmitted,
    /// `deviceInstall`.
    Installed { kind: Option<DeviceKind>, gateway_uuid: Option<String>, amount: Option<f64> },
    /// `deviceUninstall`.
    Uninstalled { kind: Option<DeviceKind> },
    /// `deviceReplace`: `uuid` replaces `old_uuid`.
    Replaced { old_uuid: String, kind: Option<DeviceKind> },
    /// `elemeterPowerAsync`: the meter's consumption reading.
    MeterPower { amount: f64, at: Option<DateTime<Utc>> },
    /// `elemeterPowerHisAsync`: past readings.
    MeterPowerHistory { points: Vec<(DateTime<Utc>, f64)> },
    /// `elemeterHistory`: per meter, over-capacity (1) or over-amount (2) events.
    MeterHistory { entries: Vec<MeterHistoryEntry> },
    /// `elemeterOvercomeAmount`: the meter ran out.
    MeterOverAmount { amount: Option<f64> },
    /// `elemeterOvercomeCapacity`.
    MeterOverCapacity { capacity: Option<f64> },
    /// `elemeterLocalClose`: switched on at the meter.
    MeterLocalClose,
    /// `elemeterTransError`.
    MeterTransmissionError,
    /// `watermeterAmountAsync`.
    WaterReading { amount: f64 },
    /// An event name this version does not know.
    Other { name: String },
}

/// One entry of `elemeterHistory`.
#[derive(Debug, Clone, PartialEq)]
pub struct MeterHistoryEntry {
    pub uuid: String,
    /// 1 over capacity, 2 over amount.
    pub event_id: i64,
    pub amount: Option<f64>,
    pub capacity: Option<f64>,
    pub at: Option<DateTime<Utc>>,
}

/// An operation's result.
#[derive(Debug, Clone, PartialEq)]
pub enum ServiceResult {
    /// `Password_*_Service`; `code` 1000 = success.
    Password { operation: PasswordOperation, password_id: Option<i64>, code: Option<i64> },
    /// `Elemeter_Control_Service` / `Elemeter_Passthrough_Service`; `code` 1000 = success.
    Meter { operation_type: Option<i64>, code: Option<i64>, values: serde_json::Value },
}

/// The result code that means success in 9.x and 13.x results.
pub const SERVICE_OK: i64 = 1000;

impl Callback {
    /// Whether handling it only reads (its device) and answers facts to write: such
    /// callbacks of a lane are written in batches; the others write as they are handled,
    /// one at a time, in order.
    pub fn only_facts(&self) -> bool {
        match self {
            Self::Event { fact, .. } => matches!(
                fact,
                Fact::BatteryLow { .. }
                    | Fact::BatteryRecovered { .. }
                    | Fact::Battery { .. }
                    | Fact::Tampered
                    | Fact::WrongPassword
                    | Fact::DoorOpened { .. }
                    | Fact::GatewayOffline(_)
                    | Fact::DeviceOffline(_)
                    | Fact::WaterGatewayOffline(_)
                    | Fact::MeterPower { .. }
                    | Fact::MeterPowerHistory { .. }
                    | Fact::MeterHistory { .. }
                    | Fact::MeterOverAmount { .. }
                    | Fact::MeterOverCapacity { .. }
                    | Fact::MeterLocalClose
                    | Fact::MeterTransmissionError
                    | Fact::WaterReading { .. }
            ),
            Self::Service { .. } | Self::Unknown { .. } => false,
        }
    }

    /// The uuids of the devices handling it reads (its own, and a meter history's meters).
    pub fn device_uuids(&self) -> Vec<&str> {
        let Self::Event { uuid, fact, .. } = self else { return Vec::new() };
        let mut out: Vec<&str> = uuid.as_deref().filter(|u| !u.is_empty()).into_iter().collect();
        if let Fact::MeterHistory { entries } = fact {
            out.extend(entries.iter().map(|e| e.uuid.as_str()));
        }
        out
    }
}

/// How the hook should record a processed callback.
#[derive(Debug, Clone)]
pub enum Handled {
    Processed,
    /// Stored only; the reason is kept on the inbound event.
    Ignored(String),
    /// Vendor-neutral facts, applied with the event's end in one unit of work.
    Facts(Vec<domain::ingest::Fact>),
}
