//! Dingding wire <-> domain: commands to request bodies, answers to `Accepted`, callbacks to
//! `Callback`, and the sync's reads to `SyncedHome`.
// Parsers of tenant and vendor input (issue 17): no indexing that can panic.
#![cfg_attr(not(test), warn(clippy::indexing_slicing))]

use super::client::CallError;
use super::sign::encrypt_password;
use super::wire::{self, *};
use super::{
    Accepted, Callback, Command, Fact, MeterCommand, MeterHistoryEntry, OperationStage, Outcomes, PasswordOperation,
    PwdState, ServiceResult, SyncedDevice, SyncedPassword,
};
use chrono::{DateTime, Utc};
use domain::devices::DeviceKind;
use serde::Serialize;
use serde_json::{Map, Value, json};

fn body<T: Serialize>(v: &T) -> Result<Value, CallError> {
    serde_json::to_value(v).map_err(|e| CallError::Malformed(e.to_string()))
}

fn by_uuid(uuid: &str) -> Target {
    Target { uuid: Some(uuid.to_owned()), ..Target::default() }
}

fn encrypted(outcomes: &Outcomes, token: &str, sealed: &str) -> Result<String, CallError> {
    let plain = outcomes.open(sealed).map_err(|_| CallError::Config("the sealed password does not open".into()))?;
    encrypt_password(token, &plain).map_err(|e| CallError::Config(e.to_string()))
}

