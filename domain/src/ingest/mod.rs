//! Ingest: what any vendor's inbound data becomes. A vendor's inbound protocol parses a
//! stored request into vendor-neutral [`Fact`]s (a device's status, readings, an alarm
//! raised or cleared); [`IngestService::apply`] writes them, the outbox rows they plan and
//! the stored event's final state in one unit of work, so an event is applied once: a
//! process stopped before the commit leaves the event RECEIVED and nothing of it written,
//! and a second apply of an applied event writes nothing.
//!
//! Subscription events and queue wake-ups of a unit go out only after it commits.

mod batch;

pub use batch::{MeterOutcome, MeterReport};

use crate::DomainResult;
use crate::alarms::{Alarm, AlarmRepo, AlarmService, RaiseAlarm, RaiseOutcome};
use crate::bus::{BusEvent, EventBus};
use crate::deliveries::{DeliveryQueue, NewDelivery};
use crate::devices::{DeviceRepo, DeviceService, DeviceStatus, NewReading};
use crate::events::EventState;
use crate::ids::{DeliveryId, DeviceId, InboundEventId, TenantId};
use crate::outbound::{Message, Outbound};
use crate::tariffs::{MeterBill, TariffService};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use std::sync::{Arc, Mutex};

/// The deliveries a source plans for the alarm its fact raised (beside the webhooks').
pub type RaisePlan = Arc<dyn Fn(&(Alarm, RaiseOutcome)) -> Vec<NewDelivery> + Send + Sync>;
/// The deliveries a source plans for the alarm its fact cleared.
pub type ClearPlan = Arc<dyn Fn(&Alarm) -> Vec<NewDelivery> + Send + Sync>;

/// One thing a vendor told us, in the product's words.
#[derive(Clone)]
pub enum Fact {
    /// The device reported its live state (online, battery, signal) as of `status.seen_at`.
    Status { device: DeviceId, status: DeviceStatus },
    /// Measurements of the device.
    Readings { device: DeviceId, readings: Vec<NewReading> },
    /// An alarm raised by the source; a raise of an open alarm's key counts an occurrence.
    AlarmRaised { alarm: RaiseAlarm, plan: Option<RaisePlan> },
    /// The source's own recovery: clears the open alarm with `key`'s open key, if any.
    AlarmCleared { key: RaiseAlarm, note: String, plan: Option<ClearPlan> },
    /// A meter's register (cumulative volume or energy) at `at`: a centre-billed meter with
    /// an account is charged for the volume since its last reading (`tariffs::billing`),
    /// once per `reference`. `answered`: the source carries a supply change in its answer
    /// (the gas DAS's `valvecontrol`), so none is sent separately.
    MeterTotal { device: DeviceId, total: Decimal, at: DateTime<Utc>, reference: String, answered: bool },
}

impl std::fmt::Debug for Fact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Status { device, status } => write!(f, "Status({device}, {status:?})"),
            Self::Readings { device, readings } => write!(f, "Readings({device}, {})", readings.len()),
            Self::AlarmRaised { alarm, .. } => write!(f, "AlarmRaised({})", alarm.open_key()),
            Self::AlarmCleared { key, .. } => write!(f, "AlarmCleared({})", key.open_key()),
            Self::MeterTotal { device, total, reference, .. } => {
                write!(f, "MeterTotal({device}, {total}, {reference})")
            }
        }
    }
}

/// What applying an event came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Written now.
    Now,
    /// The event was applied before: nothing written.
    Before,
}

/// Transactions spanning repositories.
#[async_trait]
pub trait UnitOfWork: Send + Sync {
    /// Opens a unit: the repositories it hands out write through one transaction.
    ///
    /// # Errors
    /// `Unknown` when no transaction can be opened.
    async fn begin(&self) -> DomainResult<Box<dyn Unit>>;
}

