//! What an escalation policy owes an alarm at a time: one pure function, so the periodic
//! check, a restart and a second process all reach the same answer from the same record.

use super::EscalationPolicy;
use crate::alarms::{Alarm, AlarmSeverity, AlarmState};
use crate::enums::string_enum;
use chrono::{DateTime, Duration, Utc};

string_enum!(
    /// The steps a policy takes on an alarm.
    StepKind, "kind" {
        /// The channels are told when the alarm is raised (number 0).
        Notify = "NOTIFY",
        /// Not acknowledged in time: the severity is raised and the channels told (number 0).
        Escalate = "ESCALATE",
        /// Told again while still unacknowledged (numbers 1, 2 ...).
        Renotify = "RENOTIFY",
    }
);

/// A step already taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoneStep {
    pub kind: StepKind,
    pub number: i32,
    pub at: DateTime<Utc>,
}

/// A step to take now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueStep {
    pub kind: StepKind,
    pub number: i32,
    /// For an escalation: the severity the alarm goes to, when higher than its own.
    pub severity: Option<AlarmSeverity>,
}

/// 0 for CRITICAL ... 4 for INFO: lower is more severe.
const fn rank(s: AlarmSeverity) -> u8 {
    match s {
        AlarmSeverity::Critical => 0,
        AlarmSeverity::Major => 1,
        AlarmSeverity::Minor => 2,
        AlarmSeverity::Warning => 3,
        AlarmSeverity::Info => 4,
    }
}

/// Whether `a` is more severe than `b`.
pub(super) const fn more_severe(a: AlarmSeverity, b: AlarmSeverity) -> bool {
    rank(a) < rank(b)
}

impl EscalationPolicy {
    /// Whether the policy watches this alarm: its kind listed (or none listed) and its
    /// severity at least the policy's least.
    pub fn watches(&self, alarm: &Alarm) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&alarm.kind)) && rank(alarm.severity) <= rank(self.min_severity)
    }
}

