//! The audit log: every mutation (who, tenant, what, when, outcome). Argument values are
//! not kept, so no secret can land here.

use crate::ids::{EntryId, TenantId, UserId};
use crate::{Actor, DomainResult, Page, PageRequest, Role};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// One audited action.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub id: EntryId,
    pub tenant_id: Option<TenantId>,
    pub actor_id: Option<UserId>,
    pub actor_role: Option<Role>,
    /// The mutation name, e.g. `configureIntegration`.
    pub action: String,
    /// The id the action was about, when it had one.
    pub target: Option<String>,
    /// `OK` or the error code.
    pub outcome: String,
    pub at: DateTime<Utc>,
}

/// The audit log.
#[async_trait]
pub trait AuditRepo: Send + Sync {
    /// # Errors
    /// `Unknown` on storage failure.
    async fn record(&self, entry: AuditEntry) -> DomainResult<()>;
    /// Entries of one tenant, newest first.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn list(&self, tenant: TenantId, page: PageRequest) -> DomainResult<Page<AuditEntry>>;
}

/// Writing and reading the audit log.
#[derive(Clone)]
pub struct AuditService {
    repo: Arc<dyn AuditRepo>,
}

impl AuditService {
    pub fn new(repo: Arc<dyn AuditRepo>) -> Self {
        Self { repo }
    }

    /// # Errors
    /// `Unknown` on storage failure.
    pub async fn record(&self, entry: AuditEntry) -> DomainResult<()> {
        self.repo.record(entry).await
    }

    /// # Errors
    /// `Forbidden` unless tenant admin.
    pub async fn list(&self, actor: &Actor, page: PageRequest) -> DomainResult<Page<AuditEntry>> {
        self.repo.list(actor.require_tenant_admin()?, page).await
    }
}
