//! Vendor token cache and sliding-window rate limits: in memory for a single process, Redis
//! when configured so that every worker shares the same tokens and the same quotas.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::limits::{RateDecision, RateLimiter};
use domain::tokens::{CachedToken, TokenCache};
use domain::{DomainError, DomainResult};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

fn poisoned(what: &str) -> DomainError {
    DomainError::Unknown(anyhow::anyhow!("{what} lock poisoned"))
}

fn redis_err(e: redis::RedisError) -> DomainError {
    DomainError::Unknown(anyhow::Error::new(e))
}

/// Whole milliseconds, rounded up so that a sub-millisecond duration is not zero.
fn millis_ceil(d: Duration) -> u64 {
    u64::try_from(d.as_micros().div_ceil(1000)).unwrap_or(u64::MAX)
}

/// Tokens and fetch locks of this process.
#[derive(Default)]
pub struct MemoryTokenCache {
    tokens: Mutex<HashMap<String, CachedToken>>,
    locks: Mutex<HashMap<String, Instant>>,
}

#[async_trait]
impl TokenCache for MemoryTokenCache {
    async fn get(&self, key: &str) -> DomainResult<Option<CachedToken>> {
        let tokens = self.tokens.lock().map_err(|_| poisoned("token cache"))?;
        let now = Utc::now();
        Ok(tokens.get(key).filter(|t| t.expires_at > now).cloned())
    }

    async fn put(&self, key: &str, token: &CachedToken) -> DomainResult<()> {
        let mut tokens = self.tokens.lock().map_err(|_| poisoned("token cache"))?;
        let now = Utc::now();
        tokens.retain(|_, t| t.expires_at > now);
        if token.expires_at > now {
            tokens.insert(key.to_owned(), token.clone());
        } else {
            tokens.remove(key);
        }
        Ok(())
    }

    async fn invalidate(&self, key: &str, stale_value: &str) -> DomainResult<()> {
        let mut tokens = self.tokens.lock().map_err(|_| poisoned("token cache"))?;
        if tokens.get(key).is_some_and(|t| t.value == stale_value) {
            tokens.remove(key);
        }
        Ok(())
    }

    async fn try_lock(&self, key: &str, ttl: Duration) -> DomainResult<bool> {
        let mut locks = self.locks.lock().map_err(|_| poisoned("token lock"))?;
        let now = Instant::now();
        locks.retain(|_, until| *until > now);
        if locks.contains_key(key) {
            return Ok(false);
        }
        locks.insert(key.to_owned(), now + ttl);
        Ok(true)
    }

    async fn unlock(&self, key: &str) -> DomainResult<()> {
        self.locks.lock().map_err(|_| poisoned("token lock"))?.remove(key);
        Ok(())
    }
}

/// The token as stored in Redis: `{"value": ..., "expiresAt": RFC 3339}`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredToken<'a> {
    #[serde(borrow)]
    value: Cow<'a, str>,
    expires_at: DateTime<Utc>,
}

/// Deletes the token only while it still holds the rejected value (or is unreadable), so a
/// token another worker has just refreshed survives a late invalidation.
const INVALIDATE_IF_EQUAL: &str = r"
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local ok, stored = pcall(cjson.decode, raw)
if ok and type(stored) == 'table' and stored.value ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
";

/// Tokens in `linkyard:token:{key}` (JSON, expiring with the token) and fetch locks in
/// `linkyard:token-lock:{key}` (`SET NX PX`).
pub struct RedisTokenCache {
    conn: redis::aio::ConnectionManager,
    invalidate: redis::Script,
}

impl RedisTokenCache {
    pub fn new(conn: redis::aio::ConnectionManager) -> Self {
        Self { conn, invalidate: redis::Script::new(INVALIDATE_IF_EQUAL) }
    }
}

fn token_key(key: &str) -> String {
    format!("linkyard:token:{key}")
}

fn token_lock_key(key: &str) -> String {
    format!("linkyard:token-lock:{key}")
}

