//! Vendor access tokens shared by every worker: a cache port and a provider that refreshes
//! a token once, however many callers in however many processes need it at the same moment.
//!
//! Vendors rate-limit their token endpoints and some revoke the previous token when a new one
//! is issued, so a stampede of refreshes is both slow and self-defeating.

use crate::DomainResult;
use crate::clock::{self, Clock};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::Duration;
use tokio::sync::Mutex;

/// How long the cross-process fetch lock lives if its holder never unlocks (crash, cancel).
const FETCH_LOCK_TTL: Duration = Duration::from_secs(30);
/// How often a caller that lost the cross-process lock looks for the winner's token.
const POLL_EVERY: Duration = Duration::from_millis(100);
/// How long it looks before fetching anyway (the winner may have died or be very slow).
/// Tests shorten it through `lock_wait`.
const POLL_FOR: Duration = Duration::from_secs(10);

/// An access token and the moment the vendor stops accepting it.
#[derive(Clone, PartialEq, Eq)]
pub struct CachedToken {
    pub value: String,
    pub expires_at: DateTime<Utc>,
}

impl CachedToken {
    pub fn new(value: impl Into<String>, expires_at: DateTime<Utc>) -> Self {
        Self { value: value.into(), expires_at }
    }

    /// True when the token is still accepted at `now + margin`.
    pub fn is_fresh(&self, now: DateTime<Utc>, margin: chrono::Duration) -> bool {
        self.expires_at > now + margin
    }
}

// By hand so that a token never reaches a log line through `{:?}`.
impl fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedToken").field("value", &"***").field("expires_at", &self.expires_at).finish()
    }
}

/// Tokens shared between processes (Redis in production), plus a short lock so that only
/// one process fetches a new token at a time.
#[async_trait]
pub trait TokenCache: Send + Sync {
    /// The token stored under `key`; an expired token counts as absent.
    ///
    /// # Errors
    /// `Unknown` when the store is unreachable.
    async fn get(&self, key: &str) -> DomainResult<Option<CachedToken>>;
    /// Stores `token` under `key` until its `expires_at`, replacing any previous one.
    ///
    /// # Errors
    /// `Unknown` when the store is unreachable.
    async fn put(&self, key: &str, token: &CachedToken) -> DomainResult<()>;
    /// Removes the token under `key` only if its value is still `stale_value`, so a token
    /// another worker has already refreshed is kept.
    ///
    /// # Errors
    /// `Unknown` when the store is unreachable.
    async fn invalidate(&self, key: &str, stale_value: &str) -> DomainResult<()>;
    /// Takes the fetch lock of `key` for at most `ttl`; false when someone else holds it.
    ///
    /// # Errors
    /// `Unknown` when the store is unreachable.
    async fn try_lock(&self, key: &str, ttl: Duration) -> DomainResult<bool>;
    /// Releases the fetch lock of `key` (a no-op when it is not held).
    ///
    /// # Errors
    /// `Unknown` when the store is unreachable.
    async fn unlock(&self, key: &str) -> DomainResult<()>;
}

/// Hands out cached tokens and refreshes them single-flight: within this process through a
/// per-key mutex, across processes through [`TokenCache::try_lock`].
pub struct TokenProvider {
    cache: Arc<dyn TokenCache>,
    refresh_margin: chrono::Duration,
    locks: StdMutex<HashMap<String, Arc<Mutex<()>>>>,
    /// How long a caller that lost the cross-process lock waits for the winner's token.
    lock_wait: Duration,
    clock: Arc<dyn Clock>,
}

impl TokenProvider {
    /// A provider that refreshes tokens 5 minutes before they expire.
    pub fn new(cache: Arc<dyn TokenCache>) -> Self {
        Self {
            cache,
            refresh_margin: chrono::Duration::minutes(5),
            locks: StdMutex::default(),
            lock_wait: POLL_FOR,
            clock: clock::system(),
        }
    }

