//! `syncIntegration` and the nightly `SYNC` job: pull every home, room and device of the
//! Dingding account (5.10, 5.11, 5.5, 6.1, 6.3, 6.4, 11.1, 11.12, 15.1, 15.2) and upsert
//! them with their online state, battery, signal, versions and passwords.

use super::{DingdingService, LockPassword, LockPasswordId, PasswordKind, SyncedDevice, SyncedTicket};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::devices::{DeviceStatus, UpsertDeviceInput};
use domain::homes::{NewHome, NewRoom};
use domain::ids::{HomeId, IntegrationId, TenantId};
use domain::integrations::{Integration, IntegrationKind};
use domain::schedules::PeriodicJob;
use domain::{Actor, DomainError, DomainResult};
use serde_json::Value;

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub homes: usize,
    pub rooms: usize,
    pub devices: usize,
    pub passwords: usize,
    pub tickets: usize,
}

impl std::fmt::Display for SyncReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} homes, {} rooms, {} devices, {} passwords, {} tickets",
            self.homes, self.rooms, self.devices, self.passwords, self.tickets
        )
    }
}

fn merge(mut base: Value, extra: &Value) -> Value {
    if let (Value::Object(b), Value::Object(e)) = (&mut base, extra) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    base
}

impl DingdingService {
    /// `syncIntegration(id)` (tenant admins).
    ///
    /// # Errors
    /// `Forbidden`; `NotFound`; `Invalid` for an integration of another kind;
    /// `Upstream` when Dingding cannot be read.
    pub async fn sync(&self, actor: &Actor, id: IntegrationId) -> DomainResult<SyncReport> {
        let tenant = actor.require_tenant_admin()?;
        let integration = self.integration(tenant, id).await?;
        if integration.kind != IntegrationKind::Dingding {
            return Err(DomainError::invalid("id", "not a DINGDING integration"));
        }
        self.sync_in(&integration).await
    }

