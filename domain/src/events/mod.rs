//! Inbound events: every hook request stored raw before it is processed, with a dedup key
//! so that a vendor's retry is recognised and processed once.

use crate::enums::string_enum;
use crate::ids::{InboundEventId, IntegrationId, TenantId};
use crate::{Actor, DomainError, DomainResult, Page, PageRequest};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::sync::Arc;

string_enum!(
    /// Where an inbound event is in its processing.
    EventState, "state" {
        /// Stored, not yet processed.
        Received = "RECEIVED",
        /// Processed successfully.
        Processed = "PROCESSED",
        /// Processing failed; `error` says why.
        Failed = "FAILED",
        /// Stored only: a kind this version does not process.
        Ignored = "IGNORED",
    }
);

/// What `replayInboundEvent` does with an event, by its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// PROCESSED: its facts were applied, and applying them again would count them twice
    /// (an alarm's occurrences, a meter's charge); the replay changes nothing.
    AppliedBefore,
    /// FAILED or IGNORED: nothing of it was applied; it is processed again from its stored
    /// body (after a mapping fix, or once the device it names exists).
    Again,
    /// RECEIVED: it is being processed (or the sweep will process it).
    InProgress,
}

impl EventState {
    /// See [`Replay`].
    pub fn replay(self) -> Replay {
        match self {
            Self::Processed => Replay::AppliedBefore,
            Self::Failed | Self::Ignored => Replay::Again,
            Self::Received => Replay::InProgress,
        }
    }
}

/// A raw hook request about to be stored.
#[derive(Debug, Clone)]
pub struct NewInboundEvent {
    pub integration_id: IntegrationId,
    /// The integration kind's name (`IntegrationKind::as_str`), or `TELEMETRY`.
    pub protocol: String,
    /// The vendor's event or service name.
    pub kind: String,
    /// Unique per integration: the vendor's retry of the same message has the same key.
    pub dedup_key: String,
    /// The headers that matter to the protocol (never credentials).
    pub headers: Value,
    pub body: String,
    pub received_at: DateTime<Utc>,
}

/// A stored inbound event.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundEvent {
    pub id: InboundEventId,
    pub tenant_id: TenantId,
    pub integration_id: IntegrationId,
    pub protocol: String,
    pub kind: String,
    pub dedup_key: String,
    pub headers: Value,
    pub body: String,
    pub received_at: DateTime<Utc>,
    pub state: EventState,
    pub error: Option<String>,
    pub processed_at: Option<DateTime<Utc>>,
    /// The answer given when it was applied, for protocols that answer a resend the same.
    pub answer: Option<Value>,
}

/// The answer to storing an event: the stored row and whether it was already there.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub event: InboundEvent,
    pub duplicate: bool,
}

/// Filters of `inboundEvents`.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub integration_id: Option<IntegrationId>,
    pub state: Option<EventState>,
    pub kind: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// Raw inbound events of a tenant.
#[async_trait]
pub trait InboundEventRepo: Send + Sync {
    /// Stores the event unless one with the same (integration, dedup key) exists; then
    /// returns that one with `duplicate = true`.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn record(&self, tenant: TenantId, input: NewInboundEvent) -> DomainResult<Recorded>;
    /// # Errors
    /// `NotFound("inbound event")`.
    async fn finish(
        &self,
        tenant: TenantId,
        id: InboundEventId,
        state: EventState,
        error: Option<String>,
    ) -> DomainResult<()>;
    /// Keeps the answer an applied event was given (a resend is answered the same).
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn keep_answer(&self, tenant: TenantId, id: InboundEventId, answer: &Value) -> DomainResult<()>;
    /// Claims up to `limit` events of `protocol`, of any tenant, still RECEIVED although
    /// stored before `before` and not claimed since `before` (their process stopped before
    /// processing them): each is returned to one caller only, whose claim is its
    /// `processed_at` until it finishes the event.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn claim_stale(&self, protocol: &str, before: DateTime<Utc>, limit: u64) -> DomainResult<Vec<InboundEvent>>;
    /// # Errors
    /// `Unknown` on storage failure.
    async fn get(&self, tenant: TenantId, id: InboundEventId) -> DomainResult<Option<InboundEvent>>;
    /// Moves an event that is still in state `from` back to RECEIVED, claimed now (the
    /// sweep leaves it alone), its error cleared, to be processed again; `false` when it
    /// is no longer in `from` (a concurrent replay took it).
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn reopen(&self, tenant: TenantId, id: InboundEventId, from: EventState) -> DomainResult<bool>;
    /// Newest first.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn list(&self, tenant: TenantId, filter: &EventFilter, page: PageRequest)
    -> DomainResult<Page<InboundEvent>>;
}

/// Reading the inbound events (tenant admins) and recording them (hooks).
#[derive(Clone)]
pub struct InboundEventService {
    repo: Arc<dyn InboundEventRepo>,
}

impl InboundEventService {
    pub fn new(repo: Arc<dyn InboundEventRepo>) -> Self {
        Self { repo }
    }

    /// # Errors
    /// `Unknown` on storage failure.
    pub async fn record(&self, tenant: TenantId, input: NewInboundEvent) -> DomainResult<Recorded> {
        self.repo.record(tenant, input).await
    }

    /// # Errors
    /// `NotFound`.
    pub async fn finish(
        &self,
        tenant: TenantId,
        id: InboundEventId,
        state: EventState,
        error: Option<String>,
    ) -> DomainResult<()> {
        self.repo.finish(tenant, id, state, error).await
    }

    /// Keeps the answer an applied event was given.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    pub async fn keep_answer(&self, tenant: TenantId, id: InboundEventId, answer: &Value) -> DomainResult<()> {
        self.repo.keep_answer(tenant, id, answer).await
    }

    /// Events of `protocol` left RECEIVED since before `before`, claimed for processing.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    pub async fn claim_stale(
        &self,
        protocol: &str,
        before: DateTime<Utc>,
        limit: u64,
    ) -> DomainResult<Vec<InboundEvent>> {
        self.repo.claim_stale(protocol, before, limit).await
    }

    /// One event, for an operator about to replay it.
    ///
    /// # Errors
    /// `Forbidden` unless operator or tenant admin; `NotFound` outside the tenant.
    pub async fn get(&self, actor: &Actor, id: InboundEventId) -> DomainResult<InboundEvent> {
        self.repo.get(actor.require_operator()?, id).await?.ok_or(DomainError::NotFound("inbound event"))
    }

    /// Reopens `event` (FAILED or IGNORED) to be processed again; see [`Replay`].
    ///
    /// # Errors
    /// `InvalidTransition` when its state does not allow a replay or it moved meanwhile.
    pub async fn reopen(&self, event: &InboundEvent) -> DomainResult<InboundEvent> {
        if event.state.replay() != Replay::Again {
            return Err(DomainError::InvalidTransition(format!("{} -> RECEIVED", event.state.as_str())));
        }
        if !self.repo.reopen(event.tenant_id, event.id, event.state).await? {
            return Err(DomainError::InvalidTransition(format!(
                "{} -> RECEIVED: the event is being replayed already",
                event.state.as_str()
            )));
        }
        Ok(InboundEvent { state: EventState::Received, error: None, ..event.clone() })
    }

    /// # Errors
    /// `Forbidden` unless tenant admin.
    pub async fn list(
        &self,
        actor: &Actor,
        filter: &EventFilter,
        page: PageRequest,
    ) -> DomainResult<Page<InboundEvent>> {
        self.repo.list(actor.require_tenant_admin()?, filter, page).await
    }
}
