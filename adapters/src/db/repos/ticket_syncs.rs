use crate::db::entities::ticket_syncs as s;
use crate::db::{Conn, unknown};
use async_trait::async_trait;
use domain::ids::{IntegrationId, TenantId, TicketId};
use domain::tickets::{SyncState, TicketSync, TicketSyncRepo};
use domain::{DomainError, DomainResult};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};

/// Tickets' upload outcomes in SQL.
#[derive(Clone)]
pub struct SqlTicketSyncRepo {
    db: Conn,
}

impl SqlTicketSyncRepo {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db: Conn::Pool(db) }
    }
}

fn to_domain(m: s::Model) -> DomainResult<TicketSync> {
    let state =
        SyncState::parse(&m.state).map_err(|e| DomainError::Unknown(anyhow::anyhow!("stored ticket sync: {e}")))?;
    Ok(TicketSync {
        ticket_id: TicketId::from_uuid(m.ticket_id),
        tenant_id: TenantId::from_uuid(m.tenant_id),
        integration_id: IntegrationId::from_uuid(m.integration_id),
        state,
        version: m.version,
        last_error: m.last_error,
        last_upload_at: m.last_upload_at,
    })
}

#[async_trait]
impl TicketSyncRepo for SqlTicketSyncRepo {
    async fn get(&self, tenant: TenantId, ticket: TicketId) -> DomainResult<Option<TicketSync>> {
        s::Entity::find()
            .filter(s::Column::TenantId.eq(tenant.as_uuid()))
            .filter(s::Column::TicketId.eq(ticket.as_uuid()))
            .one(&self.db)
            .await
            .map_err(unknown)?
            .map(to_domain)
            .transpose()
    }

    async fn get_many(&self, tenant: TenantId, tickets: &[TicketId]) -> DomainResult<Vec<TicketSync>> {
        if tickets.is_empty() {
            return Ok(vec![]);
        }
        let rows = s::Entity::find()
            .filter(s::Column::TenantId.eq(tenant.as_uuid()))
            .filter(s::Column::TicketId.is_in(tickets.iter().map(|t| t.as_uuid())))
            .all(&self.db)
            .await
            .map_err(unknown)?;
        rows.into_iter().map(to_domain).collect()
    }

    async fn record(&self, sync: TicketSync) -> DomainResult<()> {
        let row = s::ActiveModel {
            ticket_id: Set(sync.ticket_id.as_uuid()),
            tenant_id: Set(sync.tenant_id.as_uuid()),
            integration_id: Set(sync.integration_id.as_uuid()),
            state: Set(sync.state.as_str().to_owned()),
            version: Set(sync.version),
            last_error: Set(sync.last_error.clone()),
            last_upload_at: Set(sync.last_upload_at),
        };
        // An outcome about an older version than the stored one is not written.
        s::Entity::insert(row)
            .on_conflict(
                OnConflict::column(s::Column::TicketId)
                    .update_columns([
                        s::Column::State,
                        s::Column::Version,
                        s::Column::LastError,
                        s::Column::LastUploadAt,
                    ])
                    .action_and_where(s::Column::Version.lte(sync.version))
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await
            .map_err(unknown)?;
        Ok(())
    }
}
