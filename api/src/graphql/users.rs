//! Login, the caller's own account, and user management.

use super::connection::{Conn, page_request, to_connection};
use super::{actor, parse_id, state};
use crate::error::GqlResultExt;
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use domain::ids::{TenantId, UserId};

/// The four roles of the contract.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "Role")]
pub enum RoleGql {
    PlatformAdmin,
    TenantAdmin,
    Operator,
    Viewer,
}

impl From<domain::Role> for RoleGql {
    fn from(r: domain::Role) -> Self {
        match r {
            domain::Role::PlatformAdmin => Self::PlatformAdmin,
            domain::Role::TenantAdmin => Self::TenantAdmin,
            domain::Role::Operator => Self::Operator,
            domain::Role::Viewer => Self::Viewer,
        }
    }
}

impl From<RoleGql> for domain::Role {
    fn from(r: RoleGql) -> Self {
        match r {
            RoleGql::PlatformAdmin => Self::PlatformAdmin,
            RoleGql::TenantAdmin => Self::TenantAdmin,
            RoleGql::Operator => Self::Operator,
            RoleGql::Viewer => Self::Viewer,
        }
    }
}

/// A user account; platform admins have no tenant.
#[derive(SimpleObject)]
#[graphql(name = "User")]
pub struct UserGql {
    pub id: ID,
    pub tenant_id: Option<ID>,
    pub email: String,
    pub role: RoleGql,
    /// A disabled user cannot log in and their tokens are refused.
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

impl From<domain::users::User> for UserGql {
    fn from(u: domain::users::User) -> Self {
        Self {
            id: ID(u.id.to_string()),
            tenant_id: u.tenant_id.map(|t| ID(t.to_string())),
            email: u.email,
            role: u.role.into(),
            disabled: u.disabled,
            created_at: u.created_at,
        }
    }
}

/// An access token: send it as `Authorization: Bearer {token}`.
#[derive(SimpleObject)]
pub struct LoginPayload {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub user: UserGql,
}

#[derive(InputObject)]
pub struct CreateUserInput {
    pub tenant_id: ID,
    pub email: String,
    /// At least 10 characters.
    pub password: String,
    pub role: RoleGql,
}

/// What `updateUser` changes; an omitted field stays as it is.
#[derive(InputObject)]
pub struct UpdateUserInput {
    /// Any tenant role (not `PLATFORM_ADMIN`).
    pub role: Option<RoleGql>,
    /// Disabling ends the user's sessions at once and refuses their logins.
    pub disabled: Option<bool>,
}

#[derive(Default)]
pub struct UserQuery;

#[Object]
impl UserQuery {
    /// The caller's own account.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<UserGql> {
        let actor = actor(ctx)?;
        state(ctx).users.me(&actor).await.gql().map(Into::into)
    }

    /// Users of the caller's tenant (tenant admins).
    #[graphql(complexity = "super::connection::cost(first, child_complexity)")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<UserGql>> {
        let actor = actor(ctx)?;
        let page = state(ctx).users.list(&actor, page_request(first, after)?).await.gql()?;
        Ok(to_connection(page, |u| u.id.as_uuid(), UserGql::from))
    }

    async fn user(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<UserGql> {
        let actor = actor(ctx)?;
        let id: UserId = parse_id("id", &id)?;
        state(ctx).users.get(&actor, id).await.gql().map(Into::into)
    }
}

#[derive(Default)]
pub struct UserMutation;

#[Object]
impl UserMutation {
    /// Exchanges an email and password for an access token. `tenant` (a slug) is needed
    /// only when the same email and password exist in several tenants.
    async fn login(
        &self,
        ctx: &Context<'_>,
        email: String,
        #[graphql(secret)] password: String,
        tenant: Option<String>,
    ) -> async_graphql::Result<LoginPayload> {
        let st = state(ctx);
        // One password check per request: aliases cannot multiply the hashing.
        let gate = ctx.data_opt::<crate::app::LoginGate>();
        if !gate.is_some_and(crate::app::LoginGate::first) {
            return Err(crate::error::gql(domain::DomainError::RateLimited { retry_after_secs: 1 }));
        }
        let client = gate.and_then(|g| g.client);
        // The account is looked up by email across tenants, whatever token came along.
        let user =
            adapters::db::without_tenant(st.auth.login(&email, &password, tenant.as_deref(), client)).await.gql()?;
        let issued = st.jwt.issue(&user).gql()?;
        Ok(LoginPayload { token: issued.token, expires_at: issued.expires_at, user: user.into() })
    }

    /// Ends every session of the caller: each token issued to the account so far (this
    /// one included) is refused from the next request on.
    async fn logout(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let actor = actor(ctx)?;
        state(ctx).users.logout(&actor).await.gql()?;
        Ok(true)
    }

    /// Replaces the caller's password (same rules as `createUser`) after checking the
    /// current one under the login's throttling; every existing token is revoked and a new
    /// one is answered. A wrong `current` answers `BAD_USER_INPUT` on the field `current`.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        #[graphql(secret)] current: String,
        #[graphql(secret)] new: String,
    ) -> async_graphql::Result<LoginPayload> {
        let actor = actor(ctx)?;
        let st = state(ctx);
        // One password check per request, shared with `login`.
        let gate = ctx.data_opt::<crate::app::LoginGate>();
        if !gate.is_some_and(crate::app::LoginGate::first) {
            return Err(crate::error::gql(domain::DomainError::RateLimited { retry_after_secs: 1 }));
        }
        let client = gate.and_then(|g| g.client);
        let user = st.auth.change_password(&actor, &current, &new, client).await.gql()?;
        let issued = st.jwt.issue(&user).gql()?;
        Ok(LoginPayload { token: issued.token, expires_at: issued.expires_at, user: user.into() })
    }

    /// Changes a user's role or disables/enables them: tenant admins in their tenant,
    /// platform admins in any. A tenant keeps at least one enabled tenant admin (`CONFLICT`).
    async fn update_user(&self, ctx: &Context<'_>, id: ID, input: UpdateUserInput) -> async_graphql::Result<UserGql> {
        let actor = actor(ctx)?;
        let id: UserId = parse_id("id", &id)?;
        let change = domain::users::UserChange { role: input.role.map(Into::into), disabled: input.disabled };
        state(ctx).users.update(&actor, id, change).await.gql().map(Into::into)
    }

    /// Platform admins create users in any tenant; tenant admins in their own.
    async fn create_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(secret)] input: CreateUserInput,
    ) -> async_graphql::Result<UserGql> {
        let actor = actor(ctx)?;
        let tenant: TenantId = parse_id("tenantId", &input.tenant_id)?;
        state(ctx)
            .users
            .create(&actor, tenant, &input.email, &input.password, input.role.into())
            .await
            .gql()
            .map(Into::into)
    }
}
