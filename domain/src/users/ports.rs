use super::{Email, NewUser, User, UserChange, UserCredentials};
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
    /// The account of a session: a tenant user with `tenant`, a platform admin without.
    /// One primary-key read: every authenticated request makes it.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn session(&self, tenant: Option<TenantId>, id: UserId) -> DomainResult<Option<User>>;
    /// The account with its password hash (tenant user with `tenant`, platform admin without).
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn credentials(&self, tenant: Option<TenantId>, id: UserId) -> DomainResult<Option<UserCredentials>>;
    /// Stores a new password hash and raises the token version (every token is revoked).
    ///
    /// # Errors
    /// `NotFound("user")` when absent.
    async fn set_password(&self, tenant: Option<TenantId>, id: UserId, password_hash: String) -> DomainResult<User>;
    /// Raises the token version: every token issued to the account stops working.
    ///
    /// # Errors
    /// `NotFound("user")` when absent.
    async fn revoke_tokens(&self, tenant: Option<TenantId>, id: UserId) -> DomainResult<()>;
    /// Changes a tenant user's role or disabled flag; disabling also raises the token
    /// version, so enabling again revives no old token. Atomic with its check that the
    /// tenant keeps at least one enabled tenant admin.
    ///
    /// # Errors
    /// `NotFound("user")` when absent or in another tenant; `InvalidTransition` when the
    /// change would leave the tenant without an enabled tenant admin.
    async fn update(&self, tenant: TenantId, id: UserId, change: UserChange) -> DomainResult<User>;
    /// The tenant of a tenant user, for platform admins who name a user by id alone (the
    /// one look-up of a user that starts without a tenant).
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn tenant_of(&self, id: UserId) -> DomainResult<Option<TenantId>>;
}
