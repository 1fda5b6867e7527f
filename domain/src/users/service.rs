use super::models::check_password_rules;
use super::{Email, NewUser, User, UserChange, UserRepo};
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

    /// The actor behind a verified access token: the account must exist, be enabled and
    /// still be at the token's version. The role is the stored one, so a demotion takes
    /// effect on the next request. One primary-key read, no cache: a revocation made by
    /// any instance holds at once on every instance.
    ///
    /// # Errors
    /// `Unauthenticated` when the account is gone or disabled, or the token was revoked.
    pub async fn session(&self, user: UserId, tenant: Option<TenantId>, version: i64) -> DomainResult<Actor> {
        let u = self.repo.session(tenant, user).await?.ok_or(DomainError::Unauthenticated)?;
        if u.disabled || u.token_version != version || u.tenant_id != tenant {
            return Err(DomainError::Unauthenticated);
        }
        Ok(Actor { user_id: u.id, tenant_id: u.tenant_id, role: u.role })
    }

    /// Ends every session of the actor: each token issued to the account so far stops working.
    ///
    /// # Errors
    /// `Unauthenticated` when the account no longer exists.
    pub async fn logout(&self, actor: &Actor) -> DomainResult<()> {
        match self.repo.revoke_tokens(actor.tenant_id, actor.user_id).await {
            Err(DomainError::NotFound(_)) => Err(DomainError::Unauthenticated),
            other => other,
        }
    }

    /// Changes a tenant user's role or disabled flag: tenant admins in their tenant,
    /// platform admins in any. Disabling revokes the user's tokens at once. A tenant always
    /// keeps one enabled tenant admin.
    ///
    /// # Errors
    /// `Forbidden` for other roles; `NotFound("user")` when absent or in another tenant;
    /// `Invalid { field: "input.role" }` for `PLATFORM_ADMIN`; `InvalidTransition` when the
    /// change would leave the tenant without an enabled tenant admin.
    pub async fn update(&self, actor: &Actor, id: UserId, change: UserChange) -> DomainResult<User> {
        let tenant = match actor.role {
            Role::TenantAdmin => actor.tenant()?,
            Role::PlatformAdmin => self.repo.tenant_of(id).await?.ok_or(DomainError::NotFound("user"))?,
            _ => return Err(DomainError::Forbidden),
        };
        if change.role == Some(Role::PlatformAdmin) {
            return Err(DomainError::invalid("input.role", "platform admins belong to no tenant"));
        }
        self.repo.update(tenant, id, change).await
    }
}

/// Login: one answer for a wrong email and a wrong password, and failures slowed down.
///
/// Failures are counted per account and client address (`account:{user}:{address}`): a
/// user's own success resets only that count, so a same-email account in another tenant
/// can neither unlock nor be locked out by it. Every failure also counts against the
/// client address (`address:{address}`, never reset by a success), which is locked out
/// after five times the account limit, and the address may have at most `hashes_per_minute`
/// password checks (each an argon2 hash) a minute.
#[derive(Clone)]
pub struct AuthService {
    repo: Arc<dyn UserRepo>,
    tenants: Arc<dyn TenantRepo>,
    hasher: Arc<dyn PasswordHasher>,
    throttle: Arc<dyn LoginThrottle>,
    policy: ThrottlePolicy,
    /// The password-check budget per client address, when a limiter is given.
    budget: Option<(Arc<dyn crate::limits::RateLimiter>, u32)>,
    /// Prefix of every throttle and limiter key (deployments sharing a Redis).
    namespace: String,
    /// Waits out the delay after failures.
    clock: Arc<dyn Clock>,
}

/// How many times the account limit one client address may fail in a window.
const ADDRESS_FACTOR: u32 = 5;

impl AuthService {
    pub fn new(
        repo: Arc<dyn UserRepo>,
        tenants: Arc<dyn TenantRepo>,
        hasher: Arc<dyn PasswordHasher>,
        throttle: Arc<dyn LoginThrottle>,
        policy: ThrottlePolicy,
    ) -> Self {
        Self { repo, tenants, hasher, throttle, policy, budget: None, namespace: String::new(), clock: clock::system() }
    }

    /// Waits out login delays on `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// At most `per_minute` password checks a minute per client address (`RATE_LIMITED`
    /// beyond), counted in `limiter`; keys under `namespace`.
    #[must_use]
    pub fn with_budget(
        mut self,
        limiter: Arc<dyn crate::limits::RateLimiter>,
        per_minute: u32,
        namespace: impl Into<String>,
    ) -> Self {
        self.budget = Some((limiter, per_minute));
        self.namespace = namespace.into();
        self
    }

    fn address_policy(&self) -> ThrottlePolicy {
        ThrottlePolicy {
            free_attempts: self.policy.free_attempts.saturating_mul(ADDRESS_FACTOR),
            lockout_after: self.policy.lockout_after.saturating_mul(ADDRESS_FACTOR),
            ..self.policy
        }
    }

    fn locked_out(&self) -> DomainError {
        DomainError::RateLimited { retry_after_secs: self.policy.window.as_secs() }
    }

