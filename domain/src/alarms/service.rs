use super::outbound::{self, AlarmEvent, AlarmRelay, AlarmSubject, RelayPlan};
use super::{
    Alarm, AlarmFilter, AlarmKind, AlarmRepo, AlarmSeverity, AlarmState, RaiseAlarm, RaiseOutcome, Step, TimelineEntry,
};
use crate::bus::{AlarmAction, BusEvent, Change, EventBus};
use crate::clock::{self, Clock};
use crate::deliveries::{DeliveryQueue, Outbox, no_outbox};
use crate::devices::DeviceRepo;
use crate::ids::{AlarmId, DeliveryId, DeviceId, IntegrationId, TenantId, TicketId};
use crate::integrations::{IntegrationKind, IntegrationRepo};
use crate::tickets::TicketRepo;
use crate::ttl::{CONFIG_TTL, TtlCache};
use crate::{Actor, DomainError, DomainResult, Page, PageRequest};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::sync::Arc;

/// Input of `reportAlarm`, as received.
#[derive(Debug, Clone)]
pub struct ReportAlarmInput {
    pub device_id: Option<DeviceId>,
    pub ticket_id: Option<TicketId>,
    pub kind: String,
    pub severity: AlarmSeverity,
    pub message: String,
    pub raised_at: Option<DateTime<Utc>>,
    pub attributes: Option<Value>,
}

/// Raising, acknowledging, clearing and commenting alarms; every step is published.
#[derive(Clone)]
pub struct AlarmService {
    repo: Arc<dyn AlarmRepo>,
    devices: Arc<dyn DeviceRepo>,
    tickets: Arc<dyn TicketRepo>,
    bus: Arc<dyn EventBus>,
    outbound: Option<Outbound>,
    /// Vendor modules that send some alarms on.
    relays: Vec<Arc<dyn AlarmRelay>>,
    /// Where the time comes from.
    clock: Arc<dyn Clock>,
}

/// Where alarm changes are sent: the tenant's webhook integrations, through the queue.
#[derive(Clone)]
struct Outbound {
    integrations: Arc<dyn IntegrationRepo>,
    queue: Arc<dyn DeliveryQueue>,
    /// The webhook integrations of each tenant as of recently (read on every alarm change;
    /// a new webhook integration receives alarm changes within `CONFIG_TTL`).
    webhooks: Arc<TtlCache<TenantId, Vec<IntegrationId>>>,
}

impl AlarmService {
    pub fn new(
        repo: Arc<dyn AlarmRepo>,
        devices: Arc<dyn DeviceRepo>,
        tickets: Arc<dyn TicketRepo>,
        bus: Arc<dyn EventBus>,
    ) -> Self {
        Self { repo, devices, tickets, bus, outbound: None, relays: Vec::new(), clock: clock::system() }
    }

    /// Adds a vendor module that sends some alarms' raises and clears on.
    #[must_use]
    pub fn with_relay(mut self, relay: Arc<dyn AlarmRelay>) -> Self {
        self.relays.push(relay);
        self
    }

    /// The relays' plans for an alarm about `subject`.
    async fn routes(&self, tenant: TenantId, subject: AlarmSubject<'_>) -> DomainResult<Vec<RelayPlan>> {
        let mut plans = Vec::new();
        for r in &self.relays {
            plans.extend(r.route(tenant, subject).await?);
        }
        Ok(plans)
    }

    /// Reads the time from `clock` instead of the system clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sends alarm changes to the tenant's `WEBHOOK` integrations (outbox deliveries).
    #[must_use]
    pub fn with_outbound(mut self, integrations: Arc<dyn IntegrationRepo>, queue: Arc<dyn DeliveryQueue>) -> Self {
        let webhooks = Arc::new(TtlCache::new(CONFIG_TTL, 10_000));
        self.outbound = Some(Outbound { integrations, queue, webhooks });
        self
    }

