//! The ports and shared types of this vendor's use cases.

use super::{DeviceOperation, LockPassword, LockPasswordId, OperationId, Query, Reveal, Revealed, SyncedHome};
use async_trait::async_trait;
use domain::DomainResult;
use domain::homes::{Home, Room};
use domain::ids::{DeviceId, HomeId, IntegrationId, TenantId};
use serde_json::Value;

/// Kind prefix of Dingding deliveries (`dingding.add_password`).
pub const PREFIX: &str = "dingding";

/// The vendor's name in `DomainError::Upstream`: a failure a call could not get past
/// (network, or Dingding's `ErrNo`), whose text never holds a secret.
pub const VENDOR: &str = "Dingding";

/// Lock passwords and device operations of a tenant, plus the lookups of mirrored homes.
#[async_trait]
pub trait DingdingRepo: Send + Sync {
    /// Inserts or replaces the password with this id.
    ///
    /// # Errors
    /// `Duplicate` when another password of the lock has the same vendor id.
    async fn save_password(&self, tenant: TenantId, p: &LockPassword) -> DomainResult<()>;
    /// # Errors
    /// `Unknown` on storage failure.
    async fn get_password(&self, tenant: TenantId, id: LockPasswordId) -> DomainResult<Option<LockPassword>>;
    /// The lock's passwords that are not deleted, oldest first.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn passwords(&self, tenant: TenantId, device: DeviceId) -> DomainResult<Vec<LockPassword>>;
    /// # Errors
    /// `Unknown` on storage failure.
    async fn password_by_vendor_id(
        &self,
        tenant: TenantId,
        device: DeviceId,
        vendor_id: i64,
    ) -> DomainResult<Option<LockPassword>>;
    /// Inserts or replaces the operation with this id.
    ///
    /// # Errors
    /// `Duplicate` when the integration already has an operation with this trade number.
    async fn save_operation(&self, tenant: TenantId, op: &DeviceOperation) -> DomainResult<()>;
    /// Saves the password and writes `send`, the delivery that carries its operation out,
    /// in one transaction; returns the delivery's id.
    ///
    /// # Errors
    /// As `save_password`; `Duplicate` when the delivery's key is taken.
    async fn save_password_sending(
        &self,
        tenant: TenantId,
        p: &LockPassword,
        send: domain::deliveries::NewDelivery,
    ) -> DomainResult<domain::ids::DeliveryId>;
    /// The same for a device operation.
    ///
    /// # Errors
    /// As `save_operation`; `Duplicate` when the delivery's key is taken.
    async fn save_operation_sending(
        &self,
        tenant: TenantId,
        op: &DeviceOperation,
        send: domain::deliveries::NewDelivery,
    ) -> DomainResult<domain::ids::DeliveryId>;
    /// # Errors
    /// `Unknown` on storage failure.
    async fn get_operation(&self, tenant: TenantId, id: OperationId) -> DomainResult<Option<DeviceOperation>>;
    /// The device's operations, newest first, at most `limit`.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn operations(&self, tenant: TenantId, device: DeviceId, limit: u64) -> DomainResult<Vec<DeviceOperation>>;
    /// # Errors
    /// `Unknown` on storage failure.
    async fn operation_by_service(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        service_id: &str,
    ) -> DomainResult<Option<DeviceOperation>>;
    /// # Errors
    /// `Unknown` on storage failure.
    async fn operation_by_trade_no(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        trade_no: &str,
    ) -> DomainResult<Option<DeviceOperation>>;
    /// The integration's home with this Dingding `home_id`.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn home_by_external(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        external_id: &str,
    ) -> DomainResult<Option<Home>>;
    /// The home's room with this Dingding `room_id`.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn room_by_external(&self, tenant: TenantId, home: HomeId, external_id: &str) -> DomainResult<Option<Room>>;
    /// The integration's ticket with this Dingding `ticket_id`.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn ticket_by_external(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        external_id: &str,
    ) -> DomainResult<Option<domain::ids::TicketId>>;
    /// Records the Dingding `ticket_id` of a ticket that has none yet.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn set_ticket_external(
        &self,
        tenant: TenantId,
        ticket: domain::ids::TicketId,
        external_id: &str,
    ) -> DomainResult<()>;
}

/// Reads from Dingding (the state-changing calls are deliveries).
#[async_trait]
pub trait DingdingApi: Send + Sync {
    /// Every home of the account with rooms and devices (`search_home_info`,
    /// `find_home_devices`, `get_*_info`, `fetch_passwords`).
    ///
    /// # Errors
    /// `Upstream` when Dingding cannot be reached or refuses.
    async fn homes(&self, tenant: TenantId, integration: IntegrationId) -> DomainResult<Vec<SyncedHome>>;
    /// A lock's admin or current dynamic password in plaintext (6.5, 6.6).
    ///
    /// # Errors
    /// `Upstream`.
    async fn reveal(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        uuid: &str,
        which: Reveal,
    ) -> DomainResult<Revealed>;
    /// A read-only query; Dingding's answer without `ErrNo`/`ErrMsg`.
    ///
    /// # Errors
    /// `Upstream`.
    async fn query(&self, tenant: TenantId, integration: IntegrationId, query: &Query) -> DomainResult<Value>;
}
