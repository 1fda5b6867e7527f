//! Retry policy of deliveries (CONTRACT.md, "Outbound delivery"): the first retry at most
//! 5 s after a failure, each wait at most double the one before, capped at 1 h, and DEAD
//! only once 24 h have passed since the first attempt (or after `maxAttempts` attempts
//! when an integration sets it). Data plus one pure function, `next_delay`.

use crate::{DomainError, DomainResult};
use serde_json::Value;
use std::time::Duration;

/// How long a delivery is retried, from its first attempt, before it goes DEAD (unless
/// its integration sets `maxAttempts`).
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);

/// How a delivery is retried; overridable per integration with
/// `settings.retry: {initialDelaySecs, maxDelaySecs, maxAttempts}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failure (before jitter).
    pub initial_delay_secs: u64,
    /// The longest wait.
    pub max_delay_secs: u64,
    /// When set: DEAD after this many attempts. When unset: DEAD at the first failure
    /// once `GIVE_UP_AFTER` has passed since the first attempt.
    pub max_attempts: Option<u32>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { initial_delay_secs: 5, max_delay_secs: 3600, max_attempts: None }
    }
}

/// The bounds of `settings.retry`.
const INITIAL_DELAY: std::ops::RangeInclusive<u64> = 1..=3600;
const MAX_DELAY_SECS: u64 = 86_400;
const MAX_ATTEMPTS: std::ops::RangeInclusive<u64> = 1..=1000;

