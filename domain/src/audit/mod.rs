//! The audit log: every mutation (who, tenant, what, when, outcome), and for mutations that
//! change an entity, which one and its state before and after. Argument values are not
//! kept, and the states are the fields the log chooses to keep (never a credential or a
//! password), so no secret can land here.

use crate::ids::{EntryId, TenantId, UserId};
use crate::{Actor, DomainResult, Page, PageRequest, Role};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
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
    /// The kind of entity the action changed (`device`, `alarm` ...), when known.
    pub entity_type: Option<String>,
    /// The id of the entity the action changed.
    pub entity_id: Option<String>,
    /// The entity as it was before the action (absent for a creation or a failed action).
    pub before: Option<Value>,
    /// The entity as the action left it (absent for a deletion or a failed action).
    pub after: Option<Value>,
}

/// Filters of `auditLog`; every one given must match.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor_id: Option<UserId>,
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    pub action: Option<String>,
    /// At or after.
    pub since: Option<DateTime<Utc>>,
    /// Before.
    pub until: Option<DateTime<Utc>>,
}

/// The audit log.
#[async_trait]
pub trait AuditRepo: Send + Sync {
    /// # Errors
    /// `Unknown` on storage failure.
    async fn record(&self, entry: AuditEntry) -> DomainResult<()>;
    /// Entries of one tenant matching `filter`, newest first.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn list(&self, tenant: TenantId, filter: &AuditFilter, page: PageRequest) -> DomainResult<Page<AuditEntry>>;
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
    pub async fn list(&self, actor: &Actor, filter: &AuditFilter, page: PageRequest) -> DomainResult<Page<AuditEntry>> {
        self.repo.list(actor.require_tenant_admin()?, filter, page).await
    }
}
