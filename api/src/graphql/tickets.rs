//! Tickets (work permits, elevator maintenance and rescue, lock work orders) and their files.

use super::connection::{Conn, page_request, to_connection};
use super::{actor, parse_id, state};
use crate::error::GqlResultExt;
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Json, Object, SimpleObject, Upload};
use chrono::{DateTime, Utc};
use domain::ids::{DeviceId, HomeId, IntegrationId, TicketId};
use domain::tickets::{SaveTicketInput, Ticket, TicketFile, TicketFilter, Upload as FileUpload};
use std::io::Read;

/// The five ticket kinds, each with its own fields, statuses and workflow.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[graphql(name = "TicketKind")]
pub enum TicketKindGql {
    /// Hazardous-chemical special work permit.
    WorkPermit,
    /// Elevator maintenance record.
    Maintenance,
    /// Elevator trapped-passenger rescue or fault record.
    Rescue,
    /// Lock installation work order.
    Installation,
    /// Lock repair work order.
    Repair,
}

impl From<TicketKindGql> for domain::tickets::TicketKind {
    fn from(k: TicketKindGql) -> Self {
        match k {
            TicketKindGql::WorkPermit => Self::WorkPermit,
            TicketKindGql::Maintenance => Self::Maintenance,
            TicketKindGql::Rescue => Self::Rescue,
            TicketKindGql::Installation => Self::Installation,
            TicketKindGql::Repair => Self::Repair,
        }
    }
}

impl From<domain::tickets::TicketKind> for TicketKindGql {
    fn from(k: domain::tickets::TicketKind) -> Self {
        use domain::tickets::TicketKind as K;
        match k {
            K::WorkPermit => Self::WorkPermit,
            K::Maintenance => Self::Maintenance,
            K::Rescue => Self::Rescue,
            K::Installation => Self::Installation,
            K::Repair => Self::Repair,
        }
    }
}

/// A ticket of any kind.
#[derive(SimpleObject)]
#[graphql(name = "Ticket", complex)]
pub struct TicketGql {
    pub id: ID,
    pub kind: TicketKindGql,
    pub integration_id: Option<ID>,
    pub device_id: Option<ID>,
    pub home_id: Option<ID>,
    /// One of the kind's statuses (`ticketStatuses(kind)`).
    pub status: String,
    /// The kind's fields, named as in the vendor's or regulator's document.
    pub fields: Json<serde_json::Value>,
    pub external_id: Option<String>,
    pub created_by: Option<ID>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[graphql(skip)]
    pub ticket_id: TicketId,
    #[graphql(skip)]
    pub source: Ticket,
}

impl From<Ticket> for TicketGql {
    fn from(t: Ticket) -> Self {
        let source = t.clone();
        Self {
            source,
            id: ID(t.id.to_string()),
            kind: t.kind.into(),
            integration_id: t.integration_id.map(|i| ID(i.to_string())),
            device_id: t.device_id.map(|d| ID(d.to_string())),
            home_id: t.home_id.map(|h| ID(h.to_string())),
            status: t.status.as_str().to_owned(),
            fields: Json(t.fields),
            external_id: t.external_id,
            created_by: t.created_by.map(|u| ID(u.to_string())),
            created_at: t.created_at,
            updated_at: t.updated_at,
            ticket_id: t.id,
        }
    }
}

