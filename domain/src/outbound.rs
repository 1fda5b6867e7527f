//! Outbound as typed messages: a change names what happened ([`Message`]); each vendor
//! module's [`Planner`] renders the deliveries it owes for it; [`Outbound::commit`] writes
//! them in the change's own unit of work, so a change and its outbox rows commit together
//! (a stopped process loses neither), and the queue is woken after the commit.
//!
//! A planner's error fails the change: nothing is written, the caller sees the error.

use crate::DomainResult;
use crate::deliveries::{DeliveryQueue, NewDelivery};
use crate::devices::Device;
use crate::homes::{Home, Room};
use crate::ids::TenantId;
use crate::ingest::{Unit, UnitOfWork};
use crate::tariffs::{LedgerEntry, MeterAccount, SupplyChange, Tariff};
use crate::tickets::Ticket;
use async_trait::async_trait;
use chrono::Utc;
use rust_decimal::Decimal;
use std::sync::Arc;

/// What a change did, as the vendor modules hear of it.
// A handful per change, planned and dropped: their size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Message {
    /// A home was added (it may mirror a vendor's home).
    HomeAdded(Home),
    /// A room was added to `home`.
    RoomAdded { home: Home, room: Room },
    /// Several rooms were added to `home` at once.
    RoomsAdded { home: Home, rooms: Vec<Room> },
    /// A home's name, address or attributes changed.
    HomeUpdated { before: Home, after: Home },
    /// A home was deleted with its rooms.
    HomeDeleted(Home),
    /// A room of `home` was renamed.
    RoomUpdated { home: Home, before: Room, after: Room },
    /// A room of `home` was deleted.
    RoomDeleted { home: Home, room: Room },
    /// A device was deleted.
    DeviceDeleted(Device),
    /// A device was created (`before` is `None`) or updated.
    DeviceSaved { before: Option<Device>, after: Device },
    /// A ticket was created (`before` is `None`) or updated, by a user (`by`) or by the
    /// system for a vendor (`by` is `None`: a sync or a callback).
    TicketSaved { before: Option<Ticket>, after: Ticket, by: Option<crate::ids::UserId> },
    /// A ticket was deleted by user `by`; `ticket` is as it was.
    TicketDeleted { ticket: Ticket, by: crate::ids::UserId },
    /// A file was attached to a ticket.
    TicketFileAttached { ticket: Ticket, file: crate::tickets::TicketFile },
    /// A tariff version was saved (a new code, or an adjustment of one).
    TariffSaved { tariff: Tariff },
    /// A meter was switched to a tariff.
    TariffAssigned { device: Device, tariff: Tariff },
    /// Money was paid into (or corrected on) a meter's account.
    AccountCredited { device: Device, account: MeterAccount, entry: LedgerEntry },
    /// A meter's supply must be cut (credit ran out) or restored (a recharge lifted it
    /// back); `reference` is unique per change.
    SupplyChanged { device: Device, change: SupplyChange, reference: String },
    /// A meter was taken out of service.
    MeterCancelled { device: Device, reason: String },
    /// A meter was replaced by another on the same account: `device` shows the new meter.
    MeterReplaced { device: Device, old_external_id: String, old_reading: Decimal, new_reading: Decimal },
    /// A user withdrew a command sent to a meter (`key`: the command delivery's idempotency
    /// key, `kind` its delivery kind).
    CommandCancelled { device: Device, key: String, kind: String },
    /// A user asked a meter for something (open or close its valve, read it now).
    MeterCommand { device: Device, command: MeterCommand, by: Option<crate::ids::UserId> },
}

/// What a user can ask of a meter directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeterCommand {
    ValveOpen,
    ValveClose,
}

/// A vendor module's rendering of messages into deliveries.
#[async_trait]
pub trait Planner: Send + Sync {
    /// The deliveries `msg` calls for (none when it is not this vendor's concern). A
    /// delivery whose idempotency key its integration already used is not written again.
    ///
    /// # Errors
    /// `Unknown` on storage failure; `Invalid` when the change cannot be sent as it is.
    async fn plan(&self, tenant: TenantId, msg: &Message) -> DomainResult<Vec<NewDelivery>>;
}

/// Units of work with the planners of every vendor module; see the module doc.
#[derive(Clone)]
pub struct Outbound {
    units: Arc<dyn UnitOfWork>,
    planners: Vec<Arc<dyn Planner>>,
    queue: Option<Arc<dyn DeliveryQueue>>,
}

impl Outbound {
    pub fn new(units: Arc<dyn UnitOfWork>, queue: Option<Arc<dyn DeliveryQueue>>) -> Self {
        Self { units, planners: Vec::new(), queue }
    }

    /// Adds a vendor module's planner.
    #[must_use]
    pub fn with_planner(mut self, planner: Arc<dyn Planner>) -> Self {
        self.planners.push(planner);
        self
    }

    /// The deliveries the planners render for `messages`.
    ///
    /// # Errors
    /// A planner's error.
    pub async fn plan(&self, tenant: TenantId, messages: &[Message]) -> DomainResult<Vec<NewDelivery>> {
        let mut planned = Vec::new();
        for msg in messages {
            for p in &self.planners {
                planned.extend(p.plan(tenant, msg).await?);
            }
        }
        Ok(planned)
    }

    /// Opens the unit a change writes through.
    ///
    /// # Errors
    /// `Unknown` when no transaction can be opened.
    pub async fn begin(&self) -> DomainResult<Box<dyn Unit>> {
        self.units.begin().await
    }

    /// Plans `messages`, writes their deliveries in `unit`, commits, and wakes the queue.
    ///
    /// # Errors
    /// A planner's error or a storage failure; then nothing of the unit is written.
    pub async fn commit(&self, unit: Box<dyn Unit>, tenant: TenantId, messages: &[Message]) -> DomainResult<()> {
        let planned = self.plan(tenant, messages).await?;
        let ids = if planned.is_empty() { Vec::new() } else { unit.outbox(tenant, planned).await? };
        unit.commit().await?;
        if let Some(q) = &self.queue {
            for id in ids {
                if let Err(e) = q.schedule(id, Utc::now()).await {
                    tracing::warn!(error = %e, delivery_id = %id, "queue unreachable; the sweep will send it");
                }
            }
        }
        Ok(())
    }
}
