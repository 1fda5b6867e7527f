use super::{ApiKey, HookSeeds, Integration, IntegrationKind, NewIntegration};
use crate::ids::{ApiKeyId, IntegrationId, TenantId};
use crate::{DomainResult, Page, PageRequest};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Integrations of a tenant.
#[async_trait]
pub trait IntegrationRepo: Send + Sync {
    /// # Errors
    /// `Duplicate` when the tenant already has an integration of that name.
    async fn create(&self, tenant: TenantId, input: NewIntegration) -> DomainResult<Integration>;
    /// Replaces name and settings, and the credentials when `input.credentials_sealed` is set.
    ///
    /// # Errors
    /// `NotFound("integration")` when absent or in another tenant; `Duplicate` on a taken name.
    async fn update(&self, tenant: TenantId, id: IntegrationId, input: NewIntegration) -> DomainResult<Integration>;
    /// # Errors
    /// `Unknown` on storage failure.
    async fn get(&self, tenant: TenantId, id: IntegrationId) -> DomainResult<Option<Integration>>;
    /// # Errors
    /// `Unknown` on storage failure.
    async fn list(&self, tenant: TenantId, page: PageRequest) -> DomainResult<Page<Integration>>;
    /// The sealed credentials of an integration, for the adapters that call out.
    ///
    /// # Errors
    /// `NotFound("integration")` when absent or in another tenant.
    async fn sealed_credentials(&self, tenant: TenantId, id: IntegrationId) -> DomainResult<String>;
    /// Stores new sealed credentials after a rotation, and the new hook-token seeds when
    /// the kind takes a hook token (`None`: the seeds are left as they are).
    ///
    /// # Errors
    /// `NotFound("integration")` when absent or in another tenant.
    async fn store_rotated_credentials(
        &self,
        tenant: TenantId,
        id: IntegrationId,
        sealed: String,
        names: Vec<String>,
        hook_seeds: Option<HookSeeds>,
        at: DateTime<Utc>,
    ) -> DomainResult<Integration>;
    /// Disables the integration (`at`) or enables it again (`None`).
    ///
    /// # Errors
    /// `NotFound("integration")` when absent or in another tenant.
    async fn set_disabled(
        &self,
        tenant: TenantId,
        id: IntegrationId,
        at: Option<DateTime<Utc>>,
    ) -> DomainResult<Integration>;
    /// Resolves an inbound hook's integration id to its integration (and so its tenant):
    /// the one look-up that starts without a tenant, made once at the edge.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn resolve_hook(&self, id: IntegrationId) -> DomainResult<Option<Integration>>;
    /// Every enabled integration of these kinds, in every tenant: for the scheduler, which acts
    /// for each tenant (never for answers to users).
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn all_of_kinds(&self, kinds: &[IntegrationKind]) -> DomainResult<Vec<Integration>>;
}

/// API keys for a tenant's own devices, stored as digests.
#[async_trait]
pub trait ApiKeyRepo: Send + Sync {
    /// # Errors
    /// `Unknown` on storage failure.
    async fn create(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        prefix: String,
        digest: String,
    ) -> DomainResult<ApiKey>;
    /// The key with this digest, if it belongs to `integration` and is not revoked.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn find(&self, integration: IntegrationId, digest: &str) -> DomainResult<Option<ApiKey>>;
    /// The keys of one integration (revoked ones too), oldest first.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn list(&self, tenant: TenantId, integration: IntegrationId, page: PageRequest)
    -> DomainResult<Page<ApiKey>>;
    /// Revokes a key (a revoked key keeps its first `revoked_at`); answers it.
    ///
    /// # Errors
    /// `NotFound("api key")` when absent or in another tenant.
    async fn revoke(&self, tenant: TenantId, id: ApiKeyId, at: DateTime<Utc>) -> DomainResult<ApiKey>;
    /// Records that the key was accepted at `at`.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn touch(&self, tenant: TenantId, id: ApiKeyId, at: DateTime<Utc>) -> DomainResult<()>;
}