    /// The sync of one integration (the periodic job and the mutation).
    ///
    /// # Errors
    /// As `sync`.
    pub async fn sync_in(&self, integration: &Integration) -> DomainResult<SyncReport> {
        let tenant = integration.tenant_id;
        let homes = self.api.homes(tenant, integration.id).await?;
        let mut report = SyncReport::default();
        for h in homes {
            let home = match self.repo.home_by_external(tenant, integration.id, &h.external_id).await? {
                Some(home) => home,
                None => {
                    let new = NewHome {
                        integration_id: Some(integration.id),
                        external_id: Some(h.external_id.clone()),
                        name: if h.name.trim().is_empty() { h.external_id.clone() } else { h.name.clone() },
                        address: h.address.clone(),
                        attributes: h.attributes.clone(),
                    };
                    self.homes.create_home(tenant, new).await?
                }
            };
            report.homes += 1;
            for (room_id, name) in &h.rooms {
                if self.repo.room_by_external(tenant, home.id, room_id).await?.is_none() {
                    let name = if name.trim().is_empty() { room_id.clone() } else { name.clone() };
                    let new = NewRoom { home_id: home.id, external_id: Some(room_id.to_string()), name };
                    match self.homes.create_room(tenant, new).await {
                        // A room of that name exists already (made here before it was mirrored).
                        Ok(_) | Err(DomainError::Duplicate(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                report.rooms += 1;
            }
            for d in h.devices {
                report.passwords += d.passwords.len();
                self.sync_device(tenant, integration.id, home.id, &h.external_id, d).await?;
                report.devices += 1;
            }
            for t in h.tickets {
                if self.sync_ticket(tenant, integration.id, home.id, t).await? {
                    report.tickets += 1;
                }
            }
        }
        Ok(report)
    }

    /// Creates or moves the ticket of a Dingding work order; false when its state cannot be
    /// taken (a move backwards, invalid fields: logged, the sync goes on).
    async fn sync_ticket(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        home: HomeId,
        t: SyncedTicket,
    ) -> DomainResult<bool> {
        use super::tickets::WORK_ORDER_STATE_CODES;
        use domain::tickets::{SaveTicketInput, TicketKind};
        let code = t.state.to_string();
        let Some((status, _)) = WORK_ORDER_STATE_CODES.iter().find(|(_, c)| *c == code) else { return Ok(false) };
        let kind = if t.service_type == 2 { TicketKind::Repair } else { TicketKind::Installation };
        let id = self.repo.ticket_by_external(tenant, integration, &t.ticket_id).await?;
        let input = SaveTicketInput {
            id,
            kind,
            integration_id: Some(integration),
            device_id: None,
            home_id: Some(home),
            status: Some((*status).to_owned()),
            fields: Some(if id.is_some() { Value::Object(Default::default()) } else { t.fields }),
            external_id: Some(t.ticket_id.clone()),
        };
        match self.tickets.save_in(tenant, None, input).await {
            Ok(_) => Ok(true),
            Err(e @ (DomainError::Invalid { .. } | DomainError::InvalidTransition(_))) => {
                tracing::warn!(ticket_id = %t.ticket_id, error = %e, "Dingding work order not taken");
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    async fn sync_device(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        home: HomeId,
        home_external: &str,
        d: SyncedDevice,
    ) -> DomainResult<()> {
        let room = match d.room_external_id.as_deref().filter(|r| *r != home_external && !r.is_empty()) {
            Some(r) => self.repo.room_by_external(tenant, home, r).await?.map(|r| r.id),
            None => None,
        };
        let existing = self.devices.find_by_external(tenant, integration, &d.uuid).await?;
        let mut attributes =
            existing.as_ref().map_or_else(|| Value::Object(Default::default()), |e| e.attributes.clone());
        attributes = merge(attributes, &d.attributes);
        attributes["homeExternalId"] = Value::from(home_external);
        attributes["roomExternalId"] = d.room_external_id.clone().map_or(Value::Null, Value::from);
        let name = if d.name.trim().is_empty() { d.uuid.clone() } else { d.name.clone() };
        let input = UpsertDeviceInput {
            integration_id: integration,
            external_id: d.uuid.clone(),
            kind: d.kind,
            name,
            home_id: Some(home),
            room_id: room,
            attributes: Some(attributes),
        };
        let (device, _) = self.devices.upsert_in(tenant, input).await?;
        let st = DeviceStatus { online: d.online, battery: d.battery, signal: d.signal, seen_at: None };
        if st != DeviceStatus::default() {
            self.devices.set_status(tenant, device.id, st).await?;
        }
        for sp in d.passwords {
            let now: DateTime<Utc> = self.clock.now();
            let mut p = match self.repo.password_by_vendor_id(tenant, device.id, sp.vendor_id).await? {
                Some(p) => p,
                None => LockPassword {
                    id: LockPasswordId::new(),
                    tenant_id: tenant,
                    integration_id: integration,
                    device_id: device.id,
                    vendor_id: Some(sp.vendor_id),
                    kind: match sp.vendor_id {
                        999 => PasswordKind::Admin,
                        0..=99 => PasswordKind::Local,
                        3000..=3048 => PasswordKind::ActivationCode,
                        _ => PasswordKind::Platform,
                    },
                    name: String::new(),
                    phone: None,
                    begins_at: None,
                    ends_at: None,
                    pwd_state: None,
                    operation: None,
                    stage: None,
                    error: None,
                    sealed_secret: None,
                    deleted: false,
                    created_at: now,
                    updated_at: now,
                },
            };
            if sp.is_default {
                p.kind = PasswordKind::Admin;
            }
            p.name = sp.name.filter(|n| !n.is_empty()).unwrap_or_else(|| {
                if p.name.is_empty() { format!("password {}", sp.vendor_id) } else { p.name.clone() }
            });
            p.phone = sp.phone.or(p.phone);
            p.begins_at = sp.begins_at.or(p.begins_at);
            p.ends_at = sp.ends_at.or(p.ends_at);
            p.pwd_state = sp.pwd_state.or(p.pwd_state);
            // Keep a result still in flight here; Dingding's stage wins otherwise.
            if sp.stage.is_some() {
                p.operation = sp.operation.or(p.operation);
                p.stage = sp.stage;
                p.error = sp.description.filter(|d| !d.is_empty()).or(p.error);
            }
            p.deleted = false;
            p.updated_at = now;
            self.repo.save_password(tenant, &p).await?;
        }
        Ok(())
    }
}

/// The nightly `SYNC` job of a Dingding integration.
pub struct DingdingSync {
    service: DingdingService,
}

impl DingdingSync {
    pub fn new(service: DingdingService) -> Self {
        Self { service }
    }
}

#[async_trait]
impl PeriodicJob for DingdingSync {
    async fn run(&self, integration: &Integration, _tick: DateTime<Utc>) -> DomainResult<String> {
        Ok(self.service.sync_in(integration).await?.to_string())
    }
}
