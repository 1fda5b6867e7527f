use super::{
    Device, DeviceFilter, DeviceKind, DeviceRepo, DeviceStatus, ExternalId, NewReading, Reading, UpsertDevice,
};
use crate::bus::{BusEvent, Change, EventBus};
use crate::homes::HomeRepo;
use crate::ids::{DeviceId, HomeId, IntegrationId, RoomId, TenantId};
use crate::integrations::IntegrationRepo;
use crate::{Actor, DomainError, DomainResult, Page, PageRequest};
use serde_json::Value;
use std::sync::Arc;

/// Largest number of readings one `readings(last:)` answer holds.
pub const MAX_READINGS: u64 = 1000;

/// Input of `upsertDevice`, as received.
#[derive(Debug, Clone)]
pub struct UpsertDeviceInput {
    pub integration_id: IntegrationId,
    pub external_id: String,
    pub kind: DeviceKind,
    pub name: String,
    pub home_id: Option<HomeId>,
    pub room_id: Option<RoomId>,
    pub attributes: Option<Value>,
}

/// What `updateDevice` changes: absent fields stay as they are. `home_id`/`room_id`:
/// `Some(None)` takes the device out of its home (room); moving it to another home without
/// naming a room takes it out of its room.
#[derive(Debug, Clone, Default)]
pub struct DeviceChanges {
    pub name: Option<String>,
    pub home_id: Option<Option<HomeId>>,
    pub room_id: Option<Option<RoomId>>,
    /// Replaces the attributes whole.
    pub attributes: Option<Value>,
}

/// Registering devices and recording what they report.
#[derive(Clone)]
pub struct DeviceService {
    repo: Arc<dyn DeviceRepo>,
    integrations: Arc<dyn IntegrationRepo>,
    homes: Arc<dyn HomeRepo>,
    bus: Arc<dyn EventBus>,
    outbound: Option<crate::outbound::Outbound>,
}

impl DeviceService {
    pub fn new(
        repo: Arc<dyn DeviceRepo>,
        integrations: Arc<dyn IntegrationRepo>,
        homes: Arc<dyn HomeRepo>,
        bus: Arc<dyn EventBus>,
    ) -> Self {
        Self { repo, integrations, homes, bus, outbound: None }
    }

    /// The same service over a unit of work's repository, publishing to `bus` (held
    /// until the unit commits).
    #[must_use]
    pub fn within(&self, repo: Arc<dyn DeviceRepo>, bus: Arc<dyn EventBus>) -> Self {
        Self { repo, bus, ..self.clone() }
    }

    /// Writes upserts in units of work with the deliveries the vendor modules plan for
    /// them (`Message::DeviceSaved`).
    #[must_use]
    pub fn with_outbound(mut self, outbound: crate::outbound::Outbound) -> Self {
        self.outbound = Some(outbound);
        self
    }

    /// # Errors
    /// `Forbidden` for viewers; `Invalid` on a bad field; `NotFound` for an integration,
    /// home or room that is not the tenant's, or a room of another home.
    pub async fn upsert(&self, actor: &Actor, input: UpsertDeviceInput) -> DomainResult<(Device, bool)> {
        let tenant = actor.require_operator()?;
        self.upsert_in(tenant, input).await
    }

