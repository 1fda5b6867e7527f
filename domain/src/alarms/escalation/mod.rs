//! Alarm escalation (issue 18): a tenant's escalation policies say which alarms (kinds,
//! a least severity) they watch, and for each watched alarm that is still RAISED:
//! notify the policy's channels when it is raised; escalate it once to a higher severity
//! when nobody acknowledged it within `ackWithinMinutes`; notify again every
//! `renotifyEveryMinutes` until it is acknowledged or cleared.
//!
//! The rules are one pure function ([`due_steps`]) of the policy, the alarm, the steps
//! already taken and the time. A periodic check ([`EscalationService::check`], run by the
//! scheduler) takes what is due; each step is recorded under a unique key (alarm, policy,
//! step kind, step number) in the same transaction as its timeline entry and its
//! deliveries, and only while the alarm is still RAISED, so a restart or a second process
//! never sends a step twice and an acknowledgement stops the next step at once.
//!
//! Notification channels are integrations of kind `NOTIFICATION_WEBHOOK`: their notices
//! are deliveries (kind `webhook.notification`), retried and listed like any other.

mod rules;
mod service;

pub use rules::{DoneStep, DueStep, StepKind, due_steps};
pub use service::{EscalationPorts, EscalationService, NOTIFICATION, SaveChannel, SaveEscalationPolicy, SavedChannel};

use super::{AlarmKind, AlarmSeverity, TimelineKind};
use crate::DomainResult;
use crate::deliveries::NewDelivery;
use crate::ids::{AlarmId, DeliveryId, EscalationPolicyId, IntegrationId, TenantId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// A stored escalation policy.
#[derive(Debug, Clone, PartialEq)]
pub struct EscalationPolicy {
    pub id: EscalationPolicyId,
    pub tenant_id: TenantId,
    pub name: String,
    /// The alarm kinds it watches; empty: every kind.
    pub kinds: Vec<AlarmKind>,
    /// The least severity it watches.
    pub min_severity: AlarmSeverity,
    /// Minutes an alarm may stay RAISED before it is escalated.
    pub ack_within_minutes: i32,
    /// The severity an escalation raises the alarm to (never lowers it); `None`: the
    /// escalation notifies without changing the severity.
    pub escalate_to: Option<AlarmSeverity>,
    /// Minutes between notices while the alarm stays RAISED; `None`: no re-notifying.
    pub renotify_every_minutes: Option<i32>,
    /// The notification channels it tells.
    pub channel_ids: Vec<IntegrationId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A validated policy to store.
#[derive(Debug, Clone)]
pub struct NewEscalationPolicy {
    pub name: String,
    pub kinds: Vec<AlarmKind>,
    pub min_severity: AlarmSeverity,
    pub ack_within_minutes: i32,
    pub escalate_to: Option<AlarmSeverity>,
    pub renotify_every_minutes: Option<i32>,
    pub channel_ids: Vec<IntegrationId>,
}

/// One step taken on an alarm under a policy.
#[derive(Debug, Clone, PartialEq)]
pub struct EscalationStep {
    pub alarm_id: AlarmId,
    pub policy_id: EscalationPolicyId,
    pub kind: StepKind,
    /// 0 for the notice on raise and the escalation; 1, 2 ... for re-notices.
    pub number: i32,
    pub at: DateTime<Utc>,
}

/// A step to record, with what it writes beside it.
#[derive(Debug, Clone)]
pub struct NewStep {
    pub step: EscalationStep,
    /// The severity the alarm is raised to (an escalation to a higher one).
    pub severity: Option<AlarmSeverity>,
    /// The timeline entry of the step.
    pub entry: (TimelineKind, String),
    /// The notices to the policy's channels.
    pub deliveries: Vec<NewDelivery>,
}

/// Escalation policies and the steps taken under them.
#[async_trait]
pub trait EscalationRepo: Send + Sync {
    /// # Errors
    /// `Duplicate` when the tenant already has a policy of that name.
    async fn create_policy(&self, tenant: TenantId, input: NewEscalationPolicy) -> DomainResult<EscalationPolicy>;
    /// # Errors
    /// `NotFound("escalation policy")` when absent or in another tenant; `Duplicate` on a
    /// taken name.
    async fn update_policy(
        &self,
        tenant: TenantId,
        id: EscalationPolicyId,
        input: NewEscalationPolicy,
    ) -> DomainResult<EscalationPolicy>;
    /// # Errors
    /// `Unknown` on storage failure.
    async fn get_policy(&self, tenant: TenantId, id: EscalationPolicyId) -> DomainResult<Option<EscalationPolicy>>;
    /// Oldest first.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn list_policies(&self, tenant: TenantId) -> DomainResult<Vec<EscalationPolicy>>;
    /// Every policy of every tenant: for the periodic check, which acts for each tenant
    /// (never for answers to users).
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn all_policies(&self) -> DomainResult<Vec<EscalationPolicy>>;
    /// The steps taken on these alarms, oldest first.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn steps(&self, tenant: TenantId, alarms: &[AlarmId]) -> DomainResult<Vec<EscalationStep>>;
    /// Records a step if it was not taken yet and the alarm is still RAISED, with its
    /// timeline entry, the severity change and the deliveries, in one transaction;
    /// `None` (nothing written) when the step was taken already or the alarm moved on.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn record_step(&self, tenant: TenantId, step: NewStep) -> DomainResult<Option<Vec<DeliveryId>>>;
}
