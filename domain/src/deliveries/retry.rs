//! Retry policy of deliveries: exponential backoff with full jitter, capped, with a bounded number of
//! attempts (default 10 s doubling to 1 h, 12 attempts).

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How a delivery is retried; overridable per integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct RetryPolicy {
    pub initial_delay_secs: u64,
    pub max_delay_secs: u64,
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { initial_delay_secs: 10, max_delay_secs: 3600, max_attempts: 12 }
    }
}

impl RetryPolicy {
    /// Reads the `retry` object of integration settings (missing fields take the defaults).
    ///
    /// # Errors
    /// `Invalid { field: "settings.retry" }` when malformed or out of range.
    pub fn from_settings(retry: Option<&serde_json::Value>) -> crate::DomainResult<Self> {
        let bad = |m: &str| crate::DomainError::invalid("settings.retry", m.to_owned());
        let p: Self = match retry {
            None | Some(serde_json::Value::Null) => return Ok(Self::default()),
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|_| bad("an object of initialDelaySecs, maxDelaySecs, maxAttempts"))?,
        };
        if p.initial_delay_secs == 0 || p.max_delay_secs < p.initial_delay_secs {
            return Err(bad("0 < initialDelaySecs <= maxDelaySecs"));
        }
        if !(1..=100).contains(&p.max_attempts) {
            return Err(bad("maxAttempts must be 1-100"));
        }
        Ok(p)
    }

    /// A jitter in `[0, 1]` derived from the delivery and attempt, so retries of many
    /// deliveries spread out without a random source here.
    pub fn jitter(id: uuid::Uuid, attempt: u32) -> f64 {
        let mut x = id.as_u128() as u64 ^ (u64::from(attempt).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The ceiling of the delay before attempt `attempt + 1` (attempts count from 1).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(32);
        let secs = self.initial_delay_secs.saturating_mul(1u64 << exp).min(self.max_delay_secs);
        Duration::from_secs(secs)
    }

    /// The delay before the next attempt after `attempt` failed, or `None` when the
    /// attempts are used up. `jitter` in `[0, 1]` picks a point in the upper half of the
    /// ceiling, so retries spread out but never come sooner than half the backoff.
    pub fn next_delay(&self, attempt: u32, jitter: f64) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let ceiling = self.ceiling(attempt).as_secs_f64();
        let j = jitter.clamp(0.0, 1.0);
        Some(Duration::from_secs_f64(ceiling * (0.5 + 0.5 * j)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn doubles_from_ten_seconds_to_an_hour() {
        let p = RetryPolicy::default();
        assert_eq!(p.ceiling(1), Duration::from_secs(10));
        assert_eq!(p.ceiling(2), Duration::from_secs(20));
        assert_eq!(p.ceiling(3), Duration::from_secs(40));
        assert_eq!(p.ceiling(12), Duration::from_secs(3600));
        assert_eq!(p.next_delay(12, 0.5), None);
    }

    #[test]
    fn settings_override_the_defaults_within_bounds() {
        let p = RetryPolicy::from_settings(Some(&serde_json::json!({"initialDelaySecs": 1, "maxAttempts": 4})))
            .expect("valid");
        assert_eq!(p, RetryPolicy { initial_delay_secs: 1, max_delay_secs: 3600, max_attempts: 4 });
        assert_eq!(RetryPolicy::from_settings(None).expect("default"), RetryPolicy::default());
        for bad in [
            serde_json::json!({"maxAttempts": 0}),
            serde_json::json!({"initialDelaySecs": 0}),
            serde_json::json!({"x": 1}),
            serde_json::json!(3),
        ] {
            assert!(RetryPolicy::from_settings(Some(&bad)).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn delay_is_within_half_and_full_ceiling(attempt in 1u32..12, jitter in 0.0f64..=1.0) {
            let p = RetryPolicy::default();
            let d = p.next_delay(attempt, jitter).expect("attempts left");
            let c = p.ceiling(attempt);
            prop_assert!(d <= c);
            prop_assert!(d >= c / 2);
        }

        #[test]
        fn jitter_is_a_fraction(id in any::<u128>(), attempt in 0u32..100) {
            let j = RetryPolicy::jitter(uuid::Uuid::from_u128(id), attempt);
            prop_assert!((0.0..=1.0).contains(&j));
        }

        #[test]
        fn ceiling_never_shrinks(attempt in 1u32..1000) {
            let p = RetryPolicy::default();
            prop_assert!(p.ceiling(attempt + 1) >= p.ceiling(attempt));
        }
    }
}