    /// Reads token expiry against `clock`, and waits for another process's token on it.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Refreshes tokens `margin` before they expire. Keep it well below the vendor's token
    /// lifetime, or every call refreshes.
    #[must_use]
    pub fn with_margin(mut self, margin: chrono::Duration) -> Self {
        self.refresh_margin = margin;
        self
    }

    /// A token for `key` that is valid for at least the refresh margin, calling `fetch`
    /// only when neither the cache nor a concurrent caller (here or in another process)
    /// provides one. `stale` is the token the vendor has just rejected as expired: it is
    /// dropped from the cache first unless another caller has already replaced it.
    ///
    /// A fetched token is returned even when caching it fails (logged), since the caller
    /// can still use it.
    ///
    /// # Errors
    /// Whatever `fetch` returns, or `Unknown` when the cache is unreachable.
    pub async fn token<F, Fut>(&self, key: &str, stale: Option<&str>, fetch: F) -> DomainResult<CachedToken>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = DomainResult<CachedToken>>,
    {
        if let Some(stale) = stale {
            self.cache.invalidate(key, stale).await?;
        }
        if let Some(token) = self.fresh(key).await? {
            return Ok(token);
        }

        let _local = KeyLock::acquire(self, key).await;
        if let Some(token) = self.fresh(key).await? {
            return Ok(token);
        }

        if self.cache.try_lock(key, FETCH_LOCK_TTL).await? {
            // Another process may have stored a token between our look and our lock.
            let token = match self.fresh(key).await {
                Ok(Some(token)) => Ok(token),
                Ok(None) => self.fetch_and_put(key, fetch).await,
                Err(e) => Err(e),
            };
            if let Err(e) = self.cache.unlock(key).await {
                tracing::warn!(key, error = %e, "token fetch lock not released; it expires on its own");
            }
            return token;
        }

        let deadline =
            self.clock.now() + chrono::Duration::from_std(self.lock_wait).unwrap_or(chrono::Duration::seconds(10));
        while self.clock.now() < deadline {
            self.clock.sleep(POLL_EVERY).await;
            if let Some(token) = self.fresh(key).await? {
                return Ok(token);
            }
        }
        tracing::warn!(key, "token fetch lock held too long by another process; fetching anyway");
        self.fetch_and_put(key, fetch).await
    }

    #[cfg(test)]
    fn with_lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    async fn fresh(&self, key: &str) -> DomainResult<Option<CachedToken>> {
        let now = self.clock.now();
        Ok(self.cache.get(key).await?.filter(|t| t.is_fresh(now, self.refresh_margin)))
    }

    async fn fetch_and_put<F, Fut>(&self, key: &str, fetch: F) -> DomainResult<CachedToken>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = DomainResult<CachedToken>>,
    {
        let token = fetch().await?;
        if let Err(e) = self.cache.put(key, &token).await {
            tracing::warn!(key, error = %e, "fetched token not cached; the next caller fetches again");
        }
        Ok(token)
    }