#[async_trait]
impl TokenCache for RedisTokenCache {
    async fn get(&self, key: &str) -> DomainResult<Option<CachedToken>> {
        let mut c = self.conn.clone();
        let raw: Option<String> = redis::cmd("GET").arg(token_key(key)).query_async(&mut c).await.map_err(redis_err)?;
        let Some(raw) = raw else { return Ok(None) };
        match serde_json::from_str::<StoredToken<'_>>(&raw) {
            // Redis expires the key by its own clock; ours decides whether it is still good.
            Ok(stored) if stored.expires_at > Utc::now() => Ok(Some(CachedToken::new(stored.value, stored.expires_at))),
            Ok(_) => Ok(None),
            Err(e) => {
                // Treated as absent so that the next fetch overwrites it.
                tracing::warn!(key, error = %e, "unreadable cached token ignored");
                Ok(None)
            }
        }
    }

    async fn put(&self, key: &str, token: &CachedToken) -> DomainResult<()> {
        let mut c = self.conn.clone();
        let k = token_key(key);
        // A relative TTL from our clock, so a skew between us and Redis does not matter.
        let ttl_ms = (token.expires_at - Utc::now()).num_milliseconds();
        if ttl_ms <= 0 {
            let _: () = redis::cmd("DEL").arg(&k).query_async(&mut c).await.map_err(redis_err)?;
            return Ok(());
        }
        let stored = StoredToken { value: Cow::Borrowed(&token.value), expires_at: token.expires_at };
        let json = serde_json::to_string(&stored).map_err(|e| DomainError::Unknown(e.into()))?;
        let _: () =
            redis::cmd("SET").arg(&k).arg(json).arg("PX").arg(ttl_ms).query_async(&mut c).await.map_err(redis_err)?;
        Ok(())
    }

    async fn invalidate(&self, key: &str, stale_value: &str) -> DomainResult<()> {
        let mut c = self.conn.clone();
        let _: i64 =
            self.invalidate.key(token_key(key)).arg(stale_value).invoke_async(&mut c).await.map_err(redis_err)?;
        Ok(())
    }

    async fn try_lock(&self, key: &str, ttl: Duration) -> DomainResult<bool> {
        let mut c = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(token_lock_key(key))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(millis_ceil(ttl).max(1))
            .query_async(&mut c)
            .await
            .map_err(redis_err)?;
        Ok(set.is_some())
    }

    async fn unlock(&self, key: &str) -> DomainResult<()> {
        let mut c = self.conn.clone();
        let _: () = redis::cmd("DEL").arg(token_lock_key(key)).query_async(&mut c).await.map_err(redis_err)?;
        Ok(())
    }
}

/// The calls of one key still inside the window last asked about.
struct Log {
    hits: VecDeque<Instant>,
    window: Duration,
}

/// Sliding-window logs of this process.
#[derive(Default)]
pub struct MemoryRateLimiter {
    logs: Mutex<HashMap<String, Log>>,
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn acquire(&self, key: &str, limit: u32, window: Duration) -> DomainResult<RateDecision> {
        let mut logs = self.logs.lock().map_err(|_| poisoned("rate limiter"))?;
        let now = Instant::now();
        logs.retain(|_, log| log.hits.back().is_some_and(|t| now.duration_since(*t) < log.window));
        let log = logs.entry(key.to_owned()).or_insert_with(|| Log { hits: VecDeque::new(), window });
        log.window = window;
        while log.hits.front().is_some_and(|t| now.duration_since(*t) >= window) {
            log.hits.pop_front();
        }
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        if log.hits.len() < limit {
            log.hits.push_back(now);
            return Ok(RateDecision::Allowed);
        }
        // The slot frees when the call `limit` places from the newest leaves the window
        // (the oldest one, unless the limit was lowered since).
        let retry_after =
            log.hits.get(log.hits.len() - limit).map_or(window, |t| window.saturating_sub(now.duration_since(*t)));
        Ok(RateDecision::Limited { retry_after })
    }
}

/// One round trip, atomic, timed by the Redis server's clock so that workers with skewed
/// clocks share one window. Scores are milliseconds: Lua formats numbers with 14 significant
/// digits, which microseconds since the epoch would exceed. Returns -1 when allowed, else the
/// milliseconds until a slot frees.
const SLIDING_WINDOW: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if n < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return -1
end
local edge = redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')
if edge[2] == nil then return window end
return tonumber(edge[2]) + window - now
";

/// Sliding-window logs in the sorted sets `linkyard:rate:{key}` (members unique per call,
/// scored by the call's time), expiring one window after the last allowed call.
pub struct RedisRateLimiter {
    conn: redis::aio::ConnectionManager,
    script: redis::Script,
}

impl RedisRateLimiter {
    pub fn new(conn: redis::aio::ConnectionManager) -> Self {
        Self { conn, script: redis::Script::new(SLIDING_WINDOW) }
    }
}

