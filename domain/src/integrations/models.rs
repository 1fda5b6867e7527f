use super::IntegrationKind;
use crate::ids::{ApiKeyId, IntegrationId, TenantId};
use chrono::{DateTime, Utc};
use serde_json::Value;

/// A stored integration as tenants see it: credentials are never part of it, only the
/// names of those that are set.
#[derive(Debug, Clone, PartialEq)]
pub struct Integration {
    pub id: IntegrationId,
    pub tenant_id: TenantId,
    pub kind: IntegrationKind,
    pub name: String,
    pub settings: Value,
    pub credential_names: Vec<String>,
    pub secret_rotated_at: Option<DateTime<Utc>>,
    /// Where its kind puts a hook token in its callback URL: what the token derives from.
    pub hook_seeds: Option<HookSeeds>,
    /// Set while the integration is disabled (`disableIntegration`): no callbacks accepted,
    /// nothing sent, no scheduled job run; its history stays.
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The random seeds an integration's hook tokens are derived from under the server's
/// secret key (`SecretBox::derive`): the current one, and the one a rotation replaced with
/// the time until which its token is still honoured. Stored as they are: without the key
/// they name no token.
#[derive(Clone, PartialEq, Eq)]
pub struct HookSeeds {
    pub current: String,
    pub previous: Option<(String, DateTime<Utc>)>,
}

impl std::fmt::Debug for HookSeeds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookSeeds").field("previous_until", &self.previous.as_ref().map(|(_, t)| t)).finish()
    }
}

/// What `updateIntegration` changes: absent fields stay as they are; credentials given
/// replace the stored ones whole.
#[derive(Debug, Clone, Default)]
pub struct IntegrationUpdate {
    pub name: Option<String>,
    pub settings: Option<Value>,
    pub credentials: Option<Value>,
}

/// What a tenant admin submits to create or reconfigure an integration.
#[derive(Debug, Clone)]
pub struct ConfigureIntegration {
    /// Reconfigure this integration; create a new one when absent.
    pub id: Option<IntegrationId>,
    pub kind: String,
    pub name: String,
    pub settings: Value,
    /// Required on create; on update, replaces the stored credentials when given.
    pub credentials: Option<Value>,
}

/// A validated integration ready to store; credentials already sealed.
#[derive(Debug, Clone)]
pub struct NewIntegration {
    pub kind: IntegrationKind,
    pub name: String,
    pub settings: Value,
    pub credentials_sealed: Option<String>,
    pub credential_names: Vec<String>,
    /// The first hook-token seed, for a new integration of a kind that takes one.
    pub hook_seed: Option<String>,
}

/// The answer to a secret rotation: the new secret is shown this once.
#[derive(Debug, Clone)]
pub struct RotatedSecret {
    pub integration: Integration,
    pub field: &'static str,
    pub secret: String,
}

/// A stored API key (its digest only).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub tenant_id: TenantId,
    pub integration_id: IntegrationId,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    /// When the key was last accepted, to within `API_KEY_USE_PRECISION`.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Set once the key is revoked; a revoked key is refused at once.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// How coarsely `ApiKey::last_used_at` follows use: it is written at most once per key in
/// this time, so a busy device does not write once per batch.
pub const API_KEY_USE_PRECISION: chrono::Duration = chrono::Duration::minutes(5);

/// The answer to creating an API key: the key is shown this once.
#[derive(Debug, Clone)]
pub struct CreatedApiKey {
    pub api_key: ApiKey,
    pub key: String,
}