    fn locks(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Mutex<()>>>> {
        // The map only ever sees single inserts and removes, so a panic elsewhere cannot leave
        // it inconsistent; poisoning carries no information here.
        self.locks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Holds the in-process mutex of one key and removes it from the map when no one else
/// waits for it, so the map does not grow with every key ever seen.
struct KeyLock<'a> {
    provider: &'a TokenProvider,
    key: &'a str,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl<'a> KeyLock<'a> {
    async fn acquire(provider: &'a TokenProvider, key: &'a str) -> Self {
        let mutex = Arc::clone(provider.locks().entry(key.to_owned()).or_default());
        let guard = mutex.lock_owned().await;
        Self { provider, key, guard: Some(guard) }
    }
}

impl Drop for KeyLock<'_> {
    fn drop(&mut self) {
        // Release first; then only the map (and any waiter, who cloned under the map lock)
        // holds the mutex, so a count of one under the map lock means nobody is waiting.
        self.guard = None;
        let mut locks = self.provider.locks();
        if locks.get(self.key).is_some_and(|m| Arc::strong_count(m) == 1) {
            locks.remove(self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Enough of a cache for the provider: tokens and locks in maps, lock TTLs ignored.
    #[derive(Default)]
    struct TestCache {
        tokens: StdMutex<HashMap<String, CachedToken>>,
        locks: StdMutex<std::collections::HashSet<String>>,
    }

    #[async_trait]
    impl TokenCache for TestCache {
        async fn get(&self, key: &str) -> DomainResult<Option<CachedToken>> {
            let now = Utc::now();
            Ok(self.tokens.lock().expect("tokens").get(key).filter(|t| t.expires_at > now).cloned())
        }
        async fn put(&self, key: &str, token: &CachedToken) -> DomainResult<()> {
            self.tokens.lock().expect("tokens").insert(key.to_owned(), token.clone());
            Ok(())
        }
        async fn invalidate(&self, key: &str, stale_value: &str) -> DomainResult<()> {
            let mut tokens = self.tokens.lock().expect("tokens");
            if tokens.get(key).is_some_and(|t| t.value == stale_value) {
                tokens.remove(key);
            }
            Ok(())
        }
        async fn try_lock(&self, key: &str, _ttl: Duration) -> DomainResult<bool> {
            Ok(self.locks.lock().expect("locks").insert(key.to_owned()))
        }
        async fn unlock(&self, key: &str) -> DomainResult<()> {
            self.locks.lock().expect("locks").remove(key);
            Ok(())
        }
    }

    fn in_minutes(m: i64) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::minutes(m)
    }

    /// A fetch that counts its calls and hands out `t1`, `t2` ... valid for an hour.
    async fn counted(calls: &AtomicUsize) -> DomainResult<CachedToken> {
        let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok(CachedToken::new(format!("t{n}"), in_minutes(60)))
    }

    #[tokio::test]
    async fn concurrent_callers_fetch_once() {
        let provider = Arc::new(TokenProvider::new(Arc::new(TestCache::default())));
        let calls = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (provider, calls) = (Arc::clone(&provider), Arc::clone(&calls));
                tokio::spawn(async move { provider.token("k", None, || counted(&calls)).await })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.expect("join").expect("token").value, "t1");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(provider.locks().is_empty(), "per-key mutexes are cleaned up");
    }

    #[tokio::test]
    async fn providers_sharing_a_cache_fetch_once() {
        // Two providers stand for two processes: only the cache's lock is shared.
        let cache: Arc<dyn TokenCache> = Arc::new(TestCache::default());
        let a = Arc::new(TokenProvider::new(Arc::clone(&cache)));
        let b = Arc::new(TokenProvider::new(cache));
        let calls = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let provider = Arc::clone(if i % 2 == 0 { &a } else { &b });
                let calls = Arc::clone(&calls);
                tokio::spawn(async move { provider.token("k", None, || counted(&calls)).await })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.expect("join").expect("token").value, "t1");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn token_within_margin_is_refetched() {
        let cache = Arc::new(TestCache::default());
        cache.put("k", &CachedToken::new("old", in_minutes(4))).await.expect("put");
        let provider = TokenProvider::new(cache.clone());
        let calls = AtomicUsize::new(0);

        let token = provider.token("k", None, || counted(&calls)).await.expect("token");
        assert_eq!(token.value, "t1");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(cache.get("k").await.expect("get").map(|t| t.value).as_deref(), Some("t1"));

        let provider = provider.with_margin(chrono::Duration::minutes(1));
        cache.put("k", &CachedToken::new("short", in_minutes(4))).await.expect("put");
        let token = provider.token("k", None, || counted(&calls)).await.expect("token");
        assert_eq!(token.value, "short", "outside a 1-minute margin the token is still good");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn stale_current_token_is_refetched_once_but_an_older_one_is_not() {
        let provider = TokenProvider::new(Arc::new(TestCache::default()));
        let calls = AtomicUsize::new(0);
        let first = provider.token("k", None, || counted(&calls)).await.expect("token");
        assert_eq!(first.value, "t1");

        let second = provider.token("k", Some("t1"), || counted(&calls)).await.expect("token");
        assert_eq!(second.value, "t2");
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        // A caller still holding t1 was rejected too, but t2 has already replaced it.
        let third = provider.token("k", Some("t1"), || counted(&calls)).await.expect("token");
        assert_eq!(third.value, "t2");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn lock_loser_waits_for_the_winners_token_then_fetches_anyway() {
        let cache = Arc::new(TestCache::default());
        let provider = TokenProvider::new(cache.clone()).with_lock_wait(Duration::from_millis(500));
        let calls = AtomicUsize::new(0);
        // Another process holds the fetch lock and stores its token a little later.
        assert!(cache.try_lock("k", FETCH_LOCK_TTL).await.expect("lock"));
        let winner = {
            let cache = cache.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(350)).await;
                cache.put("k", &CachedToken::new("theirs", in_minutes(60))).await
            })
        };
        let token = provider.token("k", None, || counted(&calls)).await.expect("token");
        assert_eq!(token.value, "theirs");
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        winner.await.expect("join").expect("put");

        // The lock holder never delivers: give up waiting and fetch.
        let token = provider.token("other", None, || counted(&calls)).await.expect("token");
        assert!(cache.try_lock("other", FETCH_LOCK_TTL).await.expect("lock"));
        let before = tokio::time::Instant::now();
        let token2 = provider.token("other", Some(&token.value), || counted(&calls)).await.expect("token");
        assert!(before.elapsed() >= Duration::from_millis(500));
        assert_eq!(token2.value, "t2");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn fetch_error_is_returned_and_releases_the_lock() {
        let cache = Arc::new(TestCache::default());
        let provider = TokenProvider::new(cache.clone());
        let failed = provider.token("k", None, || async { Err(crate::DomainError::Unauthenticated) }).await;
        assert!(matches!(failed, Err(crate::DomainError::Unauthenticated)));
        assert!(cache.try_lock("k", FETCH_LOCK_TTL).await.expect("lock"), "lock was released");
    }

    #[tokio::test]
    async fn freshness_and_the_lock_wait_are_read_from_the_clock() {
        let t0 = Utc::now();
        let clock = Arc::new(crate::clock::ManualClock::new(t0));
        let cache = Arc::new(TestCache::default());
        cache.put("k", &CachedToken::new("first", t0 + chrono::Duration::minutes(60))).await.expect("put");
        let provider = TokenProvider::new(cache.clone()).with_clock(clock.clone());
        let calls = AtomicUsize::new(0);
        clock.set(t0 + chrono::Duration::minutes(54));
        assert_eq!(provider.token("k", None, || counted(&calls)).await.expect("token").value, "first");
        clock.set(t0 + chrono::Duration::minutes(56));
        assert_eq!(
            provider.token("k", None, || counted(&calls)).await.expect("token").value,
            "t1",
            "inside the margin"
        );

        // A lock held elsewhere is waited out on the clock: ten seconds pass on it, not in the test.
        assert!(cache.try_lock("other", FETCH_LOCK_TTL).await.expect("lock"));
        let before = std::time::Instant::now();
        let waited_from = clock.now();
        let token = provider.token("other", None, || counted(&calls)).await.expect("token");
        assert_eq!(token.value, "t2");
        assert!(clock.now() - waited_from >= chrono::Duration::seconds(10));
        assert!(before.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn debug_hides_the_value() {
        let shown = format!("{:?}", CachedToken::new("s3cr3t", in_minutes(1)));
        assert!(!shown.contains("s3cr3t"));
        assert!(shown.contains(r#"value: "***""#));
    }
}