fn text(p: &Value, k: &str) -> Option<String> {
    match p.get(k) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// A decimal parameter as a JSON number.
fn number(p: &Value, k: &str) -> Result<Value, CallError> {
    let s = text(p, k).ok_or_else(|| CallError::Config(format!("params.{k} is required")))?;
    let f: f64 = s.parse().map_err(|_| CallError::Config(format!("params.{k} is not a number")))?;
    Ok(json!(f))
}

/// The request body of a meter command (11.x, 15.3, and `elemeter_charge`).
fn meter_body(uuid: &str, command: MeterCommand, p: &Value) -> Result<Value, CallError> {
    let mut m = Map::new();
    m.insert("uuid".into(), json!(uuid));
    match command {
        MeterCommand::Read if p.get("manufactory").is_some() => {
            m.insert("manufactory".into(), json!(text(p, "manufactory")));
        }
        MeterCommand::Recharge => {
            m.insert("amount".into(), number(p, "amount")?);
            m.insert("trade_num".into(), json!(text(p, "tradeNo")));
        }
        MeterCommand::SetOverdraft => {
            m.insert("overdraft".into(), number(p, "overdraft")?);
        }
        MeterCommand::SetMaxCapacity => {
            m.insert("capacity".into(), number(p, "capacity")?);
        }
        MeterCommand::SetPrice => {
            if p.get("roomPrice").is_some() {
                m.insert("room_eleprice".into(), number(p, "roomPrice")?);
            }
            if p.get("clientPrice").is_some() {
                m.insert("client_eleprice".into(), number(p, "clientPrice")?);
            }
        }
        MeterCommand::SetHomePrice => {
            m.remove("uuid");
            m.insert("home_id".into(), json!(text(p, "homeId")));
            m.insert("eleprice".into(), number(p, "price")?);
        }
        MeterCommand::SetPriceWay => {
            let way = text(p, "way").and_then(|w| domain::tariffs::PriceWay::parse(&w).ok());
            let way = way.ok_or_else(|| CallError::Config("params.way".into()))?;
            m.insert("eleprice_way".into(), json!(price_way_code(way)));
        }
        MeterCommand::SetPayType => {
            let t = if text(p, "payType").as_deref() == Some("POSTPAID") { 2 } else { 1 };
            m.insert("pay_type".into(), json!(t));
            if p.get("overdraft").is_some() {
                m.insert("overdraft".into(), number(p, "overdraft")?);
            }
        }
        MeterCommand::ForceOpen => {
            let on = p.get("enabled").and_then(Value::as_bool).unwrap_or(false);
            m.insert("force_open".into(), json!(if on { 1 } else { 2 }));
        }
        MeterCommand::RefreshSignal => {
            m.remove("uuid");
            m.insert("uuids".into(), json!(uuid));
        }
        MeterCommand::SwitchOn
        | MeterCommand::SwitchOff
        | MeterCommand::Read
        | MeterCommand::Reset
        | MeterCommand::ChargeReset
        | MeterCommand::SyncData => {}
    }
    Ok(Value::Object(m))
}

/// The interface and body of a command; passwords are encrypted with `token` (18.2).
///
/// # Errors
/// `Config` when a sealed password does not open or a parameter is missing.
/// 11.17 `eleprice_way`: 1 房源电价, 2 公寓统一电价, 3 房间电价.
pub const fn price_way_code(way: domain::tariffs::PriceWay) -> i32 {
    use domain::tariffs::PriceWay;
    match way {
        PriceWay::Home => 1,
        PriceWay::Unified => 2,
        PriceWay::Room => 3,
    }
}

pub fn command_body(cmd: &Command, token: &str, outcomes: &Outcomes) -> Result<Value, CallError> {
    match cmd {
        Command::AddHome { home_id, name, home_type, country, city, zone, block, location, description } => {
            body(&AddHome {
                home_type: *home_type,
                country: country.clone(),
                city: city.clone(),
                zone: zone.clone(),
                location: location.clone(),
                block: block.clone(),
                home_id: home_id.clone(),
                home_name: name.clone(),
                description: description.clone(),
            })
        }
        Command::UpdateHome { home_id, name, location, sp_state } => body(&UpdateHome {
            home_id: home_id.clone(),
            sp_state: *sp_state,
            location: location.clone(),
            home_name: name.clone(),
        }),
        Command::DelHome { home_id } => body(&HomeRef { home_id: home_id.clone() }),
        Command::AddRoom { home_id, room_id, name, description }
        | Command::UpdateRoom { home_id, room_id, name, description } => body(&RoomBody {
            home_id: home_id.clone(),
            room_id: room_id.clone(),
            room_name: name.clone(),
            room_description: description.clone(),
        }),
        Command::AddRooms { home_id, rooms } => body(&AddRooms {
            home_id: home_id.clone(),
            rooms: rooms
                .iter()
                .map(|(id, name)| RoomItem {
                    room_id: id.clone(),
                    room_name: name.clone(),
                    room_description: name.clone(),
                })
                .collect(),
        }),
        Command::DelRoom { home_id, room_id } => body(&DelRoom { home_id: home_id.clone(), room_id: room_id.clone() }),
        Command::AddPassword { uuid, sealed, name, phone, is_default, begin, end, .. } => body(&PasswordBody {
            target: by_uuid(uuid),
            password_id: None,
            is_default: Some(i64::from(*is_default)),
            phonenummer: phone.clone(),
            phonenumber: None,
            encrypted_password: encrypted(outcomes, token, sealed)?,
            name: name.clone(),
            permission_begin: *begin,
            permission_end: *end,
        }),
        Command::UpdatePassword { uuid, password_id, sealed, name, phone, begin, end, .. } => body(&PasswordBody {
            target: by_uuid(uuid),
            password_id: Some(*password_id),
            is_default: None,
            phonenummer: None,
            phonenumber: phone.clone(),
            encrypted_password: encrypted(outcomes, token, sealed)?,
            name: name.clone(),
            permission_begin: *begin,
            permission_end: *end,
        }),
        Command::DeletePassword { uuid, password_id, .. }
        | Command::FreezePassword { uuid, password_id, .. }
        | Command::UnfreezePassword { uuid, password_id, .. } => {
            body(&PasswordRef { target: by_uuid(uuid), password_id: *password_id })
        }
        Command::AddActivationCode { uuid, cmd, name, phone, end, .. } => body(&ActivationBody {
            target: by_uuid(uuid),
            phonenummer: phone.clone(),
            cmd: Some(*cmd),
            password_id: None,
            name: name.clone(),
            is_send_msg: false,
            permission_end: *end,
        }),
        Command::UpdateActivationCode { uuid, password_id, name, phone, end, .. } => body(&ActivationBody {
            target: by_uuid(uuid),
            phonenummer: phone.clone(),
            cmd: None,
            password_id: Some(*password_id),
            name: name.clone(),
            is_send_msg: false,
            permission_end: *end,
        }),
        Command::Meter { uuid, command, params, .. } => meter_body(uuid, *command, params),
        Command::AddTicket { home_id, service_target, service_type, room_ids, subscribe, description, .. } => {
            body(&AddTicket {
                home_id: home_id.clone(),
                service_target: *service_target,
                service_type: *service_type,
                room_ids: room_ids.clone(),
                subscribe: subscribe.clone(),
                ticket_description: description.clone(),
            })
        }
        Command::UpdateTicket { ticket_id, room_ids, subscribe, description } => body(&UpdateTicket {
            ticket_id: ticket_id.clone(),
            room_ids: room_ids.clone(),
            subscribe: subscribe.clone(),
            ticket_description: description.clone(),
        }),
        Command::UpdateTicketState { ticket_id, state } => {
            body(&TicketRef { ticket_id: ticket_id.clone(), ticket_state: Some(*state) })
        }
        Command::DeleteTicket { ticket_id } => body(&TicketRef { ticket_id: ticket_id.clone(), ticket_state: None }),
        Command::AuthRoom { phone, home_id, room_ids, auth_type, begin, end } => body(&AuthRoom {
            phone: phone.clone(),
            home_id: home_id.clone(),
            room_ids: room_ids.clone(),
            auth_type: Some(*auth_type),
            permission: (*auth_type == 2).then(|| match (begin, end) {
                (Some(b), Some(e)) => json!({"status": 2, "begin": b, "end": e}),
                _ => json!({"status": 1}),
            }),
        }),
        Command::UnauthRoom { phone, home_id, room_ids } => body(&AuthRoom {
            phone: phone.clone(),
            home_id: home_id.clone(),
            room_ids: room_ids.clone(),
            auth_type: None,
            permission: None,
        }),
    }
}

/// What an accepted command's answer tells the domain.
pub fn accepted(answer: Map<String, Value>) -> Accepted {
    let a: CommandAnswer = serde_json::from_value(Value::Object(answer)).unwrap_or(CommandAnswer {
        id: None,
        serviceid: None,
        code: None,
        ticket_id: None,
    });
    Accepted { password_id: a.id, service_id: a.serviceid, code: a.code, ticket_id: a.ticket_id }
}

fn millis(t: Option<i64>) -> Option<DateTime<Utc>> {
    t.and_then(DateTime::from_timestamp_millis)
}

fn detail<T: serde::de::DeserializeOwned + Default>(v: &Value) -> T {
    serde_json::from_value(v.clone()).unwrap_or_default()
}

fn level(v: Option<i64>) -> Option<i32> {
    v.and_then(|l| i32::try_from(l).ok()).filter(|l| (0..=100).contains(l))
}

/// 8.2.11 (1 gateway, 4 lock, 5 meter, 6 collector) and 16.2 (7 water gateway, 8 water meter).
fn kind_of_type(t: Option<i64>) -> Option<DeviceKind> {
    Some(match t? {
        1 => DeviceKind::Gateway,
        4 => DeviceKind::Lock,
        5 => DeviceKind::ElectricityMeter,
        6 => DeviceKind::Collector,
        7 => DeviceKind::WaterGateway,
        8 => DeviceKind::WaterMeter,
        _ => return None,
    })
}

/// 5.5 `type` values.
pub fn kind_of_name(t: &str) -> Option<DeviceKind> {
    Some(match t.trim() {
        "gateway" => DeviceKind::Gateway,
        "lock" | "home_lock" | "room_lock" => DeviceKind::Lock,
        "elemeter" => DeviceKind::ElectricityMeter,
        "eleccollector" | "elecollector" => DeviceKind::Collector,
        "water_gateway" => DeviceKind::WaterGateway,
        "watermeter" => DeviceKind::WaterMeter,
        _ => return None,
    })
}

/// The callback's name: its `event` or `service`.
pub fn callback_name(b: &CallbackBody) -> String {
    b.event.clone().or_else(|| b.service.clone()).unwrap_or_default().trim().to_owned()
}

/// A callback in domain terms.
pub fn callback(b: &CallbackBody) -> Callback {
    let name = callback_name(b);
    if b.service.is_some() && b.event.is_none() {
        let r: ServiceResultBody = detail(&b.result);
        let password = |operation| ServiceResult::Password { operation, password_id: r.id, code: r.err_no };
        let result = match name.as_str() {
            "Password_Add_Service" => password(PasswordOperation::Add),
            "Password_Delete_Service" => password(PasswordOperation::Delete),
            "Password_Update_Service" => password(PasswordOperation::Update),
            "Password_Frozen_Service" => password(PasswordOperation::Freeze),
            "Password_Unfrozen_Service" => password(PasswordOperation::Unfreeze),
            "Elemeter_Control_Service" | "Elemeter_Passthrough_Service" => ServiceResult::Meter {
                operation_type: r.operation_type.or((name == "Elemeter_Passthrough_Service").then_some(5)),
                code: r.err_no,
                values: b.result.clone(),
            },
            _ => return Callback::Unknown { name },
        };
        return Callback::Service { service_id: b.serviceid.clone().unwrap_or_default(), uuid: b.uuid.clone(), result };
    }
    let d = &b.detail;
    let fact = match name.as_str() {
        // 8.1 lists the clear event as `clearBattryAlarm`; both spellings are accepted.
        "batteryAlarm" => Fact::BatteryLow { level: level(detail::<BatteryDetail>(d).battery_level) },
        "clearBatteryAlarm" | "clearBattryAlarm" => {
            Fact::BatteryRecovered { level: level(detail::<BatteryDetail>(d).battery_level) }
        }
        "batteryAsync" => {
            let bd = detail::<BatteryDetail>(d);
            Fact::Battery { level: level(bd.battery.or(bd.battery_level)) }
        }
        "brokenAlarm" => Fact::Tampered,
        "wrongPwdAlarm" => Fact::WrongPassword,
        "pwdSync" => Fact::AdminPasswordSynced {
            ids: detail::<PwdSyncDetail>(d).passwords.iter().filter_map(|p| p.id).collect(),
        },
        "pwdAddLocal" | "pwdUpdateLocal" => match detail::<PwdLocalDetail>(d).password.and_then(|p| p.id) {
            Some(id) => Fact::LocalPasswordSet { id, updated: name == "pwdUpdateLocal" },
            None => Fact::Other { name },
        },
        "pwdDelLocal" => match detail::<PwdLocalDetail>(d).password.and_then(|p| p.id) {
            Some(id) => Fact::LocalPasswordDeleted { id },
            None => Fact::Other { name },
        },
        "lockerOpenAlarm" => {
            let o = detail::<OpenDetail>(d);
            Fact::DoorOpened { source: o.source, source_id: o.sourceid, source_name: o.source_name }
        }
        "centerOfflineAlarm" => Fact::GatewayOffline(true),
        "clearCenterOfflineAlarm" => Fact::GatewayOffline(false),
        "lockOfflineAlarm" => Fact::DeviceOffline(true),
        "clearLockOfflineAlarm" => Fact::DeviceOffline(false),
        "waterGatewayOfflineAlarm" => Fact::WaterGatewayOffline(true),
        "waterGatewayOnlineAlarm" => Fact::WaterGatewayOffline(false),
        "installerSubmit" => Fact::InstallerSubmitted,
        "deviceInstall" => {
            let i = detail::<InstallDetail>(d);
            Fact::Installed { kind: kind_of_type(i.kind), gateway_uuid: b.gateway_uuid.clone(), amount: i.amount }
        }
        "deviceUninstall" => Fact::Uninstalled { kind: kind_of_type(detail::<InstallDetail>(d).kind) },
        "deviceReplace" => match &b.old_uuid {
            Some(old) => Fact::Replaced { old_uuid: old.clone(), kind: kind_of_type(detail::<InstallDetail>(d).kind) },
            None => Fact::Other { name },
        },
        "elemeterPowerAsync" => {
            let m = detail::<MeterDetail>(d);
            match m.consume_amount {
                Some(amount) => Fact::MeterPower { amount, at: millis(m.consume_amount_time) },
                None => Fact::Other { name },
            }
        }
        "elemeterPowerHisAsync" => Fact::MeterPowerHistory {
            points: detail::<MeterDetail>(d).powers.iter().filter_map(|p| Some((millis(p.time)?, p.amount?))).collect(),
        },
        "elemeterHistory" => {
            let entries: Vec<HistoryEntry> = serde_json::from_value(b.histories.clone()).unwrap_or_default();
            Fact::MeterHistory {
                entries: entries
                    .into_iter()
                    .filter_map(|e| {
                        Some(MeterHistoryEntry {
                            uuid: e.uuid?,
                            event_id: e.eventid?,
                            amount: e.amount,
                            capacity: e.capacity,
                            at: millis(e.time),
                        })
                    })
                    .collect(),
            }
        }
        "elemeterOvercomeAmount" => Fact::MeterOverAmount { amount: detail::<MeterDetail>(d).amount },
        "elemeterOvercomeCapacity" => Fact::MeterOverCapacity { capacity: detail::<MeterDetail>(d).capacity },
        "elemeterLocalClose" => Fact::MeterLocalClose,
        "elemeterTransError" => Fact::MeterTransmissionError,
        "watermeterAmountAsync" => match detail::<MeterDetail>(d).amount {
            Some(amount) => Fact::WaterReading { amount },
            None => Fact::Other { name },
        },
        _ => {
            if b.event.is_none() {
                return Callback::Unknown { name };
            }
            Fact::Other { name }
        }
    };
    Callback::Event {
        uuid: b.uuid.clone(),
        home_id: b.home_id.clone(),
        room_id: b.room_id.clone(),
        at: millis(b.time).unwrap_or_else(Utc::now),
        fact,
    }
}

/// The dedup key of a callback (`PROTOCOLS.md` 3b): event `uuid+event+time`, service
/// `serviceid+service`; anything else by the digest of its body.
pub fn dedup_key(b: &CallbackBody, raw: &str) -> String {
    match (&b.event, &b.service) {
        (Some(e), _) => format!("event:{}:{e}:{}", b.uuid.clone().unwrap_or_default(), b.time.unwrap_or_default()),
        (None, Some(s)) => format!("service:{}:{s}", b.serviceid.clone().unwrap_or_default()),
        (None, None) => {
            use sha2::Digest;
            format!("body:{}", hex::encode(sha2::Sha256::digest(raw.as_bytes())))
        }
    }
}

/// The body as stored: plaintext passwords (8.2.4, 8.2.5) replaced by `***`.
pub fn redacted(raw: &str, b: &CallbackBody) -> String {
    if !matches!(b.event.as_deref(), Some("pwdSync" | "pwdAddLocal" | "pwdUpdateLocal")) {
        return raw.to_owned();
    }
    let Ok(mut v) = serde_json::from_str::<Value>(raw) else { return raw.to_owned() };
    fn scrub(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    if k == "password" && (x.is_string() || x.is_number()) {
                        *x = json!("***");
                    } else {
                        scrub(x);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(scrub),
            _ => {}
        }
    }
    scrub(&mut v);
    v.to_string()
}

fn secs(t: Option<i64>) -> Option<DateTime<Utc>> {
    t.filter(|t| *t > 0).and_then(|t| DateTime::from_timestamp(t, 0))
}

/// `fetch_passwords` (6.4) entries.
pub fn passwords(p: Passwords) -> Vec<SyncedPassword> {
    let items: Vec<Value> = match p.passwords {
        Value::Array(a) => a,
        Value::Object(m) => m.into_values().collect(),
        _ => Vec::new(),
    };
    items
        .into_iter()
        .filter_map(|v| serde_json::from_value::<PasswordInfo>(v).ok())
        .filter_map(|p| {
            let perm = p.permission.unwrap_or_default();
            Some(SyncedPassword {
                vendor_id: p.id?,
                is_default: p.is_default == Some(1),
                name: p.name,
                phone: p.send_to,
                begins_at: secs(perm.begin),
                ends_at: secs(perm.end),
                pwd_state: p.pwd_state.and_then(PwdState::from_code),
                operation: p.operation.and_then(|o| match o {
                    1 => Some(PasswordOperation::Add),
                    2 => Some(PasswordOperation::Delete),
                    3 => Some(PasswordOperation::Update),
                    4 => Some(PasswordOperation::Freeze),
                    5 => Some(PasswordOperation::Unfreeze),
                    _ => None,
                }),
                stage: p.operation_stage.and_then(|s| match s {
                    1 => Some(OperationStage::Pending),
                    2 => Some(OperationStage::Failed),
                    3 => Some(OperationStage::Succeeded),
                    _ => None,
                }),
                description: p
                    .description
                    .map(|d| d.trim().parse::<i64>().map_or(d.clone(), super::password_error_text)),
            })
        })
        .collect()
}

/// A work order of 10.5 as the ticket fields of `INSTALLATION`/`REPAIR` (seed 002 section 10).
pub fn synced_ticket(home_id: &str, t: TicketInfo) -> Option<super::SyncedTicket> {
    let ticket_id = t.ticket_id?;
    let service_type = t.service_type.unwrap_or(1);
    let rooms: Vec<String> = t.room_ids.clone().unwrap_or_else(|| {
        t.relate_home
            .as_ref()
            .and_then(|h| h.get("rooms"))
            .and_then(Value::as_array)
            .map(|rs| rs.iter().filter_map(|r| r.get("room_id").and_then(Value::as_str).map(str::to_owned)).collect())
            .unwrap_or_default()
    });
    let mut fields = json!({
        "home_id": home_id,
        "service_target": t.service_target.unwrap_or(2),
        "service_type": service_type,
        "room_ids": rooms,
        "subscribe": t.subscribe.or(t.confirm).unwrap_or_else(|| json!({})),
    });
    if let (Some(d), Some(m)) = (t.ticket_description, fields.as_object_mut()) {
        m.insert("ticket_description".into(), json!(d));
    }
    Some(super::SyncedTicket { ticket_id, service_type, state: t.ticket_state.unwrap_or(1), fields })
}

/// A device of the sync from its list entry and its `get_*_info` answer.
pub fn synced_device(
    kind: DeviceKind,
    entry: &HomeDevice,
    info: &wire::DeviceInfo,
    passwords: Vec<SyncedPassword>,
) -> Option<SyncedDevice> {
    let uuid = entry.uuid.clone().or_else(|| info.uuid.clone())?;
    let online = match (info.onoff_line, info.onoff) {
        (Some(1), _) | (None, Some(1)) => Some(true),
        (Some(2), _) | (None, Some(0 | 2)) => Some(false),
        _ => None,
    };
    let positive = |v: Option<i64>| v.filter(|v| *v >= 0).and_then(|v| i32::try_from(v).ok());
    let mut attributes = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v.filter(|v| !v.is_null()) {
            attributes.insert(k.to_owned(), v);
        }
    };
    put("sn", entry.sn.clone().or_else(|| info.sn.clone()).map(Value::from));
    put("mac", info.mac.clone().map(Value::from));
    put("model", info.model.clone().map(Value::from));
    put("modelName", info.model_name.clone().map(Value::from));
    put("brand", info.brand.clone().map(Value::from));
    put("versions", info.versions.clone());
    put(
        "centerUuid",
        entry
            .center_uuid
            .clone()
            .or_else(|| info.center_uuid.clone())
            .or_else(|| info.elecollector_uuid.clone())
            .or_else(|| info.parent.clone())
            .map(Value::from),
    );
    put("manufactory", entry.manufactory.clone().or_else(|| info.manufactory.clone()).map(Value::from));
    put("enableState", info.enable_state.map(Value::from));
    put("consumeAmount", info.consume_amount.filter(|v| *v >= 0.0).map(Value::from));
    put("powerTotal", info.power_total.filter(|v| *v >= 0.0).map(Value::from));
    put("overdraft", info.overdraft.filter(|v| *v >= 0.0).map(Value::from));
    put("capacity", info.capacity.filter(|v| *v >= 0.0).map(Value::from));
    put("meterType", info.meter_type.map(Value::from));
    put("type", entry.kind.clone().map(Value::from));
    Some(SyncedDevice {
        name: info
            .name
            .clone()
            .or_else(|| entry.description.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| uuid.clone()),
        uuid,
        kind,
        room_external_id: entry.room_id.clone(),
        online,
        battery: if kind == DeviceKind::Lock { positive(info.power) } else { None },
        signal: positive(info.lqi),
        attributes: Value::Object(attributes),
        passwords,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> CallbackBody {
        serde_json::from_str(s).expect("callback")
    }

    #[test]
    fn events_and_services_map_to_facts() {
        let b = parse(r#"{"event":"batteryAlarm","uuid":"u","time":1467785486059,"detail":{"battery_level":"9"}}"#);
        assert!(matches!(callback(&b), Callback::Event { fact: Fact::BatteryLow { level: Some(9) }, .. }));
        assert_eq!(dedup_key(&b, ""), "event:u:batteryAlarm:1467785486059");
        let s = parse(
            r#"{"service":"Password_Frozen_Service","serviceid":"77","uuid":"u","result":{"id":1001,"ErrNo":5104}}"#,
        );
        assert_eq!(dedup_key(&s, ""), "service:77:Password_Frozen_Service");
        match callback(&s) {
            Callback::Service {
                service_id, result: ServiceResult::Password { operation, password_id, code }, ..
            } => {
                assert_eq!(
                    (service_id.as_str(), operation, password_id, code),
                    ("77", PasswordOperation::Freeze, Some(1001), Some(5104))
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            callback(&parse(r#"{"event":"somethingNew","uuid":"u"}"#)),
            Callback::Event { fact: Fact::Other { .. }, .. }
        ));
        assert!(matches!(callback(&parse(r#"{"service":"Other_Service","serviceid":1}"#)), Callback::Unknown { .. }));
        let w = parse(r#"{"event":"deviceInstall","uuid":"w","gateway_uuid":"g","detail":{"type":8,"amount":"3.5"}}"#);
        assert!(
            matches!(callback(&w), Callback::Event { fact: Fact::Installed { kind: Some(DeviceKind::WaterMeter), amount: Some(a), .. }, .. } if (a - 3.5).abs() < 1e-9)
        );
    }

    #[test]
    fn local_password_plaintext_is_not_stored() {
        let raw = r#"{"event":"pwdAddLocal","uuid":"u","detail":{"password":{"id":3,"password":"123456"}}}"#;
        let stored = redacted(raw, &parse(raw));
        assert!(!stored.contains("123456"), "{stored}");
        assert!(stored.contains("\"id\":3"));
    }
}
