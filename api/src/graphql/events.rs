//! Raw inbound events (tenant admins) and the audit log.

use super::connection::{Conn, page_request, to_connection};
use super::enums::EventStateGql;
use super::users::RoleGql;
use super::{actor, parse_id, state};
use crate::error::GqlResultExt;
use async_graphql::{Context, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use domain::audit::{AuditEntry, AuditFilter};
use domain::events::{EventFilter, InboundEvent};
use domain::ids::{InboundEventId, IntegrationId, UserId};

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
    /// The kind of entity the mutation changed (`device`, `home`, `integration`, `alarm`,
    /// `user`, `tariff`, `ticket`, `meterAccount`, or the returned object's type).
    pub entity_type: Option<String>,
    /// The id of that entity.
    pub entity_id: Option<String>,
    /// The entity before the mutation (absent for a creation or a failed mutation).
    pub before: Option<Json<serde_json::Value>>,
    /// The entity after the mutation (absent for a deletion or a failed mutation).
    pub after: Option<Json<serde_json::Value>>,
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
            entity_type: e.entity_type,
            entity_id: e.entity_id,
            before: e.before.map(Json),
            after: e.after.map(Json),
        }
    }
}

/// Filters of `auditLog`; every one given must match.
#[derive(InputObject, Default)]
pub struct AuditFilterInput {
    /// The user who made the mutation.
    pub actor_id: Option<ID>,
    /// `device`, `home`, `integration`, `alarm`, `user`, `tariff`, `ticket`, `meterAccount` ...
    pub entity_type: Option<String>,
    pub entity_id: Option<ID>,
    /// The mutation, e.g. `acknowledgeAlarm`.
    pub action: Option<String>,
    /// At or after.
    pub since: Option<DateTime<Utc>>,
    /// Before.
    pub until: Option<DateTime<Utc>>,
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

    /// Every mutation made in the tenant, newest first (tenant admins), with what it changed.
    #[graphql(complexity = "super::connection::cost(first, child_complexity)")]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        filter: Option<AuditFilterInput>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<AuditEntryGql>> {
        let actor = actor(ctx)?;
        let f = filter.unwrap_or_default();
        let filter = AuditFilter {
            actor_id: f.actor_id.as_ref().map(|a| parse_id::<UserId>("filter.actorId", a)).transpose()?,
            entity_type: f.entity_type,
            entity_id: f.entity_id.map(|i| i.0),
            action: f.action,
            since: f.since,
            until: f.until,
        };
        let page = state(ctx).audit.list(&actor, &filter, page_request(first, after)?).await.gql()?;
        Ok(to_connection(page, |e| e.id.as_uuid(), AuditEntryGql::from))
    }
}

#[derive(Default)]
pub struct EventMutation;

#[Object]
impl EventMutation {
    /// Processes a stored callback again from its stored body, through its vendor's protocol
    /// and the same apply path (operators and tenant admins, after fixing a mapping or
    /// creating the device it names). A FAILED or IGNORED event is applied; a PROCESSED one
    /// was applied already and is answered unchanged (replaying changes nothing twice).
    /// Answers the event in its new state.
    async fn replay_inbound_event(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<InboundEventGql> {
        let id: InboundEventId = parse_id("id", &id)?;
        Ok(state(ctx).inbound_backlog.replay(&actor(ctx)?, id).await.gql()?.into())
    }
}
