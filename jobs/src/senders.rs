//! Routes each delivery to the sender of its vendor, by the prefix of its kind
//! (`huzhou.lift_alarm` goes to the `huzhou` sender).

use async_trait::async_trait;
use domain::deliveries::{Delivery, DeliverySender, SendReport, Verdict};
use std::collections::HashMap;
use std::sync::Arc;

/// One sender per vendor prefix.
#[derive(Clone, Default)]
pub struct SenderRegistry {
    by_prefix: HashMap<String, Arc<dyn DeliverySender>>,
}

impl std::fmt::Debug for SenderRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.by_prefix.keys()).finish()
    }
}

impl SenderRegistry {
    pub fn with(mut self, prefix: &str, sender: Arc<dyn DeliverySender>) -> Self {
        self.by_prefix.insert(prefix.to_owned(), sender);
        self
    }
}

#[async_trait]
impl DeliverySender for SenderRegistry {
    async fn send(&self, delivery: &Delivery, fresh_token: bool) -> SendReport {
        let prefix = delivery.kind.split('.').next().unwrap_or_default();
        match self.by_prefix.get(prefix) {
            Some(s) => s.send(delivery, fresh_token).await,
            None => SendReport {
                request: delivery.kind.clone(),
                http_status: None,
                vendor_code: None,
                vendor_message: None,
                verdict: Verdict::Permanent(format!("no sender for deliveries of kind {}", delivery.kind)),
            },
        }
    }
}
