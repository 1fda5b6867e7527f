use super::{NewTenant, Tenant};
use crate::ids::TenantId;
use crate::{DomainResult, Page, PageRequest};
use async_trait::async_trait;

/// Tenants are the platform-level rows that scope everything else.
#[async_trait]
pub trait TenantRepo: Send + Sync {
    /// # Errors
    /// `Duplicate` when the slug is taken.
    async fn create(&self, input: NewTenant) -> DomainResult<Tenant>;
    /// # Errors
    /// `Unknown` on storage failure; `Ok(None)` when absent.
    async fn get(&self, id: TenantId) -> DomainResult<Option<Tenant>>;
    /// # Errors
    /// `Unknown` on storage failure; `Ok(None)` when absent.
    async fn get_by_slug(&self, slug: &str) -> DomainResult<Option<Tenant>>;
    /// Every tenant, for platform admins.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn list(&self, page: PageRequest) -> DomainResult<Page<Tenant>>;
}