/// One open transaction. Dropped without `commit`, it rolls back.
#[async_trait]
pub trait Unit: Send + Sync {
    fn devices(&self) -> Arc<dyn DeviceRepo>;
    fn alarms(&self) -> Arc<dyn AlarmRepo>;
    fn homes(&self) -> Arc<dyn crate::homes::HomeRepo>;
    fn tickets(&self) -> Arc<dyn crate::tickets::TicketRepo>;
    fn accounts(&self) -> Arc<dyn crate::tariffs::MeterAccountRepo>;
    fn tariffs(&self) -> Arc<dyn crate::tariffs::TariffRepo>;
    /// Writes planned deliveries (the outbox); one whose idempotency key its integration
    /// already used is skipped. Returns the ids written.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn outbox(&self, tenant: TenantId, planned: Vec<NewDelivery>) -> DomainResult<Vec<DeliveryId>>;
    /// Moves a stored event to its final `state` unless it is already PROCESSED or
    /// IGNORED; `false` when it was (applied before). On PostgreSQL a concurrent unit
    /// finishing the same event waits for this one and then gets `false`.
    ///
    /// # Errors
    /// `NotFound("inbound event")` for an unknown event; `Unknown` on storage failure.
    async fn finish_event(
        &self,
        tenant: TenantId,
        event: InboundEventId,
        state: EventState,
        note: Option<String>,
    ) -> DomainResult<bool>;
    /// Those of `events` not applied yet (neither PROCESSED nor IGNORED), held by this
    /// unit until it ends: a concurrent unit claiming one of them waits, then finds it
    /// applied.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn claim_events(&self, tenant: TenantId, events: &[InboundEventId]) -> DomainResult<Vec<InboundEventId>>;
    /// [`Unit::claim_events`] and [`Unit::finish_processed`] of those claimed, in one go:
    /// for a batch every claimed event of which the unit applies (or none, when it fails
    /// and rolls back). One round trip where the store allows it.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn claim_processed(&self, tenant: TenantId, events: &[InboundEventId]) -> DomainResult<Vec<InboundEventId>> {
        let claimed = self.claim_events(tenant, events).await?;
        self.finish_processed(tenant, &claimed).await?;
        Ok(claimed)
    }
    /// Finishes each claimed event PROCESSED with the answer it was given, in as few round
    /// trips as the store allows.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn finish_answered(
        &self,
        tenant: TenantId,
        answers: Vec<(InboundEventId, serde_json::Value)>,
    ) -> DomainResult<()> {
        for (e, a) in answers {
            self.finish_event(tenant, e, EventState::Processed, None).await?;
            self.keep_answer(tenant, e, &a).await?;
        }
        Ok(())
    }
    /// Finishes each of `events` (claimed by this unit) PROCESSED, in as few round trips
    /// as the store allows.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn finish_processed(&self, tenant: TenantId, events: &[InboundEventId]) -> DomainResult<()> {
        for e in events {
            self.finish_event(tenant, *e, EventState::Processed, None).await?;
        }
        Ok(())
    }
    /// Keeps the answer a stored event was given (its resend is answered the same).
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn keep_answer(
        &self,
        tenant: TenantId,
        event: InboundEventId,
        answer: &serde_json::Value,
    ) -> DomainResult<()>;
    /// # Errors
    /// `Unknown` when the commit fails (nothing of the unit is written).
    async fn commit(self: Box<Self>) -> DomainResult<()>;
}

/// Bus events and queue wake-ups held until their unit commits.
#[derive(Default)]
struct Held {
    events: Mutex<Vec<BusEvent>>,
    wakeups: Mutex<Vec<(DeliveryId, DateTime<Utc>)>>,
}

impl EventBus for Held {
    fn publish(&self, event: BusEvent) {
        self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(event);
    }
}

#[async_trait]
impl DeliveryQueue for Held {
    async fn schedule(&self, id: DeliveryId, at: DateTime<Utc>) -> DomainResult<()> {
        self.wakeups.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((id, at));
        Ok(())
    }
}

/// Applies facts; see the module doc.
#[derive(Clone)]
pub struct IngestService {
    units: Arc<dyn UnitOfWork>,
    devices: DeviceService,
    alarms: AlarmService,
    bus: Arc<dyn EventBus>,
    queue: Option<Arc<dyn DeliveryQueue>>,
    /// Centre billing of meter readings.
    billing: Option<TariffService>,
    /// The vendor modules' planners, for the supply changes a charge calls for.
    outbound: Option<Outbound>,
}

impl IngestService {
    pub fn new(
        units: Arc<dyn UnitOfWork>,
        devices: DeviceService,
        alarms: AlarmService,
        bus: Arc<dyn EventBus>,
        queue: Option<Arc<dyn DeliveryQueue>>,
    ) -> Self {
        Self { units, devices, alarms, bus, queue, billing: None, outbound: None }
    }

