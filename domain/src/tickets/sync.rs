//! Where a ticket stands with the outside system it is uploaded to (a regulator): the
//! outcome of its last upload and which version of the ticket that upload carried. A
//! change after the last upload makes it pending again until the next one.

use super::Ticket;
use crate::DomainResult;
use crate::enums::string_enum;
use crate::ids::{IntegrationId, TenantId, TicketId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

string_enum!(
    /// A ticket's upload state.
    SyncState, "state" {
        /// Changed since its last upload; an upload is on its way.
        Pending = "PENDING",
        /// The receiver stored the ticket as it is now.
        Synced = "SYNCED",
        /// The receiver refused the ticket as it is now (see `last_error`); retried.
        Failed = "FAILED",
    }
);

/// The outcome of a ticket's last upload, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketSync {
    pub ticket_id: TicketId,
    pub tenant_id: TenantId,
    pub integration_id: IntegrationId,
    /// `Synced` or `Failed`: what the receiver said of `version`.
    pub state: SyncState,
    /// The ticket's `updated_at` that the upload carried.
    pub version: DateTime<Utc>,
    /// The receiver's reason for the last refusal (kept after a later success is pending).
    pub last_error: Option<String>,
    pub last_upload_at: DateTime<Utc>,
}

impl TicketSync {
    /// Whether this outcome is about the ticket as it is now (nothing changed since).
    pub fn covers(&self, ticket: &Ticket) -> bool {
        self.version >= ticket.updated_at
    }

    /// Whether the receiver holds the ticket as it is now.
    pub fn synced(&self, ticket: &Ticket) -> bool {
        self.state == SyncState::Synced && self.covers(ticket)
    }
}

/// A ticket's upload state as users see it.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncView {
    pub state: SyncState,
    pub last_error: Option<String>,
    pub last_upload_at: Option<DateTime<Utc>>,
}

/// The view of `ticket` given its last upload's outcome (none yet: pending).
pub fn sync_view(ticket: &Ticket, last: Option<&TicketSync>) -> SyncView {
    match last {
        None => SyncView { state: SyncState::Pending, last_error: None, last_upload_at: None },
        Some(s) => SyncView {
            state: if s.covers(ticket) { s.state } else { SyncState::Pending },
            last_error: s.last_error.clone().filter(|_| s.state == SyncState::Failed),
            last_upload_at: Some(s.last_upload_at),
        },
    }
}

/// The stored upload outcomes.
#[async_trait]
pub trait TicketSyncRepo: Send + Sync {
    /// # Errors
    /// `Unknown` on storage failure.
    async fn get(&self, tenant: TenantId, ticket: TicketId) -> DomainResult<Option<TicketSync>>;
    /// The stored outcomes of several tickets, in one query.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn get_many(&self, tenant: TenantId, tickets: &[TicketId]) -> DomainResult<Vec<TicketSync>>;
    /// Stores `sync` as the ticket's last upload outcome unless a later version's outcome
    /// is already stored.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn record(&self, sync: TicketSync) -> DomainResult<()>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tickets::{TicketKind, TicketStatus};

    fn ticket(updated: i64) -> Ticket {
        let at = DateTime::from_timestamp(updated, 0).expect("time");
        Ticket {
            id: TicketId::new(),
            tenant_id: TenantId::new(),
            kind: TicketKind::WorkPermit,
            integration_id: None,
            device_id: None,
            home_id: None,
            status: TicketStatus::initial(TicketKind::WorkPermit),
            fields: serde_json::json!({}),
            external_id: None,
            created_by: None,
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn a_change_after_the_upload_is_pending_and_keeps_the_last_upload_time() {
        let t = ticket(100);
        assert_eq!(sync_view(&t, None).state, SyncState::Pending);
        let s = TicketSync {
            ticket_id: t.id,
            tenant_id: t.tenant_id,
            integration_id: IntegrationId::new(),
            state: SyncState::Failed,
            version: t.updated_at,
            last_error: Some("bad".into()),
            last_upload_at: t.updated_at,
        };
        let v = sync_view(&t, Some(&s));
        assert_eq!((v.state, v.last_error.as_deref()), (SyncState::Failed, Some("bad")));
        assert!(!s.synced(&t));
        let later = ticket(200);
        let later = Ticket { id: t.id, ..later };
        assert_eq!(sync_view(&later, Some(&s)).state, SyncState::Pending);
        let ok = TicketSync { state: SyncState::Synced, version: later.updated_at, ..s };
        assert!(ok.synced(&later));
        let v = sync_view(&later, Some(&ok));
        assert_eq!((v.state, v.last_error), (SyncState::Synced, None));
    }
}
