//! ETC reports as devices and facts (seed 001 2.1.2, 3.1.2): the gantry, each PC, each
//! cabinet and each cabinet unit are devices; every field but `id` is a reading; each
//! warning a report carries raises an alarm on its unit, cleared when a later report shows
//! it normal (the unit's previous values are its latest readings).
//!
//! External ids: the gantry is its `gantryId`; a PC `{gantryId}/pc/{id}`; a cabinet
//! `{gantryId}/cabinet/{id}`; a unit `{cabinet}/{kind}/{id}`, or `{cabinet}/{kind}` for the
//! units a cabinet has one of (thermo-hygrometer, water sensor, doors, smoke sensor).
// Parsers of tenant and vendor input (issue 17): no indexing that can panic.
#![cfg_attr(not(test), warn(clippy::indexing_slicing))]

use super::wire::{Body, Report, Unit, UnitKind};
use domain::alarms::{AlarmKind, AlarmSeverity, RaiseAlarm};
use domain::devices::{Device, DeviceKind, DeviceStatus, NewReading};
use domain::ids::InboundEventId;
use domain::ingest::Fact;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// A device a report names.
#[derive(Debug, Clone)]
pub(crate) struct Named<'a> {
    pub external_id: String,
    pub kind: DeviceKind,
    pub name: String,
    pub attributes: Value,
    /// What it reported (`None`: the gantry and the cabinet, which report through units).
    pub unit: Option<&'a Unit>,
}

fn unit_kind(k: UnitKind) -> (DeviceKind, &'static str) {
    match k {
        UnitKind::Pc => (DeviceKind::GantryComputer, "PC"),
        UnitKind::Elec => (DeviceKind::GantryMains, "mains"),
        UnitKind::Rectifier => (DeviceKind::GantryRectifier, "rectifier"),
        UnitKind::Ups => (DeviceKind::GantryUps, "UPS"),
        UnitKind::AirConditioner => (DeviceKind::GantryAirConditioner, "air conditioner"),
        UnitKind::Thermohygrometer => (DeviceKind::GantryThermohygrometer, "thermo-hygrometer"),
        UnitKind::WaterSensor => (DeviceKind::GantryWaterSensor, "water sensor"),
        UnitKind::Doors => (DeviceKind::GantryDoors, "doors"),
        UnitKind::SmokeSensor => (DeviceKind::GantrySmokeSensor, "smoke sensor"),
        UnitKind::ThunderSpd => (DeviceKind::GantryLightningProtection, "lightning protector"),
    }
}

/// The external id of a report's cabinet.
pub(crate) fn cabinet_external(gantry: &str, cabinet: &str) -> String {
    format!("{gantry}/cabinet/{cabinet}")
}

/// Every device the report names: the gantry first, then what reported through it.
pub(crate) fn devices_of(report: &Report) -> Vec<Named<'_>> {
    let g = &report.head.gantry_id;
    let through = |extra: Value| {
        let mut a = json!({"gantryId": g, "reportsThrough": g});
        if let (Value::Object(a), Value::Object(e)) = (&mut a, extra) {
            a.extend(e);
        }
        a
    };
    let mut out = vec![Named {
        external_id: g.clone(),
        kind: DeviceKind::Gantry,
        name: format!("Gantry {g}"),
        attributes: json!({"gantryId": g}),
        unit: None,
    }];
    match &report.body {
        Body::Computers(pcs) => {
            for pc in pcs {
                let id = pc.id.clone().unwrap_or_default();
                out.push(Named {
                    external_id: format!("{g}/pc/{id}"),
                    kind: DeviceKind::GantryComputer,
                    name: format!("{g} PC {id}"),
                    attributes: through(json!({"pcId": id})),
                    unit: Some(pc),
                });
            }
        }
        Body::Cabinet(c) => {
            let cabinet = cabinet_external(g, &c.id);
            out.push(Named {
                external_id: cabinet.clone(),
                kind: DeviceKind::GantryCabinet,
                name: format!("{g} cabinet {}", c.id),
                attributes: through(json!({"cabinetId": c.id})),
                unit: None,
            });
            for u in &c.units {
                let (kind, label) = unit_kind(u.kind);
                let (external_id, name) = match &u.id {
                    Some(id) => {
                        (format!("{cabinet}/{}/{id}", u.kind.segment()), format!("{g} cabinet {} {label} {id}", c.id))
                    }
                    None => (format!("{cabinet}/{}", u.kind.segment()), format!("{g} cabinet {} {label}", c.id)),
                };
                out.push(Named {
                    external_id,
                    kind,
                    name,
                    attributes: through(json!({"cabinetId": c.id, "unit": u.kind.segment()})),
                    unit: Some(u),
                });
            }
        }
        Body::Other => {}
    }
    out
}

