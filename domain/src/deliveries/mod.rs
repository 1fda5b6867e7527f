//! Deliveries: every outbound vendor message (push, upload, command, state-changing call)
//! is a row with a fixed idempotency key, run by a worker, retried by policy, and recorded
//! attempt by attempt.

mod retry;
mod service;

pub use retry::{GIVE_UP_AFTER, RetryPolicy};
pub use service::*;

use crate::enums::string_enum;
use crate::ids::{DeliveryId, EntryId, IntegrationId, TenantId};
use crate::{DomainResult, Page, PageRequest};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

string_enum!(
    /// Where a delivery is in its life.
    DeliveryState, "state" {
        /// Written, waiting for its first attempt.
        Pending = "PENDING",
        /// A worker is sending it now, holding a lease it renews with every heartbeat.
        InFlight = "IN_FLIGHT",
        Succeeded = "SUCCEEDED",
        /// Failed and waiting for `next_attempt_at`.
        Retrying = "RETRYING",
        /// Given up: a permanent vendor error, 24 h of failed retries, or the attempts its
        /// integration allows (`settings.retry.maxAttempts`) used up. Replayable.
        Dead = "DEAD",
    }
);

/// What a delivery sends: `<sender>.<message>`, e.g. `webhook.alarm`. The sender part
/// (lower-case letters, digits, `_`, starting with a letter) picks who sends it; the message
/// part (lower-case letters, digits, `_`, `.`) is the sender's own name for the call.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeliveryKind(String);

impl DeliveryKind {
    /// # Errors
    /// `Invalid { field: "kind" }` unless `sender.message` as above, at most 100 characters.
    pub fn parse(s: &str) -> DomainResult<Self> {
        let valid = s.len() <= 100
            && s.split_once('.').is_some_and(|(sender, message)| {
                sender.starts_with(|c: char| c.is_ascii_lowercase())
                    && sender.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                    && !message.is_empty()
                    && message.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
            });
        if valid {
            Ok(Self(s.to_owned()))
        } else {
            Err(crate::DomainError::invalid("kind", "a delivery kind like sender.message"))
        }
    }

    /// A kind the code names (a literal known to be valid).
    pub fn from_static(kind: &'static str) -> Self {
        debug_assert!(Self::parse(kind).is_ok(), "delivery kind {kind:?}");
        Self(kind.to_owned())
    }

    /// `sender.message` from two names the code knows to be valid.
    pub fn of(sender: &'static str, message: &'static str) -> Self {
        let kind = format!("{sender}.{message}");
        debug_assert!(Self::parse(&kind).is_ok(), "delivery kind {kind:?}");
        Self(kind)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the first `.`: which sender sends it.
    pub fn sender(&self) -> &str {
        self.0.split_once('.').map_or(self.0.as_str(), |(sender, _)| sender)
    }

    /// The part after the first `.`.
    pub fn message(&self) -> &str {
        self.0.split_once('.').map_or("", |(_, message)| message)
    }
}

impl std::fmt::Display for DeliveryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stored delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub tenant_id: TenantId,
    pub integration_id: IntegrationId,
    /// What is sent: `<sender>.<message>`, the sender part picking the sender.
    pub kind: DeliveryKind,
    /// Fixed at creation and reused by every attempt (a vendor's request id or serial number).
    pub idempotency_key: String,
    /// Deliveries with the same order key are sent one after the other, in creation order.
    pub order_key: Option<String>,
    pub payload: Value,
    pub state: DeliveryState,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// What it is about (`device:{id}`, `ticket:{id}`), for the history of one subject.
    pub subject: Option<String>,
    /// What the vendor reported of it afterwards (a command's execution ...).
    pub result: Option<Value>,
    /// When its first attempt (since it was written or last retried by hand) was claimed:
    /// the retry policy gives up 24 h after it.
    pub first_attempt_at: Option<DateTime<Utc>>,
}

/// A delivery to write.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub integration_id: IntegrationId,
    pub kind: DeliveryKind,
    pub idempotency_key: String,
    pub order_key: Option<String>,
    pub payload: Value,
    /// What it is about (`device:{id}`, `ticket:{id}`).
    pub subject: Option<String>,
}

/// The deliveries a domain change causes, planned from the change's result. A repository
/// that takes an outbox writes what it returns in the change's own transaction, so a crash
/// can neither lose the message nor send one for a change that did not happen.
pub type Outbox<'a, T> = &'a (dyn Fn(&T) -> Vec<NewDelivery> + Send + Sync);

/// An outbox that plans nothing.
pub fn no_outbox<T>(_: &T) -> Vec<NewDelivery> {
    Vec::new()
}

