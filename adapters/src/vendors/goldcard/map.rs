//! Seed 003 vocabulary <-> the product's: reports become facts (readings, device status,
//! alarms); appendix 2 alarm types become alarm kinds; `alarmPriority` becomes a severity.
// Parsers of tenant and vendor input (issue 17): no indexing that can panic.
#![cfg_attr(not(test), warn(clippy::indexing_slicing))]

use super::wire::{AlarmReport, Reading};
use domain::alarms::{AlarmKind, AlarmSeverity, RaiseAlarm};
use domain::devices::{Device, DeviceStatus, NewReading};
use domain::ids::InboundEventId;
use domain::ingest::Fact;
use rust_decimal::Decimal;
use serde_json::{Value, json};

/// Appendix 2 (告警信息类型说明): code -> (alarm kind, the seed's name).
const ALARM_TYPES: [(&str, &str, &str); 7] = [
    ("01", "GAS_METER_COMMS_FAILURE", "通讯异常"),
    ("02", "GAS_LEAK", "燃气泄漏"),
    ("03", "GAS_METER_REED_SWITCH_FAULT", "干簧管坏"),
    ("04", "GAS_VALVE_LEAK", "阀门漏气"),
    ("05", "GAS_VALVE_FAULT", "阀门异常"),
    ("06", "GAS_METER_BATTERY_FAULT", "电池故障"),
    ("07", "GAS_METER_MAGNETIC_INTERFERENCE", "强磁干扰"),
];

/// A type appendix 2 does not list.
const OTHER_ALARM: &str = "GAS_METER_ALARM";

/// The alarm kind of an appendix-2 type.
pub(crate) fn alarm_kind(code: &str) -> (&'static str, Option<&'static str>) {
    ALARM_TYPES.iter().find(|(c, _, _)| *c == code).map_or((OTHER_ALARM, None), |(_, k, n)| (*k, Some(*n)))
}

/// `alarmPriority` 1 低 / 2 中 / 3 高.
pub(crate) fn severity(priority: u8) -> AlarmSeverity {
    match priority {
        3 => AlarmSeverity::Critical,
        2 => AlarmSeverity::Major,
        _ => AlarmSeverity::Minor,
    }
}

fn num(d: Decimal) -> Value {
    json!(d.normalize().to_string())
}

/// The metric of a gas meter's register (cubic metres).
pub const VOLUME: &str = "volume";

/// What a 2001 says of its meter: its status, and its register and other values as
/// readings.
pub(crate) fn observed(r: &Reading) -> (DeviceStatus, Vec<NewReading>) {
    let at = r.read_at;
    let mut values: Vec<(&str, Value)> = vec![(VOLUME, num(r.read_num))];
    let optional = [
        ("batteryVoltage", r.battery_voltage),
        ("temperature", r.temperature),
        ("pressure", r.pressure),
        ("standardTotal", r.standard_total),
        ("workTotal", r.work_total),
        ("standardInstant", r.standard_instant),
        ("workInstant", r.work_instant),
        ("meterPrice", r.cur_price.filter(|_| r.meter_side)),
        ("meterBalance", r.meter_balance.filter(|_| r.meter_side)),
        ("meterUsedVolume", r.sum_use_gas.filter(|_| r.meter_side)),
        ("meterUsedAmount", r.sum_use_amount.filter(|_| r.meter_side)),
    ];
    values.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, num(v)))));
    if let Some(open) = r.valve_open {
        values.push(("valve", json!(if open { "OPEN" } else { "CLOSED" })));
    }
    let mut readings: Vec<NewReading> =
        values.into_iter().map(|(metric, value)| NewReading { metric: metric.into(), value, ts: at }).collect();
    // Days the meter could not report: their register, at the start of the day.
    for (day, total) in &r.add_gas {
        if let Some(ts) = day.and_hms_opt(0, 0, 0).and_then(super::wire::shanghai_to_utc) {
            readings.push(NewReading { metric: VOLUME.into(), value: num(*total), ts });
        }
    }
    let status = DeviceStatus { online: Some(true), battery: None, signal: r.signal, seen_at: Some(at) };
    (status, readings)
}

/// A 2003 as an alarm on its meter; a repeat of the same type updates the open alarm.
pub(crate) fn alarm(
    device: &Device,
    a: &AlarmReport,
    event: InboundEventId,
    received: chrono::DateTime<chrono::Utc>,
) -> Fact {
    let (kind, name) = alarm_kind(&a.alarm_type);
    let message = match name {
        Some(n) => format!("{n}: {}", a.content),
        None => format!("alarm type {}: {}", a.alarm_type, a.content),
    };
    Fact::AlarmRaised {
        alarm: RaiseAlarm {
            device_id: Some(device.id),
            integration_id: Some(device.integration_id),
            ticket_id: None,
            kind: AlarmKind::system(kind),
            severity: severity(a.priority),
            message,
            vendor_code: Some(a.alarm_type.clone()),
            vendor_text: Some(a.content.clone()),
            inbound_event_id: Some(event),
            raised_at: a.at.unwrap_or(received),
            attributes: json!({"alarmPriority": a.priority.to_string(), "serialNo": a.head.serial_no}),
        },
        plan: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appendix_two_types_have_kinds_and_valid_codes() {
        for (code, kind, _) in ALARM_TYPES {
            assert_eq!(alarm_kind(code).0, kind);
            assert!(AlarmKind::parse(kind).is_ok(), "{kind}");
        }
        assert_eq!(alarm_kind("99"), (OTHER_ALARM, None));
        assert!(AlarmKind::parse(OTHER_ALARM).is_ok());
    }

    #[test]
    fn priorities_map_to_severities() {
        assert_eq!(severity(1), AlarmSeverity::Minor);
        assert_eq!(severity(2), AlarmSeverity::Major);
        assert_eq!(severity(3), AlarmSeverity::Critical);
    }
}