/// PC alarm thresholds (integration setting `thresholds`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Thresholds {
    /// System or data disk usage, %.
    pub disk: f64,
    /// CPU usage, %.
    pub cpu: f64,
    /// CPU temperature, °C.
    pub temperature: f64,
}

impl Thresholds {
    pub(crate) fn of(settings: &Value) -> Self {
        let t = settings.get("thresholds");
        let get = |k: &str, d: f64| t.and_then(|t| t.get(k)).and_then(Value::as_f64).unwrap_or(d);
        Self { disk: get("diskUsage", 90.0), cpu: get("cpuUsage", 90.0), temperature: get("cpuTemperature", 80.0) }
    }
}

fn num(m: &Map<String, Value>, k: &str) -> Option<f64> {
    m.get(k).and_then(Value::as_f64)
}

fn is(m: &Map<String, Value>, k: &str, v: f64) -> bool {
    num(m, k).is_some_and(|n| (n - v).abs() < f64::EPSILON)
}

/// A warning text, not empty and not one of the error values.
fn warning<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str).filter(|s| !s.is_empty() && !super::wire::ERROR_VALUES.contains(s))
}

/// One condition of a unit: what it reads now, whether it read so before.
struct Condition {
    kind: &'static str,
    severity: AlarmSeverity,
    /// `Some(message)` while it holds.
    now: Option<String>,
    before: bool,
    /// Cleared by a report showing it normal (a lightning strike is an event: kept open
    /// until a user clears it).
    clears: bool,
}

fn fault(kind: UnitKind, m: &Map<String, Value>) -> Option<String> {
    let mut why = Vec::new();
    if is(m, "status", 0.0) {
        why.push("status abnormal".to_owned());
    }
    for k in ["warningMsg", "errorMsg"] {
        if let Some(w) = warning(m, k) {
            why.push(w.to_owned());
        }
    }
    if kind == UnitKind::AirConditioner {
        if is(m, "systemWarning", 0.0) {
            why.push("system warning".to_owned());
        }
        if is(m, "temperatureWarning", 0.0) {
            why.push("temperature warning".to_owned());
        }
    }
    (!why.is_empty()).then(|| why.join("; "))
}

fn illegal_doors(m: &Map<String, Value>) -> Option<String> {
    let doors: Vec<&str> = [("frontDoorOpenIllegally", "front"), ("backDoorOpenIllegally", "back")]
        .into_iter()
        .filter(|(k, _)| is(m, k, 1.0))
        .map(|(_, d)| d)
        .collect();
    (!doors.is_empty()).then(|| format!("{} door opened illegally", doors.join(" and ")))
}

fn over(m: &Map<String, Value>, keys: &[&str], limit: f64, what: &str, unit: &str) -> Option<String> {
    let worst =
        keys.iter().filter_map(|k| num(m, k)).fold(None, |a: Option<f64>, n| Some(a.map_or(n, |a| a.max(n))))?;
    (worst > limit).then(|| format!("{what} {worst}{unit} over {limit}{unit}"))
}