impl RetryPolicy {
    /// Reads the `retry` object of integration settings (missing fields take the
    /// defaults).
    ///
    /// # Errors
    /// `Invalid { field: "settings.retry" }` when it is not an object;
    /// `Invalid { field: "settings.retry.<name>" }` for an unknown name, a value that is
    /// not a whole number, or one out of range (`initialDelaySecs` 1-3600, `maxDelaySecs`
    /// from `initialDelaySecs` to 86400, `maxAttempts` 1-1000).
    pub fn from_settings(retry: Option<&Value>) -> DomainResult<Self> {
        let given = match retry {
            None | Some(Value::Null) => return Ok(Self::default()),
            Some(Value::Object(m)) => m,
            Some(_) => {
                return Err(DomainError::invalid(
                    "settings.retry",
                    "must be an object of initialDelaySecs, maxDelaySecs, maxAttempts",
                ));
            }
        };
        if let Some(unknown) =
            given.keys().find(|k| !["initialDelaySecs", "maxDelaySecs", "maxAttempts"].contains(&k.as_str()))
        {
            return Err(DomainError::invalid(
                format!("settings.retry.{unknown}"),
                "unknown; the retry settings are initialDelaySecs, maxDelaySecs, maxAttempts",
            ));
        }
        let whole = |name: &str| -> DomainResult<Option<u64>> {
            match given.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_u64()
                    .map(Some)
                    .ok_or_else(|| DomainError::invalid(format!("settings.retry.{name}"), "must be a whole number")),
            }
        };
        let mut p = Self::default();
        if let Some(v) = whole("initialDelaySecs")? {
            if !INITIAL_DELAY.contains(&v) {
                return Err(DomainError::invalid("settings.retry.initialDelaySecs", "must be 1-3600"));
            }
            p.initial_delay_secs = v;
        }
        match whole("maxDelaySecs")? {
            Some(v) if v < p.initial_delay_secs || v > MAX_DELAY_SECS => {
                return Err(DomainError::invalid(
                    "settings.retry.maxDelaySecs",
                    format!(
                        "must be at least initialDelaySecs ({}) and at most {MAX_DELAY_SECS}",
                        p.initial_delay_secs
                    ),
                ));
            }
            Some(v) => p.max_delay_secs = v,
            None => p.max_delay_secs = p.max_delay_secs.max(p.initial_delay_secs),
        }
        if let Some(v) = whole("maxAttempts")? {
            if !MAX_ATTEMPTS.contains(&v) {
                return Err(DomainError::invalid("settings.retry.maxAttempts", "must be 1-1000"));
            }
            p.max_attempts = u32::try_from(v).ok();
        }
        Ok(p)
    }

    /// A jitter in `[0, 1]` derived from the delivery: the same for all its attempts, so
    /// its waits keep doubling exactly, while deliveries that failed together (a vendor
    /// outage) spread out instead of coming back at once.
    pub fn jitter(id: uuid::Uuid) -> f64 {
        let v = id.as_u128();
        let mut x = (v as u64) ^ ((v >> 64) as u64);
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The ceiling of the wait after attempt `attempt` failed (attempts count from 1):
    /// `initialDelaySecs` doubled per attempt, at most `maxDelaySecs`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(40);
        let secs = self.initial_delay_secs.saturating_mul(1u64 << exp).min(self.max_delay_secs);
        Duration::from_secs(secs)
    }

    /// The wait before the next attempt after attempt `attempt` failed, `elapsed` after
    /// the first attempt; `None` when the delivery is given up (DEAD). `jitter` in
    /// `[0, 1]` only shortens the wait, by up to half: never later than the ceiling.
    pub fn next_delay(&self, attempt: u32, elapsed: Duration, jitter: f64) -> Option<Duration> {
        let given_up = match self.max_attempts {
            Some(max) => attempt >= max,
            None => elapsed >= GIVE_UP_AFTER,
        };
        if given_up {
            return None;
        }
        // In whole thousandths, so that a doubled ceiling gives exactly a doubled wait.
        let j = if jitter.is_nan() { 0.0 } else { jitter.clamp(0.0, 1.0) };
        let permille = 1000 - (500.0 * j) as u64;
        Some(Duration::from_millis(self.ceiling(attempt).as_secs().saturating_mul(permille)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn field(v: Value) -> String {
        match RetryPolicy::from_settings(Some(&v)) {
            Err(DomainError::Invalid { field, .. }) => field,
            other => panic!("{v}: {other:?}"),
        }
    }

    /// Waits of a delivery whose every attempt fails at once: until it is given up.
    fn schedule(p: &RetryPolicy, jitter: f64) -> Vec<Duration> {
        let (mut waits, mut elapsed) = (Vec::new(), Duration::ZERO);
        for attempt in 1u32.. {
            match p.next_delay(attempt, elapsed, jitter) {
                Some(w) => {
                    elapsed += w;
                    waits.push(w);
                }
                None => break,
            }
        }
        waits
    }

    #[test]
    fn the_default_doubles_from_five_seconds_to_an_hour() {
        let p = RetryPolicy::default();
        assert_eq!(p.ceiling(1), Duration::from_secs(5));
        assert_eq!(p.ceiling(2), Duration::from_secs(10));
        assert_eq!(p.ceiling(3), Duration::from_secs(20));
        assert_eq!(p.ceiling(30), Duration::from_secs(3600));
        assert_eq!(p.next_delay(1, Duration::ZERO, 0.0), Some(Duration::from_secs(5)));
        assert_eq!(p.next_delay(1, Duration::ZERO, 1.0), Some(Duration::from_millis(2500)));
        // Not given up by attempts, only by time.
        assert!(p.next_delay(500, GIVE_UP_AFTER - Duration::from_secs(1), 0.5).is_some());
        assert_eq!(p.next_delay(2, GIVE_UP_AFTER, 0.5), None);
    }

    #[test]
    fn settings_override_the_defaults_and_bad_ones_name_their_field() {
        let p = RetryPolicy::from_settings(Some(&json!({"initialDelaySecs": 1, "maxAttempts": 4}))).expect("valid");
        assert_eq!(p, RetryPolicy { initial_delay_secs: 1, max_delay_secs: 3600, max_attempts: Some(4) });
        assert_eq!(p.next_delay(4, Duration::ZERO, 0.0), None, "maxAttempts gives up before 24 h");
        assert_eq!(RetryPolicy::from_settings(None).expect("default"), RetryPolicy::default());
        assert_eq!(RetryPolicy::from_settings(Some(&Value::Null)).expect("default"), RetryPolicy::default());
        let long = RetryPolicy::from_settings(Some(&json!({"initialDelaySecs": 3600}))).expect("valid");
        assert_eq!(long.max_delay_secs, 3600);
        assert_eq!(field(json!({"maxAttempts": 0})), "settings.retry.maxAttempts");
        assert_eq!(field(json!({"maxAttempts": 1001})), "settings.retry.maxAttempts");
        assert_eq!(field(json!({"initialDelaySecs": 0})), "settings.retry.initialDelaySecs");
        assert_eq!(field(json!({"initialDelaySecs": -3})), "settings.retry.initialDelaySecs");
        assert_eq!(field(json!({"initialDelaySecs": 2.5})), "settings.retry.initialDelaySecs");
        assert_eq!(field(json!({"initialDelaySecs": "5"})), "settings.retry.initialDelaySecs");
        assert_eq!(field(json!({"initialDelaySecs": 10, "maxDelaySecs": 5})), "settings.retry.maxDelaySecs");
        assert_eq!(field(json!({"maxDelaySecs": 86_401})), "settings.retry.maxDelaySecs");
        assert_eq!(field(json!({"maxDelay": 1})), "settings.retry.maxDelay");
        assert_eq!(field(json!(3)), "settings.retry");
    }

    #[test]
    fn a_delivery_failing_for_good_is_given_up_between_24_and_25_hours() {
        for jitter in [0.0, 0.3, 1.0] {
            let total: Duration = schedule(&RetryPolicy::default(), jitter).iter().sum();
            assert!(total >= GIVE_UP_AFTER && total < GIVE_UP_AFTER + Duration::from_secs(3600), "{total:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn the_first_retry_comes_within_five_seconds(jitter in 0.0f64..=1.0) {
            let w = RetryPolicy::default().next_delay(1, Duration::ZERO, jitter).expect("a retry");
            prop_assert!(w <= Duration::from_secs(5) && w >= Duration::from_millis(2500));
        }

        #[test]
        fn waits_are_bounded_monotone_and_at_most_double(
            initial in 1u64..=3600,
            extra in 0u64..=86_400,
            id in any::<u128>(),
        ) {
            let max = (initial + extra).min(MAX_DELAY_SECS);
            let p = RetryPolicy::from_settings(Some(&json!({"initialDelaySecs": initial, "maxDelaySecs": max})))
                .expect("valid");
            let jitter = RetryPolicy::jitter(uuid::Uuid::from_u128(id));
            prop_assert!((0.0..=1.0).contains(&jitter));
            let waits = schedule(&p, jitter);
            prop_assert!(waits[0] <= Duration::from_secs(initial));
            for w in &waits {
                prop_assert!(*w <= Duration::from_secs(max) && *w >= Duration::from_secs(1) / 2);
            }
            for pair in waits.windows(2) {
                prop_assert!(pair[1] >= pair[0], "monotone: {:?}", pair);
                prop_assert!(pair[1] <= pair[0] * 2, "at most double: {:?}", pair);
            }
            let total: Duration = waits.iter().sum();
            prop_assert!(total >= GIVE_UP_AFTER, "given up after {total:?}");
            prop_assert!(total < GIVE_UP_AFTER + Duration::from_secs(max));
        }

        #[test]
        fn with_max_attempts_it_is_given_up_after_exactly_that_many(n in 1u32..=1000, jitter in 0.0f64..=1.0) {
            let p = RetryPolicy { max_attempts: Some(n), ..RetryPolicy::default() };
            prop_assert_eq!(schedule(&p, jitter).len(), n as usize - 1);
        }
    }
}
