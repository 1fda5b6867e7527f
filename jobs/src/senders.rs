//! Routes each delivery to the sender of its vendor, by the prefix of its kind
//! (`huzhou.lift_alarm` goes to the `huzhou` sender), under that vendor's concurrency cap.

use async_trait::async_trait;
use domain::deliveries::{Delivery, DeliverySender, RateLimit, SendReport, Verdict};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Semaphore;

#[derive(Clone)]
struct Route {
    sender: Arc<dyn DeliverySender>,
    /// At most this many sends to the vendor at once from this process.
    slots: Arc<Semaphore>,
}

/// One sender per vendor prefix.
#[derive(Clone, Default)]
pub struct SenderRegistry {
    by_prefix: HashMap<String, Route>,
}

impl std::fmt::Debug for SenderRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.by_prefix.keys()).finish()
    }
}

/// The default per-vendor concurrency cap of one process.
pub const DEFAULT_VENDOR_CONCURRENCY: usize = 32;

impl SenderRegistry {
    /// Registers `sender` for `prefix` with the default concurrency cap.
    #[must_use]
    pub fn with(self, prefix: &str, sender: Arc<dyn DeliverySender>) -> Self {
        self.with_limit(prefix, sender, DEFAULT_VENDOR_CONCURRENCY)
    }

    /// Registers `sender` for `prefix`; at most `concurrency` sends run at once.
    #[must_use]
    pub fn with_limit(mut self, prefix: &str, sender: Arc<dyn DeliverySender>, concurrency: usize) -> Self {
        let slots = Arc::new(Semaphore::new(concurrency.max(1)));
        self.by_prefix.insert(prefix.to_owned(), Route { sender, slots });
        self
    }

    /// Registers `sender` with its cap unless `prefix` already has one (tests replace
    /// built-ins).
    #[must_use]
    pub fn or_with(self, prefix: &str, sender: Arc<dyn DeliverySender>, concurrency: usize) -> Self {
        if self.by_prefix.contains_key(prefix) { self } else { self.with_limit(prefix, sender, concurrency) }
    }

    fn route(&self, d: &Delivery) -> Option<&Route> {
        self.by_prefix.get(d.kind.sender())
    }
}

#[async_trait]
impl DeliverySender for SenderRegistry {
    async fn send(&self, delivery: &Delivery, fresh_token: bool) -> SendReport {
        let Some(route) = self.route(delivery) else {
            return SendReport {
                request: delivery.kind.to_string(),
                http_status: None,
                vendor_code: None,
                vendor_message: None,
                verdict: Verdict::Permanent(format!("no sender for deliveries of kind {}", delivery.kind)),
            };
        };
        // The semaphore is never closed; a failed acquire would only mean sending uncapped.
        let _slot = route.slots.acquire().await.ok();
        route.sender.send(delivery, fresh_token).await
    }

    async fn prepare(&self, like: &Delivery) {
        if let Some(route) = self.route(like) {
            route.sender.prepare(like).await;
        }
    }

    fn rate_limit(&self, delivery: &Delivery) -> Option<RateLimit> {
        self.route(delivery).and_then(|r| r.sender.rate_limit(delivery))
    }
}