/// What one attempt looked like; the request summary carries no secret.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub id: EntryId,
    pub delivery_id: DeliveryId,
    pub number: i32,
    pub at: DateTime<Utc>,
    pub request: String,
    pub http_status: Option<i32>,
    pub vendor_code: Option<String>,
    pub vendor_message: Option<String>,
    pub latency_ms: i64,
    pub error: Option<String>,
    /// `SUCCEEDED`, `RETRY`, `DEAD` or `TOKEN_EXPIRED`.
    pub outcome: String,
    /// After a `RETRY`: when the next attempt was scheduled by the retry policy.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// `deliveries(filter)`.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub state: Option<DeliveryState>,
    pub integration_id: Option<IntegrationId>,
    pub kind: Option<String>,
    pub subject: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// How the vendor answered one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Network error, timeout, 429/5xx, a "busy" code: try again later.
    Retry(String),
    /// The message itself is wrong (bad signature, missing field, unknown device).
    Permanent(String),
    /// The vendor's token expired: refresh it and try again at once, once.
    TokenExpired(String),
}

/// What a sender reports of one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendReport {
    /// A summary of the request without secrets (method, path, key fields).
    pub request: String,
    pub http_status: Option<i32>,
    pub vendor_code: Option<String>,
    pub vendor_message: Option<String>,
    pub verdict: Verdict,
}

/// A protocol's limit on how often deliveries of one key may go out, e.g. one attachment
/// upload per work permit per 60 s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    pub key: String,
    pub limit: u32,
    pub window: std::time::Duration,
}

/// Sends deliveries to their vendor; one implementation routes by integration kind.
#[async_trait]
pub trait DeliverySender: Send + Sync {
    /// Sends once. `fresh_token` asks for a new vendor token instead of the cached one.
    async fn send(&self, delivery: &Delivery, fresh_token: bool) -> SendReport;

    /// Gets ready to send deliveries like this one soon (their integration's endpoint and
    /// credentials, a vendor token), so that a burst of sends finds them cached instead of
    /// each loading them. A failure is left for the sends to meet and report.
    async fn prepare(&self, _like: &Delivery) {}

    /// The rate limit this delivery falls under, if its protocol has one. A delivery over
    /// its limit waits (without using an attempt) until the window lets it through.
    fn rate_limit(&self, _delivery: &Delivery) -> Option<RateLimit> {
        None
    }
}

/// The answer to a worker's claim on a delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// This worker has it now (IN_FLIGHT, the attempt counted).
    Claimed(Box<Delivery>),
    /// Another worker has it, or it is finished.
    Taken,
    /// An earlier delivery with the same order key is not finished yet.
    Waiting,
}

/// Runs deliveries later: the job queue.
#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    /// Asks a worker to attempt `id` at `at` (now when in the past).
    ///
    /// # Errors
    /// `Unknown` when the queue cannot be reached; the sweep re-queues what is due.
    async fn schedule(&self, id: DeliveryId, at: DateTime<Utc>) -> DomainResult<()>;
}

