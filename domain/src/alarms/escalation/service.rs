use super::rules::more_severe;
use super::{
    DoneStep, DueStep, EscalationPolicy, EscalationRepo, EscalationStep, NewEscalationPolicy, NewStep, StepKind,
    due_steps,
};
use crate::alarms::outbound::{AlarmEvent, webhook_payload};
use crate::alarms::{Alarm, AlarmFilter, AlarmKind, AlarmRepo, AlarmSeverity, AlarmState, TimelineKind};
use crate::bus::{AlarmAction, BusEvent, Change, EventBus};
use crate::clock::{self, Clock};
use crate::deliveries::{DeliveryKind, DeliveryQueue, NewDelivery};
use crate::ids::{AlarmId, EscalationPolicyId, IntegrationId, TenantId};
use crate::integrations::{Integration, IntegrationKind, IntegrationRepo, NewIntegration};
use crate::security::SecretBox;
use crate::{Actor, DomainError, DomainResult, PageRequest};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// Delivery kind of escalation notices (sent by the webhook sender, signed like Standard
/// Webhooks because their integration is a `NOTIFICATION_WEBHOOK`).
pub const NOTIFICATION: &str = "webhook.notification";

/// The longest `ackWithinMinutes` and `renotifyEveryMinutes`: 30 days.
const MAX_MINUTES: i32 = 43_200;
/// Most kinds and channels one policy names.
const MAX_KINDS: usize = 50;
const MAX_CHANNELS: usize = 20;
/// Most RAISED alarms of one tenant looked at per check (newest first).
const MAX_ALARMS: usize = 10_000;

/// `saveEscalationPolicy`, as received.
#[derive(Debug, Clone)]
pub struct SaveEscalationPolicy {
    /// The policy to change; a new one when absent.
    pub id: Option<EscalationPolicyId>,
    pub name: String,
    pub kinds: Vec<String>,
    pub min_severity: AlarmSeverity,
    pub ack_within_minutes: i32,
    pub escalate_to: Option<AlarmSeverity>,
    pub renotify_every_minutes: Option<i32>,
    pub channel_ids: Vec<IntegrationId>,
}

/// `saveNotificationChannel`, as received (the only kind is a webhook).
#[derive(Debug, Clone)]
pub struct SaveChannel {
    /// The channel to change; a new one when absent.
    pub id: Option<IntegrationId>,
    pub name: String,
    pub url: String,
}

/// A saved channel; the signing secret only when it was created (shown this once).
#[derive(Debug, Clone)]
pub struct SavedChannel {
    pub channel: Integration,
    pub secret: Option<String>,
}

/// Escalation policies, notification channels, and the periodic check that takes the
/// steps due.
#[derive(Clone)]
pub struct EscalationService {
    repo: Arc<dyn EscalationRepo>,
    alarms: Arc<dyn AlarmRepo>,
    integrations: Arc<dyn IntegrationRepo>,
    secrets: Arc<dyn SecretBox>,
    queue: Arc<dyn DeliveryQueue>,
    bus: Arc<dyn EventBus>,
    /// Where the time comes from (the time a notice is queued for; checks take theirs).
    clock: Arc<dyn Clock>,
}

/// The ports the service needs.
pub struct EscalationPorts {
    pub repo: Arc<dyn EscalationRepo>,
    pub alarms: Arc<dyn AlarmRepo>,
    pub integrations: Arc<dyn IntegrationRepo>,
    pub secrets: Arc<dyn SecretBox>,
    pub queue: Arc<dyn DeliveryQueue>,
    pub bus: Arc<dyn EventBus>,
}

impl EscalationService {
    pub fn new(p: EscalationPorts) -> Self {
        Self {
            repo: p.repo,
            alarms: p.alarms,
            integrations: p.integrations,
            secrets: p.secrets,
            queue: p.queue,
            bus: p.bus,
            clock: clock::system(),
        }
    }

