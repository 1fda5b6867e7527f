//! Integrations: settings visible, credentials write-only, secrets and API keys shown once.

use super::connection::{Conn, page_request, to_connection};
use super::{actor, parse_id, state};
use crate::app::AppState;
use crate::error::GqlResultExt;
use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use domain::Actor;
use domain::ids::{ApiKeyId, IntegrationId};
use domain::integrations::{ConfigureIntegration, Integration, IntegrationKind, IntegrationUpdate};

/// The five protocol families, and the tenant's own webhook endpoint.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "IntegrationKind")]
pub enum IntegrationKindGql {
    Dingding,
    Goldcard,
    HuzhouElevator,
    EtcGantry,
    Hazchem,
    /// Alarm changes posted to the tenant's URL, signed with HMAC-SHA256.
    Webhook,
    /// An alarm notification channel: saved with `saveNotificationChannel`, not here.
    NotificationWebhook,
}

impl From<IntegrationKind> for IntegrationKindGql {
    fn from(k: IntegrationKind) -> Self {
        match k {
            IntegrationKind::Dingding => Self::Dingding,
            IntegrationKind::Goldcard => Self::Goldcard,
            IntegrationKind::HuzhouElevator => Self::HuzhouElevator,
            IntegrationKind::EtcGantry => Self::EtcGantry,
            IntegrationKind::Hazchem => Self::Hazchem,
            IntegrationKind::Webhook => Self::Webhook,
            IntegrationKind::NotificationWebhook => Self::NotificationWebhook,
        }
    }
}

impl From<IntegrationKindGql> for IntegrationKind {
    fn from(k: IntegrationKindGql) -> Self {
        match k {
            IntegrationKindGql::Dingding => Self::Dingding,
            IntegrationKindGql::Goldcard => Self::Goldcard,
            IntegrationKindGql::HuzhouElevator => Self::HuzhouElevator,
            IntegrationKindGql::EtcGantry => Self::EtcGantry,
            IntegrationKindGql::Hazchem => Self::Hazchem,
            IntegrationKindGql::Webhook => Self::Webhook,
            IntegrationKindGql::NotificationWebhook => Self::NotificationWebhook,
        }
    }
}

