use super::{
    API_KEY_USE_PRECISION, ApiKey, ApiKeyRepo, ConfigureIntegration, CreatedApiKey, HookSeeds, Integration,
    IntegrationKind, IntegrationRepo, IntegrationUpdate, NewIntegration, RotatedSecret,
};
use crate::clock::{self, Clock};
use crate::ids::{ApiKeyId, IntegrationId, TenantId};
use crate::security::SecretBox;
use crate::{Actor, DomainError, DomainResult, Page, PageRequest, Role};
use serde_json::{Map, Value};
use std::sync::Arc;

/// Configuring integrations, rotating their inbound secret and issuing API keys.
#[derive(Clone)]
pub struct IntegrationService {
    repo: Arc<dyn IntegrationRepo>,
    keys: Arc<dyn ApiKeyRepo>,
    secrets: Arc<dyn SecretBox>,
    /// Where the time comes from.
    clock: Arc<dyn Clock>,
}

/// Length of generated secrets and API keys (URL-safe characters).
const SECRET_LEN: usize = 40;

/// Length of a hook-token seed (alphanumeric: about 285 bits).
const HOOK_SEED_LEN: usize = 48;

/// What hook tokens are derived for (`SecretBox::derive`).
const HOOK_TOKEN_PURPOSE: &str = "hook-token";

/// How long the hook token a rotation replaced keeps working (`CONTRACT.md`: 24 h).
pub const HOOK_TOKEN_GRACE: chrono::TimeDelta = chrono::TimeDelta::hours(24);

impl IntegrationService {
    pub fn new(repo: Arc<dyn IntegrationRepo>, keys: Arc<dyn ApiKeyRepo>, secrets: Arc<dyn SecretBox>) -> Self {
        Self { repo, keys, secrets, clock: clock::system() }
    }

