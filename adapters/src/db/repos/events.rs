use crate::db::entities::inbound_events as ev;
use crate::db::page::{Order, fetch_page_ordered, try_map};
use crate::db::unknown;
use async_trait::async_trait;
use domain::events::{EventFilter, EventState, InboundEvent, InboundEventRepo, NewInboundEvent, Recorded};
use domain::ids::{InboundEventId, IntegrationId, TenantId};
use domain::{DomainError, DomainResult, Page, PageRequest};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Select, Set, TryInsertResult};

/// Raw inbound events in SQL.
#[derive(Clone)]
pub struct SqlInboundEventRepo {
    db: DatabaseConnection,
}

impl SqlInboundEventRepo {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

fn scoped(tenant: TenantId) -> Select<ev::Entity> {
    ev::Entity::find().filter(ev::Column::TenantId.eq(tenant.as_uuid()))
}

fn to_domain(m: ev::Model) -> DomainResult<InboundEvent> {
    Ok(InboundEvent {
        id: InboundEventId::from_uuid(m.id),
        tenant_id: TenantId::from_uuid(m.tenant_id),
        integration_id: IntegrationId::from_uuid(m.integration_id),
        protocol: m.protocol,
        kind: m.kind,
        dedup_key: m.dedup_key,
        headers: m.headers,
        body: m.body,
        received_at: m.received_at,
        state: EventState::parse(&m.state).map_err(|e| DomainError::Unknown(anyhow::anyhow!("stored state: {e}")))?,
        error: m.error,
        processed_at: m.processed_at,
    })
}

#[async_trait]
impl InboundEventRepo for SqlInboundEventRepo {
    async fn record(&self, tenant: TenantId, input: NewInboundEvent) -> DomainResult<Recorded> {
        let find = || {
            scoped(tenant)
                .filter(ev::Column::IntegrationId.eq(input.integration_id.as_uuid()))
                .filter(ev::Column::DedupKey.eq(input.dedup_key.clone()))
        };
        let row = ev::ActiveModel {
            id: Set(InboundEventId::new().as_uuid()),
            tenant_id: Set(tenant.as_uuid()),
            integration_id: Set(input.integration_id.as_uuid()),
            protocol: Set(input.protocol.clone()),
            kind: Set(input.kind.clone()),
            dedup_key: Set(input.dedup_key.clone()),
            headers: Set(input.headers.clone()),
            body: Set(input.body.clone()),
            received_at: Set(input.received_at),
            state: Set(EventState::Received.as_str().to_owned()),
            error: Set(None),
            processed_at: Set(None),
        };
        // One round trip for a new event: the unique (integration, dedup key) index decides,
        // also when the vendor's retry races its first delivery.
        let inserted = ev::Entity::insert(row)
            .on_conflict_do_nothing_on([ev::Column::IntegrationId, ev::Column::DedupKey])
            .exec_with_returning(&self.db)
            .await;
        match inserted {
            Ok(TryInsertResult::Inserted(m)) => Ok(Recorded { event: to_domain(m)?, duplicate: false }),
            // `DO NOTHING` returns no row: sea-orm says "not inserted" or, with RETURNING,
            // "not found".
            Ok(TryInsertResult::Conflicted | TryInsertResult::Empty)
            | Err(sea_orm::DbErr::RecordNotInserted | sea_orm::DbErr::RecordNotFound(_)) => {
                let existing =
                    find().one(&self.db).await.map_err(unknown)?.ok_or(DomainError::NotFound("inbound event"))?;
                Ok(Recorded { event: to_domain(existing)?, duplicate: true })
            }
            Err(e) => Err(unknown(e)),
        }
    }

    async fn finish(
        &self,
        tenant: TenantId,
        id: InboundEventId,
        state: EventState,
        error: Option<String>,
    ) -> DomainResult<()> {
        let res = ev::Entity::update_many()
            .col_expr(ev::Column::State, Expr::value(state.as_str()))
            .col_expr(ev::Column::Error, Expr::value(error))
            .col_expr(ev::Column::ProcessedAt, Expr::value(Some(chrono::Utc::now())))
            .filter(ev::Column::TenantId.eq(tenant.as_uuid()))
            .filter(ev::Column::Id.eq(id.as_uuid()))
            .exec(&self.db)
            .await
            .map_err(unknown)?;
        if res.rows_affected == 0 {
            return Err(DomainError::NotFound("inbound event"));
        }
        Ok(())
    }

    async fn list(&self, tenant: TenantId, f: &EventFilter, page: PageRequest) -> DomainResult<Page<InboundEvent>> {
        let mut q = scoped(tenant);
        if let Some(i) = f.integration_id {
            q = q.filter(ev::Column::IntegrationId.eq(i.as_uuid()));
        }
        if let Some(s) = f.state {
            q = q.filter(ev::Column::State.eq(s.as_str()));
        }
        if let Some(k) = &f.kind {
            q = q.filter(ev::Column::Kind.eq(k.as_str()));
        }
        if let Some(from) = f.from {
            q = q.filter(ev::Column::ReceivedAt.gte(from));
        }
        if let Some(to) = f.to {
            q = q.filter(ev::Column::ReceivedAt.lt(to));
        }
        let page = fetch_page_ordered(&self.db, q, ev::Column::Id, page, Order::NewestFirst).await.map_err(unknown)?;
        try_map(page, to_domain)
    }
}
