use crate::enums::string_enum;
use crate::ids::{AlarmId, DeviceId, EntryId, HomeId, InboundEventId, IntegrationId, TenantId, TicketId, UserId};
use crate::{DomainError, DomainResult};
use chrono::{DateTime, Utc};
use serde_json::Value;

string_enum!(
    /// How bad an alarm is, most severe first.
    AlarmSeverity, "severity" {
        Critical = "CRITICAL",
        Major = "MAJOR",
        Minor = "MINOR",
        Warning = "WARNING",
        Info = "INFO",
    }
);

string_enum!(
    /// Where an alarm is in its life.
    AlarmState, "state" {
        /// Open, nobody has taken it yet.
        Raised = "RAISED",
        /// Open, someone is on it.
        Acknowledged = "ACKNOWLEDGED",
        /// Closed (by a user or by the source's own recovery).
        Cleared = "CLEARED",
    }
);

impl AlarmState {
    /// RAISED -> ACKNOWLEDGED -> CLEARED, and RAISED -> CLEARED directly.
    pub fn can_move_to(self, to: Self) -> bool {
        matches!((self, to), (Self::Raised, Self::Acknowledged) | (Self::Raised | Self::Acknowledged, Self::Cleared))
    }
    pub fn is_open(self) -> bool {
        self != Self::Cleared
    }
}

string_enum!(
    /// What a timeline entry records.
    TimelineKind, "kind" {
        Raised = "RAISED",
        /// The same alarm came again while open.
        Repeated = "REPEATED",
        SeverityChanged = "SEVERITY_CHANGED",
        Acknowledged = "ACKNOWLEDGED",
        Cleared = "CLEARED",
        /// A user's comment.
        Comment = "COMMENT",
        /// An escalation policy's channels were told of it (on raise, or again while unacknowledged).
        Notified = "NOTIFIED",
        /// Not acknowledged in time: an escalation policy raised its severity.
        Escalated = "ESCALATED",
    }
);

/// An alarm kind code such as `LOCK_LOW_BATTERY` or `ELEVATOR_FAULT`: 2-64 characters of
/// `A-Z`, `0-9` and `_`, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AlarmKind(String);

impl AlarmKind {
    /// # Errors
    /// `Invalid { field: "kind" }`.
    pub fn parse(s: &str) -> DomainResult<Self> {
        let ok = (2..=64).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_uppercase())
            && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if ok { Ok(Self(s.to_owned())) } else { Err(DomainError::invalid("kind", "an UPPER_SNAKE_CASE code")) }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A kind the system itself raises (its code is a literal known to be valid).
    pub fn system(code: &'static str) -> Self {
        Self(code.to_owned())
    }
}

/// A stored alarm.
#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    pub id: AlarmId,
    pub tenant_id: TenantId,
    pub device_id: Option<DeviceId>,
    pub integration_id: Option<IntegrationId>,
    pub ticket_id: Option<TicketId>,
    pub kind: AlarmKind,
    pub severity: AlarmSeverity,
    pub state: AlarmState,
    pub message: String,
    pub vendor_code: Option<String>,
    pub vendor_text: Option<String>,
    pub inbound_event_id: Option<InboundEventId>,
    pub occurrences: i32,
    pub raised_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<UserId>,
    pub cleared_at: Option<DateTime<Utc>>,
    pub cleared_by: Option<UserId>,
    pub clear_note: Option<String>,
    pub attributes: Value,
    pub updated_at: DateTime<Utc>,
}

/// A validated raise.
#[derive(Debug, Clone)]
pub struct RaiseAlarm {
    pub device_id: Option<DeviceId>,
    pub integration_id: Option<IntegrationId>,
    pub ticket_id: Option<TicketId>,
    pub kind: AlarmKind,
    pub severity: AlarmSeverity,
    pub message: String,
    pub vendor_code: Option<String>,
    pub vendor_text: Option<String>,
    pub inbound_event_id: Option<InboundEventId>,
    pub raised_at: DateTime<Utc>,
    pub attributes: Value,
}

impl RaiseAlarm {
    /// The key that makes a second raise of the same kind on the same subject update the
    /// open alarm: subject = device, else ticket, else integration.
    pub fn open_key(&self) -> String {
        let subject = match (self.device_id, self.ticket_id, self.integration_id) {
            (Some(d), _, _) => format!("device:{d}"),
            (None, Some(t), _) => format!("ticket:{t}"),
            (None, None, Some(i)) => format!("integration:{i}"),
            (None, None, None) => "tenant".to_owned(),
        };
        format!("{subject}:{}", self.kind.as_str())
    }
}

/// Whether a raise opened a new alarm or updated the open one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaiseOutcome {
    Opened,
    Repeated,
}

/// One step in an alarm's timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEntry {
    pub id: EntryId,
    pub alarm_id: AlarmId,
    pub at: DateTime<Utc>,
    /// The user who acted; none for system entries.
    pub actor: Option<UserId>,
    pub kind: TimelineKind,
    pub text: String,
}

/// Filters of `alarms`; every set field must match.
#[derive(Debug, Clone, Default)]
pub struct AlarmFilter {
    pub state: Option<AlarmState>,
    /// Only open alarms (RAISED or ACKNOWLEDGED).
    pub open: bool,
    pub severity: Option<AlarmSeverity>,
    pub device_id: Option<DeviceId>,
    pub home_id: Option<HomeId>,
    pub integration_id: Option<IntegrationId>,
    pub kind: Option<String>,
    /// Raised at or after.
    pub from: Option<DateTime<Utc>>,
    /// Raised before.
    pub to: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_machine() {
        use AlarmState::*;
        assert!(Raised.can_move_to(Acknowledged));
        assert!(Raised.can_move_to(Cleared));
        assert!(Acknowledged.can_move_to(Cleared));
        assert!(!Acknowledged.can_move_to(Raised));
        assert!(!Cleared.can_move_to(Raised));
        assert!(!Cleared.can_move_to(Acknowledged));
        assert!(!Cleared.can_move_to(Cleared));
        assert!(!Acknowledged.can_move_to(Acknowledged));
    }

    #[test]
    fn kinds_are_codes() {
        assert!(AlarmKind::parse("LOCK_LOW_BATTERY").is_ok());
        assert!(AlarmKind::parse("lock").is_err());
        assert!(AlarmKind::parse("_X").is_err());
    }

    #[test]
    fn open_key_prefers_the_device() {
        let r = RaiseAlarm {
            device_id: Some(DeviceId::new()),
            integration_id: Some(IntegrationId::new()),
            ticket_id: None,
            kind: AlarmKind::parse("ELEVATOR_FAULT").expect("kind"),
            severity: AlarmSeverity::Major,
            message: String::new(),
            vendor_code: None,
            vendor_text: None,
            inbound_event_id: None,
            raised_at: Utc::now(),
            attributes: Value::Null,
        };
        assert!(r.open_key().starts_with("device:"));
        assert!(r.open_key().ends_with(":ELEVATOR_FAULT"));
    }
}

/// One move of the alarm state machine, as a repository records it.
#[derive(Debug, Clone)]
pub struct Step {
    pub from: AlarmState,
    pub to: AlarmState,
    /// Who moved it; `None` for the system (a source's own recovery).
    pub actor: Option<crate::ids::UserId>,
    pub note: Option<String>,
    pub at: chrono::DateTime<chrono::Utc>,
}