    /// Reads the time from `clock` instead of the system clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Creates an integration, or reconfigures the one named by `input.id`.
    ///
    /// # Errors
    /// `Forbidden` unless tenant admin; `Invalid` naming the bad field; `Duplicate` on a
    /// taken name; `NotFound` for an unknown id; `Invalid { field: "kind" }` when an update
    /// tries to change the kind.
    pub async fn configure(&self, actor: &Actor, input: ConfigureIntegration) -> DomainResult<Integration> {
        let tenant = actor.require_tenant_admin()?;
        let kind = IntegrationKind::parse(&input.kind)?;
        if kind == IntegrationKind::NotificationWebhook {
            return Err(DomainError::invalid("kind", "notification channels are saved with saveNotificationChannel"));
        }
        let name = input.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(DomainError::invalid("name", "1-100 characters"));
        }
        let settings = kind.validate_settings(&input.settings)?;
        let existing = match input.id {
            Some(id) => Some(self.repo.get(tenant, id).await?.ok_or(DomainError::NotFound("integration"))?),
            None => None,
        };
        if existing.as_ref().is_some_and(|e| e.kind != kind) {
            return Err(DomainError::invalid("kind", "an integration's kind cannot change"));
        }
        let (credentials_sealed, credential_names) = match (&input.credentials, &existing) {
            (Some(c), _) => {
                let map = kind.validate_credentials(c)?;
                (Some(self.seal(&map)?), map.keys().cloned().collect())
            }
            (None, Some(e)) => (None, e.credential_names.clone()),
            (None, None) => return Err(DomainError::invalid("credentials", "is required")),
        };
        let hook_seed =
            (existing.is_none() && kind.takes_hook_token()).then(|| self.secrets.random_secret(HOOK_SEED_LEN));
        let new = NewIntegration { kind, name, settings, credentials_sealed, credential_names, hook_seed };
        match existing {
            Some(e) => self.repo.update(tenant, e.id, new).await,
            None => self.repo.create(tenant, new).await,
        }
    }

    /// Changes an integration's name, settings (validated for its kind) or credentials
    /// (replaced whole when given; never read back). Its kind, devices and history stay.
    ///
    /// # Errors
    /// As `configure`; `NotFound` when absent or in another tenant.
    pub async fn update(
        &self,
        actor: &Actor,
        id: IntegrationId,
        input: IntegrationUpdate,
    ) -> DomainResult<Integration> {
        let tenant = actor.require_tenant_admin()?;
        let existing = self.repo.get(tenant, id).await?.ok_or(DomainError::NotFound("integration"))?;
        if existing.kind == IntegrationKind::NotificationWebhook {
            return Err(DomainError::invalid("id", "a notification channel is saved with saveNotificationChannel"));
        }
        let configure = ConfigureIntegration {
            id: Some(id),
            kind: existing.kind.as_str().to_owned(),
            name: input.name.unwrap_or(existing.name),
            settings: input.settings.unwrap_or(existing.settings),
            credentials: input.credentials,
        };
        self.configure(actor, configure).await
    }

    /// Disables an integration (`true`) or enables it again: while disabled it accepts no
    /// callbacks, its deliveries are not sent (they wait, DEAD with the reason, for
    /// `retryDelivery` or `replayDeliveries`) and its scheduled jobs do not run; its
    /// devices, events, deliveries and audit trail stay. Disabling a disabled integration
    /// keeps its first `disabledAt`.
    ///
    /// # Errors
    /// `Forbidden` unless tenant admin; `NotFound` when absent or in another tenant.
    pub async fn set_disabled(&self, actor: &Actor, id: IntegrationId, disabled: bool) -> DomainResult<Integration> {
        let tenant = actor.require_tenant_admin()?;
        let existing = self.repo.get(tenant, id).await?.ok_or(DomainError::NotFound("integration"))?;
        if existing.disabled_at.is_some() == disabled {
            return Ok(existing);
        }
        self.repo.set_disabled(tenant, id, disabled.then(|| self.clock.now())).await
    }

    /// # Errors
    /// `Forbidden` for actors without a tenant.
    pub async fn list(&self, actor: &Actor, page: PageRequest) -> DomainResult<Page<Integration>> {
        self.repo.list(actor.require_reader()?, page).await
    }

    /// # Errors
    /// `NotFound` when absent or in another tenant.
    pub async fn get(&self, actor: &Actor, id: IntegrationId) -> DomainResult<Integration> {
        self.repo.get(actor.require_reader()?, id).await?.ok_or(DomainError::NotFound("integration"))
    }

    /// Replaces the Linkyard-issued inbound secret of the integration (the kind's
    /// `inbound_secret_field`) with a fresh one, shown once; for a kind that takes a hook
    /// token, also issues a new token (in `hookUrl`), the one it replaces working for
    /// `HOOK_TOKEN_GRACE` more (the one before that stops at once).
    ///
    /// # Errors
    /// `Forbidden` unless tenant admin; `NotFound` when absent or in another tenant.
    pub async fn rotate_secret(&self, actor: &Actor, id: IntegrationId) -> DomainResult<RotatedSecret> {
        let tenant = actor.require_tenant_admin()?;
        let (integration, mut map) = self.open_credentials(tenant, id).await?;
        if integration.kind == IntegrationKind::NotificationWebhook {
            // Its secret has the Standard Webhooks form; a channel is saved anew instead.
            return Err(DomainError::invalid("id", "a notification channel's secret is not rotated here"));
        }
        let field = integration.kind.inbound_secret_field();
        let secret = self.secrets.random_secret(SECRET_LEN);
        map.insert(field.to_owned(), Value::String(secret.clone()));
        let names = map.keys().cloned().collect();
        let now = self.clock.now();
        let hook_seeds = integration.kind.takes_hook_token().then(|| HookSeeds {
            current: self.secrets.random_secret(HOOK_SEED_LEN),
            previous: integration.hook_seeds.as_ref().map(|s| (s.current.clone(), now + HOOK_TOKEN_GRACE)),
        });
        let integration =
            self.repo.store_rotated_credentials(tenant, id, self.seal(&map)?, names, hook_seeds, now).await?;
        Ok(RotatedSecret { integration, field, secret })
    }

    /// The integration's current hook token, for the `hookUrl` shown to `actor`: only
    /// administrators see it (tenant admins, platform admins); `None` for everyone else and
    /// for kinds without one.
    pub fn hook_token(&self, actor: &Actor, integration: &Integration) -> Option<String> {
        let admin = matches!(actor.role, Role::TenantAdmin | Role::PlatformAdmin);
        let seeds = integration.hook_seeds.as_ref().filter(|_| admin)?;
        Some(self.secrets.derive(HOOK_TOKEN_PURPOSE, &seeds.current))
    }

    /// Whether `given` is the integration's hook token, or the one its last rotation
    /// replaced while that is still honoured (by this service's clock). False for a kind
    /// without one and for a missing token.
    pub fn check_hook_token(&self, integration: &Integration, given: Option<&str>) -> bool {
        let (Some(seeds), Some(given)) = (&integration.hook_seeds, given) else { return false };
        let current = self.secrets.matches_derived(HOOK_TOKEN_PURPOSE, &seeds.current, given);
        let previous = seeds.previous.as_ref().is_some_and(|(seed, until)| {
            self.clock.now() < *until && self.secrets.matches_derived(HOOK_TOKEN_PURPOSE, seed, given)
        });
        current || previous
    }

    /// Issues an API key for the integration's telemetry hook; stored as a digest, shown once.
    ///
    /// # Errors
    /// `Forbidden` unless tenant admin; `NotFound` when absent or in another tenant.
    pub async fn create_api_key(&self, actor: &Actor, id: IntegrationId) -> DomainResult<CreatedApiKey> {
        let tenant = actor.require_tenant_admin()?;
        self.repo.get(tenant, id).await?.ok_or(DomainError::NotFound("integration"))?;
        let key = format!("lk_{}", self.secrets.random_secret(SECRET_LEN));
        let prefix: String = key.chars().take(10).collect();
        let api_key = self.keys.create(tenant, id, prefix, self.secrets.digest(&key)).await?;
        Ok(CreatedApiKey { api_key, key })
    }

    /// An integration with its credentials opened, for the senders that call its vendor.
    /// Never for answers: credentials stay write-only to users.
    ///
    /// # Errors
    /// `NotFound` when absent or in another tenant; `Unknown` when the stored credentials
    /// cannot be opened.
    pub async fn open_credentials(
        &self,
        tenant: TenantId,
        id: IntegrationId,
    ) -> DomainResult<(Integration, Map<String, Value>)> {
        let integration = self.repo.get(tenant, id).await?.ok_or(DomainError::NotFound("integration"))?;
        let sealed = self.repo.sealed_credentials(tenant, id).await?;
        let map = serde_json::from_slice(&self.secrets.open(&sealed)?)
            .map_err(|e| DomainError::Unknown(anyhow::anyhow!("stored credentials are not JSON: {e}")))?;
        Ok((integration, map))
    }

    /// Resolves an inbound hook's integration (and so its tenant) with its credentials
    /// opened, for the controller to check the caller the way its protocol says. `None`
    /// when no integration has this id.
    ///
    /// # Errors
    /// `Unknown` on storage failure or when the stored credentials cannot be opened.
    pub async fn open_hook(&self, id: IntegrationId) -> DomainResult<Option<(Integration, Map<String, Value>)>> {
        let Some(integration) = self.repo.resolve_hook(id).await? else { return Ok(None) };
        let (integration, credentials) = self.open_credentials(integration.tenant_id, integration.id).await?;
        Ok(Some((integration, credentials)))
    }

    /// Whether `key` is an API key issued for `integration` (`createApiKey`) and not
    /// revoked. Read from storage each time (no cache), so a revocation holds at once on
    /// every instance; the key's last use is written at most once per
    /// `API_KEY_USE_PRECISION`.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    pub async fn check_api_key(&self, integration: IntegrationId, key: &str) -> DomainResult<bool> {
        let Some(found) = self.keys.find(integration, &self.secrets.digest(key)).await? else { return Ok(false) };
        let now = self.clock.now();
        if found.last_used_at.is_none_or(|t| now - t >= API_KEY_USE_PRECISION) {
            // Only a note: a failed write does not refuse the caller.
            if let Err(e) = self.keys.touch(found.tenant_id, found.id, now).await {
                tracing::debug!(error = ?e, "recording an API key's use");
            }
        }
        Ok(true)
    }

    /// The API keys of an integration (tenant admins): prefixes and dates, never a key.
    ///
    /// # Errors
    /// `Forbidden` unless tenant admin; `NotFound("integration")` when absent or in another tenant.
    pub async fn api_keys(&self, actor: &Actor, id: IntegrationId, page: PageRequest) -> DomainResult<Page<ApiKey>> {
        let tenant = actor.require_tenant_admin()?;
        self.repo.get(tenant, id).await?.ok_or(DomainError::NotFound("integration"))?;
        self.keys.list(tenant, id, page).await
    }

    /// Revokes an API key: the telemetry hook refuses it from the next request on.
    /// Revoking a revoked key changes nothing.
    ///
    /// # Errors
    /// `Forbidden` unless tenant admin; `NotFound("api key")` when absent or in another tenant.
    pub async fn revoke_api_key(&self, actor: &Actor, id: ApiKeyId) -> DomainResult<ApiKey> {
        let tenant = actor.require_tenant_admin()?;
        self.keys.revoke(tenant, id, self.clock.now()).await
    }

    fn seal(&self, map: &Map<String, Value>) -> DomainResult<String> {
        let bytes = serde_json::to_vec(map).map_err(|e| DomainError::Unknown(e.into()))?;
        self.secrets.seal(&bytes)
    }
}
