//! Alarms: raised by vendors, devices or users; de-duplicated while open; moved through
//! RAISED -> ACKNOWLEDGED -> CLEARED with a timeline of every step.

pub mod escalation;
mod models;
pub mod outbound;
mod ports;
mod service;

pub use models::{
    Alarm, AlarmFilter, AlarmKind, AlarmSeverity, AlarmState, RaiseAlarm, RaiseOutcome, Step, TimelineEntry,
    TimelineKind,
};
pub use ports::AlarmRepo;
pub use service::{AlarmService, ReportAlarmInput};
