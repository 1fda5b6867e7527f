//! Login-failure counters: in memory for a single process, Redis when configured so that
//! every server process sees the same count.

use async_trait::async_trait;
use domain::security::LoginThrottle;
use domain::{DomainError, DomainResult};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most keys counted at once in memory (about 10 MB).
const MAX_KEYS: usize = 100_000;

/// Counts failures per key in this process, at most `MAX_KEYS` keys.
#[derive(Default)]
pub struct MemoryLoginThrottle {
    entries: Mutex<HashMap<String, (u32, Instant)>>,
}

fn poisoned() -> DomainError {
    DomainError::Unknown(anyhow::anyhow!("login throttle lock poisoned"))
}

#[async_trait]
impl LoginThrottle for MemoryLoginThrottle {
    async fn failures(&self, key: &str) -> DomainResult<u32> {
        let map = self.entries.lock().map_err(|_| poisoned())?;
        Ok(map.get(key).filter(|(_, until)| *until > Instant::now()).map_or(0, |(n, _)| *n))
    }

    async fn record_failure(&self, key: &str, window: Duration) -> DomainResult<u32> {
        let mut map = self.entries.lock().map_err(|_| poisoned())?;
        let now = Instant::now();
        if map.get(key).is_some_and(|(_, until)| *until <= now) {
            map.remove(key);
        }
        // Bounded: when full, expired counts go first, then the one closest to expiring.
        if map.len() >= MAX_KEYS && !map.contains_key(key) {
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= MAX_KEYS {
                let soonest = map.iter().min_by_key(|(_, (_, until))| *until).map(|(k, _)| k.clone());
                if let Some(k) = soonest {
                    map.remove(&k);
                }
            }
        }
        let entry = map.entry(key.to_owned()).or_insert((0, now + window));
        entry.0 += 1;
        Ok(entry.0)
    }

    async fn reset(&self, key: &str) -> DomainResult<()> {
        self.entries.lock().map_err(|_| poisoned())?.remove(key);
        Ok(())
    }
}

/// Counts failures per key in Redis (`INCR` + `EXPIRE` on the first failure of a window).
pub struct RedisLoginThrottle {
    conn: redis::aio::ConnectionManager,
}

impl RedisLoginThrottle {
    pub fn new(conn: redis::aio::ConnectionManager) -> Self {
        Self { conn }
    }
}

fn redis_key(key: &str) -> String {
    format!("linkyard:login-failures:{key}")
}

fn redis_err(e: redis::RedisError) -> DomainError {
    DomainError::Unknown(anyhow::Error::new(e))
}

#[async_trait]
impl LoginThrottle for RedisLoginThrottle {
    async fn failures(&self, key: &str) -> DomainResult<u32> {
        let mut c = self.conn.clone();
        let n: Option<u32> = redis::cmd("GET").arg(redis_key(key)).query_async(&mut c).await.map_err(redis_err)?;
        Ok(n.unwrap_or(0))
    }

    async fn record_failure(&self, key: &str, window: Duration) -> DomainResult<u32> {
        let mut c = self.conn.clone();
        let k = redis_key(key);
        let (n,): (u32,) = redis::pipe()
            .atomic()
            .cmd("INCR")
            .arg(&k)
            .cmd("EXPIRE")
            .arg(&k)
            .arg(window.as_secs().max(1))
            .arg("NX")
            .ignore()
            .query_async(&mut c)
            .await
            .map_err(redis_err)?;
        Ok(n)
    }

    async fn reset(&self, key: &str) -> DomainResult<()> {
        let mut c = self.conn.clone();
        let _: () = redis::cmd("DEL").arg(redis_key(key)).query_async(&mut c).await.map_err(redis_err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_throttle_counts_and_resets() {
        let t = MemoryLoginThrottle::default();
        assert_eq!(t.failures("a").await.ok(), Some(0));
        t.record_failure("a", Duration::from_secs(60)).await.expect("record");
        assert_eq!(t.record_failure("a", Duration::from_secs(60)).await.ok(), Some(2));
        assert_eq!(t.failures("b").await.ok(), Some(0));
        t.reset("a").await.expect("reset");
        assert_eq!(t.failures("a").await.ok(), Some(0));
    }

    #[tokio::test]
    async fn memory_throttle_forgets_after_window() {
        let t = MemoryLoginThrottle::default();
        t.record_failure("a", Duration::ZERO).await.expect("record");
        assert_eq!(t.failures("a").await.ok(), Some(0));
    }

    #[tokio::test]
    async fn a_spray_of_keys_stays_bounded_and_keeps_the_newest_counts() {
        let t = MemoryLoginThrottle::default();
        for i in 0..(MAX_KEYS + 500) {
            t.record_failure(&format!("address:10.0.{i}"), Duration::from_secs(3600)).await.expect("count");
        }
        assert_eq!(t.entries.lock().expect("lock").len(), MAX_KEYS);
        let newest = format!("address:10.0.{}", MAX_KEYS + 499);
        assert_eq!(t.failures(&newest).await.expect("count"), 1);
    }
}