    /// Checks an email and password from `client`, optionally within one tenant (by slug)
    /// when the same email exists in several.
    ///
    /// # Errors
    /// `InvalidCredentials` for any wrong email, password or tenant; `RateLimited` once the
    /// account has failed too often from this address in the window, the address too often
    /// at all, or the address has used its password checks of the minute; `Invalid {
    /// field: "tenant" }` when the credentials match accounts in several tenants and no
    /// tenant was named.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        tenant_slug: Option<&str>,
        client: Option<std::net::IpAddr>,
    ) -> DomainResult<User> {
        let (from, address_key, address_failures) = self.address_gate(client).await?;
        let address_policy = self.address_policy();
        let (candidates, unknown) = self.candidates(email, tenant_slug).await?;
        // Each account's count is its own, from this address.
        let account_key = |u: &User| self.account_key(u.id, &from);
        let mut open = Vec::with_capacity(candidates.len());
        let mut worst = address_policy.delay(address_failures);
        for c in candidates {
            let failures = self.throttle.failures(&account_key(&c.user)).await?;
            if self.policy.locked(failures) {
                continue;
            }
            worst = worst.max(self.policy.delay(failures));
            open.push(c);
        }
        if open.is_empty() && !unknown {
            return Err(self.locked_out());
        }
        if !worst.is_zero() {
            self.clock.sleep(worst).await;
        }
        if unknown {
            self.hasher.verify_dummy(password);
        }
        let tried: Vec<User> = open.iter().map(|c| c.user.clone()).collect();
        let mut matched: Vec<User> =
            open.into_iter().filter(|c| self.hasher.verify(password, &c.password_hash)).map(|c| c.user).collect();
        match matched.len() {
            1 => {
                let user = matched.pop().ok_or(DomainError::InvalidCredentials)?;
                self.throttle.reset(&account_key(&user)).await?;
                Ok(user)
            }
            0 => {
                for u in &tried {
                    self.throttle.record_failure(&account_key(u), self.policy.window).await?;
                }
                self.throttle.record_failure(&address_key, self.policy.window).await?;
                Err(DomainError::InvalidCredentials)
            }
            _ => Err(DomainError::invalid("tenant", "this account exists in several tenants: name the tenant")),
        }
    }

    /// The client address, its failure key and count, once the address is neither locked
    /// out nor out of password checks for the minute (one is used here).
    async fn address_gate(&self, client: Option<std::net::IpAddr>) -> DomainResult<(String, String, u32)> {
        let from = client.map_or_else(|| "-".to_owned(), |a| a.to_string());
        let address_key = format!("{}address:{from}", self.namespace);
        let address_failures = self.throttle.failures(&address_key).await?;
        if self.address_policy().locked(address_failures) {
            return Err(self.locked_out());
        }
        if let Some((limiter, per_minute)) = &self.budget {
            let key = format!("{}login-hashes:{from}", self.namespace);
            limiter.acquire(&key, *per_minute, std::time::Duration::from_secs(60)).await?.into_result()?;
        }
        Ok((from, address_key, address_failures))
    }

    fn account_key(&self, user: UserId, from: &str) -> String {
        format!("{}account:{user}:{from}", self.namespace)
    }

    /// Replaces the actor's password after checking the current one under the login's
    /// rules (the same failure counts, delays, lockouts and per-address budget); every
    /// token issued so far is revoked, and the caller issues a new one for the answer.
    ///
    /// # Errors
    /// `Invalid { field: "new" }` when the new password breaks the password rules or equals
    /// the current one; `Invalid { field: "current" }` when the current password is wrong;
    /// `RateLimited` as for login; `Unauthenticated` when the account is gone or disabled.
    pub async fn change_password(
        &self,
        actor: &Actor,
        current: &str,
        new: &str,
        client: Option<std::net::IpAddr>,
    ) -> DomainResult<User> {
        check_password_rules(new).map_err(|e| match e {
            DomainError::Invalid { message, .. } => DomainError::Invalid { field: "new".into(), message },
            other => other,
        })?;
        if current == new {
            return Err(DomainError::invalid("new", "must differ from the current password"));
        }
        let (from, address_key, address_failures) = self.address_gate(client).await?;
        let creds = self
            .repo
            .credentials(actor.tenant_id, actor.user_id)
            .await?
            .filter(|c| !c.user.disabled)
            .ok_or(DomainError::Unauthenticated)?;
        let account_key = self.account_key(creds.user.id, &from);
        let failures = self.throttle.failures(&account_key).await?;
        if self.policy.locked(failures) {
            return Err(self.locked_out());
        }
        let wait = self.policy.delay(failures).max(self.address_policy().delay(address_failures));
        if !wait.is_zero() {
            self.clock.sleep(wait).await;
        }
        if !self.hasher.verify(current, &creds.password_hash) {
            self.throttle.record_failure(&account_key, self.policy.window).await?;
            self.throttle.record_failure(&address_key, self.policy.window).await?;
            return Err(DomainError::invalid("current", "the current password is wrong"));
        }
        self.throttle.reset(&account_key).await?;
        let password_hash = self.hasher.hash(new)?;
        match self.repo.set_password(actor.tenant_id, actor.user_id, password_hash).await {
            Err(DomainError::NotFound(_)) => Err(DomainError::Unauthenticated),
            other => other,
        }
    }

    /// The accounts the email (and tenant) may mean; `unknown` when there are none (the
    /// caller then checks the password against a dummy hash, so the answer takes as long).
    async fn candidates(
        &self,
        email: &str,
        tenant_slug: Option<&str>,
    ) -> DomainResult<(Vec<super::UserCredentials>, bool)> {
        let Ok(email) = Email::parse(email) else { return Ok((Vec::new(), true)) };
        let tenant = match tenant_slug {
            Some(slug) => match self.tenants.get_by_slug(slug).await? {
                Some(t) => Some(t.id),
                None => return Ok((Vec::new(), true)),
            },
            None => None,
        };
        let mut candidates = self.repo.credentials_for_login(&email, tenant).await?;
        // A disabled account answers like an unknown one.
        candidates.retain(|c| !c.user.disabled);
        let unknown = candidates.is_empty();
        Ok((candidates, unknown))
    }
}