    /// Bills `Fact::MeterTotal` with `tariffs`; supply changes are planned by `outbound`'s
    /// planners, in the same unit.
    #[must_use]
    pub fn with_billing(mut self, tariffs: TariffService, outbound: Outbound) -> Self {
        self.billing = Some(tariffs);
        self.outbound = Some(outbound);
        self
    }

    /// Writes `facts` for `tenant` and, when they come from a stored `event`, finishes it
    /// PROCESSED in the same unit (IGNORED with `note` when there are no facts).
    ///
    /// # Errors
    /// Whatever a write returns; then nothing of the facts is written and the event keeps
    /// its state.
    pub async fn apply(
        &self,
        tenant: TenantId,
        event: Option<InboundEventId>,
        facts: Vec<Fact>,
        note: Option<String>,
    ) -> DomainResult<Applied> {
        self.apply_billed(tenant, event, facts, note).await.map(|(a, _)| a)
    }

    /// [`IngestService::apply`], answering what billing the `MeterTotal` facts came to (in
    /// their order; none when the event was applied before).
    ///
    /// # Errors
    /// As `apply`.
    pub async fn apply_billed(
        &self,
        tenant: TenantId,
        event: Option<InboundEventId>,
        facts: Vec<Fact>,
        note: Option<String>,
    ) -> DomainResult<(Applied, Vec<MeterBill>)> {
        self.apply_inner(tenant, event, facts, note).await
    }

    /// Applies the facts of several stored events of one tenant in one unit, in their
    /// order, each event exactly as [`IngestService::apply`] would apply it: claimed (an
    /// event applied before, or twice in the batch, is `Applied::Before` and writes
    /// nothing), its facts written, finished PROCESSED. One transaction (and, on
    /// PostgreSQL, one commit's flush) for the batch instead of one per event.
    ///
    /// # Errors
    /// Whatever a write returns; then nothing of the batch is written and every event keeps
    /// its state (the caller may apply them one by one).
    pub async fn apply_events(
        &self,
        tenant: TenantId,
        batch: Vec<(InboundEventId, Vec<Fact>)>,
    ) -> DomainResult<Vec<Applied>> {
        let mut meters: Vec<DeviceId> = batch
            .iter()
            .flat_map(|(_, facts)| facts.iter())
            .filter_map(|f| match f {
                Fact::MeterTotal { device, .. } => Some(*device),
                _ => None,
            })
            .collect();
        meters.sort_unstable();
        meters.dedup();
        let _queued = match (&self.billing, meters.is_empty()) {
            (Some(b), false) => b.lock_meters(&meters).await,
            _ => Vec::new(),
        };
        let unit = self.units.begin().await?;
        let ids: Vec<InboundEventId> = batch.iter().map(|(e, _)| *e).collect();
        // Every claimed event is applied below, or the unit fails and none is.
        let claimed: std::collections::HashSet<InboundEventId> =
            unit.claim_processed(tenant, &ids).await?.into_iter().collect();
        let held = Arc::new(Held::default());
        let mut seen = std::collections::HashSet::new();
        let mut outcomes = Vec::with_capacity(batch.len());
        // Status and readings: one entry per device, merged in the events' order, written
        // in one go; the other facts after them, in order.
        let mut observed: Vec<(DeviceId, DeviceStatus, Vec<NewReading>)> = Vec::new();
        let mut slot: std::collections::HashMap<DeviceId, usize> = std::collections::HashMap::new();
        let mut rest = Vec::new();
        for (event, facts) in batch {
            if !claimed.contains(&event) || !seen.insert(event) {
                outcomes.push(Applied::Before);
                continue;
            }
            for fact in facts {
                let device = match &fact {
                    Fact::Status { device, .. } | Fact::Readings { device, .. } => *device,
                    _ => {
                        rest.push(fact);
                        continue;
                    }
                };
                let at = *slot.entry(device).or_insert_with(|| {
                    observed.push((device, DeviceStatus::default(), Vec::new()));
                    observed.len() - 1
                });
                let Some(o) = observed.get_mut(at) else { continue };
                match fact {
                    Fact::Status { status, .. } => batch::merge_status(&mut o.1, &status),
                    Fact::Readings { readings, .. } => o.2.extend(readings),
                    _ => {}
                }
            }
            outcomes.push(Applied::Now);
        }
        if !observed.is_empty() {
            let ids: Vec<DeviceId> = observed.iter().map(|(d, ..)| *d).collect();
            // Locked: their new state is computed from these rows.
            let found = unit.devices().lock_many(tenant, &ids).await?;
            let mut by_id: std::collections::HashMap<DeviceId, crate::devices::Device> =
                found.into_iter().map(|d| (d.id, d)).collect();
            let mut entries = Vec::with_capacity(observed.len());
            for (id, status, readings) in observed {
                let device = by_id.remove(&id).ok_or(crate::DomainError::NotFound("device"))?;
                entries.push(crate::devices::Observed { device, status, readings });
            }
            let devices = self.devices.within(unit.devices(), held.clone());
            devices.observe_many(tenant, entries).await?;
        }
        // Registers: billed in order on their meters' accounts, written in one go (a meter
        // without an account is not billed).
        let (totals, rest): (Vec<Fact>, Vec<Fact>) =
            rest.into_iter().partition(|f| matches!(f, Fact::MeterTotal { .. }));
        if !totals.is_empty() {
            self.bill_batch(&*unit, tenant, totals, &held).await?;
        }
        self.write(&*unit, tenant, rest, &held).await?;
        unit.commit().await?;
        self.release(&held).await;
        Ok(outcomes)
    }

