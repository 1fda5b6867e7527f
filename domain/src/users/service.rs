use super::models::check_password_rules;
use super::{Email, NewUser, User, UserRepo};
use crate::clock::{self, Clock};
use crate::ids::{TenantId, UserId};
use crate::security::{LoginThrottle, PasswordHasher, ThrottlePolicy};
use crate::tenants::TenantRepo;
use crate::{Actor, DomainError, DomainResult, Page, PageRequest, Role};
use std::sync::Arc;

/// Creating and listing users.
#[derive(Clone)]
pub struct UserService {
    repo: Arc<dyn UserRepo>,
    tenants: Arc<dyn TenantRepo>,
    hasher: Arc<dyn PasswordHasher>,
}

impl UserService {
    pub fn new(repo: Arc<dyn UserRepo>, tenants: Arc<dyn TenantRepo>, hasher: Arc<dyn PasswordHasher>) -> Self {
        Self { repo, tenants, hasher }
    }

    /// Platform admins create users in any tenant; tenant admins in their own.
    /// Nobody creates platform admins here (see `ensure_platform_admin`).
    ///
    /// # Errors
    /// `Forbidden` for other roles; `NotFound("tenant")` for an unknown or foreign tenant;
    /// `Invalid` on email, password or role; `Duplicate` when the email is taken in the tenant.
    pub async fn create(
        &self,
        actor: &Actor,
        tenant: TenantId,
        email: &str,
        password: &str,
        role: Role,
    ) -> DomainResult<User> {
        match actor.role {
            Role::PlatformAdmin => {}
            Role::TenantAdmin if actor.tenant_id == Some(tenant) => {}
            Role::TenantAdmin => return Err(DomainError::NotFound("tenant")),
            _ => return Err(DomainError::Forbidden),
        }
        if role == Role::PlatformAdmin {
            return Err(DomainError::invalid("role", "platform admins belong to no tenant"));
        }
        let email = Email::parse(email)?;
        check_password_rules(password)?;
        if self.tenants.get(tenant).await?.is_none() {
            return Err(DomainError::NotFound("tenant"));
        }
        let password_hash = self.hasher.hash(password)?;
        self.repo.create(tenant, NewUser { email, password_hash, role }).await
    }

    /// Creates the platform admin if missing (idempotent); the bool tells whether it was created.
    ///
    /// # Errors
    /// `Invalid` on email or password.
    pub async fn ensure_platform_admin(&self, email: &str, password: &str) -> DomainResult<(User, bool)> {
        let email = Email::parse(email)?;
        check_password_rules(password)?;
        let password_hash = self.hasher.hash(password)?;
        self.repo.ensure_platform_admin(NewUser { email, password_hash, role: Role::PlatformAdmin }).await
    }

    /// The actor's own account.
    ///
    /// # Errors
    /// `Unauthenticated` when the account no longer exists.
    pub async fn me(&self, actor: &Actor) -> DomainResult<User> {
        let found = match actor.tenant_id {
            Some(t) => self.repo.get(t, actor.user_id).await?,
            None => self.repo.get_platform_admin(actor.user_id).await?,
        };
        found.ok_or(DomainError::Unauthenticated)
    }

    /// Users of the actor's tenant (tenant admins only).
    ///
    /// # Errors
    /// `Forbidden` for other roles.
    pub async fn list(&self, actor: &Actor, page: PageRequest) -> DomainResult<Page<User>> {
        let tenant = actor.require_tenant_admin()?;
        self.repo.list(tenant, page).await
    }

    /// # Errors
    /// `NotFound` when absent or in another tenant.
    pub async fn get(&self, actor: &Actor, id: UserId) -> DomainResult<User> {
        let tenant = actor.require_reader()?;
        self.repo.get(tenant, id).await?.ok_or(DomainError::NotFound("user"))
    }
}

/// Login: one answer for a wrong email and a wrong password, and failures slowed down.
#[derive(Clone)]
pub struct AuthService {
    repo: Arc<dyn UserRepo>,
    tenants: Arc<dyn TenantRepo>,
    hasher: Arc<dyn PasswordHasher>,
    throttle: Arc<dyn LoginThrottle>,
    policy: ThrottlePolicy,
    /// Waits out the delay after failures.
    clock: Arc<dyn Clock>,
}

impl AuthService {
    pub fn new(
        repo: Arc<dyn UserRepo>,
        tenants: Arc<dyn TenantRepo>,
        hasher: Arc<dyn PasswordHasher>,
        throttle: Arc<dyn LoginThrottle>,
        policy: ThrottlePolicy,
    ) -> Self {
        Self { repo, tenants, hasher, throttle, policy, clock: clock::system() }
    }

    /// Waits out login delays on `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Checks an email and password, optionally within one tenant (by slug) when the same
    /// email exists in several.
    ///
    /// # Errors
    /// `InvalidCredentials` for any wrong email, password or tenant; `RateLimited` once the
    /// email has failed too often in the window; `Invalid { field: "tenant" }` when the
    /// credentials match accounts in several tenants and no tenant was named.
    pub async fn login(&self, email: &str, password: &str, tenant_slug: Option<&str>) -> DomainResult<User> {
        let key = email.trim().to_lowercase();
        let failures = self.throttle.failures(&key).await?;
        if self.policy.locked(failures) {
            return Err(DomainError::RateLimited { retry_after_secs: self.policy.window.as_secs() });
        }
        let delay = self.policy.delay(failures);
        if !delay.is_zero() {
            self.clock.sleep(delay).await;
        }
        match self.check(email, password, tenant_slug).await? {
            Some(user) => {
                self.throttle.reset(&key).await?;
                Ok(user)
            }
            None => {
                self.throttle.record_failure(&key, self.policy.window).await?;
                Err(DomainError::InvalidCredentials)
            }
        }
    }

    async fn check(&self, email: &str, password: &str, tenant_slug: Option<&str>) -> DomainResult<Option<User>> {
        let Ok(email) = Email::parse(email) else {
            self.hasher.verify_dummy(password);
            return Ok(None);
        };
        let tenant = match tenant_slug {
            Some(slug) => match self.tenants.get_by_slug(slug).await? {
                Some(t) => Some(t.id),
                None => {
                    self.hasher.verify_dummy(password);
                    return Ok(None);
                }
            },
            None => None,
        };
        let candidates = self.repo.credentials_for_login(&email, tenant).await?;
        if candidates.is_empty() {
            self.hasher.verify_dummy(password);
            return Ok(None);
        }
        let mut matched: Vec<User> =
            candidates.into_iter().filter(|c| self.hasher.verify(password, &c.password_hash)).map(|c| c.user).collect();
        match matched.len() {
            0 => Ok(None),
            1 => Ok(matched.pop()),
            _ => Err(DomainError::invalid("tenant", "this account exists in several tenants: name the tenant")),
        }
    }
}