fn conditions(kind: UnitKind, now: &Map<String, Value>, before: &Map<String, Value>, t: Thresholds) -> Vec<Condition> {
    let cond = |kind, severity, f: &dyn Fn(&Map<String, Value>) -> Option<String>| Condition {
        kind,
        severity,
        now: f(now),
        before: f(before).is_some(),
        clears: true,
    };
    if kind == UnitKind::Pc {
        return vec![
            cond("PC_DISK_USAGE_HIGH", AlarmSeverity::Major, &|m| {
                over(m, &["sysDiskUsage", "dataDiskUsage"], t.disk, "disk usage", "%")
            }),
            cond("PC_CPU_USAGE_HIGH", AlarmSeverity::Warning, &|m| over(m, &["cpuUsage"], t.cpu, "CPU usage", "%")),
            cond("PC_TEMPERATURE_HIGH", AlarmSeverity::Major, &|m| {
                over(m, &["cpuTemperature"], t.temperature, "CPU temperature", " °C")
            }),
        ];
    }
    let mut out = vec![cond("GANTRY_UNIT_FAULT", AlarmSeverity::Major, &|m| fault(kind, m))];
    match kind {
        UnitKind::WaterSensor => out.push(cond("WATER_LEAK", AlarmSeverity::Critical, &|m| {
            is(m, "isWarning", 1.0).then(|| "water detected in the cabinet".to_owned())
        })),
        UnitKind::SmokeSensor => out.push(cond("SMOKE_ALARM", AlarmSeverity::Critical, &|m| {
            is(m, "isWarning", 1.0).then(|| "smoke detected in the cabinet".to_owned())
        })),
        UnitKind::Doors => out.push(cond("DOOR_OPENED_ILLEGALLY", AlarmSeverity::Critical, &illegal_doors)),
        UnitKind::ThunderSpd => {
            let (n, b) = (num(now, "lightningCount"), num(before, "lightningCount"));
            let struck = match (n, b) {
                (Some(n), Some(b)) if n > b => Some(format!("{} lightning strike(s), {n} in all", n - b)),
                _ => None,
            };
            out.push(Condition {
                kind: "LIGHTNING_STRIKE",
                severity: AlarmSeverity::Major,
                now: struck,
                before: false,
                clears: false,
            });
        }
        _ => {}
    }
    out
}

/// A device's previous values, from its latest readings.
fn previous(d: &Device) -> Map<String, Value> {
    d.latest
        .as_object()
        .map(|m| m.iter().filter_map(|(k, v)| v.get("value").map(|v| (k.clone(), v.clone()))).collect())
        .unwrap_or_default()
}

/// A door opening to fetch the picture of (3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DoorOpening {
    pub cabinet_external: String,
    pub cabinet_id: String,
    /// `yyyy-MM-dd hh:mm:ss.zzz`, as the cabinet reported it.
    pub at: String,
}

/// What applying a report comes to.
pub(crate) struct Mapped {
    pub facts: Vec<Fact>,
    pub doors: Vec<DoorOpening>,
}