/// Deliveries and their attempts.
#[async_trait]
pub trait DeliveryRepo: Send + Sync {
    /// # Errors
    /// `Duplicate` when the integration already has a delivery with this idempotency key.
    async fn create(&self, tenant: TenantId, input: NewDelivery) -> DomainResult<Delivery>;
    /// # Errors
    /// `Unknown` on storage failure.
    async fn get(&self, tenant: TenantId, id: DeliveryId) -> DomainResult<Option<Delivery>>;
    /// For workers, which know only the id.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn get_any(&self, id: DeliveryId) -> DomainResult<Option<Delivery>>;
    /// Moves a PENDING delivery, a RETRYING one whose `next_attempt_at` has come (within a
    /// second), or an IN_FLIGHT one whose lease ran out before `now` (its worker stopped
    /// beating; one claimed by a version without leases: not updated since `stale`) to
    /// IN_FLIGHT with a lease until `lease_until`, and counts the attempt (compare-and-set);
    /// the first claim sets `first_attempt_at`. `Taken` when another worker has it, it is
    /// not due yet or it is finished; `Waiting` while an earlier delivery of the same
    /// integration and order key is neither SUCCEEDED nor DEAD.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn claim(
        &self,
        id: DeliveryId,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        stale: DateTime<Utc>,
    ) -> DomainResult<Claim>;
    /// Extends to `until` the leases of those of `ids` that are still IN_FLIGHT (the
    /// caller's worker is sending them: its heartbeat); answers how many.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn renew(&self, ids: &[DeliveryId], until: DateTime<Utc>) -> DomainResult<u64>;
    /// Gives IN_FLIGHT deliveries whose lease ran out before `now` (or, claimed by a
    /// version without leases, not updated since `stale`) back as RETRYING due at `now`,
    /// at most `limit`; each to one caller only (compare-and-set). Their attempt stays
    /// counted.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn requeue_abandoned(
        &self,
        now: DateTime<Utc>,
        stale: DateTime<Utc>,
        limit: u64,
    ) -> DomainResult<Vec<DeliveryId>>;
    /// Gives a claimed delivery back without counting the attempt (it was held back, e.g.
    /// by a rate limit): RETRYING with `next_attempt_at = at`.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn release(&self, id: DeliveryId, at: DateTime<Utc>) -> DomainResult<()>;
    /// The oldest unfinished delivery after `after` with the same integration and order key.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn next_in_order(&self, after: &Delivery) -> DomainResult<Option<DeliveryId>>;
    /// Deliveries waiting for a worker (PENDING, RETRYING, IN_FLIGHT), for the queue-depth
    /// metric.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn depth(&self) -> DomainResult<Vec<(DeliveryState, u64)>>;
    /// Records an attempt.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn record_attempt(&self, tenant: TenantId, attempt: Attempt) -> DomainResult<()>;
    /// Records an attempt and sets the state it led to (`attempts` = its number), in one
    /// write where the storage allows.
    ///
    /// # Errors
    /// `NotFound` when the delivery is gone; `Unknown` on storage failure.
    async fn complete(
        &self,
        tenant: TenantId,
        attempt: Attempt,
        state: DeliveryState,
        next_attempt_at: Option<DateTime<Utc>>,
        last_error: Option<String>,
    ) -> DomainResult<Delivery>;
    /// Sets the state after an attempt (or a manual retry: PENDING also starts a new
    /// retry window, clearing `first_attempt_at`).
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn finish(
        &self,
        id: DeliveryId,
        state: DeliveryState,
        next_attempt_at: Option<DateTime<Utc>>,
        last_error: Option<String>,
        attempts: Option<i32>,
    ) -> DomainResult<Delivery>;
    /// Newest first.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn list(&self, tenant: TenantId, filter: &DeliveryFilter, page: PageRequest) -> DomainResult<Page<Delivery>>;
    /// How many deliveries of `integration` were created in `[since, until)`.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn count_window(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> DomainResult<u64>;
    /// Moves every SUCCEEDED, RETRYING or DEAD delivery of `integration` created in
    /// `[since, until)` back to PENDING (one conditional write: one being claimed meanwhile
    /// is left to its worker); answers their ids, oldest first. Id, idempotency key and
    /// payload stay; attempts go on counting.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn requeue_window(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> DomainResult<Vec<DeliveryId>>;
    /// Records what the vendor reported of the delivery with `idempotency_key` of
    /// `integration` (a later callback about it); answers it, `None` when there is none.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn set_result(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        idempotency_key: &str,
        result: &Value,
    ) -> DomainResult<Option<Delivery>>;
    /// Oldest first.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn attempts(&self, tenant: TenantId, id: DeliveryId) -> DomainResult<Vec<Attempt>>;
    /// The attempts of several deliveries, in one query, oldest first.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn attempts_of(&self, tenant: TenantId, ids: &[DeliveryId]) -> DomainResult<Vec<Attempt>>;
    /// Deliveries whose time has come but that no worker holds: RETRYING past
    /// `next_attempt_at`, PENDING older than `stale`, IN_FLIGHT whose lease ran out before
    /// `now` (a worker died mid-attempt; without a lease: not updated since `stale`).
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn due(&self, now: DateTime<Utc>, stale: DateTime<Utc>, limit: u64) -> DomainResult<Vec<DeliveryId>>;
}

#[cfg(test)]
mod tests {
    use super::DeliveryKind;

    #[test]
    fn kinds_are_sender_dot_message() {
        let k = DeliveryKind::parse("webhook.alarm").expect("kind");
        assert_eq!((k.sender(), k.message(), k.as_str()), ("webhook", "alarm", "webhook.alarm"));
        assert_eq!(DeliveryKind::parse("a1.b.c_2").expect("kind").message(), "b.c_2");
        for bad in ["", "webhook", "webhook.", ".alarm", "Webhook.alarm", "1x.alarm", "web hook.alarm", "x.Alarm"] {
            assert!(DeliveryKind::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(DeliveryKind::of("webhook", "alarm"), DeliveryKind::from_static("webhook.alarm"));
    }
}
