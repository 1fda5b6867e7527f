//! Security ports: password hashing, encryption of secrets at rest, random secrets,
//! and the login-failure throttle.

use crate::DomainResult;
use async_trait::async_trait;
use std::time::Duration;

/// Hashes and checks user passwords (argon2 in the adapter).
pub trait PasswordHasher: Send + Sync {
    /// # Errors
    /// `Unknown` when the hasher itself fails.
    fn hash(&self, password: &str) -> DomainResult<String>;
    /// True when `password` matches `hash`; false on mismatch or an unreadable hash.
    fn verify(&self, password: &str, hash: &str) -> bool;
    /// Burns the same time as a real `verify`, so an unknown email costs what a wrong password does.
    fn verify_dummy(&self, password: &str);
}

/// Seals secrets at rest (AES-256-GCM under `LINKYARD_SECRET_KEY` in the adapter) and
/// makes random secrets and one-way digests of high-entropy keys.
pub trait SecretBox: Send + Sync {
    /// # Errors
    /// `Unknown` when encryption fails.
    fn seal(&self, plaintext: &[u8]) -> DomainResult<String>;
    /// # Errors
    /// `Unknown` when the sealed text is corrupt or was sealed under another key.
    fn open(&self, sealed: &str) -> DomainResult<Vec<u8>>;
    /// A URL-safe random secret of `len` characters.
    fn random_secret(&self, len: usize) -> String;
    /// A one-way digest (hex) of a high-entropy key such as an API key.
    fn digest(&self, key: &str) -> String;
    /// A URL-safe secret derived from `seed` under the server's key for one `purpose`
    /// (a keyed hash): the same seed gives the same secret, and nobody without the key can
    /// compute it from the seed.
    fn derive(&self, purpose: &str, seed: &str) -> String;
    /// Whether `given` is `derive(purpose, seed)`, compared in constant time.
    fn matches_derived(&self, purpose: &str, seed: &str, given: &str) -> bool;
}

/// Counts failed logins per key (a normalised email) within a window.
#[async_trait]
pub trait LoginThrottle: Send + Sync {
    /// Failures recorded for `key` in the current window.
    ///
    /// # Errors
    /// `Unknown` when the store is unreachable.
    async fn failures(&self, key: &str) -> DomainResult<u32>;
    /// Records one more failure; returns the new count.
    ///
    /// # Errors
    /// `Unknown` when the store is unreachable.
    async fn record_failure(&self, key: &str, window: Duration) -> DomainResult<u32>;
    /// Forgets the failures of `key` (after a successful login).
    ///
    /// # Errors
    /// `Unknown` when the store is unreachable.
    async fn reset(&self, key: &str) -> DomainResult<()>;
}

/// How failed logins are slowed down: free attempts, then a delay growing linearly per
/// failure up to a cap, and a lock-out (`RATE_LIMITED`) after `lockout_after` failures
/// until the window passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    pub free_attempts: u32,
    pub step: Duration,
    pub max_delay: Duration,
    pub lockout_after: u32,
    pub window: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            free_attempts: 3,
            step: Duration::from_millis(250),
            max_delay: Duration::from_secs(3),
            lockout_after: 10,
            window: Duration::from_secs(15 * 60),
        }
    }
}

impl ThrottlePolicy {
    /// The delay imposed on an attempt made after `failures` failures.
    pub fn delay(&self, failures: u32) -> Duration {
        let over = failures.saturating_sub(self.free_attempts);
        self.step.saturating_mul(over).min(self.max_delay)
    }

    /// True when the key is locked out.
    pub fn locked(&self, failures: u32) -> bool {
        failures >= self.lockout_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_grows_then_caps() {
        let p = ThrottlePolicy::default();
        assert_eq!(p.delay(0), Duration::ZERO);
        assert_eq!(p.delay(3), Duration::ZERO);
        assert_eq!(p.delay(4), Duration::from_millis(250));
        assert_eq!(p.delay(6), Duration::from_millis(750));
        assert_eq!(p.delay(1000), Duration::from_secs(3));
        assert!(!p.locked(9));
        assert!(p.locked(10));
    }
}
