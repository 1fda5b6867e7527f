use super::{
    ApiKeyRepo, ConfigureIntegration, CreatedApiKey, Integration, IntegrationKind, IntegrationRepo, NewIntegration,
    RotatedSecret,
};
use crate::clock::{self, Clock};
use crate::ids::{IntegrationId, TenantId};
use crate::security::SecretBox;
use crate::{Actor, DomainError, DomainResult, Page, PageRequest};
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
        let new = NewIntegration { kind, name, settings, credentials_sealed, credential_names };
        match existing {
            Some(e) => self.repo.update(tenant, e.id, new).await,
            None => self.repo.create(tenant, new).await,
        }
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
    /// `inbound_secret_field`) with a fresh one, shown once.
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
        let integration =
            self.repo.store_rotated_credentials(tenant, id, self.seal(&map)?, names, self.clock.now()).await?;
        Ok(RotatedSecret { integration, field, secret })
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

    /// Whether `key` is an API key issued for `integration` (`createApiKey`).
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    pub async fn check_api_key(&self, integration: IntegrationId, key: &str) -> DomainResult<bool> {
        Ok(self.keys.find(integration, &self.secrets.digest(key)).await?.is_some())
    }

    fn seal(&self, map: &Map<String, Value>) -> DomainResult<String> {
        let bytes = serde_json::to_vec(map).map_err(|e| DomainError::Unknown(e.into()))?;
        self.secrets.seal(&bytes)
    }
}
