//! A small in-process cache whose entries expire: for configuration read on every
//! delivery (retry policy, a webhook's URL and secret), where a change may take a few
//! seconds to apply but a database round trip per message is too many.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long configuration read by workers is reused.
pub const CONFIG_TTL: Duration = Duration::from_secs(10);

/// Entries expire `ttl` after they were put; at most `capacity` are kept (the oldest go).
#[derive(Debug)]
pub struct TtlCache<K, V> {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self { ttl, capacity: capacity.max(1), entries: Mutex::new(HashMap::new()) }
    }

    /// The live value for `key`, if any.
    pub fn get(&self, key: &K) -> Option<V> {
        let map = self.entries.lock().ok()?;
        map.get(key).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, v)| v.clone())
    }

    pub fn put(&self, key: K, value: V) {
        if let Ok(mut map) = self.entries.lock() {
            if map.len() >= self.capacity {
                map.retain(|_, (at, _)| at.elapsed() < self.ttl);
                if map.len() >= self.capacity
                    && let Some(oldest) = map.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| k.clone())
                {
                    map.remove(&oldest);
                }
            }
            map.insert(key, (Instant::now(), value));
        }
    }

    pub fn remove(&self, key: &K) {
        if let Ok(mut map) = self.entries.lock() {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_capacity_is_kept() {
        let c = TtlCache::new(Duration::from_millis(30), 2);
        c.put(1, "a");
        assert_eq!(c.get(&1), Some("a"));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.get(&1), None);
        c.put(1, "a");
        c.put(2, "b");
        c.put(3, "c");
        assert_eq!([1, 2, 3].iter().filter(|k| c.get(k).is_some()).count(), 2);
        assert_eq!(c.get(&3), Some("c"));
        c.remove(&3);
        assert_eq!(c.get(&3), None);
    }
}
