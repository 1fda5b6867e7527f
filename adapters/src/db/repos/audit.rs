use crate::db::Conn;
use crate::db::entities::audit_log as al;
use crate::db::page::{Order, fetch_page_ordered};
use crate::db::unknown;
use async_trait::async_trait;
use domain::audit::{AuditEntry, AuditFilter, AuditRepo};
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

fn json_text(v: Option<serde_json::Value>) -> Option<String> {
    v.map(|v| v.to_string())
}

fn json_of(t: Option<String>) -> Option<serde_json::Value> {
    t.as_deref().and_then(|t| serde_json::from_str(t).ok())
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
            entity_type: Set(e.entity_type),
            entity_id: Set(e.entity_id),
            state_before: Set(json_text(e.before)),
            state_after: Set(json_text(e.after)),
        }
        .insert(&self.db)
        .await
        .map_err(unknown)?;
        Ok(())
    }

    async fn list(&self, tenant: TenantId, f: &AuditFilter, page: PageRequest) -> DomainResult<Page<AuditEntry>> {
        let mut q = al::Entity::find().filter(al::Column::TenantId.eq(tenant.as_uuid()));
        if let Some(a) = f.actor_id {
            q = q.filter(al::Column::ActorId.eq(a.as_uuid()));
        }
        if let Some(t) = &f.entity_type {
            q = q.filter(al::Column::EntityType.eq(t.as_str()));
        }
        if let Some(i) = &f.entity_id {
            q = q.filter(al::Column::EntityId.eq(i.as_str()));
        }
        if let Some(a) = &f.action {
            q = q.filter(al::Column::Action.eq(a.as_str()));
        }
        if let Some(s) = f.since {
            q = q.filter(al::Column::At.gte(s));
        }
        if let Some(u) = f.until {
            q = q.filter(al::Column::At.lt(u));
        }
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
            entity_type: m.entity_type,
            entity_id: m.entity_id,
            before: json_of(m.state_before),
            after: json_of(m.state_after),
        }))
    }
}