    /// Bills `totals` (`Fact::MeterTotal`s, in order) in `unit` as `write` would one by
    /// one: each meter's account locked once, its registers billed in order, the steps
    /// written together (`MeterAccountRepo::save_steps`), the supply changes planned after.
    async fn bill_batch(
        &self,
        unit: &dyn Unit,
        tenant: TenantId,
        totals: Vec<Fact>,
        held: &Arc<Held>,
    ) -> DomainResult<()> {
        if self.billing.is_none() {
            return Ok(());
        }
        let mut meters: Vec<DeviceId> = totals
            .iter()
            .filter_map(|f| match f {
                Fact::MeterTotal { device, .. } => Some(*device),
                _ => None,
            })
            .collect();
        meters.sort_unstable();
        meters.dedup();
        let accounts = unit.accounts().lock_by_devices(tenant, &meters).await?;
        if accounts.is_empty() {
            return Ok(());
        }
        let mut tariffs: std::collections::HashMap<crate::ids::TariffId, Vec<crate::tariffs::Tariff>> =
            std::collections::HashMap::new();
        for t in accounts.iter().filter_map(|a| a.tariff_id) {
            if let std::collections::hash_map::Entry::Vacant(v) = tariffs.entry(t) {
                v.insert(unit.tariffs().versions_of(tenant, t).await?);
            }
        }
        let mut state: std::collections::HashMap<DeviceId, crate::tariffs::AccountSteps> = accounts
            .into_iter()
            .map(|a| (a.device_id, crate::tariffs::AccountSteps { expected: a, steps: Vec::new() }))
            .collect();
        let mut supply = Vec::new();
        for fact in totals {
            let Fact::MeterTotal { device, total, at, reference, answered } = fact else { continue };
            let Some(acc) = state.get_mut(&device) else { continue };
            let versions = acc.expected.tariff_id.and_then(|t| tariffs.get(&t)).map_or(&[][..], Vec::as_slice);
            let current = acc.steps.last().map_or(&acc.expected, |(a, _)| a).clone();
            let (bill, step) = batch::bill(current, versions, total, at, &reference)?;
            if let Some(step) = step {
                acc.steps.push(step);
            }
            if let (Some(change), false) = (bill.supply, answered) {
                supply.push((device, change, reference));
            }
        }
        let steps: Vec<crate::tariffs::AccountSteps> = state.into_values().filter(|s| !s.steps.is_empty()).collect();
        unit.accounts().save_steps(tenant, steps).await?;
        for (device, change, reference) in supply {
            self.plan_supply(unit, tenant, device, change, reference, held).await?;
        }
        Ok(())
    }

    /// Plans (in `unit`) the delivery that tells a meter's vendor of a supply change.
    async fn plan_supply(
        &self,
        unit: &dyn Unit,
        tenant: TenantId,
        device: DeviceId,
        change: crate::tariffs::billing::SupplyChange,
        reference: String,
        held: &Arc<Held>,
    ) -> DomainResult<()> {
        let Some(o) = &self.outbound else { return Ok(()) };
        let d = unit.devices().get(tenant, device).await?.ok_or(crate::DomainError::NotFound("device"))?;
        let planned = o.plan(tenant, &[Message::SupplyChanged { device: d, change, reference }]).await?;
        if !planned.is_empty() {
            for id in unit.outbox(tenant, planned).await? {
                held.schedule(id, Utc::now()).await?;
            }
        }
        Ok(())
    }

