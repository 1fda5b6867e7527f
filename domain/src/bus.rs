//! Change notifications for subscriptions. Events carry ids only; subscribers reload the
//! entity through the tenant-scoped repositories, so a bus never leaks data across tenants.

use crate::ids::{AlarmId, DeviceId, TenantId};
use serde::{Deserialize, Serialize};

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Change {
    /// An alarm was raised, repeated, acknowledged, cleared or re-rated.
    AlarmChanged { alarm_id: AlarmId, action: AlarmAction },
    /// A device was created or its state changed.
    DeviceChanged { device_id: DeviceId },
}

/// The step an alarm took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmAction {
    Raised,
    Repeated,
    Acknowledged,
    Cleared,
    Commented,
    /// Not acknowledged in time: an escalation policy raised its severity.
    Escalated,
}

/// A change in one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusEvent {
    pub tenant_id: TenantId,
    pub change: Change,
}

/// Publishes changes to every server process (in-process broadcast, Redis pub/sub when configured).
pub trait EventBus: Send + Sync {
    /// Best effort: a lost notification never loses data, only a live update.
    fn publish(&self, event: BusEvent);
}
