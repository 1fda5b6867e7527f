use super::{Device, DeviceFilter, DeviceStatus, NewReading, Reading, UpsertDevice};
use crate::ids::{DeviceId, IntegrationId, TenantId};
use crate::{DomainResult, Page, PageRequest};
use async_trait::async_trait;

/// Devices of a tenant, their live state and readings.
#[async_trait]
pub trait DeviceRepo: Send + Sync {
    /// Creates the device or updates the one with the same (integration, external id);
    /// the bool tells whether it was created.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn upsert(&self, tenant: TenantId, input: UpsertDevice) -> DomainResult<(Device, bool)>;
    /// # Errors
    /// `Unknown` on storage failure.
    async fn get(&self, tenant: TenantId, id: DeviceId) -> DomainResult<Option<Device>>;
    /// The tenant's devices among `ids`, in one query (ids of other tenants are left out).
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn get_many(&self, tenant: TenantId, ids: &[DeviceId]) -> DomainResult<Vec<Device>>;
    /// # Errors
    /// `Unknown` on storage failure.
    async fn find_by_external(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        external_id: &str,
    ) -> DomainResult<Option<Device>>;
    /// Gives the device a new external id and attributes (a replaced meter keeps its id,
    /// its account and its history).
    ///
    /// # Errors
    /// `NotFound("device")`; `Duplicate` when the integration has a device with that id.
    async fn rename(
        &self,
        tenant: TenantId,
        id: DeviceId,
        external_id: &super::ExternalId,
        attributes: serde_json::Value,
    ) -> DomainResult<Device>;
    /// Deletes the device; what hangs off it (readings, meter account, lock passwords)
    /// goes with it.
    ///
    /// # Errors
    /// `NotFound("device")` when absent or in another tenant.
    async fn delete(&self, tenant: TenantId, id: DeviceId) -> DomainResult<()>;
    /// # Errors
    /// `Unknown` on storage failure.
    async fn list(&self, tenant: TenantId, filter: &DeviceFilter, page: PageRequest) -> DomainResult<Page<Device>>;
    /// Applies live-state changes; `online_changed_at` moves only when `online` flips.
    ///
    /// # Errors
    /// `NotFound("device")` when absent or in another tenant.
    async fn set_status(&self, tenant: TenantId, id: DeviceId, status: DeviceStatus) -> DomainResult<Device>;
    /// Appends readings to the history and keeps the newest value per metric on the device.
    ///
    /// # Errors
    /// `NotFound("device")` when absent or in another tenant.
    async fn record_readings(&self, tenant: TenantId, id: DeviceId, readings: Vec<NewReading>) -> DomainResult<Device>;
    /// The devices of `external_ids` on the integration (those that exist); through a unit
    /// of work, locked until it ends (as `MeterAccountRepo::lock_by_device` locks).
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn find_by_externals(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        external_ids: &[String],
    ) -> DomainResult<Vec<Device>> {
        let mut found = Vec::with_capacity(external_ids.len());
        for e in external_ids {
            found.extend(self.find_by_external(tenant, integration, e).await?);
        }
        Ok(found)
    }
    /// The tenant's devices among `ids`, as `get_many`; through a unit of work, locked until
    /// it ends (in id order), for `observe_many`.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn lock_many(&self, tenant: TenantId, ids: &[DeviceId]) -> DomainResult<Vec<Device>> {
        self.get_many(tenant, ids).await
    }
    /// `set_status` then `record_readings` of each device (one entry per device, as read
    /// by `find_by_externals` in the same unit), in as few round trips as the store allows.
    /// Answers the devices as written.
    ///
    /// # Errors
    /// `NotFound("device")` when one is absent or in another tenant.
    async fn observe_many(&self, tenant: TenantId, observed: Vec<super::Observed>) -> DomainResult<Vec<Device>> {
        let mut out = Vec::with_capacity(observed.len());
        for o in observed {
            self.set_status(tenant, o.device.id, o.status).await?;
            out.push(self.record_readings(tenant, o.device.id, o.readings).await?);
        }
        Ok(out)
    }
    /// The newest `last` readings (of one metric when given), newest first.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn readings(
        &self,
        tenant: TenantId,
        id: DeviceId,
        metric: Option<&str>,
        last: u64,
    ) -> DomainResult<Vec<Reading>>;
}
