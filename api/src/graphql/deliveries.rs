//! Deliveries (outbound vendor messages) and their attempts.

use super::connection::{Conn, page_request, to_connection};
use super::enums::DeliveryStateGql;
use super::{actor, parse_id, state};
use crate::error::GqlResultExt;
use async_graphql::{ComplexObject, Context, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use domain::deliveries::{Attempt, Delivery, DeliveryFilter};
use domain::ids::{DeliveryId, IntegrationId};

/// An outbound vendor message.
#[derive(SimpleObject)]
#[graphql(name = "Delivery", complex)]
pub struct DeliveryGql {
    pub id: ID,
    pub integration_id: ID,
    pub kind: String,
    /// Fixed when the delivery was written and sent with every attempt.
    pub idempotency_key: String,
    pub order_key: Option<String>,
    pub payload: Json<serde_json::Value>,
    pub state: DeliveryStateGql,
    pub attempt_count: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// What it is about: `device:{id}` (a meter's commands), `tariff:{code}` ...
    pub subject: Option<String>,
    /// What the vendor reported of it afterwards (a meter's execution of a command).
    pub result: Option<Json<serde_json::Value>>,
    #[graphql(skip)]
    pub delivery_id: DeliveryId,
}

impl From<Delivery> for DeliveryGql {
    fn from(d: Delivery) -> Self {
        Self {
            id: ID(d.id.to_string()),
            integration_id: ID(d.integration_id.to_string()),
            kind: d.kind.to_string(),
            idempotency_key: d.idempotency_key,
            order_key: d.order_key,
            payload: Json(d.payload),
            state: d.state.into(),
            attempt_count: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_error: d.last_error,
            created_at: d.created_at,
            updated_at: d.updated_at,
            subject: d.subject,
            result: d.result.map(Json),
            delivery_id: d.id,
        }
    }
}

#[ComplexObject]
impl DeliveryGql {
    /// Every attempt, oldest first.
    async fn attempts(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<AttemptGql>> {
        let rows = super::loaders::load_all(ctx, super::loaders::AttemptsOf(self.delivery_id)).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}

/// One attempt of a delivery; the request summary carries no secret.
#[derive(SimpleObject)]
#[graphql(name = "DeliveryAttempt")]
pub struct AttemptGql {
    pub number: i32,
    pub at: DateTime<Utc>,
    pub request: String,
    pub http_status: Option<i32>,
    pub vendor_code: Option<String>,
    pub vendor_message: Option<String>,
    pub latency_ms: i64,
    pub error: Option<String>,
    /// `SUCCEEDED`, `RETRY`, `DEAD` or `TOKEN_EXPIRED`.
    pub outcome: String,
    /// After a `RETRY`: when the retry policy scheduled the next attempt.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

impl From<Attempt> for AttemptGql {
    fn from(a: Attempt) -> Self {
        Self {
            number: a.number,
            at: a.at,
            request: a.request,
            http_status: a.http_status,
            vendor_code: a.vendor_code,
            vendor_message: a.vendor_message,
            latency_ms: a.latency_ms,
            error: a.error,
            outcome: a.outcome,
            next_attempt_at: a.next_attempt_at,
        }
    }
}

#[derive(InputObject, Default)]
pub struct DeliveryFilterInput {
    pub state: Option<DeliveryStateGql>,
    pub integration_id: Option<ID>,
    pub kind: Option<String>,
    /// `device:{id}`: the deliveries about one device (a meter's commands).
    pub subject: Option<String>,
    /// Created at or after.
    pub from: Option<DateTime<Utc>>,
    /// Created before.
    pub to: Option<DateTime<Utc>>,
}

impl DeliveryFilterInput {
    fn into_domain(self) -> async_graphql::Result<DeliveryFilter> {
        Ok(DeliveryFilter {
            state: self.state.map(Into::into),
            integration_id: self
                .integration_id
                .as_ref()
                .map(|i| parse_id::<IntegrationId>("filter.integrationId", i))
                .transpose()?,
            kind: self.kind,
            subject: self.subject,
            from: self.from,
            to: self.to,
        })
    }
}

/// The deliveries about one subject (`ticket:{id}`, `alarm:{id}`), newest first.
pub(super) async fn about(
    ctx: &Context<'_>,
    subject: String,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<Conn<DeliveryGql>> {
    let filter = DeliveryFilter { subject: Some(subject), ..DeliveryFilter::default() };
    let page = state(ctx).deliveries.list(&actor(ctx)?, &filter, page_request(first, after)?).await.gql()?;
    Ok(to_connection(page, |d| d.id.as_uuid(), DeliveryGql::from))
}

#[derive(Default)]
pub struct DeliveryQuery;

#[Object]
impl DeliveryQuery {
    /// Outbound messages, newest first.
    #[graphql(complexity = "super::connection::cost(first, child_complexity)")]
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        filter: Option<DeliveryFilterInput>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<DeliveryGql>> {
        let filter = filter.unwrap_or_default().into_domain()?;
        let page = state(ctx).deliveries.list(&actor(ctx)?, &filter, page_request(first, after)?).await.gql()?;
        Ok(to_connection(page, |d| d.id.as_uuid(), DeliveryGql::from))
    }

    async fn delivery(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<DeliveryGql> {
        let id: DeliveryId = parse_id("id", &id)?;
        Ok(state(ctx).deliveries.get(&actor(ctx)?, id).await.gql()?.into())
    }
}

#[derive(Default)]
pub struct DeliveryMutation;

#[Object]
impl DeliveryMutation {
    /// Sends a RETRYING or DEAD delivery again now, with the same idempotency key.
    async fn retry_delivery(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<DeliveryGql> {
        let id: DeliveryId = parse_id("id", &id)?;
        Ok(state(ctx).deliveries.retry(&actor(ctx)?, id).await.gql()?.into())
    }

    /// Sends every delivery of the integration created in `[since, until)` again, SUCCEEDED
    /// ones included (tenant admins; after a vendor lost messages). Each goes out as a new
    /// attempt of the same delivery with its idempotency key, so the vendor can recognise a
    /// message it already has. PENDING and IN_FLIGHT ones are on their way and not
    /// counted. The window is at most 7 days and 10,000 deliveries. Answers how many.
    async fn replay_deliveries(
        &self,
        ctx: &Context<'_>,
        integration_id: ID,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> async_graphql::Result<u64> {
        let integration: IntegrationId = parse_id("integrationId", &integration_id)?;
        state(ctx).deliveries.replay_window(&actor(ctx)?, integration, since, until).await.gql()
    }

    /// Replays every RETRYING or DEAD delivery the filter selects; answers how many.
    async fn retry_deliveries(&self, ctx: &Context<'_>, filter: DeliveryFilterInput) -> async_graphql::Result<u64> {
        let filter = filter.into_domain()?;
        state(ctx).deliveries.retry_all(&actor(ctx)?, &filter).await.gql()
    }
}
