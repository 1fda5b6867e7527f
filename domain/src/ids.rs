//! One ID newtype per entity. IDs are UUID v7, so their byte order is their creation order
//! and keyset pagination can run on the primary key alone.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($($(#[$m:meta])* $name:ident),* $(,)?) => {$(
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self { Self(Uuid::now_v7()) }
            pub const fn from_uuid(id: Uuid) -> Self { Self(id) }
            pub const fn as_uuid(&self) -> Uuid { self.0 }
        }

        impl Default for $name {
            fn default() -> Self { Self::new() }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { self.0.fmt(f) }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> { Uuid::parse_str(s).map(Self) }
        }
    )*};
}

id_type!(
    /// A tenant (an operator company using Linkyard).
    TenantId,
    /// A user, of a tenant or of the platform.
    UserId,
    /// A configured vendor integration of a tenant.
    IntegrationId,
    /// An API key for a tenant's own devices.
    ApiKeyId,
    /// A device of any kind (elevator, lock, meter, roadside cabinet ...).
    DeviceId,
    /// A home (a building or flat) grouping rooms and devices.
    HomeId,
    /// A room of a home.
    RoomId,
    /// An alarm.
    AlarmId,
    /// A ticket (work permit, maintenance, rescue, installation, repair).
    TicketId,
    /// A file attached to a ticket.
    FileId,
    /// A tariff version.
    TariffId,
    /// A meter account.
    AccountId,
    /// A raw inbound hook request.
    InboundEventId,
    /// A reading of a device metric.
    ReadingId,
    /// An alarm timeline entry, ledger entry or audit entry.
    EntryId,
    /// An outbound vendor message.
    DeliveryId,
    /// A password of a lock (any kind: platform, admin, local, activation code).
    LockPasswordId,
    /// One state-changing operation on a meter (or water meter) sent to its vendor.
    OperationId,
    /// A tenant's alarm escalation policy.
    EscalationPolicyId,
);