    /// The same service over a unit of work's repositories, publishing to `bus` and
    /// waking deliveries through `queue` (both held until the unit commits).
    #[must_use]
    pub fn within(
        &self,
        repo: Arc<dyn AlarmRepo>,
        devices: Arc<dyn DeviceRepo>,
        bus: Arc<dyn EventBus>,
        queue: Arc<dyn DeliveryQueue>,
    ) -> Self {
        let outbound = self.outbound.clone().map(|o| Outbound { queue, ..o });
        Self {
            repo,
            devices,
            bus,
            outbound,
            tickets: self.tickets.clone(),
            relays: self.relays.clone(),
            clock: self.clock.clone(),
        }
    }

    /// The tenant's webhook integrations (at most 100 are served).
    async fn webhooks(&self, tenant: TenantId) -> DomainResult<Vec<IntegrationId>> {
        let Some(o) = &self.outbound else { return Ok(Vec::new()) };
        if let Some(ids) = o.webhooks.get(&tenant) {
            return Ok(ids);
        }
        let page = o.integrations.list(tenant, PageRequest::new(Some(100), None)?).await?;
        let ids: Vec<IntegrationId> =
            page.items.into_iter().filter(|i| i.kind == IntegrationKind::Webhook).map(|i| i.id).collect();
        o.webhooks.put(tenant, ids.clone());
        Ok(ids)
    }

    /// Asks workers to send what a change wrote; the sweep sends it if the queue is down.
    async fn dispatch(&self, ids: &[DeliveryId]) {
        let Some(o) = &self.outbound else { return };
        for id in ids {
            if let Err(e) = o.queue.schedule(*id, self.clock.now()).await {
                tracing::warn!(error = %e, delivery_id = %id, "queue unreachable; the sweep will send it");
            }
        }
    }

    /// An alarm reported by a user or an outside system.
    ///
    /// # Errors
    /// `Forbidden` for viewers; `Invalid` on kind, message, attributes or a future
    /// `raisedAt`; `NotFound` for a device or ticket of another tenant.
    pub async fn report(&self, actor: &Actor, input: ReportAlarmInput) -> DomainResult<(Alarm, RaiseOutcome)> {
        let tenant = actor.require_operator()?;
        let mut integration_id = None;
        if let Some(d) = input.device_id {
            let device = self.devices.get(tenant, d).await?.ok_or(DomainError::NotFound("device"))?;
            integration_id = Some(device.integration_id);
        }
        if let Some(t) = input.ticket_id {
            self.tickets.get(tenant, t).await?.ok_or(DomainError::NotFound("ticket"))?;
        }
        let now = self.clock.now();
        if input.raised_at.is_some_and(|at| at > now + chrono::Duration::minutes(5)) {
            return Err(DomainError::invalid("raisedAt", "must not be in the future"));
        }
        let message = input.message.trim().to_owned();
        if message.chars().count() > 2000 {
            return Err(DomainError::invalid("message", "at most 2000 characters"));
        }
        let attributes = match input.attributes {
            None | Some(Value::Null) => Value::Object(Default::default()),
            Some(v @ Value::Object(_)) => v,
            Some(_) => return Err(DomainError::invalid("attributes", "must be a JSON object")),
        };
        let raise = RaiseAlarm {
            device_id: input.device_id,
            integration_id,
            ticket_id: input.ticket_id,
            kind: AlarmKind::parse(&input.kind)?,
            severity: input.severity,
            message,
            vendor_code: None,
            vendor_text: None,
            inbound_event_id: None,
            raised_at: input.raised_at.unwrap_or_else(|| self.clock.now()),
            attributes,
        };
        self.raise_in(tenant, raise).await
    }

    /// An alarm raised by the system for a tenant (hooks, adapters, jobs).
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    pub async fn raise_in(&self, tenant: TenantId, raise: RaiseAlarm) -> DomainResult<(Alarm, RaiseOutcome)> {
        self.raise_planned(tenant, raise, &no_outbox).await
    }

