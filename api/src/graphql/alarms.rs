//! Alarms: reads, the state machine actions, comments and the timeline.

use super::connection::{Conn, page_request, to_connection};
use super::devices::DeviceGql;
use super::enums::{AlarmStateGql, SeverityGql, TimelineKindGql};
use super::loaders::{self, TimelineOf};
use super::{actor, parse_id, state};
use crate::error::GqlResultExt;
use async_graphql::{ComplexObject, Context, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use domain::alarms::{Alarm, AlarmFilter, ReportAlarmInput, TimelineEntry, TimelineKind};
use domain::ids::{AlarmId, DeviceId, HomeId, IntegrationId, TicketId};

/// An alarm.
#[derive(SimpleObject)]
#[graphql(name = "Alarm", complex)]
pub struct AlarmGql {
    pub id: ID,
    /// A code such as `LOCK_LOW_BATTERY` or `ELEVATOR_FAULT`.
    pub kind: String,
    pub severity: SeverityGql,
    pub state: AlarmStateGql,
    pub message: String,
    /// The vendor's own code and text.
    pub vendor_code: Option<String>,
    pub vendor_text: Option<String>,
    pub device_id: Option<ID>,
    pub integration_id: Option<ID>,
    pub ticket_id: Option<ID>,
    /// The raw inbound event that caused it.
    pub inbound_event_id: Option<ID>,
    /// How often it was raised while open.
    pub occurrences: i32,
    pub raised_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<ID>,
    pub cleared_at: Option<DateTime<Utc>>,
    pub cleared_by: Option<ID>,
    pub clear_note: Option<String>,
    pub attributes: Json<serde_json::Value>,
    pub updated_at: DateTime<Utc>,
    #[graphql(skip)]
    pub alarm: AlarmId,
    #[graphql(skip)]
    pub device: Option<DeviceId>,
}

impl From<Alarm> for AlarmGql {
    fn from(a: Alarm) -> Self {
        let id = |s: String| ID(s);
        Self {
            id: id(a.id.to_string()),
            kind: a.kind.as_str().to_owned(),
            severity: a.severity.into(),
            state: a.state.into(),
            message: a.message,
            vendor_code: a.vendor_code,
            vendor_text: a.vendor_text,
            device_id: a.device_id.map(|d| id(d.to_string())),
            integration_id: a.integration_id.map(|i| id(i.to_string())),
            ticket_id: a.ticket_id.map(|t| id(t.to_string())),
            inbound_event_id: a.inbound_event_id.map(|e| id(e.to_string())),
            occurrences: a.occurrences,
            raised_at: a.raised_at,
            last_seen_at: a.last_seen_at,
            acknowledged_at: a.acknowledged_at,
            acknowledged_by: a.acknowledged_by.map(|u| id(u.to_string())),
            cleared_at: a.cleared_at,
            cleared_by: a.cleared_by.map(|u| id(u.to_string())),
            clear_note: a.clear_note,
            attributes: Json(a.attributes),
            updated_at: a.updated_at,
            alarm: a.id,
            device: a.device_id,
        }
    }
}

/// One step in an alarm's life: system entries for transitions, user comments.
#[derive(SimpleObject)]
#[graphql(name = "AlarmTimelineEntry")]
pub struct TimelineEntryGql {
    pub id: ID,
    pub at: DateTime<Utc>,
    /// The user who acted; none for system entries.
    pub actor_id: Option<ID>,
    pub kind: TimelineKindGql,
    pub text: String,
}

impl From<TimelineEntry> for TimelineEntryGql {
    fn from(e: TimelineEntry) -> Self {
        Self {
            id: ID(e.id.to_string()),
            at: e.at,
            actor_id: e.actor.map(|u| ID(u.to_string())),
            kind: e.kind.into(),
            text: e.text,
        }
    }
}

#[ComplexObject]
impl AlarmGql {
    /// The device it is about; null for none (or one deleted since).
    async fn device(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<DeviceGql>> {
        let Some(d) = self.device else { return Ok(None) };
        Ok(loaders::load(ctx, d).await?.map(Into::into))
    }

    /// What was sent of it (a regulator's alarm upload on raise and on clear), newest first.
    #[graphql(complexity = "super::connection::cost(first, child_complexity)")]
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<super::connection::Conn<super::deliveries::DeliveryGql>> {
        super::deliveries::about(ctx, format!("alarm:{}", self.alarm), first, after).await
    }

    /// Oldest first.
    async fn timeline(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<TimelineEntryGql>> {
        Ok(loaders::load_all(ctx, TimelineOf(self.alarm)).await?.into_iter().map(Into::into).collect())
    }

    /// The users' comments (`commentAlarm`), oldest first.
    async fn comments(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<TimelineEntryGql>> {
        let actor = actor(ctx)?;
        let timeline = state(ctx).alarms.timeline(&actor, self.alarm).await.gql()?;
        Ok(timeline.into_iter().filter(|e| e.kind == TimelineKind::Comment).map(Into::into).collect())
    }

    /// What escalation policies did about it (notices, the escalation), oldest first.
    async fn escalations(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<super::escalation::StepGql>> {
        let actor = actor(ctx)?;
        Ok(state(ctx).escalations.steps(&actor, self.alarm).await.gql()?.into_iter().map(Into::into).collect())
    }
}

#[derive(InputObject, Default)]
pub struct AlarmFilterInput {
    pub state: Option<AlarmStateGql>,
    pub severity: Option<SeverityGql>,
    pub device_id: Option<ID>,
    pub kind: Option<String>,
    pub integration_id: Option<ID>,
    pub home_id: Option<ID>,
    /// Only RAISED or ACKNOWLEDGED alarms.
    pub open: Option<bool>,
    /// Raised at or after.
    pub from: Option<DateTime<Utc>>,
    /// Raised before.
    pub to: Option<DateTime<Utc>>,
}

#[derive(InputObject)]
#[graphql(name = "ReportAlarmInput")]
pub struct ReportAlarmInputGql {
    pub device_id: Option<ID>,
    pub ticket_id: Option<ID>,
    pub kind: String,
    pub severity: SeverityGql,
    #[graphql(default)]
    pub message: String,
    pub raised_at: Option<DateTime<Utc>>,
    pub attributes: Option<Json<serde_json::Value>>,
}

#[derive(Default)]
pub struct AlarmQuery;

#[Object]
impl AlarmQuery {
    /// Newest first.
    #[graphql(complexity = "super::connection::cost(first, child_complexity)")]
    async fn alarms(
        &self,
        ctx: &Context<'_>,
        filter: Option<AlarmFilterInput>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<AlarmGql>> {
        let actor = actor(ctx)?;
        let f = filter.unwrap_or_default();
        let filter = AlarmFilter {
            state: f.state.map(Into::into),
            open: f.open.unwrap_or(false),
            severity: f.severity.map(Into::into),
            device_id: f.device_id.as_ref().map(|d| parse_id::<DeviceId>("filter.deviceId", d)).transpose()?,
            home_id: f.home_id.as_ref().map(|h| parse_id::<HomeId>("filter.homeId", h)).transpose()?,
            integration_id: f
                .integration_id
                .as_ref()
                .map(|i| parse_id::<IntegrationId>("filter.integrationId", i))
                .transpose()?,
            kind: f.kind,
            from: f.from,
            to: f.to,
        };
        let page = state(ctx).alarms.list(&actor, &filter, page_request(first, after)?).await.gql()?;
        Ok(to_connection(page, |a| a.id.as_uuid(), AlarmGql::from))
    }

    async fn alarm(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<AlarmGql> {
        let actor = actor(ctx)?;
        let id: AlarmId = parse_id("id", &id)?;
        state(ctx).alarms.get(&actor, id).await.gql().map(Into::into)
    }
}

#[derive(Default)]
pub struct AlarmMutation;

#[Object]
impl AlarmMutation {
    /// Raises an alarm from an outside system or a user; while one of the same kind is
    /// open on the same device, that one is updated instead.
    async fn report_alarm(&self, ctx: &Context<'_>, input: ReportAlarmInputGql) -> async_graphql::Result<AlarmGql> {
        let actor = actor(ctx)?;
        let input = ReportAlarmInput {
            device_id: input.device_id.as_ref().map(|d| parse_id::<DeviceId>("deviceId", d)).transpose()?,
            ticket_id: input.ticket_id.as_ref().map(|t| parse_id::<TicketId>("ticketId", t)).transpose()?,
            kind: input.kind,
            severity: input.severity.into(),
            message: input.message,
            raised_at: input.raised_at,
            attributes: input.attributes.map(|j| j.0),
        };
        let (alarm, _) = state(ctx).alarms.report(&actor, input).await.gql()?;
        Ok(alarm.into())
    }

    async fn acknowledge_alarm(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<AlarmGql> {
        let actor = actor(ctx)?;
        let id: AlarmId = parse_id("id", &id)?;
        state(ctx).alarms.acknowledge(&actor, id).await.gql().map(Into::into)
    }

    async fn clear_alarm(&self, ctx: &Context<'_>, id: ID, note: Option<String>) -> async_graphql::Result<AlarmGql> {
        let actor = actor(ctx)?;
        let id: AlarmId = parse_id("id", &id)?;
        state(ctx).alarms.clear(&actor, id, note).await.gql().map(Into::into)
    }

    async fn comment_alarm(&self, ctx: &Context<'_>, id: ID, text: String) -> async_graphql::Result<TimelineEntryGql> {
        let actor = actor(ctx)?;
        let id: AlarmId = parse_id("id", &id)?;
        state(ctx).alarms.comment(&actor, id, &text).await.gql().map(Into::into)
    }
}
