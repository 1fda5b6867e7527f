//! How long records of traffic are kept: raw inbound events once applied, the attempts of
//! finished deliveries, and audit entries older than the retention period are deleted.

use crate::DomainResult;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// What one pruning removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub inbound_events: u64,
    pub delivery_attempts: u64,
    pub audit_entries: u64,
}

/// Deletes old records of traffic.
#[async_trait]
pub trait RetentionRepo: Send + Sync {
    /// Deletes, from before `before`: inbound events no longer waiting to be applied,
    /// attempts of deliveries that succeeded or gave up, and audit entries.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn prune(&self, before: DateTime<Utc>) -> DomainResult<Pruned>;
}