/// The steps `policy` owes `alarm` at `now`, given the steps `done` already (in the order
/// they are to be taken). Nothing is owed to an alarm that is not RAISED (acknowledged or
/// cleared) or that the policy does not watch. Otherwise:
/// - NOTIFY once;
/// - ESCALATE once, from `raised_at + ack_within`;
/// - RENOTIFY (the next number) once `renotify_every` has passed since the last notice of
///   any kind, so a late check (a restart after an outage) sends one notice, not a burst.
pub fn due_steps(policy: &EscalationPolicy, alarm: &Alarm, done: &[DoneStep], now: DateTime<Utc>) -> Vec<DueStep> {
    if alarm.state != AlarmState::Raised || !policy.watches(alarm) {
        return Vec::new();
    }
    let taken = |kind: StepKind| done.iter().any(|d| d.kind == kind);
    let mut due = Vec::new();
    if !taken(StepKind::Notify) {
        due.push(DueStep { kind: StepKind::Notify, number: 0, severity: None });
    }
    let deadline = alarm.raised_at + Duration::minutes(i64::from(policy.ack_within_minutes));
    if !taken(StepKind::Escalate) && now >= deadline {
        let severity = policy.escalate_to.filter(|to| more_severe(*to, alarm.severity));
        due.push(DueStep { kind: StepKind::Escalate, number: 0, severity });
    }
    if due.is_empty()
        && let Some(every) = policy.renotify_every_minutes
        && let Some(last) = done.iter().map(|d| d.at).max()
        && now >= last + Duration::minutes(i64::from(every))
    {
        let number = done.iter().filter(|d| d.kind == StepKind::Renotify).map(|d| d.number).max().unwrap_or(0) + 1;
        due.push(DueStep { kind: StepKind::Renotify, number, severity: None });
    }
    due
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alarms::AlarmKind;
    use crate::ids::{AlarmId, EscalationPolicyId, TenantId};
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).single().expect("t0")
    }

    fn policy(ack: i32, renotify: Option<i32>) -> EscalationPolicy {
        EscalationPolicy {
            id: EscalationPolicyId::new(),
            tenant_id: TenantId::new(),
            name: "p".into(),
            kinds: vec![AlarmKind::system("CABINET_SMOKE")],
            min_severity: AlarmSeverity::Minor,
            ack_within_minutes: ack,
            escalate_to: Some(AlarmSeverity::Critical),
            renotify_every_minutes: renotify,
            channel_ids: Vec::new(),
            created_at: t0(),
            updated_at: t0(),
        }
    }

    fn alarm(kind: &'static str, severity: AlarmSeverity, state: AlarmState) -> Alarm {
        Alarm {
            id: AlarmId::new(),
            tenant_id: TenantId::new(),
            device_id: None,
            integration_id: None,
            ticket_id: None,
            kind: AlarmKind::system(kind),
            severity,
            state,
            message: String::new(),
            vendor_code: None,
            vendor_text: None,
            inbound_event_id: None,
            occurrences: 1,
            raised_at: t0(),
            last_seen_at: t0(),
            acknowledged_at: None,
            acknowledged_by: None,
            cleared_at: None,
            cleared_by: None,
            clear_note: None,
            attributes: serde_json::Value::Null,
            updated_at: t0(),
        }
    }

    fn at(minutes: i64) -> DateTime<Utc> {
        t0() + Duration::minutes(minutes)
    }

    fn done(kind: StepKind, number: i32, minutes: i64) -> DoneStep {
        DoneStep { kind, number, at: at(minutes) }
    }

    #[test]
    fn a_raised_alarm_is_notified_once() {
        let (p, a) = (policy(10, None), alarm("CABINET_SMOKE", AlarmSeverity::Major, AlarmState::Raised));
        assert_eq!(due_steps(&p, &a, &[], at(0)), vec![DueStep { kind: StepKind::Notify, number: 0, severity: None }]);
        assert!(due_steps(&p, &a, &[done(StepKind::Notify, 0, 0)], at(9)).is_empty());
    }

    #[test]
    fn unacknowledged_in_time_it_escalates_once_to_the_higher_severity() {
        let (p, a) = (policy(10, None), alarm("CABINET_SMOKE", AlarmSeverity::Major, AlarmState::Raised));
        let notified = [done(StepKind::Notify, 0, 0)];
        assert!(due_steps(&p, &a, &notified, at(10) - Duration::seconds(1)).is_empty());
        let due = due_steps(&p, &a, &notified, at(10));
        assert_eq!(due, vec![DueStep { kind: StepKind::Escalate, number: 0, severity: Some(AlarmSeverity::Critical) }]);
        let escalated = [done(StepKind::Notify, 0, 0), done(StepKind::Escalate, 0, 10)];
        assert!(due_steps(&p, &a, &escalated, at(500)).is_empty(), "once, and no re-notifying without a period");
        // Already as severe as the policy escalates to: the escalation changes nothing.
        let critical = alarm("CABINET_SMOKE", AlarmSeverity::Critical, AlarmState::Raised);
        assert_eq!(due_steps(&p, &critical, &notified, at(10))[0].severity, None);
    }

    #[test]
    fn it_renotifies_every_period_after_the_last_notice() {
        let (p, a) = (policy(10, Some(4)), alarm("CABINET_SMOKE", AlarmSeverity::Major, AlarmState::Raised));
        let mut steps = vec![done(StepKind::Notify, 0, 0)];
        assert!(due_steps(&p, &a, &steps, at(3)).is_empty());
        let renotify = |n| vec![DueStep { kind: StepKind::Renotify, number: n, severity: None }];
        assert_eq!(due_steps(&p, &a, &steps, at(4)), renotify(1));
        steps.push(done(StepKind::Renotify, 1, 4));
        assert!(due_steps(&p, &a, &steps, at(7)).is_empty());
        // The escalation is a notice too: the period counts from it.
        steps.push(done(StepKind::Escalate, 0, 10));
        assert!(due_steps(&p, &a, &steps, at(13)).is_empty());
        assert_eq!(due_steps(&p, &a, &steps, at(14)), renotify(2));
        // A check late by hours sends one notice, not one per missed period.
        assert_eq!(due_steps(&p, &a, &steps, at(600)), renotify(2));
    }

    #[test]
    fn acknowledged_or_cleared_alarms_are_owed_nothing() {
        let p = policy(10, Some(1));
        for state in [AlarmState::Acknowledged, AlarmState::Cleared] {
            let a = alarm("CABINET_SMOKE", AlarmSeverity::Major, state);
            assert!(due_steps(&p, &a, &[], at(100)).is_empty(), "{state:?}");
        }
    }

    #[test]
    fn a_policy_watches_its_kinds_from_its_least_severity() {
        let p = policy(10, None);
        assert!(p.watches(&alarm("CABINET_SMOKE", AlarmSeverity::Minor, AlarmState::Raised)));
        assert!(!p.watches(&alarm("CABINET_SMOKE", AlarmSeverity::Warning, AlarmState::Raised)));
        assert!(!p.watches(&alarm("CABINET_WATER", AlarmSeverity::Critical, AlarmState::Raised)));
        let every_kind = EscalationPolicy { kinds: Vec::new(), ..p };
        assert!(every_kind.watches(&alarm("CABINET_WATER", AlarmSeverity::Critical, AlarmState::Raised)));
        assert!(due_steps(&every_kind, &alarm("X1", AlarmSeverity::Info, AlarmState::Raised), &[], at(99)).is_empty());
    }

    proptest! {
        /// Checking at any times, in order, and taking what is due: each step is taken at
        /// most once, notices are at least a period apart, and the escalation comes only
        /// after the deadline.
        #[test]
        fn checks_at_any_times_take_each_step_once(mut offsets in proptest::collection::vec(0i64..2_000, 1..40)) {
            offsets.sort_unstable();
            let (p, a) = (policy(30, Some(7)), alarm("CABINET_SMOKE", AlarmSeverity::Minor, AlarmState::Raised));
            let mut taken: Vec<DoneStep> = Vec::new();
            for m in offsets {
                let now = at(m);
                for d in due_steps(&p, &a, &taken, now) {
                    prop_assert!(!taken.iter().any(|t| t.kind == d.kind && t.number == d.number));
                    if d.kind == StepKind::Escalate {
                        prop_assert!(m >= 30);
                    }
                    if d.kind == StepKind::Renotify {
                        let last = taken.iter().map(|t| t.at).max().unwrap_or(now);
                        prop_assert!(now - last >= Duration::minutes(7));
                    }
                    taken.push(DoneStep { kind: d.kind, number: d.number, at: now });
                }
            }
            prop_assert_eq!(taken.iter().filter(|t| t.kind == StepKind::Escalate).count() <= 1, true);
        }
    }
}