    /// The same, with the vendor deliveries `extra` plans written in the raise's own
    /// transaction beside the webhooks' (a vendor's fault notice).
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    pub async fn raise_planned(
        &self,
        tenant: TenantId,
        raise: RaiseAlarm,
        extra: Outbox<'_, (Alarm, RaiseOutcome)>,
    ) -> DomainResult<(Alarm, RaiseOutcome)> {
        let hooks = self.webhooks(tenant).await?;
        let subject = AlarmSubject { ticket_id: raise.ticket_id, kind: &raise.kind, attributes: &raise.attributes };
        let relays = self.routes(tenant, subject).await?;
        let plan = move |r: &(Alarm, RaiseOutcome)| {
            let mut out = match outbound::raise_event(r.1) {
                Some(event) => {
                    let mut out = outbound::plan(&hooks, &r.0, event);
                    out.extend(relays.iter().flat_map(|p| p(&r.0, event)));
                    out
                }
                None => Vec::new(),
            };
            out.extend(extra(r));
            out
        };
        let (alarm, outcome, sent) = self.repo.raise(tenant, raise, &plan).await?;
        self.dispatch(&sent).await;
        let action = match outcome {
            RaiseOutcome::Opened => AlarmAction::Raised,
            RaiseOutcome::Repeated => AlarmAction::Repeated,
        };
        self.publish(&alarm, action);
        Ok((alarm, outcome))
    }

    /// # Errors
    /// `Forbidden` for viewers; `NotFound`; `InvalidTransition` unless RAISED.
    pub async fn acknowledge(&self, actor: &Actor, id: AlarmId) -> DomainResult<Alarm> {
        let tenant = actor.require_operator()?;
        self.move_to(tenant, id, AlarmState::Acknowledged, Some(actor), None).await
    }

    /// # Errors
    /// `Forbidden` for viewers; `NotFound`; `InvalidTransition` when already cleared.
    pub async fn clear(&self, actor: &Actor, id: AlarmId, note: Option<String>) -> DomainResult<Alarm> {
        let tenant = actor.require_operator()?;
        self.move_to(tenant, id, AlarmState::Cleared, Some(actor), note).await
    }