    /// Reads the time from `clock` instead of the system clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Creates a policy, or changes the one named by `input.id`.
    ///
    /// # Errors
    /// `Forbidden` unless tenant admin; `Invalid` naming the bad field (a kind, minutes
    /// outside 1..=43200, an escalation severity not above `minSeverity`, a channel id
    /// that is no notification channel of the tenant); `NotFound` for an unknown id;
    /// `Duplicate` on a taken name.
    pub async fn save_policy(&self, actor: &Actor, input: SaveEscalationPolicy) -> DomainResult<EscalationPolicy> {
        let tenant = actor.require_tenant_admin()?;
        let name = valid_name(&input.name)?;
        if input.kinds.len() > MAX_KINDS {
            return Err(DomainError::invalid("kinds", format!("at most {MAX_KINDS}")));
        }
        let mut kinds: Vec<AlarmKind> = Vec::with_capacity(input.kinds.len());
        for k in &input.kinds {
            let kind =
                AlarmKind::parse(k.trim()).map_err(|_| DomainError::invalid("kinds", "UPPER_SNAKE_CASE codes"))?;
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        minutes("ackWithinMinutes", input.ack_within_minutes)?;
        if let Some(m) = input.renotify_every_minutes {
            minutes("renotifyEveryMinutes", m)?;
        }
        if input.escalate_to.is_some_and(|to| !more_severe(to, input.min_severity)) {
            return Err(DomainError::invalid("escalateToSeverity", "must be more severe than minSeverity"));
        }
        let mut channel_ids: Vec<IntegrationId> = Vec::with_capacity(input.channel_ids.len());
        for id in input.channel_ids {
            if !channel_ids.contains(&id) {
                channel_ids.push(id);
            }
        }
        if channel_ids.len() > MAX_CHANNELS {
            return Err(DomainError::invalid("channelIds", format!("at most {MAX_CHANNELS}")));
        }
        for id in &channel_ids {
            let found = self.integrations.get(tenant, *id).await?;
            if !found.is_some_and(|i| i.kind == IntegrationKind::NotificationWebhook) {
                return Err(DomainError::invalid("channelIds", format!("{id} is no notification channel")));
            }
        }
        let new = NewEscalationPolicy {
            name,
            kinds,
            min_severity: input.min_severity,
            ack_within_minutes: input.ack_within_minutes,
            escalate_to: input.escalate_to,
            renotify_every_minutes: input.renotify_every_minutes,
            channel_ids,
        };
        match input.id {
            Some(id) => self.repo.update_policy(tenant, id, new).await,
            None => self.repo.create_policy(tenant, new).await,
        }
    }

    /// Oldest first.
    ///
    /// # Errors
    /// `Forbidden` for actors without a tenant.
    pub async fn policies(&self, actor: &Actor) -> DomainResult<Vec<EscalationPolicy>> {
        self.repo.list_policies(actor.require_reader()?).await
    }

    /// Creates a channel (with a fresh `whsec_` signing secret, answered this once) or
    /// changes the name and URL of the one named by `input.id` (its secret kept).
    ///
    /// # Errors
    /// `Forbidden` unless tenant admin; `Invalid { field: "name" | "url" }`; `NotFound`
    /// for an id that is no notification channel of the tenant; `Duplicate` on a name an
    /// integration of the tenant has.
    pub async fn save_channel(&self, actor: &Actor, input: SaveChannel) -> DomainResult<SavedChannel> {
        let tenant = actor.require_tenant_admin()?;
        let name = valid_name(&input.name)?;
        let kind = IntegrationKind::NotificationWebhook;
        let settings = kind
            .validate_settings(&json!({"url": input.url.trim()}))
            .map_err(|_| DomainError::invalid("url", "must be an absolute http(s) URL"))?;
        let mut new = NewIntegration {
            kind,
            name,
            settings,
            credentials_sealed: None,
            credential_names: vec!["signingSecret".to_owned()],
            hook_seed: None,
        };
        if let Some(id) = input.id {
            let existing = self.integrations.get(tenant, id).await?;
            if !existing.is_some_and(|i| i.kind == kind) {
                return Err(DomainError::NotFound("notification channel"));
            }
            let channel = self.integrations.update(tenant, id, new).await?;
            return Ok(SavedChannel { channel, secret: None });
        }
        let secret = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(self.secrets.random_secret(32).as_bytes())
        );
        let mut credentials = Map::new();
        credentials.insert("signingSecret".to_owned(), Value::String(secret.clone()));
        let bytes = serde_json::to_vec(&credentials).map_err(|e| DomainError::Unknown(e.into()))?;
        new.credentials_sealed = Some(self.secrets.seal(&bytes)?);
        let channel = self.integrations.create(tenant, new).await?;
        Ok(SavedChannel { channel, secret: Some(secret) })
    }

