use super::{Alarm, AlarmFilter, RaiseAlarm, RaiseOutcome, Step, TimelineEntry};
use crate::deliveries::Outbox;
use crate::ids::{AlarmId, DeliveryId, TenantId, UserId};
use crate::{DomainResult, Page, PageRequest};
use async_trait::async_trait;

/// Alarms of a tenant with their timelines.
#[async_trait]
pub trait AlarmRepo: Send + Sync {
    /// Opens an alarm, or — when one with the same `open_key` is open — counts another
    /// occurrence on it (and records a severity change). Atomic: two concurrent raises
    /// never open two alarms. The deliveries `outbox` plans from the result are written in
    /// the same transaction; their ids are returned for dispatch.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn raise(
        &self,
        tenant: TenantId,
        input: RaiseAlarm,
        outbox: Outbox<'_, (Alarm, RaiseOutcome)>,
    ) -> DomainResult<(Alarm, RaiseOutcome, Vec<DeliveryId>)>;
    /// # Errors
    /// `Unknown` on storage failure.
    async fn get(&self, tenant: TenantId, id: AlarmId) -> DomainResult<Option<Alarm>>;
    /// The open alarm with this key, if any.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn find_open(&self, tenant: TenantId, open_key: &str) -> DomainResult<Option<Alarm>>;
    /// Newest first.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn list(&self, tenant: TenantId, filter: &AlarmFilter, page: PageRequest) -> DomainResult<Page<Alarm>>;
    /// Moves the alarm from `step.from` to `step.to` if it is still in `step.from`
    /// (compare-and-set) and records the step in the timeline; the deliveries `outbox` plans
    /// from the moved alarm are written in the same transaction.
    ///
    /// # Errors
    /// `NotFound("alarm")`; `InvalidTransition` when the alarm is no longer in `from`.
    async fn transition(
        &self,
        tenant: TenantId,
        id: AlarmId,
        step: Step,
        outbox: Outbox<'_, Alarm>,
    ) -> DomainResult<(Alarm, Vec<DeliveryId>)>;
    /// # Errors
    /// `NotFound("alarm")`.
    async fn comment(&self, tenant: TenantId, id: AlarmId, actor: UserId, text: String) -> DomainResult<TimelineEntry>;
    /// Oldest first.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn timeline(&self, tenant: TenantId, id: AlarmId) -> DomainResult<Vec<TimelineEntry>>;
    /// The timelines of several alarms, in one query, oldest first.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn timelines(&self, tenant: TenantId, ids: &[AlarmId]) -> DomainResult<Vec<TimelineEntry>>;
}
