use super::{NewTenant, Tenant, TenantRepo};
use crate::{Actor, DomainError, DomainResult, Page, PageRequest};
use std::sync::Arc;

/// Onboarding of tenants (platform admins) and a tenant's view of itself.
#[derive(Clone)]
pub struct TenantService {
    repo: Arc<dyn TenantRepo>,
}

impl TenantService {
    pub fn new(repo: Arc<dyn TenantRepo>) -> Self {
        Self { repo }
    }

    /// # Errors
    /// `Forbidden` unless platform admin; `Invalid` on a bad slug or name; `Duplicate` on a taken slug.
    pub async fn create(&self, actor: &Actor, slug: &str, name: &str) -> DomainResult<Tenant> {
        actor.require_platform_admin()?;
        self.repo.create(NewTenant::parse(slug, name)?).await
    }

    /// Platform admins see every tenant; a tenant's users see only their own.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    pub async fn list(&self, actor: &Actor, page: PageRequest) -> DomainResult<Page<Tenant>> {
        if actor.require_platform_admin().is_ok() {
            return self.repo.list(page).await;
        }
        let own = self.get(actor, actor.tenant()?).await?;
        let items = if page.after().is_none() && page.first() > 0 { vec![own] } else { vec![] };
        Ok(Page {
            items,
            has_next_page: false,
            has_previous_page: page.after().is_some(),
            total_count: crate::TotalCount::known(1),
        })
    }

    /// # Errors
    /// `NotFound` when absent or not the actor's own tenant.
    pub async fn get(&self, actor: &Actor, id: crate::ids::TenantId) -> DomainResult<Tenant> {
        if actor.require_platform_admin().is_err() && actor.tenant_id != Some(id) {
            return Err(DomainError::NotFound("tenant"));
        }
        self.repo.get(id).await?.ok_or(DomainError::NotFound("tenant"))
    }
}