fn rate_key(key: &str) -> String {
    format!("linkyard:rate:{key}")
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn acquire(&self, key: &str, limit: u32, window: Duration) -> DomainResult<RateDecision> {
        let mut c = self.conn.clone();
        let answer: i64 = self
            .script
            .key(rate_key(key))
            .arg(limit)
            .arg(millis_ceil(window))
            .arg(uuid::Uuid::new_v4().to_string())
            .invoke_async(&mut c)
            .await
            .map_err(redis_err)?;
        Ok(match u64::try_from(answer) {
            Err(_) => RateDecision::Allowed,
            Ok(ms) => RateDecision::Limited { retry_after: Duration::from_millis(ms.max(1)) },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::tokens::TokenProvider;
    use redis::aio::ConnectionManager;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The Redis named by `TEST_REDIS_URL`, or `None` (after saying so) to skip.
    async fn test_redis() -> Option<ConnectionManager> {
        let Ok(url) = std::env::var("TEST_REDIS_URL") else {
            eprintln!("skipped: set TEST_REDIS_URL to run the Redis variant");
            return None;
        };
        Some(crate::redis_store::connect(&url).await.expect("connect to TEST_REDIS_URL"))
    }

    /// A key prefix of its own, so parallel tests and runs never share a key.
    fn prefix() -> String {
        format!("test-{}", uuid::Uuid::new_v4())
    }

    /// Drops every key a test made under `prefix`.
    async fn cleanup(conn: &ConnectionManager, prefix: &str) {
        let mut c = conn.clone();
        let keys: Vec<String> =
            redis::cmd("KEYS").arg(format!("linkyard:*:{prefix}:*")).query_async(&mut c).await.expect("KEYS");
        if !keys.is_empty() {
            let _: () = redis::cmd("DEL").arg(keys).query_async(&mut c).await.expect("DEL");
        }
    }

    fn in_ms(ms: i64) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::milliseconds(ms)
    }

    async fn limited(limiter: &dyn RateLimiter, key: &str, limit: u32, window: Duration) -> Option<Duration> {
        match limiter.acquire(key, limit, window).await.expect("acquire") {
            RateDecision::Allowed => None,
            RateDecision::Limited { retry_after } => Some(retry_after),
        }
    }

    async fn rate_limiter_contract(limiter: &dyn RateLimiter, p: &str) {
        let (a, b) = (format!("{p}:a"), format!("{p}:b"));
        let two_minutes = Duration::from_secs(120);
        for i in 0..5 {
            assert_eq!(limited(limiter, &a, 5, two_minutes).await, None, "call {i} is within the limit");
        }
        let first = limited(limiter, &a, 5, two_minutes).await.expect("6th call refused");
        assert!(first > Duration::ZERO && first <= two_minutes, "retry_after {first:?}");
        // Refused calls are not counted: waiting does not grow by retrying.
        let second = limited(limiter, &a, 5, two_minutes).await.expect("7th call refused");
        assert!(second <= first, "{second:?} > {first:?}");

        assert_eq!(limited(limiter, &b, 5, two_minutes).await, None, "another key has its own window");

        let (c, short) = (format!("{p}:c"), Duration::from_millis(200));
        assert_eq!(limited(limiter, &c, 2, short).await, None);
        assert_eq!(limited(limiter, &c, 2, short).await, None);
        let wait = limited(limiter, &c, 2, short).await.expect("3rd call refused");
        assert!(wait <= short, "retry_after {wait:?}");
        tokio::time::sleep(short + Duration::from_millis(50)).await;
        assert_eq!(limited(limiter, &c, 2, short).await, None, "the window has passed");
        assert_eq!(limited(limiter, &c, 2, short).await, None);
        assert!(limited(limiter, &c, 2, short).await.is_some());

        let wait = limited(limiter, &format!("{p}:zero"), 0, two_minutes).await.expect("limit 0 refuses");
        assert_eq!(wait, two_minutes);
    }

    async fn token_cache_contract(cache: &dyn TokenCache, p: &str) {
        let (a, b) = (format!("{p}:a"), format!("{p}:b"));
        assert_eq!(cache.get(&a).await.expect("get"), None);

        let t1 = CachedToken::new("v1", in_ms(60_000));
        cache.put(&a, &t1).await.expect("put");
        let got = cache.get(&a).await.expect("get").expect("stored");
        assert_eq!(got.value, "v1");
        assert_eq!(got.expires_at.timestamp_millis(), t1.expires_at.timestamp_millis());
        assert_eq!(cache.get(&b).await.expect("get"), None, "keys are independent");

        // Invalidation only removes the value the caller saw rejected.
        cache.invalidate(&a, "v0").await.expect("invalidate");
        assert_eq!(cache.get(&a).await.expect("get").map(|t| t.value).as_deref(), Some("v1"));
        cache.invalidate(&a, "v1").await.expect("invalidate");
        assert_eq!(cache.get(&a).await.expect("get"), None);

        // Stored only until it expires.
        cache.put(&a, &CachedToken::new("past", in_ms(-1_000))).await.expect("put");
        assert_eq!(cache.get(&a).await.expect("get"), None);
        cache.put(&a, &CachedToken::new("soon", in_ms(300))).await.expect("put");
        assert!(cache.get(&a).await.expect("get").is_some());
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(cache.get(&a).await.expect("get"), None);

        // The fetch lock is exclusive per key, released by unlock or by its TTL.
        let ttl = Duration::from_secs(30);
        assert!(cache.try_lock(&a, ttl).await.expect("lock"));
        assert!(!cache.try_lock(&a, ttl).await.expect("lock"));
        assert!(cache.try_lock(&b, ttl).await.expect("lock"), "locks are per key");
        cache.unlock(&a).await.expect("unlock");
        assert!(cache.try_lock(&a, Duration::from_millis(200)).await.expect("lock"));
        assert!(!cache.try_lock(&a, ttl).await.expect("lock"));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(cache.try_lock(&a, ttl).await.expect("lock"), "the lock expired");
        cache.unlock(&a).await.expect("unlock");
        cache.unlock(&b).await.expect("unlock");
    }

    /// Two providers stand for two processes: only the cache is shared, yet 20 concurrent
    /// callers fetch once.
    async fn providers_fetch_once(cache: Arc<dyn TokenCache>, p: &str) {
        let providers = [Arc::new(TokenProvider::new(Arc::clone(&cache))), Arc::new(TokenProvider::new(cache))];
        let calls = Arc::new(AtomicUsize::new(0));
        let key = format!("{p}:shared");
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let (provider, calls, key) = (Arc::clone(&providers[i % 2]), Arc::clone(&calls), key.clone());
                tokio::spawn(async move {
                    provider
                        .token(&key, None, || async {
                            calls.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Ok(CachedToken::new("fetched", in_ms(3_600_000)))
                        })
                        .await
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.expect("join").expect("token").value, "fetched");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn memory_rate_limiter() {
        rate_limiter_contract(&MemoryRateLimiter::default(), &prefix()).await;
    }

    #[tokio::test]
    async fn redis_rate_limiter() {
        let Some(conn) = test_redis().await else { return };
        let p = prefix();
        rate_limiter_contract(&RedisRateLimiter::new(conn.clone()), &p).await;

        let mut c = conn.clone();
        let pttl: i64 = redis::cmd("PTTL").arg(rate_key(&format!("{p}:a"))).query_async(&mut c).await.expect("PTTL");
        assert!(pttl > 0 && pttl <= 120_000, "the log expires with its window, PTTL {pttl}");
        cleanup(&conn, &p).await;
    }

    #[tokio::test]
    async fn memory_token_cache() {
        token_cache_contract(&MemoryTokenCache::default(), &prefix()).await;
        providers_fetch_once(Arc::new(MemoryTokenCache::default()), &prefix()).await;
    }

    #[tokio::test]
    async fn redis_token_cache() {
        let Some(conn) = test_redis().await else { return };
        let p = prefix();
        let cache = RedisTokenCache::new(conn.clone());
        token_cache_contract(&cache, &p).await;
        providers_fetch_once(Arc::new(RedisTokenCache::new(conn.clone())), &p).await;

        // The stored form other services may read, expiring with the token.
        let key = format!("{p}:wire");
        let expires_at = in_ms(60_000);
        cache.put(&key, &CachedToken::new("v\"1", expires_at)).await.expect("put");
        let mut c = conn.clone();
        let raw: String = redis::cmd("GET").arg(token_key(&key)).query_async(&mut c).await.expect("GET");
        let json: serde_json::Value = serde_json::from_str(&raw).expect("JSON");
        assert_eq!(json["value"], "v\"1");
        let stored_at: DateTime<Utc> = json["expiresAt"].as_str().expect("expiresAt").parse().expect("RFC 3339");
        assert_eq!(stored_at, expires_at);
        let pttl: i64 = redis::cmd("PTTL").arg(token_key(&key)).query_async(&mut c).await.expect("PTTL");
        assert!(pttl > 55_000 && pttl <= 60_000, "PTTL {pttl}");
        cache.invalidate(&key, "v\"1").await.expect("invalidate");
        assert_eq!(cache.get(&key).await.expect("get"), None, "Lua compares the decoded value");

        // An unreadable entry counts as absent and is invalidated whatever the value.
        let _: () = redis::cmd("SET").arg(token_key(&key)).arg("not json").query_async(&mut c).await.expect("SET");
        assert_eq!(cache.get(&key).await.expect("get"), None);
        cache.invalidate(&key, "anything").await.expect("invalidate");
        let exists: i64 = redis::cmd("EXISTS").arg(token_key(&key)).query_async(&mut c).await.expect("EXISTS");
        assert_eq!(exists, 0);
        cleanup(&conn, &p).await;
    }
}
