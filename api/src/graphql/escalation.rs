//! Alarm escalation: policies, notification channels (signing secrets shown once), and
//! the steps taken on an alarm.

use super::connection::{Conn, page_request, to_connection};
use super::enums::SeverityGql;
use super::{actor, parse_id, state};
use crate::error::GqlResultExt;
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use domain::alarms::escalation::{EscalationPolicy, EscalationStep, SaveChannel, SaveEscalationPolicy, StepKind};
use domain::ids::{EscalationPolicyId, IntegrationId};
use domain::integrations::Integration;
use domain::{Page, PageRequest};
use uuid::Uuid;

/// How a channel is reached.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "NotificationChannelKind")]
pub enum ChannelKindGql {
    /// An HTTPS endpoint, signed like Standard Webhooks (`webhook-id`,
    /// `webhook-timestamp`, `webhook-signature`).
    Webhook,
}

/// Where escalation policies send their notices.
#[derive(SimpleObject)]
#[graphql(name = "NotificationChannel")]
pub struct ChannelGql {
    pub id: ID,
    pub name: String,
    pub kind: ChannelKindGql,
    pub url: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Integration> for ChannelGql {
    fn from(i: Integration) -> Self {
        Self {
            id: ID(i.id.to_string()),
            url: i.settings.get("url").and_then(|u| u.as_str()).unwrap_or_default().to_owned(),
            name: i.name,
            kind: ChannelKindGql::Webhook,
            created_at: i.created_at,
            updated_at: i.updated_at,
        }
    }
}

/// A saved channel; `secret` (`whsec_...`, the key of its signatures) only when it was
/// created: shown this once, never again.
#[derive(SimpleObject)]
pub struct SavedNotificationChannel {
    pub channel: ChannelGql,
    pub secret: Option<String>,
}

/// Which alarms a policy watches and what it does while nobody acknowledges them.
#[derive(SimpleObject)]
#[graphql(name = "EscalationPolicy")]
pub struct PolicyGql {
    pub id: ID,
    pub name: String,
    /// The alarm kinds watched; empty: every kind.
    pub kinds: Vec<String>,
    /// The least severity watched.
    pub min_severity: SeverityGql,
    /// Minutes an alarm may stay RAISED before it is escalated.
    pub ack_within_minutes: i32,
    /// What an escalation raises the severity to; none: it only notifies.
    pub escalate_to_severity: Option<SeverityGql>,
    /// Minutes between notices while the alarm stays RAISED; none: no re-notifying.
    pub renotify_every_minutes: Option<i32>,
    pub channel_ids: Vec<ID>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<EscalationPolicy> for PolicyGql {
    fn from(p: EscalationPolicy) -> Self {
        Self {
            id: ID(p.id.to_string()),
            name: p.name,
            kinds: p.kinds.iter().map(|k| k.as_str().to_owned()).collect(),
            min_severity: p.min_severity.into(),
            ack_within_minutes: p.ack_within_minutes,
            escalate_to_severity: p.escalate_to.map(Into::into),
            renotify_every_minutes: p.renotify_every_minutes,
            channel_ids: p.channel_ids.iter().map(|c| ID(c.to_string())).collect(),
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// The steps an escalation policy takes on an alarm.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "EscalationStepKind")]
pub enum StepKindGql {
    /// The channels were told when it was raised.
    Notify,
    /// Not acknowledged in time: escalated and the channels told.
    Escalate,
    /// The channels were told again while it stayed unacknowledged.
    Renotify,
}

/// One step an escalation policy took on an alarm.
#[derive(SimpleObject)]
#[graphql(name = "AlarmEscalation")]
pub struct StepGql {
    pub policy_id: ID,
    pub kind: StepKindGql,
    /// 0 for the notice on raise and the escalation; 1, 2 ... for re-notices.
    pub number: i32,
    pub at: DateTime<Utc>,
}

impl From<EscalationStep> for StepGql {
    fn from(s: EscalationStep) -> Self {
        Self {
            policy_id: ID(s.policy_id.to_string()),
            kind: match s.kind {
                StepKind::Notify => StepKindGql::Notify,
                StepKind::Escalate => StepKindGql::Escalate,
                StepKind::Renotify => StepKindGql::Renotify,
            },
            number: s.number,
            at: s.at,
        }
    }
}

#[derive(InputObject)]
pub struct SaveEscalationPolicyInput {
    /// The policy to change; omit to create one.
    pub id: Option<ID>,
    pub name: String,
    /// Alarm kinds watched; empty or omitted: every kind.
    #[graphql(default)]
    pub kinds: Vec<String>,
    pub min_severity: SeverityGql,
    /// 1-43200.
    pub ack_within_minutes: i32,
    /// More severe than `minSeverity`; omit to notify without changing the severity.
    pub escalate_to_severity: Option<SeverityGql>,
    /// 1-43200; omit for no re-notifying.
    pub renotify_every_minutes: Option<i32>,
    /// Notification channels of the tenant (`saveNotificationChannel`).
    #[graphql(default)]
    pub channel_ids: Vec<ID>,
}

#[derive(InputObject)]
pub struct SaveNotificationChannelInput {
    /// The channel to change (name and URL; its secret stays); omit to create one.
    pub id: Option<ID>,
    pub name: String,
    pub kind: ChannelKindGql,
    pub url: String,
}

/// One page of a short list held whole (a tenant's policies or channels).
fn page_of<T>(items: Vec<T>, id: impl Fn(&T) -> Uuid, req: PageRequest) -> Page<T> {
    let total = items.len() as u64;
    let rows: Vec<T> = items.into_iter().filter(|i| req.after().is_none_or(|a| id(i) > a)).collect();
    Page::from_fetched(
        rows.into_iter().take(usize::try_from(req.first()).unwrap_or(0) + 1).collect(),
        req,
        domain::page::TotalCount::known(total),
    )
}

#[derive(Default)]
pub struct EscalationQuery;

#[Object]
impl EscalationQuery {
    /// The tenant's escalation policies, oldest first.
    async fn escalation_policies(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<PolicyGql>> {
        let actor = actor(ctx)?;
        let req = page_request(first, after)?;
        let all = state(ctx).escalations.policies(&actor).await.gql()?;
        Ok(to_connection(page_of(all, |p| p.id.as_uuid(), req), |p| p.id.as_uuid(), PolicyGql::from))
    }

    /// The tenant's notification channels, oldest first.
    async fn notification_channels(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<ChannelGql>> {
        let actor = actor(ctx)?;
        let req = page_request(first, after)?;
        let all = state(ctx).escalations.channels(&actor).await.gql()?;
        Ok(to_connection(page_of(all, |c| c.id.as_uuid(), req), |c| c.id.as_uuid(), ChannelGql::from))
    }
}

#[derive(Default)]
pub struct EscalationMutation;

#[Object]
impl EscalationMutation {
    /// Creates or changes an escalation policy (tenant admins).
    async fn save_escalation_policy(
        &self,
        ctx: &Context<'_>,
        input: SaveEscalationPolicyInput,
    ) -> async_graphql::Result<PolicyGql> {
        let actor = actor(ctx)?;
        let cmd = SaveEscalationPolicy {
            id: input.id.as_ref().map(|id| parse_id::<EscalationPolicyId>("input.id", id)).transpose()?,
            name: input.name,
            kinds: input.kinds,
            min_severity: input.min_severity.into(),
            ack_within_minutes: input.ack_within_minutes,
            escalate_to: input.escalate_to_severity.map(Into::into),
            renotify_every_minutes: input.renotify_every_minutes,
            channel_ids: input
                .channel_ids
                .iter()
                .map(|c| parse_id::<IntegrationId>("channelIds", c))
                .collect::<async_graphql::Result<_>>()?,
        };
        state(ctx).escalations.save_policy(&actor, cmd).await.gql().map(Into::into)
    }

    /// Creates a notification channel (its signing secret answered this once) or changes
    /// one's name and URL (tenant admins).
    async fn save_notification_channel(
        &self,
        ctx: &Context<'_>,
        #[graphql(secret)] input: SaveNotificationChannelInput,
    ) -> async_graphql::Result<SavedNotificationChannel> {
        let actor = actor(ctx)?;
        let st = state(ctx);
        let ChannelKindGql::Webhook = input.kind;
        // A literal address the server may not call is refused now (names when resolved).
        if let Some((_, why)) = st.config.outbound.check_settings(&serde_json::json!({"url": input.url.trim()})) {
            return Err(crate::error::bad_input("url", &why));
        }
        let cmd = SaveChannel {
            id: input.id.as_ref().map(|id| parse_id::<IntegrationId>("input.id", id)).transpose()?,
            name: input.name,
            url: input.url,
        };
        let saved = st.escalations.save_channel(&actor, cmd).await.gql()?;
        Ok(SavedNotificationChannel { channel: saved.channel.into(), secret: saved.secret })
    }
}
