//! Tenant onboarding (platform admins) and a tenant's view of itself.

use super::connection::{Conn, page_request, to_connection};
use super::{actor, parse_id, state};
use crate::error::GqlResultExt;
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use domain::ids::TenantId;

/// An operator company using Linkyard.
#[derive(SimpleObject)]
#[graphql(name = "Tenant")]
pub struct TenantGql {
    pub id: ID,
    pub slug: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl From<domain::tenants::Tenant> for TenantGql {
    fn from(t: domain::tenants::Tenant) -> Self {
        Self { id: ID(t.id.to_string()), slug: t.slug, name: t.name, created_at: t.created_at }
    }
}

#[derive(InputObject)]
pub struct CreateTenantInput {
    /// URL-safe unique handle: 3-63 chars of a-z, 0-9 and '-'.
    pub slug: String,
    pub name: String,
}

#[derive(Default)]
pub struct TenantQuery;

#[Object]
impl TenantQuery {
    /// Platform admins see every tenant; a tenant's users see their own.
    #[graphql(complexity = "super::connection::cost(first, child_complexity)")]
    async fn tenants(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<TenantGql>> {
        let actor = actor(ctx)?;
        let page = state(ctx).tenants.list(&actor, page_request(first, after)?).await.gql()?;
        Ok(to_connection(page, |t| t.id.as_uuid(), TenantGql::from))
    }

    async fn tenant(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<TenantGql> {
        let actor = actor(ctx)?;
        let id: TenantId = parse_id("id", &id)?;
        state(ctx).tenants.get(&actor, id).await.gql().map(Into::into)
    }
}

#[derive(Default)]
pub struct TenantMutation;

#[Object]
impl TenantMutation {
    /// Platform admins only.
    async fn create_tenant(&self, ctx: &Context<'_>, input: CreateTenantInput) -> async_graphql::Result<TenantGql> {
        let actor = actor(ctx)?;
        state(ctx).tenants.create(&actor, &input.slug, &input.name).await.gql().map(Into::into)
    }
}
