//! The ports and shared types of this vendor's use cases.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::DomainResult;
use domain::ids::{IntegrationId, TenantId};
use serde_json::Value;

/// Kind prefix of Huzhou deliveries.
pub const PREFIX: &str = "huzhou";
/// The vendor's name in `DomainError::Upstream`.
pub const VENDOR: &str = "Huzhou";
/// 4.1 elevator fault (and its auto-recovery, `message_code` `00`).
pub const LIFT_ALARM: &str = "huzhou.lift_alarm";
/// 4.2 fault-repair record.
pub const LIFT_MAINTAIN: &str = "huzhou.lift_maintain";
/// 4.3 daily start count.
pub const LIFT_NOTIFY: &str = "huzhou.lift_notify";
/// 7.5 elevator IoT data (daily, and live for subscriptions).
pub const ELEV_THINGS: &str = "huzhou.put_ie_elev_things";
/// 7.7 elevator parameters (static params, rescue start/end).
pub const ELEV_PARAS: &str = "huzhou.put_ie_elev_paras";
/// 7.8 trapped-passenger fault record.
pub const TRAP_FAULT: &str = "huzhou.put_ie_trap_fault";

/// The alarm kind of an elevator fault (GB/T 24476-2017 code in `vendor_code`).
pub const ELEVATOR_FAULT: &str = "ELEVATOR_FAULT";

/// At most this many items per 7.5 / 7.7 request (the seed: 一次最多 100 条数据).
pub const MAX_ITEMS: usize = 100;

/// A fresh `Request-Id`: 32 lowercase hex characters, kept for every retry of the message.
pub fn request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// One live push that is due: an elevator of a subscription at its scheduled time, with
/// the elevator's live state as read with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuePush {
    pub tenant_id: TenantId,
    pub integration_id: IntegrationId,
    pub unique_id: String,
    /// When the push was due (Unix ms).
    pub due_ms: i64,
    /// The device's newest value per metric (`{metric: {"value", "ts"}}`).
    pub latest: Value,
}

/// A subscription's window as last written: it pushes at the times after `first_due_ms`
/// and before `until_ms` (ended subscriptions keep their row, with `until_ms` at the end,
/// for a while).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionWindow {
    pub integration_id: IntegrationId,
    pub unique_id: String,
    pub first_due_ms: i64,
    pub until_ms: i64,
}

impl SubscriptionWindow {
    /// Whether a push due at `due_ms` is still wanted.
    pub fn covers(&self, due_ms: i64) -> bool {
        self.first_due_ms < due_ms && due_ms < self.until_ms
    }
}

/// An elevator's live state as the 7.5 items are built from it.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveSnapshot {
    pub unique_id: String,
    /// The device's newest value per metric (`{metric: {"value", "ts"}}`).
    pub latest: Value,
}

/// Live subscriptions and inbound tokens.
#[async_trait]
pub trait HuzhouRepo: Send + Sync {
    /// Subscribes the elevators from `first_due_ms` on, one push every `interval_ms`
    /// before `until_ms`: a new or lapsed subscription starts its rhythm at
    /// `first_due_ms`; a running one keeps its rhythm and ends at `until_ms` now.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn subscribe(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        unique_ids: &[String],
        first_due_ms: i64,
        interval_ms: i64,
        until_ms: i64,
    ) -> DomainResult<u64>;
    /// The unique ids of the integration's subscriptions still running at `now_ms`.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn running(&self, tenant: TenantId, integration: IntegrationId, now_ms: i64) -> DomainResult<Vec<String>>;
    /// Ends the running subscriptions of these elevators at `now_ms`; returns how many.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn unsubscribe(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        unique_ids: &[String],
        now_ms: i64,
    ) -> DomainResult<u64>;
    /// Claims the slot of the live schedule starting at `slot_ms` for this process:
    /// true for exactly one caller across all processes (workers know no tenant).
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn claim_slot(&self, slot_ms: i64) -> DomainResult<bool>;
    /// Every push due in `[from_ms, to_ms)` across all integrations, except each
    /// subscription's first (pushed by the notice itself) and any at or after its end,
    /// with its elevator's live state (read in the same statement; a subscription whose
    /// elevator is not the subscribing tenant's device of that integration is left out).
    /// `to_ms - from_ms` must not exceed the shortest interval.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn due_in(&self, from_ms: i64, to_ms: i64) -> DomainResult<Vec<DuePush>>;
    /// The windows of the subscriptions written (subscribed, extended or ended) at or
    /// after `since_ms`, across all integrations: a slot read earlier checks its pushes
    /// against them just before it sends.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn changed_since(&self, since_ms: i64) -> DomainResult<Vec<SubscriptionWindow>>;
    /// Deletes subscriptions lapsed a while ago, old slot claims and expired tokens.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn prune(&self, now_ms: i64) -> DomainResult<u64>;
    /// The live state of the integration's elevators with these unique ids (unknown ids
    /// are left out).
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn snapshots(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        unique_ids: &[String],
    ) -> DomainResult<Vec<LiveSnapshot>>;
    /// Stores an issued inbound token; only its SHA-256 digest is kept.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn put_token(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        token: &str,
        expires: DateTime<Utc>,
    ) -> DomainResult<()>;
    /// Whether this token was issued for the integration and is unexpired.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn token_valid(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        token: &str,
        now: DateTime<Utc>,
    ) -> DomainResult<bool>;
}
