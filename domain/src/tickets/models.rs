use super::rules::{TicketKind, TicketStatus};
use crate::ids::{DeviceId, FileId, HomeId, IntegrationId, TenantId, TicketId, UserId};
use chrono::{DateTime, Utc};
use serde_json::Value;

/// A stored ticket of any kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticket {
    pub id: TicketId,
    pub tenant_id: TenantId,
    pub kind: TicketKind,
    pub integration_id: Option<IntegrationId>,
    pub device_id: Option<DeviceId>,
    pub home_id: Option<HomeId>,
    /// One of `rules::statuses(kind)`.
    pub status: TicketStatus,
    /// The kind's fields, validated by `TicketFields::validate`.
    pub fields: Value,
    /// The ticket's id at the vendor or regulator, once known.
    pub external_id: Option<String>,
    pub created_by: Option<UserId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a repository needs to store a new ticket (already validated).
#[derive(Debug, Clone)]
pub struct NewTicket {
    pub kind: TicketKind,
    pub integration_id: Option<IntegrationId>,
    pub device_id: Option<DeviceId>,
    pub home_id: Option<HomeId>,
    pub status: TicketStatus,
    pub fields: Value,
    pub external_id: Option<String>,
    pub created_by: Option<UserId>,
}

/// A change to a stored ticket (already validated).
#[derive(Debug, Clone)]
pub struct TicketUpdate {
    pub device_id: Option<DeviceId>,
    pub home_id: Option<HomeId>,
    pub status: TicketStatus,
    pub fields: Value,
    pub external_id: Option<String>,
}

/// `tickets(filter)`; every field narrows the list.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub kind: Option<TicketKind>,
    pub status: Option<String>,
    pub integration_id: Option<IntegrationId>,
    pub device_id: Option<DeviceId>,
    pub home_id: Option<HomeId>,
}

/// A file attached to a ticket; the bytes live in the `FileStore` under `storage_key`.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketFile {
    pub id: FileId,
    pub tenant_id: TenantId,
    pub ticket_id: TicketId,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub storage_key: String,
    pub created_at: DateTime<Utc>,
}