/// A tenant's connection to one vendor. Credentials are never returned: only the names
/// of those that are set.
#[derive(SimpleObject)]
#[graphql(name = "Integration")]
pub struct IntegrationGql {
    pub id: ID,
    pub kind: IntegrationKindGql,
    pub name: String,
    pub settings: Json<serde_json::Value>,
    /// Where the vendor calls Linkyard (none for kinds that only call out). A Dingding URL
    /// ends in the integration's hook token, a secret: only administrators see it
    /// (`rotateIntegrationSecret` issues a new one); null for other roles.
    pub hook_url: Option<String>,
    /// Where the tenant's own devices post readings (`X-Api-Key`).
    pub telemetry_url: String,
    pub credential_names: Vec<String>,
    pub secret_rotated_at: Option<DateTime<Utc>>,
    /// Whether it is enabled: a disabled integration accepts no callbacks, sends nothing
    /// and runs no scheduled job (`disableIntegration`).
    pub enabled: bool,
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl IntegrationGql {
    /// The integration as `actor` sees it.
    fn new(i: Integration, st: &AppState, actor: &Actor) -> Self {
        let base = format!("{}/hooks/{}", st.config.public_url, i.id);
        let hook_url = match i.kind.hook_path() {
            Some(p) if i.kind.takes_hook_token() => {
                st.integrations.hook_token(actor, &i).map(|token| format!("{base}/{p}/{token}"))
            }
            Some(p) => Some(format!("{base}/{p}")),
            None => None,
        };
        Self {
            id: ID(i.id.to_string()),
            kind: i.kind.into(),
            name: i.name,
            settings: Json(i.settings),
            hook_url,
            telemetry_url: format!("{base}/telemetry"),
            credential_names: i.credential_names,
            secret_rotated_at: i.secret_rotated_at,
            enabled: i.disabled_at.is_none(),
            disabled_at: i.disabled_at,
            created_at: i.created_at,
            updated_at: i.updated_at,
        }
    }
}

#[derive(InputObject)]
pub struct ConfigureIntegrationInput {
    /// Reconfigure this integration; omit to create one.
    pub id: Option<ID>,
    pub kind: IntegrationKindGql,
    pub name: String,
    /// Per kind, see the contract; unknown keys are refused.
    pub settings: Option<Json<serde_json::Value>>,
    /// Write-only. Required on create; on update, replaces the stored credentials.
    pub credentials: Option<Json<serde_json::Value>>,
}

/// What `updateIntegration` changes; absent fields stay as they are.
#[derive(InputObject)]
pub struct UpdateIntegrationInput {
    pub name: Option<String>,
    /// Per kind, see the contract; replaces the settings whole.
    pub settings: Option<Json<serde_json::Value>>,
    /// Write-only: replaces the stored credentials whole (e.g. a new client secret).
    pub credentials: Option<Json<serde_json::Value>>,
}

/// A freshly rotated inbound secret, shown this once.
#[derive(SimpleObject)]
pub struct RotatedIntegrationSecret {
    pub integration: IntegrationGql,
    /// The credential it replaced (`inboundAppSecret`, `authCode` or `hookSecret`).
    pub field: String,
    pub secret: String,
}

/// A new API key, shown this once; Linkyard keeps only its digest.
#[derive(SimpleObject)]
pub struct CreatedApiKey {
    pub id: ID,
    pub integration_id: ID,
    pub prefix: String,
    pub key: String,
    pub created_at: DateTime<Utc>,
}

/// A telemetry API key as stored: its first characters only, never the key.
#[derive(SimpleObject)]
#[graphql(name = "ApiKey")]
pub struct ApiKeyGql {
    pub id: ID,
    pub integration_id: ID,
    /// The key's first characters, to tell keys apart.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    /// When the key was last accepted, to within 5 minutes.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Set once revoked; a revoked key is refused.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<domain::integrations::ApiKey> for ApiKeyGql {
    fn from(k: domain::integrations::ApiKey) -> Self {
        Self {
            id: ID(k.id.to_string()),
            integration_id: ID(k.integration_id.to_string()),
            prefix: k.prefix,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

#[derive(Default)]
pub struct IntegrationQuery;

#[Object]
impl IntegrationQuery {
    #[graphql(complexity = "super::connection::cost(first, child_complexity)")]
    async fn integrations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<IntegrationGql>> {
        let actor = actor(ctx)?;
        let st = state(ctx);
        let page = st.integrations.list(&actor, page_request(first, after)?).await.gql()?;
        Ok(to_connection(page, |i| i.id.as_uuid(), |i| IntegrationGql::new(i, st, &actor)))
    }

    /// The API keys of an integration, revoked ones too (tenant admins).
    async fn api_keys(
        &self,
        ctx: &Context<'_>,
        integration_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<ApiKeyGql>> {
        let actor = actor(ctx)?;
        let id: IntegrationId = parse_id("integrationId", &integration_id)?;
        let page = state(ctx).integrations.api_keys(&actor, id, page_request(first, after)?).await.gql()?;
        Ok(to_connection(page, |k| k.id.as_uuid(), ApiKeyGql::from))
    }

    async fn integration(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<IntegrationGql> {
        let actor = actor(ctx)?;
        let st = state(ctx);
        let id: IntegrationId = parse_id("id", &id)?;
        let i = st.integrations.get(&actor, id).await.gql()?;
        Ok(IntegrationGql::new(i, st, &actor))
    }
}

#[derive(Default)]
pub struct IntegrationMutation;

impl IntegrationMutation {
    async fn set_disabled(&self, ctx: &Context<'_>, id: &ID, disabled: bool) -> async_graphql::Result<IntegrationGql> {
        let actor = actor(ctx)?;
        let st = state(ctx);
        let id: IntegrationId = parse_id("id", id)?;
        let i = st.integrations.set_disabled(&actor, id, disabled).await.gql()?;
        st.hook_integrations.remove(&id);
        st.deliveries.forget_integration(id);
        Ok(IntegrationGql::new(i, st, &actor))
    }
}

#[Object]
impl IntegrationMutation {
    /// Creates or reconfigures an integration (tenant admins).
    async fn configure_integration(
        &self,
        ctx: &Context<'_>,
        #[graphql(secret)] input: ConfigureIntegrationInput,
    ) -> async_graphql::Result<IntegrationGql> {
        let actor = actor(ctx)?;
        let st = state(ctx);
        let id = input.id.as_ref().map(|id| parse_id::<IntegrationId>("input.id", id)).transpose()?;
        let cmd = ConfigureIntegration {
            id,
            kind: IntegrationKind::from(input.kind).as_str().to_owned(),
            name: input.name,
            settings: input.settings.map_or(serde_json::Value::Null, |j| j.0),
            credentials: input.credentials.map(|j| j.0),
        };
        // A literal address the server may not call is refused now (names when resolved).
        if let Some((field, why)) = st.config.outbound.check_settings(&cmd.settings) {
            return Err(crate::error::bad_input(&field, &why));
        }
        let i = st.integrations.configure(&actor, cmd).await.gql()?;
        st.hook_integrations.remove(&i.id);
        st.deliveries.forget_integration(i.id);
        Ok(IntegrationGql::new(i, st, &actor))
    }

    /// Changes an integration's name, settings or credentials (tenant admins); its kind,
    /// devices and history stay. Credentials are replaced whole and never shown.
    async fn update_integration(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(secret)] input: UpdateIntegrationInput,
    ) -> async_graphql::Result<IntegrationGql> {
        let actor = actor(ctx)?;
        let st = state(ctx);
        let id: IntegrationId = parse_id("id", &id)?;
        let update = IntegrationUpdate {
            name: input.name,
            settings: input.settings.map(|j| j.0),
            credentials: input.credentials.map(|j| j.0),
        };
        if let Some((field, why)) = update.settings.as_ref().and_then(|s| st.config.outbound.check_settings(s)) {
            return Err(crate::error::bad_input(&field, &why));
        }
        let i = st.integrations.update(&actor, id, update).await.gql()?;
        st.hook_integrations.remove(&i.id);
        st.deliveries.forget_integration(id);
        Ok(IntegrationGql::new(i, st, &actor))
    }

    /// Disables an integration (tenant admins): it keeps its devices, callbacks,
    /// deliveries and audit trail, but accepts no callbacks (refused in the vendor's
    /// envelope), sends nothing (a delivery due goes DEAD with "integration disabled",
    /// replayable) and runs no scheduled job, until `enableIntegration`. Other instances
    /// see it within 10 s.
    async fn disable_integration(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<IntegrationGql> {
        self.set_disabled(ctx, &id, true).await
    }

    /// Enables a disabled integration again.
    async fn enable_integration(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<IntegrationGql> {
        self.set_disabled(ctx, &id, false).await
    }

    /// Replaces the integration's Linkyard-issued inbound secret; the new one is shown once.
    /// A Dingding integration also gets a new hook token (in `hookUrl`); the one it
    /// replaces keeps working for 24 hours.
    async fn rotate_integration_secret(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<RotatedIntegrationSecret> {
        let actor = actor(ctx)?;
        let st = state(ctx);
        let id: IntegrationId = parse_id("id", &id)?;
        let r = st.integrations.rotate_secret(&actor, id).await.gql()?;
        st.hook_integrations.remove(&id);
        Ok(RotatedIntegrationSecret {
            integration: IntegrationGql::new(r.integration, st, &actor),
            field: r.field.to_owned(),
            secret: r.secret,
        })
    }

    /// Revokes an API key: the telemetry hook refuses it from the next request on
    /// (tenant admins). Revoking it again changes nothing.
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ApiKeyGql> {
        let actor = actor(ctx)?;
        let id: ApiKeyId = parse_id("id", &id)?;
        state(ctx).integrations.revoke_api_key(&actor, id).await.gql().map(Into::into)
    }

    /// Issues an API key for the integration's telemetry hook; the key is shown once.
    async fn create_api_key(&self, ctx: &Context<'_>, integration_id: ID) -> async_graphql::Result<CreatedApiKey> {
        let actor = actor(ctx)?;
        let id: IntegrationId = parse_id("integrationId", &integration_id)?;
        let created = state(ctx).integrations.create_api_key(&actor, id).await.gql()?;
        Ok(CreatedApiKey {
            id: ID(created.api_key.id.to_string()),
            integration_id: ID(created.api_key.integration_id.to_string()),
            prefix: created.api_key.prefix,
            key: created.key,
            created_at: created.api_key.created_at,
        })
    }
}
