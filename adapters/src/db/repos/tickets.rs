use crate::db::entities::{ticket_files as f, tickets as t};
use crate::db::page::{Order, fetch_page_ordered, try_map};
use crate::db::{Conn, unknown};
use async_trait::async_trait;
use chrono::Utc;
use domain::ids::{DeviceId, FileId, HomeId, IntegrationId, TenantId, TicketId, UserId};
use domain::tickets::{
    NewTicket, Ticket, TicketFile, TicketFilter, TicketKind, TicketRepo, TicketStatus, TicketUpdate,
};
use domain::{DomainError, DomainResult, Page, PageRequest};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Select, Set};

/// Tickets and their files in SQL.
#[derive(Clone)]
pub struct SqlTicketRepo {
    db: Conn,
}

impl SqlTicketRepo {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db: Conn::Pool(db) }
    }

    /// The same repository writing through a unit of work's transaction.
    pub(crate) fn within(db: Conn) -> Self {
        Self { db }
    }
}

fn scoped(tenant: TenantId) -> Select<t::Entity> {
    t::Entity::find().filter(t::Column::TenantId.eq(tenant.as_uuid()))
}

fn to_domain(m: t::Model) -> DomainResult<Ticket> {
    let stored = |e: DomainError| DomainError::Unknown(anyhow::anyhow!("stored ticket: {e}"));
    let kind = TicketKind::parse(&m.kind).map_err(stored)?;
    let status = TicketStatus::parse(kind, &m.status).map_err(stored)?;
    Ok(Ticket {
        id: TicketId::from_uuid(m.id),
        tenant_id: TenantId::from_uuid(m.tenant_id),
        kind,
        integration_id: m.integration_id.map(IntegrationId::from_uuid),
        device_id: m.device_id.map(DeviceId::from_uuid),
        home_id: m.home_id.map(HomeId::from_uuid),
        status,
        fields: m.fields,
        external_id: m.external_id,
        created_by: m.created_by.map(UserId::from_uuid),
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

fn file_to_domain(m: f::Model) -> TicketFile {
    TicketFile {
        id: FileId::from_uuid(m.id),
        tenant_id: TenantId::from_uuid(m.tenant_id),
        ticket_id: TicketId::from_uuid(m.ticket_id),
        filename: m.filename,
        content_type: m.content_type,
        size: m.size,
        storage_key: m.storage_key,
        created_at: m.created_at,
    }
}

#[async_trait]
impl TicketRepo for SqlTicketRepo {
    async fn create(&self, tenant: TenantId, input: NewTicket) -> DomainResult<Ticket> {
        let now = Utc::now();
        let row = t::ActiveModel {
            id: Set(TicketId::new().as_uuid()),
            tenant_id: Set(tenant.as_uuid()),
            kind: Set(input.kind.as_str().to_owned()),
            integration_id: Set(input.integration_id.map(|i| i.as_uuid())),
            device_id: Set(input.device_id.map(|d| d.as_uuid())),
            home_id: Set(input.home_id.map(|h| h.as_uuid())),
            status: Set(input.status.as_str().to_owned()),
            fields: Set(input.fields),
            external_id: Set(input.external_id),
            created_by: Set(input.created_by.map(|u| u.as_uuid())),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&self.db)
        .await
        .map_err(unknown)?;
        to_domain(row)
    }

    async fn update(
        &self,
        tenant: TenantId,
        id: TicketId,
        expected_status: TicketStatus,
        update: TicketUpdate,
    ) -> DomainResult<Ticket> {
        let res = t::Entity::update_many()
            .col_expr(t::Column::Status, Expr::value(update.status.as_str()))
            .col_expr(t::Column::Fields, Expr::value(update.fields))
            .col_expr(t::Column::DeviceId, Expr::value(update.device_id.map(|d| d.as_uuid())))
            .col_expr(t::Column::HomeId, Expr::value(update.home_id.map(|h| h.as_uuid())))
            .col_expr(t::Column::ExternalId, Expr::value(update.external_id))
            .col_expr(t::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(t::Column::TenantId.eq(tenant.as_uuid()))
            .filter(t::Column::Id.eq(id.as_uuid()))
            .filter(t::Column::Status.eq(expected_status.as_str()))
            .exec(&self.db)
            .await
            .map_err(unknown)?;
        let now = self.get(tenant, id).await?.ok_or(DomainError::NotFound("ticket"))?;
        if res.rows_affected == 0 {
            return Err(DomainError::InvalidTransition(format!(
                "the ticket moved to {} meanwhile; reload and retry",
                now.status.as_str()
            )));
        }
        Ok(now)
    }

    async fn delete(&self, tenant: TenantId, id: TicketId, expected_status: TicketStatus) -> DomainResult<()> {
        let current = self.get(tenant, id).await?.ok_or(DomainError::NotFound("ticket"))?;
        let res = t::Entity::delete_many()
            .filter(t::Column::TenantId.eq(tenant.as_uuid()))
            .filter(t::Column::Id.eq(id.as_uuid()))
            .filter(t::Column::Status.eq(expected_status.as_str()))
            .exec(&self.db)
            .await
            .map_err(unknown)?;
        if res.rows_affected == 0 {
            return Err(DomainError::InvalidTransition(format!(
                "the ticket moved to {} meanwhile; reload and retry",
                current.status.as_str()
            )));
        }
        // Its file records (the foreign key cascades them too where it is enforced); the
        // bytes stay in the store, under keys made of ids only.
        f::Entity::delete_many()
            .filter(f::Column::TenantId.eq(tenant.as_uuid()))
            .filter(f::Column::TicketId.eq(id.as_uuid()))
            .exec(&self.db)
            .await
            .map_err(unknown)?;
        Ok(())
    }

    async fn get(&self, tenant: TenantId, id: TicketId) -> DomainResult<Option<Ticket>> {
        scoped(tenant)
            .filter(t::Column::Id.eq(id.as_uuid()))
            .one(&self.db)
            .await
            .map_err(unknown)?
            .map(to_domain)
            .transpose()
    }

    async fn list(&self, tenant: TenantId, filter: &TicketFilter, page: PageRequest) -> DomainResult<Page<Ticket>> {
        let mut q = scoped(tenant);
        if let Some(k) = filter.kind {
            q = q.filter(t::Column::Kind.eq(k.as_str()));
        }
        if let Some(s) = &filter.status {
            q = q.filter(t::Column::Status.eq(s.as_str()));
        }
        if let Some(i) = filter.integration_id {
            q = q.filter(t::Column::IntegrationId.eq(i.as_uuid()));
        }
        if let Some(d) = filter.device_id {
            q = q.filter(t::Column::DeviceId.eq(d.as_uuid()));
        }
        if let Some(h) = filter.home_id {
            q = q.filter(t::Column::HomeId.eq(h.as_uuid()));
        }
        let page = fetch_page_ordered(&self.db, q, t::Column::Id, page, Order::NewestFirst).await.map_err(unknown)?;
        try_map(page, to_domain)
    }

    async fn add_file(&self, tenant: TenantId, file: TicketFile) -> DomainResult<TicketFile> {
        let row = f::ActiveModel {
            id: Set(file.id.as_uuid()),
            tenant_id: Set(tenant.as_uuid()),
            ticket_id: Set(file.ticket_id.as_uuid()),
            filename: Set(file.filename),
            content_type: Set(file.content_type),
            size: Set(file.size),
            storage_key: Set(file.storage_key),
            created_at: Set(file.created_at),
        }
        .insert(&self.db)
        .await
        .map_err(unknown)?;
        Ok(file_to_domain(row))
    }

    async fn files(&self, tenant: TenantId, ticket: TicketId) -> DomainResult<Vec<TicketFile>> {
        let rows = f::Entity::find()
            .filter(f::Column::TenantId.eq(tenant.as_uuid()))
            .filter(f::Column::TicketId.eq(ticket.as_uuid()))
            .order_by_asc(f::Column::Id)
            .all(&self.db)
            .await
            .map_err(unknown)?;
        Ok(rows.into_iter().map(file_to_domain).collect())
    }

    async fn files_of(&self, tenant: TenantId, tickets: &[TicketId]) -> DomainResult<Vec<TicketFile>> {
        if tickets.is_empty() {
            return Ok(vec![]);
        }
        let rows = f::Entity::find()
            .filter(f::Column::TenantId.eq(tenant.as_uuid()))
            .filter(f::Column::TicketId.is_in(tickets.iter().map(|t| t.as_uuid())))
            .order_by_asc(f::Column::Id)
            .all(&self.db)
            .await
            .map_err(unknown)?;
        Ok(rows.into_iter().map(file_to_domain).collect())
    }
}
