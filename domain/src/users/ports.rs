use super::{Email, NewUser, User, UserCredentials};
use crate::ids::{TenantId, UserId};
use crate::{DomainResult, Page, PageRequest};
use async_trait::async_trait;

/// Users. Tenant users are only reachable with their tenant; platform admins have their
/// own methods. Login is the one cross-tenant look-up, by design, and returns hashes only
/// to the auth use case.
#[async_trait]
pub trait UserRepo: Send + Sync {
    /// # Errors
    /// `Duplicate` when the email is taken in that tenant; `NotFound("tenant")` when the tenant does not exist.
    async fn create(&self, tenant: TenantId, input: NewUser) -> DomainResult<User>;
    /// Creates a platform admin unless one with that email exists; returns it either way.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn ensure_platform_admin(&self, input: NewUser) -> DomainResult<(User, bool)>;
    /// # Errors
    /// `Unknown` on storage failure.
    async fn get(&self, tenant: TenantId, id: UserId) -> DomainResult<Option<User>>;
    /// # Errors
    /// `Unknown` on storage failure.
    async fn get_platform_admin(&self, id: UserId) -> DomainResult<Option<User>>;
    /// # Errors
    /// `Unknown` on storage failure.
    async fn list(&self, tenant: TenantId, page: PageRequest) -> DomainResult<Page<User>>;
    /// Every account with this email: the platform admin, then users of any tenant
    /// (restricted to `tenant` when given).
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn credentials_for_login(
        &self,
        email: &Email,
        tenant: Option<TenantId>,
    ) -> DomainResult<Vec<UserCredentials>>;
}