#[ComplexObject]
impl TicketGql {
    /// Attached files, oldest first.
    async fn files(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<TicketFileGql>> {
        let files = super::loaders::load_all(ctx, super::loaders::FilesOf(self.ticket_id)).await?;
        Ok(files.into_iter().map(Into::into).collect())
    }

    /// The device it is about, if any.
    async fn device(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<super::devices::DeviceGql>> {
        let Some(d) = self.source.device_id else { return Ok(None) };
        Ok(super::loaders::load(ctx, d).await?.map(Into::into))
    }

    /// Where the ticket stands with the outside system its integration uploads it to (a
    /// work permit at the regulator); null when nothing uploads it.
    async fn sync(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<TicketSyncGql>> {
        let view = super::loaders::load(ctx, super::loaders::SyncOf(std::sync::Arc::new(self.source.clone()))).await?;
        Ok(view.map(|v| TicketSyncGql {
            state: v.state.into(),
            last_error: v.last_error,
            last_upload_at: v.last_upload_at,
        }))
    }

    /// Its upload history: the deliveries about it (uploads, attachments), newest first.
    #[graphql(complexity = "super::connection::cost(first, child_complexity)")]
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<super::deliveries::DeliveryGql>> {
        super::deliveries::about(ctx, format!("ticket:{}", self.ticket_id), first, after).await
    }
}

/// A ticket's upload state.
#[derive(SimpleObject)]
#[graphql(name = "TicketSync")]
pub struct TicketSyncGql {
    pub state: super::enums::SyncStateGql,
    /// The receiver's reason for refusing it, while it is refused.
    pub last_error: Option<String>,
    /// When it was last sent.
    pub last_upload_at: Option<DateTime<Utc>>,
}

/// A file attached to a ticket.
#[derive(SimpleObject)]
#[graphql(name = "TicketFile")]
pub struct TicketFileGql {
    pub id: ID,
    pub ticket_id: ID,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    /// Where to download it (with the same bearer token).
    pub url: String,
    pub created_at: DateTime<Utc>,
}

impl From<TicketFile> for TicketFileGql {
    fn from(f: TicketFile) -> Self {
        Self {
            id: ID(f.id.to_string()),
            ticket_id: ID(f.ticket_id.to_string()),
            url: format!("/files/tickets/{}/{}", f.ticket_id, f.id),
            filename: f.filename,
            content_type: f.content_type,
            size: f.size,
            created_at: f.created_at,
        }
    }
}

#[derive(InputObject)]
#[graphql(name = "SaveTicketInput")]
pub struct SaveTicketInputGql {
    /// Absent: a new ticket. Present: an update (fields are merged; a null removes one).
    pub id: Option<ID>,
    pub kind: TicketKindGql,
    pub integration_id: Option<ID>,
    pub device_id: Option<ID>,
    pub home_id: Option<ID>,
    /// Absent on create: the kind's initial status; on update: unchanged.
    pub status: Option<String>,
    pub fields: Option<Json<serde_json::Value>>,
    pub external_id: Option<String>,
}

#[derive(InputObject, Default)]
pub struct TicketFilterInput {
    pub kind: Option<TicketKindGql>,
    pub status: Option<String>,
    pub integration_id: Option<ID>,
    pub device_id: Option<ID>,
    pub home_id: Option<ID>,
}

#[derive(Default)]
pub struct TicketQuery;

#[Object]
impl TicketQuery {
    /// Newest first.
    #[graphql(complexity = "super::connection::cost(first, child_complexity)")]
    async fn tickets(
        &self,
        ctx: &Context<'_>,
        filter: Option<TicketFilterInput>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<TicketGql>> {
        let f = filter.unwrap_or_default();
        let filter = TicketFilter {
            kind: f.kind.map(Into::into),
            status: f.status,
            integration_id: f
                .integration_id
                .as_ref()
                .map(|i| parse_id::<IntegrationId>("filter.integrationId", i))
                .transpose()?,
            device_id: f.device_id.as_ref().map(|d| parse_id::<DeviceId>("filter.deviceId", d)).transpose()?,
            home_id: f.home_id.as_ref().map(|h| parse_id::<HomeId>("filter.homeId", h)).transpose()?,
        };
        let page = state(ctx).tickets.list(&actor(ctx)?, &filter, page_request(first, after)?).await.gql()?;
        Ok(to_connection(page, |t| t.id.as_uuid(), TicketGql::from))
    }

    async fn ticket(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<TicketGql> {
        let id: TicketId = parse_id("id", &id)?;
        Ok(state(ctx).tickets.get(&actor(ctx)?, id).await.gql()?.into())
    }

    /// The statuses a ticket of this kind can have, the initial one first.
    async fn ticket_statuses(&self, kind: TicketKindGql) -> Vec<String> {
        let kind = kind.into();
        let initial = domain::tickets::initial_status(kind);
        let mut all: Vec<String> = vec![initial.to_owned()];
        all.extend(domain::tickets::statuses(kind).iter().filter(|s| **s != initial).map(|s| (*s).to_owned()));
        all
    }
}

#[derive(Default)]
pub struct TicketMutation;

#[Object]
impl TicketMutation {
    /// Creates a ticket, or updates one (`input.id`) along its kind's workflow.
    async fn save_ticket(&self, ctx: &Context<'_>, input: SaveTicketInputGql) -> async_graphql::Result<TicketGql> {
        let input = SaveTicketInput {
            id: input.id.as_ref().map(|i| parse_id::<TicketId>("id", i)).transpose()?,
            kind: input.kind.into(),
            integration_id: input
                .integration_id
                .as_ref()
                .map(|i| parse_id::<IntegrationId>("integrationId", i))
                .transpose()?,
            device_id: input.device_id.as_ref().map(|d| parse_id::<DeviceId>("deviceId", d)).transpose()?,
            home_id: input.home_id.as_ref().map(|h| parse_id::<HomeId>("homeId", h)).transpose()?,
            status: input.status,
            fields: input.fields.map(|j| j.0),
            external_id: input.external_id,
        };
        let ticket = state(ctx).tickets.save(&actor(ctx)?, input).await.gql()?;
        Ok(ticket.into())
    }

    /// Deletes a ticket nobody works on yet and answers it as it was: a MAINTENANCE while
    /// PLANNED, an INSTALLATION or REPAIR while PENDING or UNASSIGNED (a Dingding work order
    /// is deleted there too, `delete_ticket`). Any other is refused with CONFLICT, not
    /// deleted: work permits and rescues are reported to a regulator, so they are closed
    /// through their workflow (VOIDED, REVOKED, CANCELLED) instead.
    async fn delete_ticket(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<TicketGql> {
        let id: TicketId = parse_id("id", &id)?;
        Ok(state(ctx).tickets.delete(&actor(ctx)?, id).await.gql()?.into())
    }

    /// Attaches a file (GraphQL multipart request) to a ticket.
    async fn attach_ticket_file(
        &self,
        ctx: &Context<'_>,
        ticket_id: ID,
        file: Upload,
    ) -> async_graphql::Result<TicketFileGql> {
        let actor = actor(ctx)?;
        let ticket: TicketId = parse_id("ticketId", &ticket_id)?;
        let value = file.value(ctx).map_err(|_| crate::error::bad_input("file", "no file in the request"))?;
        let filename = value.filename.clone();
        let content_type = value.content_type.clone();
        let mut bytes = Vec::new();
        value
            .into_read()
            .take(domain::tickets::MAX_FILE_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|_| crate::error::bad_input("file", "the upload could not be read"))?;
        let upload = FileUpload { filename, content_type, bytes };
        Ok(state(ctx).tickets.attach(&actor, ticket, upload).await.gql()?.into())
    }
}