    /// The same, for adapters acting for a tenant (vendor sync, hooks).
    ///
    /// # Errors
    /// As `upsert`.
    pub async fn upsert_in(&self, tenant: TenantId, input: UpsertDeviceInput) -> DomainResult<(Device, bool)> {
        let external_id = ExternalId::parse(&input.external_id)?;
        let name = input.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(DomainError::invalid("name", "1-200 characters"));
        }
        let attributes = match input.attributes {
            None | Some(Value::Null) => Value::Object(Default::default()),
            Some(v @ Value::Object(_)) => v,
            Some(_) => return Err(DomainError::invalid("attributes", "must be a JSON object")),
        };
        self.integrations.get(tenant, input.integration_id).await?.ok_or(DomainError::NotFound("integration"))?;
        let mut home_id = input.home_id;
        if let Some(room_id) = input.room_id {
            let room = self.homes.get_room(tenant, room_id).await?.ok_or(DomainError::NotFound("room"))?;
            if home_id.is_some_and(|h| h != room.home_id) {
                return Err(DomainError::invalid("roomId", "the room belongs to another home"));
            }
            home_id = Some(room.home_id);
        }
        if let Some(h) = home_id {
            self.homes.get_home(tenant, h).await?.ok_or(DomainError::NotFound("home"))?;
        }
        let up = UpsertDevice {
            integration_id: input.integration_id,
            external_id,
            kind: input.kind,
            name,
            home_id,
            room_id: input.room_id,
            attributes,
        };
        let Some(out) = &self.outbound else {
            let (device, created) = self.repo.upsert(tenant, up).await?;
            self.changed(&device);
            return Ok((device, created));
        };
        let unit = out.begin().await?;
        let before = unit.devices().find_by_external(tenant, up.integration_id, up.external_id.as_str()).await?;
        let opening = match (&before, up.kind) {
            (None, DeviceKind::GasMeter) => Some(crate::tariffs::billing::opening_terms(&up.attributes)?),
            // Without an `initialReading`, the first reading is the baseline.
            (None, DeviceKind::ElectricityMeter | DeviceKind::WaterMeter) => {
                let (account, mut meter) = crate::tariffs::billing::opening_terms(&up.attributes)?;
                if up.attributes.get("initialReading").is_none() {
                    meter.last_reading = None;
                }
                Some((account, meter))
            }
            _ => None,
        };
        let (device, created) = unit.devices().upsert(tenant, up).await?;
        // Every meter has its account from registration (the register as its baseline).
        if let Some((account, meter)) = opening
            && unit.accounts().by_device(tenant, device.id).await?.is_none()
        {
            unit.accounts().open(tenant, device.id, None, &account, &meter).await?;
        }
        let saved = crate::outbound::Message::DeviceSaved { before, after: device.clone() };
        out.commit(unit, tenant, &[saved]).await?;
        self.changed(&device);
        Ok((device, created))
    }

    /// Changes a device's name, place or attributes; its integration, external id and kind
    /// stay (a meter gets a new external id with `replaceMeter`). Vendors hear of it as of
    /// an upsert (a vendor that mirrors device parameters is sent the changed ones).
    ///
    /// # Errors
    /// As `upsert`; `NotFound` when the device is absent or in another tenant.
    pub async fn update(&self, actor: &Actor, id: DeviceId, changes: DeviceChanges) -> DomainResult<Device> {
        let tenant = actor.require_operator()?;
        let d = self.repo.get(tenant, id).await?.ok_or(DomainError::NotFound("device"))?;
        let home_id = changes.home_id.unwrap_or(d.home_id);
        let room_id = match changes.room_id {
            Some(r) => r,
            None if home_id != d.home_id => None,
            None => d.room_id,
        };
        let input = UpsertDeviceInput {
            integration_id: d.integration_id,
            external_id: d.external_id.clone(),
            kind: d.kind,
            name: changes.name.unwrap_or_else(|| d.name.clone()),
            home_id,
            room_id,
            attributes: Some(changes.attributes.unwrap_or_else(|| d.attributes.clone())),
        };
        let (device, _) = self.upsert_in(tenant, input).await?;
        Ok(device)
    }

    /// Deletes a device with its readings, live state, meter account and ledger, lock
    /// passwords and commands; its closed alarms, tickets and deliveries stay in the
    /// history. Refused (`Conflict`) while it has an open alarm (clear it first), while its
    /// meter account holds money (settle it first, or keep the account with `replaceMeter`),
    /// or while it is a gas meter still registered at its DAS (`cancelMeter` first).
    ///
    /// # Errors
    /// `Forbidden` for viewers; `NotFound` when absent or in another tenant; `Conflict`.
    pub async fn delete(&self, actor: &Actor, id: DeviceId) -> DomainResult<Device> {
        let tenant = actor.require_operator()?;
        let Some(out) = &self.outbound else {
            let d = self.repo.get(tenant, id).await?.ok_or(DomainError::NotFound("device"))?;
            self.repo.delete(tenant, id).await?;
            self.changed(&d);
            return Ok(d);
        };
        let unit = out.begin().await?;
        let d = unit.devices().get(tenant, id).await?.ok_or(DomainError::NotFound("device"))?;
        let open = crate::alarms::AlarmFilter { device_id: Some(id), open: true, ..Default::default() };
        let alarms = unit.alarms().list(tenant, &open, PageRequest::new(Some(1), None)?).await?;
        if !alarms.items.is_empty() {
            return Err(DomainError::Conflict("the device has open alarms: clear them first".into()));
        }
        if let Some(a) = unit.accounts().lock_by_device(tenant, id).await?
            && !a.account.balance.is_zero()
        {
            return Err(DomainError::Conflict(format!(
                "the meter's account holds {}: settle it first, or keep it with replaceMeter",
                a.account.balance
            )));
        }
        if d.kind == DeviceKind::GasMeter && d.attributes.get("cancelledAt").is_none() {
            return Err(DomainError::Conflict("the gas meter is registered at its DAS: cancelMeter first".into()));
        }
        unit.devices().delete(tenant, id).await?;
        out.commit(unit, tenant, &[crate::outbound::Message::DeviceDeleted(d.clone())]).await?;
        self.changed(&d);
        Ok(d)
    }

    /// # Errors
    /// `NotFound` when absent or in another tenant.
    pub async fn get(&self, actor: &Actor, id: DeviceId) -> DomainResult<Device> {
        self.repo.get(actor.require_reader()?, id).await?.ok_or(DomainError::NotFound("device"))
    }

    /// The actor's devices among `ids` (others are left out), in one read.
    ///
    /// # Errors
    /// `Forbidden` for actors without a tenant.
    pub async fn get_many(&self, actor: &Actor, ids: &[DeviceId]) -> DomainResult<Vec<Device>> {
        self.repo.get_many(actor.require_reader()?, ids).await
    }

    /// # Errors
    /// `Forbidden` for actors without a tenant.
    pub async fn list(&self, actor: &Actor, filter: &DeviceFilter, page: PageRequest) -> DomainResult<Page<Device>> {
        self.repo.list(actor.require_reader()?, filter, page).await
    }

    /// # Errors
    /// `NotFound` when the device is not the actor's; `Invalid { field: "last" }` above 1000.
    pub async fn readings(
        &self,
        actor: &Actor,
        id: DeviceId,
        metric: Option<&str>,
        last: u64,
    ) -> DomainResult<Vec<Reading>> {
        let tenant = actor.require_reader()?;
        if last > MAX_READINGS {
            return Err(DomainError::invalid("last", format!("at most {MAX_READINGS}")));
        }
        self.repo.readings(tenant, id, metric, last).await
    }

    /// Records readings for a tenant's device (adapters and hooks).
    ///
    /// # Errors
    /// `NotFound("device")`.
    pub async fn record_readings(
        &self,
        tenant: TenantId,
        id: DeviceId,
        readings: Vec<NewReading>,
    ) -> DomainResult<Device> {
        let device = self.repo.record_readings(tenant, id, readings).await?;
        self.changed(&device);
        Ok(device)
    }

    /// Applies live-state changes for a tenant's device (adapters and hooks).
    ///
    /// # Errors
    /// `NotFound("device")`.
    pub async fn set_status(&self, tenant: TenantId, id: DeviceId, status: DeviceStatus) -> DomainResult<Device> {
        let device = self.repo.set_status(tenant, id, status).await?;
        self.changed(&device);
        Ok(device)
    }

    /// The devices of `external_ids` on the integration (those that exist).
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    pub async fn find_by_externals(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        external_ids: &[String],
    ) -> DomainResult<Vec<Device>> {
        self.repo.find_by_externals(tenant, integration, external_ids).await
    }

    /// Status and readings of many devices at once (see `DeviceRepo::observe_many`).
    ///
    /// # Errors
    /// `NotFound("device")`.
    pub async fn observe_many(&self, tenant: TenantId, observed: Vec<super::Observed>) -> DomainResult<Vec<Device>> {
        let written = self.repo.observe_many(tenant, observed).await?;
        for d in &written {
            self.changed(d);
        }
        Ok(written)
    }

    /// # Errors
    /// `Unknown` on storage failure.
    pub async fn find_by_external(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        external_id: &str,
    ) -> DomainResult<Option<Device>> {
        self.repo.find_by_external(tenant, integration, external_id).await
    }

    fn changed(&self, d: &Device) {
        self.bus.publish(BusEvent { tenant_id: d.tenant_id, change: Change::DeviceChanged { device_id: d.id } });
    }
}