    /// The tenant's notification channels, oldest first.
    ///
    /// # Errors
    /// `Forbidden` for actors without a tenant.
    pub async fn channels(&self, actor: &Actor) -> DomainResult<Vec<Integration>> {
        self.channels_of(actor.require_reader()?).await
    }

    async fn channels_of(&self, tenant: TenantId) -> DomainResult<Vec<Integration>> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self.integrations.list(tenant, PageRequest::new(Some(100), after)?).await?;
            after = page.items.last().map(|i| i.id.as_uuid());
            out.extend(page.items.into_iter().filter(|i| i.kind == IntegrationKind::NotificationWebhook));
            if !page.has_next_page {
                return Ok(out);
            }
        }
    }

    /// The steps taken on an alarm, oldest first.
    ///
    /// # Errors
    /// `Forbidden` for actors without a tenant.
    pub async fn steps(&self, actor: &Actor, alarm: AlarmId) -> DomainResult<Vec<EscalationStep>> {
        self.repo.steps(actor.require_reader()?, &[alarm]).await
    }

    /// The periodic check as of `now`: every step due on the RAISED alarms the tenants'
    /// policies watch is taken (recorded with its timeline entry and notices, which are
    /// then queued). Answers how many steps this call took; a step another process took
    /// first is not counted.
    ///
    /// # Errors
    /// `Unknown` on storage failure (the next check takes what this one left).
    pub async fn check(&self, now: DateTime<Utc>) -> DomainResult<usize> {
        let mut by_tenant: BTreeMap<TenantId, Vec<EscalationPolicy>> = BTreeMap::new();
        for p in self.repo.all_policies().await? {
            by_tenant.entry(p.tenant_id).or_default().push(p);
        }
        let mut taken = 0;
        for (tenant, policies) in by_tenant {
            match self.check_tenant(tenant, &policies, now).await {
                Ok(n) => taken += n,
                // One tenant's failure does not hold back the others.
                Err(e) => tracing::warn!(tenant_id = %tenant, error = %e, "escalation check failed"),
            }
        }
        Ok(taken)
    }

    async fn check_tenant(
        &self,
        tenant: TenantId,
        policies: &[EscalationPolicy],
        now: DateTime<Utc>,
    ) -> DomainResult<usize> {
        let channels: HashSet<IntegrationId> = self.channels_of(tenant).await?.into_iter().map(|c| c.id).collect();
        let filter = AlarmFilter { state: Some(AlarmState::Raised), ..AlarmFilter::default() };
        let (mut taken, mut seen, mut after) = (0, 0, None);
        loop {
            let page = self.alarms.list(tenant, &filter, PageRequest::new(Some(100), after)?).await?;
            after = page.items.last().map(|a| a.id.as_uuid());
            seen += page.items.len();
            let watched: Vec<&Alarm> =
                page.items.iter().filter(|a| policies.iter().any(|p| watches_new(p, a))).collect();
            if !watched.is_empty() {
                let ids: Vec<AlarmId> = watched.iter().map(|a| a.id).collect();
                let steps = self.repo.steps(tenant, &ids).await?;
                for alarm in watched {
                    for policy in policies.iter().filter(|p| watches_new(p, alarm)) {
                        let done: Vec<DoneStep> = steps
                            .iter()
                            .filter(|s| s.alarm_id == alarm.id && s.policy_id == policy.id)
                            .map(|s| DoneStep { kind: s.kind, number: s.number, at: s.at })
                            .collect();
                        for due in due_steps(policy, alarm, &done, now) {
                            if self.take(tenant, policy, alarm, &channels, due, now).await? {
                                taken += 1;
                            }
                        }
                    }
                }
            }
            if !page.has_next_page || seen >= MAX_ALARMS {
                return Ok(taken);
            }
        }
    }

    /// Records one step with its notices; queues them and announces an escalation.
    async fn take(
        &self,
        tenant: TenantId,
        policy: &EscalationPolicy,
        alarm: &Alarm,
        channels: &HashSet<IntegrationId>,
        due: DueStep,
        now: DateTime<Utc>,
    ) -> DomainResult<bool> {
        let mut shown = alarm.clone();
        if let Some(s) = due.severity {
            shown.severity = s;
        }
        let targets: Vec<IntegrationId> = policy.channel_ids.iter().copied().filter(|c| channels.contains(c)).collect();
        let (event, entry) = match due.kind {
            StepKind::Notify => {
                ("alarm.notified", (TimelineKind::Notified, told(targets.len(), "notified", &policy.name)))
            }
            StepKind::Renotify => (
                "alarm.renotified",
                (TimelineKind::Notified, told(targets.len(), &format!("re-notified (#{})", due.number), &policy.name)),
            ),
            StepKind::Escalate => {
                let change = match due.severity {
                    Some(s) => format!("{} -> {}", alarm.severity.as_str(), s.as_str()),
                    None => format!("severity kept at {}", alarm.severity.as_str()),
                };
                let text = format!(
                    "not acknowledged within {} minutes: escalated ({change}); {}",
                    policy.ack_within_minutes,
                    told(targets.len(), "notified", &policy.name)
                );
                ("alarm.escalated", (TimelineKind::Escalated, text))
            }
        };
        let payload = json!({
            "type": event,
            "timestamp": now.to_rfc3339(),
            "data": {
                "alarm": webhook_payload(&shown, AlarmEvent::Raised)["alarm"].clone(),
                "policy": {"id": policy.id.to_string(), "name": policy.name},
                "step": {"kind": due.kind.as_str(), "number": due.number},
            },
        });
        let key = format!("escalation:{}:{}:{}:{}", alarm.id, policy.id, due.kind.as_str(), due.number);
        let deliveries = targets
            .iter()
            .map(|c| NewDelivery {
                integration_id: *c,
                kind: DeliveryKind::from_static(NOTIFICATION),
                idempotency_key: key.clone(),
                // One alarm's notices reach a channel in the order they were taken.
                order_key: Some(format!("alarm:{}", alarm.id)),
                payload: payload.clone(),
                subject: Some(format!("alarm:{}", alarm.id)),
            })
            .collect();
        let step =
            EscalationStep { alarm_id: alarm.id, policy_id: policy.id, kind: due.kind, number: due.number, at: now };
        let Some(sent) =
            self.repo.record_step(tenant, NewStep { step, severity: due.severity, entry, deliveries }).await?
        else {
            return Ok(false);
        };
        for id in sent {
            // Queued for the wall clock's now: a check may run for another time.
            if let Err(e) = self.queue.schedule(id, self.clock.now()).await {
                tracing::warn!(error = %e, delivery_id = %id, "queue unreachable; the sweep will send it");
            }
        }
        if due.kind == StepKind::Escalate {
            self.bus.publish(BusEvent {
                tenant_id: tenant,
                change: Change::AlarmChanged { alarm_id: alarm.id, action: AlarmAction::Escalated },
            });
        }
        Ok(true)
    }
}

/// A policy watches the alarms raised since it exists: saving one does not flood the
/// channels with every alarm already open.
fn watches_new(p: &EscalationPolicy, a: &Alarm) -> bool {
    a.raised_at >= p.created_at && p.watches(a)
}

fn told(n: usize, what: &str, policy: &str) -> String {
    let s = if n == 1 { "" } else { "s" };
    format!("{what} {n} channel{s} (policy \"{policy}\")")
}

fn valid_name(name: &str) -> DomainResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(DomainError::invalid("name", "1-100 characters"));
    }
    Ok(name.to_owned())
}

fn minutes(field: &str, m: i32) -> DomainResult<()> {
    if (1..=MAX_MINUTES).contains(&m) {
        Ok(())
    } else {
        Err(DomainError::invalid(field, format!("must be between 1 and {MAX_MINUTES} minutes")))
    }
}