/// The facts of a report whose devices all exist (`devices` by external id).
pub(crate) fn facts(
    report: &Report,
    named: &[Named<'_>],
    devices: &HashMap<String, Device>,
    t: Thresholds,
    event: InboundEventId,
) -> Mapped {
    let at = chrono::DateTime::from_timestamp(report.head.time_stamp, 0).unwrap_or_default();
    let mut facts = Vec::new();
    let mut doors = Vec::new();
    for n in named {
        let Some(d) = devices.get(&n.external_id) else { continue };
        let status = DeviceStatus { online: Some(true), battery: None, signal: None, seen_at: Some(at) };
        facts.push(Fact::Status { device: d.id, status });
        if d.kind == DeviceKind::Gantry && d.online == Some(false) {
            let key = domain::schedules::offline_key(d, at);
            facts.push(Fact::AlarmCleared { key, note: "the gantry reports again".into(), plan: None });
        }
        let Some(u) = n.unit else { continue };
        let readings: Vec<NewReading> =
            u.fields.iter().map(|(k, v)| NewReading { metric: k.clone(), value: v.clone(), ts: at }).collect();
        if !readings.is_empty() {
            facts.push(Fact::Readings { device: d.id, readings });
        }
        let before = previous(d);
        for c in conditions(u.kind, &u.fields, &before, t) {
            let alarm = RaiseAlarm {
                device_id: Some(d.id),
                integration_id: Some(d.integration_id),
                ticket_id: None,
                kind: AlarmKind::system(c.kind),
                severity: c.severity,
                message: c.now.clone().unwrap_or_default(),
                vendor_code: None,
                vendor_text: None,
                inbound_event_id: Some(event),
                raised_at: at,
                attributes: json!({"gantryId": report.head.gantry_id, "externalId": n.external_id}),
            };
            match c.now {
                Some(_) => facts.push(Fact::AlarmRaised { alarm, plan: None }),
                None if c.before && c.clears => {
                    facts.push(Fact::AlarmCleared {
                        key: alarm,
                        note: "a later report shows it normal".into(),
                        plan: None,
                    });
                }
                None => {}
            }
        }
        if u.kind == UnitKind::Doors
            && let Body::Cabinet(c) = &report.body
        {
            for side in ["front", "back"] {
                let open = is(&u.fields, &format!("{side}DoorClosed"), 0.0);
                let when = u.fields.get(&format!("{side}DoorChangeTime")).and_then(Value::as_str);
                if let (true, Some(when)) = (open, when.filter(|w| !w.is_empty() && w.len() <= 40)) {
                    doors.push(DoorOpening {
                        cabinet_external: cabinet_external(&report.head.gantry_id, &c.id),
                        cabinet_id: c.id.clone(),
                        at: when.to_owned(),
                    });
                }
            }
        }
    }
    Mapped { facts, doors }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn m(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    const T: Thresholds = Thresholds { disk: 90.0, cpu: 90.0, temperature: 80.0 };

    fn held(kind: UnitKind, now: Value, before: Value) -> Vec<(&'static str, bool, bool)> {
        conditions(kind, &m(now), &m(before), T).into_iter().map(|c| (c.kind, c.now.is_some(), c.before)).collect()
    }

    #[test]
    fn warnings_hold_and_clear_against_the_previous_values() {
        let ups = held(UnitKind::Ups, json!({"status": 1, "warningMsg": "电池熔丝断"}), json!({}));
        assert_eq!(ups, vec![("GANTRY_UNIT_FAULT", true, false)]);
        let ups = held(UnitKind::Ups, json!({"status": 1, "warningMsg": ""}), json!({"status": 0}));
        assert_eq!(ups, vec![("GANTRY_UNIT_FAULT", false, true)]);
        let smoke = held(UnitKind::SmokeSensor, json!({"status": 1, "isWarning": 1}), json!({"isWarning": 0}));
        assert_eq!(smoke[1], ("SMOKE_ALARM", true, false));
        let pc = held(
            UnitKind::Pc,
            json!({"sysDiskUsage": 95.0, "cpuUsage": "NoData", "cpuTemperature": 85}),
            json!({"cpuUsage": 97}),
        );
        assert_eq!(
            pc,
            vec![
                ("PC_DISK_USAGE_HIGH", true, false),
                ("PC_CPU_USAGE_HIGH", false, true),
                ("PC_TEMPERATURE_HIGH", true, false)
            ]
        );
        let spd =
            conditions(UnitKind::ThunderSpd, &m(json!({"lightningCount": 3})), &m(json!({"lightningCount": 1})), T);
        assert_eq!(spd[1].now.as_deref(), Some("2 lightning strike(s), 3 in all"));
        assert!(!spd[1].clears);
        let first = conditions(UnitKind::ThunderSpd, &m(json!({"lightningCount": 3})), &m(json!({})), T);
        assert!(first[1].now.is_none(), "no strike counted on first sight");
        let doors = held(UnitKind::Doors, json!({"backDoorOpenIllegally": 1, "status": 1}), json!({}));
        assert_eq!(doors[1], ("DOOR_OPENED_ILLEGALLY", true, false));
    }
}