    async fn apply_inner(
        &self,
        tenant: TenantId,
        event: Option<InboundEventId>,
        facts: Vec<Fact>,
        note: Option<String>,
    ) -> DomainResult<(Applied, Vec<MeterBill>)> {
        // Billed meters are locked in this process before the unit opens (see `MeterLocks`).
        let meters: Vec<DeviceId> = facts
            .iter()
            .filter_map(|f| match f {
                Fact::MeterTotal { device, .. } => Some(*device),
                _ => None,
            })
            .collect();
        let _queued = match (&self.billing, meters.is_empty()) {
            (Some(b), false) => b.lock_meters(&meters).await,
            _ => Vec::new(),
        };
        let unit = self.units.begin().await?;
        if let Some(e) = event {
            let state = if facts.is_empty() { EventState::Ignored } else { EventState::Processed };
            if !unit.finish_event(tenant, e, state, note).await? {
                return Ok((Applied::Before, Vec::new()));
            }
        }
        let held = Arc::new(Held::default());
        // The unit's repositories go before it commits.
        let bills = self.write(&*unit, tenant, facts, &held).await?;
        unit.commit().await?;
        self.release(&held).await;
        Ok((Applied::Now, bills))
    }

    async fn write(
        &self,
        unit: &dyn Unit,
        tenant: TenantId,
        facts: Vec<Fact>,
        held: &Arc<Held>,
    ) -> DomainResult<Vec<MeterBill>> {
        let mut bills = Vec::new();
        let devices = self.devices.within(unit.devices(), held.clone());
        let alarms = self.alarms.within(unit.alarms(), unit.devices(), held.clone(), held.clone());
        for fact in facts {
            match fact {
                Fact::Status { device, status } => {
                    devices.set_status(tenant, device, status).await?;
                }
                Fact::Readings { device, readings } => {
                    devices.record_readings(tenant, device, readings).await?;
                }
                Fact::AlarmRaised { alarm, plan } => match plan {
                    Some(p) => alarms.raise_planned(tenant, alarm, &*p).await.map(drop)?,
                    None => alarms.raise_in(tenant, alarm).await.map(drop)?,
                },
                Fact::AlarmCleared { key, note, plan } => match plan {
                    Some(p) => alarms.clear_open_planned(tenant, &key, &note, &*p).await.map(drop)?,
                    None => alarms.clear_open(tenant, &key, &note).await.map(drop)?,
                },
                Fact::MeterTotal { device, total, at, reference, answered } => {
                    let Some(billing) = &self.billing else { continue };
                    let (accounts, tariffs) = (unit.accounts(), unit.tariffs());
                    let bill = billing.bill_in((&*accounts, &*tariffs), tenant, device, total, at, &reference).await?;
                    drop((accounts, tariffs));
                    let Some(bill) = bill else {
                        continue;
                    };
                    if let (Some(change), false) = (bill.supply, answered) {
                        self.plan_supply(unit, tenant, device, change, reference.clone(), held).await?;
                    }
                    bills.push(bill);
                }
            }
        }
        Ok(bills)
    }

    async fn release(&self, held: &Held) {
        let events = std::mem::take(&mut *held.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        for e in events {
            self.bus.publish(e);
        }
        let wakeups = std::mem::take(&mut *held.wakeups.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        if let Some(q) = &self.queue {
            for (id, at) in wakeups {
                if let Err(e) = q.schedule(id, at).await {
                    tracing::warn!(error = %e, delivery_id = %id, "queue unreachable; the sweep will send it");
                }
            }
        }
    }
}

/// A rule a vendor module adds to readings of the devices it knows: checks their values
/// and derives more facts (an elevator's fault code raises or clears its alarm).
#[async_trait]
pub trait ReadingRule: Send + Sync {
    /// Refuses values the device cannot report (the reason is answered to the sender).
    ///
    /// # Errors
    /// The reason.
    fn check(
        &self,
        device: &crate::devices::Device,
        values: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), String>;
    /// The facts these readings imply beyond themselves.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn facts(
        &self,
        device: &crate::devices::Device,
        values: &serde_json::Map<String, serde_json::Value>,
        ts: DateTime<Utc>,
    ) -> DomainResult<Vec<Fact>>;
}
