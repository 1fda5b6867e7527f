//! Raw inbound events (tenant admins) and the audit log.

use super::connection::{Conn, page_request, to_connection};
use super::enums::EventStateGql;
use super::users::RoleGql;
use super::{actor, parse_id, state};
use crate::error::GqlResultExt;
use async_graphql::{Context, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use domain::audit::AuditEntry;
use domain::events::{EventFilter, InboundEvent};
use domain::ids::IntegrationId;

/// A hook request as received, and how its processing went.
#[derive(SimpleObject)]
#[graphql(name = "InboundEvent")]
pub struct InboundEventGql {
    pub id: ID,
    pub integration_id: ID,
    pub protocol: String,
    pub kind: String,
    pub dedup_key: String,
    pub headers: Json<serde_json::Value>,
    pub body: String,
    pub received_at: DateTime<Utc>,
    pub state: EventStateGql,
    pub error: Option<String>,
    pub processed_at: Option<DateTime<Utc>>,
}

impl From<InboundEvent> for InboundEventGql {
    fn from(e: InboundEvent) -> Self {
        Self {
            id: ID(e.id.to_string()),
            integration_id: ID(e.integration_id.to_string()),
            protocol: e.protocol,
            kind: e.kind,
            dedup_key: e.dedup_key,
            headers: Json(e.headers),
            body: e.body,
            received_at: e.received_at,
            state: e.state.into(),
            error: e.error,
            processed_at: e.processed_at,
        }
    }
}

#[derive(InputObject, Default)]
pub struct InboundEventFilterInput {
    pub integration_id: Option<ID>,
    pub state: Option<EventStateGql>,
    pub kind: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// One audited mutation.
#[derive(SimpleObject)]
#[graphql(name = "AuditEntry")]
pub struct AuditEntryGql {
    pub id: ID,
    pub actor_id: Option<ID>,
    pub actor_role: Option<RoleGql>,
    /// The mutation, e.g. `configureIntegration`.
    pub action: String,
    /// The id of what the mutation returned, when it returned one.
    pub target: Option<String>,
    /// `OK` or the error code.
    pub outcome: String,
    pub at: DateTime<Utc>,
}

impl From<AuditEntry> for AuditEntryGql {
    fn from(e: AuditEntry) -> Self {
        Self {
            id: ID(e.id.to_string()),
            actor_id: e.actor_id.map(|u| ID(u.to_string())),
            actor_role: e.actor_role.map(Into::into),
            action: e.action,
            target: e.target,
            outcome: e.outcome,
            at: e.at,
        }
    }
}

#[derive(Default)]
pub struct EventQuery;

#[Object]
impl EventQuery {
    /// Raw callbacks as received, newest first (tenant admins).
    #[graphql(complexity = "super::connection::cost(first, child_complexity)")]
    async fn inbound_events(
        &self,
        ctx: &Context<'_>,
        filter: Option<InboundEventFilterInput>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<InboundEventGql>> {
        let actor = actor(ctx)?;
        let f = filter.unwrap_or_default();
        let filter = EventFilter {
            integration_id: f
                .integration_id
                .as_ref()
                .map(|i| parse_id::<IntegrationId>("filter.integrationId", i))
                .transpose()?,
            state: f.state.map(Into::into),
            kind: f.kind,
            from: f.from,
            to: f.to,
        };
        let page = state(ctx).events.list(&actor, &filter, page_request(first, after)?).await.gql()?;
        Ok(to_connection(page, |e| e.id.as_uuid(), InboundEventGql::from))
    }

    /// Every mutation made in the tenant, newest first (tenant admins).
    #[graphql(complexity = "super::connection::cost(first, child_complexity)")]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<AuditEntryGql>> {
        let actor = actor(ctx)?;
        let page = state(ctx).audit.list(&actor, page_request(first, after)?).await.gql()?;
        Ok(to_connection(page, |e| e.id.as_uuid(), AuditEntryGql::from))
    }
}