    /// Clears the open alarm with this raise's key (a source's own recovery), if any.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    pub async fn clear_open(&self, tenant: TenantId, key_of: &RaiseAlarm, note: &str) -> DomainResult<Option<Alarm>> {
        self.clear_open_planned(tenant, key_of, note, &no_outbox).await
    }

    /// The same, with the vendor deliveries `extra` plans written in the clear's own
    /// transaction (a vendor's recovery notice); nothing is planned when none is open.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    pub async fn clear_open_planned(
        &self,
        tenant: TenantId,
        key_of: &RaiseAlarm,
        note: &str,
        extra: Outbox<'_, Alarm>,
    ) -> DomainResult<Option<Alarm>> {
        let Some(open) = self.repo.find_open(tenant, &key_of.open_key()).await? else {
            return Ok(None);
        };
        match self.move_to_planned(tenant, open.id, AlarmState::Cleared, None, Some(note.to_owned()), extra).await {
            Ok(a) => Ok(Some(a)),
            // Cleared meanwhile by someone else: nothing left to do.
            Err(DomainError::InvalidTransition(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn move_to(
        &self,
        tenant: TenantId,
        id: AlarmId,
        to: AlarmState,
        actor: Option<&Actor>,
        note: Option<String>,
    ) -> DomainResult<Alarm> {
        self.move_to_planned(tenant, id, to, actor, note, &no_outbox).await
    }

    async fn move_to_planned(
        &self,
        tenant: TenantId,
        id: AlarmId,
        to: AlarmState,
        actor: Option<&Actor>,
        note: Option<String>,
        extra: Outbox<'_, Alarm>,
    ) -> DomainResult<Alarm> {
        if note.as_ref().is_some_and(|n| n.chars().count() > 2000) {
            return Err(DomainError::invalid("note", "at most 2000 characters"));
        }
        let current = self.repo.get(tenant, id).await?.ok_or(DomainError::NotFound("alarm"))?;
        if !current.state.can_move_to(to) {
            return Err(DomainError::InvalidTransition(format!("{} -> {}", current.state.as_str(), to.as_str())));
        }
        let step = Step { from: current.state, to, actor: actor.map(|a| a.user_id), note, at: self.clock.now() };
        let hooks = self.webhooks(tenant).await?;
        let event = if to == AlarmState::Cleared { AlarmEvent::Cleared } else { AlarmEvent::Acknowledged };
        let relays = if to == AlarmState::Cleared {
            let subject =
                AlarmSubject { ticket_id: current.ticket_id, kind: &current.kind, attributes: &current.attributes };
            self.routes(tenant, subject).await?
        } else {
            Vec::new()
        };
        let plan = move |alarm: &Alarm| {
            let mut out = outbound::plan(&hooks, alarm, event);
            out.extend(relays.iter().flat_map(|p| p(alarm, event)));
            out.extend(extra(alarm));
            out
        };
        let (alarm, sent) = self.repo.transition(tenant, id, step, &plan).await?;
        self.dispatch(&sent).await;
        let action = if to == AlarmState::Cleared { AlarmAction::Cleared } else { AlarmAction::Acknowledged };
        self.publish(&alarm, action);
        Ok(alarm)
    }

    /// # Errors
    /// `Forbidden` for viewers; `NotFound`; `Invalid { field: "text" }` when empty or too long.
    pub async fn comment(&self, actor: &Actor, id: AlarmId, text: &str) -> DomainResult<TimelineEntry> {
        let tenant = actor.require_operator()?;
        let text = text.trim();
        if text.is_empty() || text.chars().count() > 2000 {
            return Err(DomainError::invalid("text", "1-2000 characters"));
        }
        let entry = self.repo.comment(tenant, id, actor.user_id, text.to_owned()).await?;
        if let Some(alarm) = self.repo.get(tenant, id).await? {
            self.publish(&alarm, AlarmAction::Commented);
        }
        Ok(entry)
    }

    /// # Errors
    /// `NotFound` when absent or in another tenant.
    pub async fn get(&self, actor: &Actor, id: AlarmId) -> DomainResult<Alarm> {
        self.repo.get(actor.require_reader()?, id).await?.ok_or(DomainError::NotFound("alarm"))
    }

    /// Loads an alarm for a tenant (subscriptions reload what the bus announced).
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    pub async fn get_in(&self, tenant: TenantId, id: AlarmId) -> DomainResult<Option<Alarm>> {
        self.repo.get(tenant, id).await
    }

    /// # Errors
    /// `Forbidden` for actors without a tenant.
    pub async fn list(&self, actor: &Actor, filter: &AlarmFilter, page: PageRequest) -> DomainResult<Page<Alarm>> {
        self.repo.list(actor.require_reader()?, filter, page).await
    }

    /// # Errors
    /// `Forbidden` for actors without a tenant.
    pub async fn timeline(&self, actor: &Actor, id: AlarmId) -> DomainResult<Vec<TimelineEntry>> {
        self.repo.timeline(actor.require_reader()?, id).await
    }

    /// The timelines of several alarms, in one read.
    ///
    /// # Errors
    /// `Forbidden` for actors without a tenant.
    pub async fn timelines(&self, actor: &Actor, ids: &[AlarmId]) -> DomainResult<Vec<TimelineEntry>> {
        self.repo.timelines(actor.require_reader()?, ids).await
    }

    fn publish(&self, alarm: &Alarm, action: AlarmAction) {
        self.bus.publish(BusEvent {
            tenant_id: alarm.tenant_id,
            change: Change::AlarmChanged { alarm_id: alarm.id, action },
        });
    }
}
