//! Rate limits shared by every process: a sliding-window port, used to keep outbound calls
//! under a vendor's quota and inbound callers under ours.

use crate::{DomainError, DomainResult};
use async_trait::async_trait;
use std::time::Duration;

/// The answer to one acquisition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// The call may proceed; it has been counted.
    Allowed,
    /// The call must not proceed; it was not counted. A slot frees up after `retry_after`.
    Limited { retry_after: Duration },
}

impl RateDecision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allowed)
    }

    /// `Limited` as the business outcome `RateLimited`, rounding the wait up to whole seconds.
    ///
    /// # Errors
    /// `RateLimited` when the decision is `Limited`.
    pub fn into_result(self) -> DomainResult<()> {
        match self {
            Self::Allowed => Ok(()),
            Self::Limited { retry_after } => {
                let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                Err(DomainError::RateLimited { retry_after_secs: secs.max(1) })
            }
        }
    }
}

/// Sliding-window log per key: a call is allowed when fewer than `limit` calls of `key` were
/// allowed in the last `window`. Refused calls are not counted, so retrying does not extend
/// the wait.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one call of `key` and answers `Allowed`, or answers `Limited` with the time
    /// until the oldest call that still blocks leaves the window (the whole `window` when
    /// `limit` is 0).
    ///
    /// # Errors
    /// `Unknown` when the store is unreachable.
    async fn acquire(&self, key: &str, limit: u32, window: Duration) -> DomainResult<RateDecision>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limited_rounds_up_to_whole_seconds() {
        assert!(RateDecision::Allowed.into_result().is_ok());
        let wait = |ms| RateDecision::Limited { retry_after: Duration::from_millis(ms) }.into_result();
        assert!(matches!(wait(1), Err(DomainError::RateLimited { retry_after_secs: 1 })));
        assert!(matches!(wait(2_000), Err(DomainError::RateLimited { retry_after_secs: 2 })));
        assert!(matches!(wait(2_001), Err(DomainError::RateLimited { retry_after_secs: 3 })));
        assert!(matches!(wait(0), Err(DomainError::RateLimited { retry_after_secs: 1 })));
    }
}
