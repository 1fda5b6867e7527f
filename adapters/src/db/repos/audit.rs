use crate::db::Conn;
use crate::db::entities::audit_log as al;
use crate::db::page::{Order, fetch_page_ordered};
use crate::db::unknown;
use async_trait::async_trait;
use domain::audit::{AuditEntry, AuditRepo};
use domain::ids::{EntryId, TenantId, UserId};
use domain::{DomainResult, Page, PageRequest, Role};
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};

/// The audit log in SQL.
#[derive(Clone)]
pub struct SqlAuditRepo {
    db: Conn,
}

impl SqlAuditRepo {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db: db.into() }
    }
}

#[async_trait]
impl AuditRepo for SqlAuditRepo {
    async fn record(&self, e: AuditEntry) -> DomainResult<()> {
        al::ActiveModel {
            id: Set(e.id.as_uuid()),
            tenant_id: Set(e.tenant_id.map(|t| t.as_uuid())),
            actor_id: Set(e.actor_id.map(|u| u.as_uuid())),
            actor_role: Set(e.actor_role.map(|r| r.as_str().to_owned())),
            action: Set(e.action),
            target: Set(e.target),
            outcome: Set(e.outcome),
            at: Set(e.at),
        }
        .insert(&self.db)
        .await
        .map_err(unknown)?;
        Ok(())
    }

    async fn list(&self, tenant: TenantId, page: PageRequest) -> DomainResult<Page<AuditEntry>> {
        let q = al::Entity::find().filter(al::Column::TenantId.eq(tenant.as_uuid()));
        let page = fetch_page_ordered(&self.db, q, al::Column::Id, page, Order::NewestFirst).await.map_err(unknown)?;
        Ok(page.map(|m| AuditEntry {
            id: EntryId::from_uuid(m.id),
            tenant_id: m.tenant_id.map(TenantId::from_uuid),
            actor_id: m.actor_id.map(UserId::from_uuid),
            actor_role: m.actor_role.as_deref().and_then(|r| Role::parse(r).ok()),
            action: m.action,
            target: m.target,
            outcome: m.outcome,
            at: m.at,
        }))
    }
}
