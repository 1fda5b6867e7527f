//! The payloads of `dingding.*` deliveries: what to change at Dingding, in domain terms.
//! The sender maps each to its wire call (`adapters::vendors::dingding::map`). Plaintext
//! passwords never appear here: they travel sealed with the app's secret box and are
//! encrypted for Dingding at send time (18.2).

use super::{LockPasswordId, MeterCommand, OperationId};
use domain::deliveries::DeliveryKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where a lock or meter is addressed: always by uuid (3.4: devices bound in Dingding's own
/// console are operated by uuid, never by home and room).
pub type Uuid = String;

/// One state-changing call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    /// `add_home` (5.1).
    AddHome {
        home_id: String,
        name: String,
        home_type: Option<i64>,
        country: String,
        city: String,
        zone: String,
        block: String,
        location: String,
        description: Option<String>,
    },
    /// `update_home` (5.2): `sp_state` 1 not installed, 2 manageable.
    UpdateHome { home_id: String, name: Option<String>, location: Option<String>, sp_state: Option<i64> },
    /// `del_home` (5.3).
    DelHome { home_id: String },
    /// `add_room` (5.6).
    AddRoom { home_id: String, room_id: String, name: String, description: String },
    /// `add_rooms` (5.7): `(room_id, name)`.
    AddRooms { home_id: String, rooms: Vec<(String, String)> },
    /// `update_room` (5.8).
    UpdateRoom { home_id: String, room_id: String, name: String, description: String },
    /// `del_room` (5.9).
    DelRoom { home_id: Option<String>, room_id: String },
    /// `add_password` (6.7).
    AddPassword {
        password: LockPasswordId,
        uuid: Uuid,
        sealed: String,
        name: String,
        phone: Option<String>,
        is_default: bool,
        begin: Option<i64>,
        end: Option<i64>,
    },
    /// `update_password` (6.8).
    UpdatePassword {
        password: LockPasswordId,
        uuid: Uuid,
        password_id: i64,
        sealed: String,
        name: String,
        phone: Option<String>,
        begin: Option<i64>,
        end: Option<i64>,
    },
    /// `delete_password` (6.9).
    DeletePassword { password: LockPasswordId, uuid: Uuid, password_id: i64 },
    /// `frozen_password` (6.10).
    FreezePassword { password: LockPasswordId, uuid: Uuid, password_id: i64 },
    /// `unfrozen_password` (6.11).
    UnfreezePassword { password: LockPasswordId, uuid: Uuid, password_id: i64 },
    /// `add_password_without_center` (6.14): `cmd` 1 tenant, 2 staff, 3 admin.
    AddActivationCode { password: LockPasswordId, uuid: Uuid, cmd: i64, name: String, phone: String, end: Option<i64> },
    /// `update_password_without_center` (6.15).
    UpdateActivationCode {
        password: LockPasswordId,
        uuid: Uuid,
        password_id: i64,
        name: String,
        phone: String,
        end: Option<i64>,
    },
    /// One of the `elemeter_*` / water meter commands (11.x, 15.3).
    Meter { operation: OperationId, uuid: Uuid, command: MeterCommand, params: Value },
    /// `add_ticket` (10.1): `service_target` 1 gateway, 2 lock, 3 meter; `service_type`
    /// 1 installation, 2 repair.
    AddTicket {
        ticket: domain::ids::TicketId,
        home_id: String,
        service_target: i64,
        service_type: i64,
        room_ids: Vec<String>,
        subscribe: Value,
        description: Option<String>,
    },
    /// `update_ticket` (10.2).
    UpdateTicket { ticket_id: String, room_ids: Vec<String>, subscribe: Option<Value>, description: Option<String> },
    /// `update_ticket_state` (10.6).
    UpdateTicketState { ticket_id: String, state: i64 },
    /// `delete_ticket` (10.3).
    DeleteTicket { ticket_id: String },
    /// `auth_room` (14.1, v2).
    AuthRoom {
        phone: String,
        home_id: String,
        room_ids: Vec<String>,
        auth_type: i64,
        begin: Option<i64>,
        end: Option<i64>,
    },
    /// `unauth_room` (14.2, v2).
    UnauthRoom { phone: String, home_id: String, room_ids: Vec<String> },
}

impl Command {
    /// The Dingding interface it calls, which is also the delivery kind's suffix.
    pub fn api(&self) -> &'static str {
        match self {
            Self::AddHome { .. } => "add_home",
            Self::UpdateHome { .. } => "update_home",
            Self::DelHome { .. } => "del_home",
            Self::AddRoom { .. } => "add_room",
            Self::AddRooms { .. } => "add_rooms",
            Self::UpdateRoom { .. } => "update_room",
            Self::DelRoom { .. } => "del_room",
            Self::AddPassword { .. } => "add_password",
            Self::UpdatePassword { .. } => "update_password",
            Self::DeletePassword { .. } => "delete_password",
            Self::FreezePassword { .. } => "frozen_password",
            Self::UnfreezePassword { .. } => "unfrozen_password",
            Self::AddActivationCode { .. } => "add_password_without_center",
            Self::UpdateActivationCode { .. } => "update_password_without_center",
            Self::Meter { command, params, .. } => meter_api(*command, params),
            Self::AddTicket { .. } => "add_ticket",
            Self::UpdateTicket { .. } => "update_ticket",
            Self::UpdateTicketState { .. } => "update_ticket_state",
            Self::DeleteTicket { .. } => "delete_ticket",
            Self::AuthRoom { .. } => "auth_room",
            Self::UnauthRoom { .. } => "unauth_room",
        }
    }

    /// The delivery kind, e.g. `dingding.add_password`.
    pub fn kind(&self) -> DeliveryKind {
        DeliveryKind::of(super::PREFIX, self.api())
    }
}

/// The interface of a meter command (`params.water` picks the water meter read).
pub fn meter_api(command: MeterCommand, params: &Value) -> &'static str {
    match command {
        MeterCommand::SwitchOn => "elemeter_switch_on",
        MeterCommand::SwitchOff => "elemeter_switch_off",
        MeterCommand::Read if params.get("manufactory").is_some() => "read_watermeter",
        MeterCommand::Read => "elemeter_read",
        MeterCommand::Recharge => "elemeter_charge",
        MeterCommand::SetOverdraft => "elemeter_update_overdraft",
        MeterCommand::SetMaxCapacity => "elemeter_update_max_capacity",
        MeterCommand::Reset => "elemeter_reset_by_collector",
        MeterCommand::ChargeReset => "elemeter_charge_reset",
        MeterCommand::SyncData => "elemeter_syn_data",
        MeterCommand::SetPrice => "elemeter_set_eleprice",
        MeterCommand::SetHomePrice => "elemeter_set_eleprice_by_home",
        MeterCommand::SetPriceWay => "elemeter_set_eleprice_way",
        MeterCommand::SetPayType => "set_room_pay_type",
        MeterCommand::ForceOpen => "elemeter_force_open",
        MeterCommand::RefreshSignal => "refresh_devices_lqi",
    }
}

/// What Dingding answered to a delivered command, for the domain to record.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Accepted {
    /// The password id at the lock (`add_password`, activation codes).
    pub password_id: Option<i64>,
    /// The `serviceid` of a meter command.
    pub service_id: Option<String>,
    /// An activation code's code (sealed before it is stored).
    pub code: Option<String>,
    /// A new work order's id, when Dingding answers one.
    pub ticket_id: Option<String>,
}
