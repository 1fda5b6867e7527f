//! Processing a stored callback (sections 8, 9, 12, 13, 16): alarms, readings, online
//! state, local passwords, installs, and the results of password and meter operations.

use super::{
    Callback, DingdingService, Fact, Handled, LockPassword, LockPasswordId, MeterCommand, OperationStage, PasswordKind,
    PasswordOperation, PwdState, SERVICE_OK, ServiceResult, password_error_text,
};
use chrono::{DateTime, Utc};
use domain::alarms::{AlarmKind, AlarmSeverity, RaiseAlarm};
use domain::devices::{Device, DeviceFilter, DeviceKind, DeviceStatus, NewReading, UpsertDeviceInput};
use domain::ids::{InboundEventId, IntegrationId, TenantId};
use domain::ingest::Fact as Neutral;

/// A meter's register (kWh, m3) as a fact to bill: a meter with a tariff assigned is charged
/// for what it used since its last reading (`domain::tariffs::billing`), once per time.
fn register(device: domain::ids::DeviceId, total: f64, at: DateTime<Utc>) -> Option<Neutral> {
    let total: rust_decimal::Decimal = total.to_string().parse().ok()?;
    let reference = format!("dingding:{}", at.timestamp_millis());
    Some(Neutral::MeterTotal { device, total, at, reference, answered: false })
}
use domain::{DomainError, DomainResult, PageRequest};
use serde_json::{Value, json};

/// An alarm of a Dingding device; `code` is the callback's name.
fn alarm(
    at: DateTime<Utc>,
    d: &Device,
    kind: &'static str,
    severity: AlarmSeverity,
    message: String,
    code: &str,
    event: InboundEventId,
) -> RaiseAlarm {
    RaiseAlarm {
        device_id: Some(d.id),
        integration_id: Some(d.integration_id),
        ticket_id: None,
        kind: AlarmKind::system(kind),
        severity,
        message,
        vendor_code: Some(code.to_owned()),
        vendor_text: None,
        inbound_event_id: Some(event),
        raised_at: at,
        attributes: json!({}),
    }
}

fn status(online: Option<bool>, battery: Option<i32>, at: DateTime<Utc>) -> DeviceStatus {
    DeviceStatus { online, battery, signal: None, seen_at: Some(at) }
}

fn raised(alarm: RaiseAlarm) -> Neutral {
    Neutral::AlarmRaised { alarm, plan: None }
}

/// A device's offline or online callback: its state, and its `DEVICE_OFFLINE` alarm.
/// `now` is when the alarm is raised, `at` when the device reported.
fn offline_facts(
    now: DateTime<Utc>,
    d: &Device,
    offline: bool,
    at: DateTime<Utc>,
    name: &str,
    event: InboundEventId,
) -> Vec<Neutral> {
    let what = format!("{} offline ({name})", d.kind.as_str());
    let key = alarm(now, d, "DEVICE_OFFLINE", AlarmSeverity::Major, what, name, event);
    let change = if offline {
        raised(key)
    } else {
        Neutral::AlarmCleared { key, note: format!("back online ({name})"), plan: None }
    };
    vec![Neutral::Status { device: d.id, status: status(Some(!offline), None, at) }, change]
}

/// Devices read ahead for a batch of callbacks, by uuid (`None`: no such device). A uuid
/// not in it is looked up.
pub type Known = std::collections::HashMap<String, Option<Device>>;

impl DingdingService {
    /// The devices of `uuids` on the integration, read in one query (see [`Known`]).
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    pub async fn read_ahead(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        uuids: Vec<String>,
    ) -> DomainResult<Known> {
        let found = self.devices.find_by_externals(tenant, integration, &uuids).await?;
        let mut known: Known = uuids.into_iter().map(|u| (u, None)).collect();
        for d in found {
            known.insert(d.external_id.clone(), Some(d));
        }
        Ok(known)
    }

    /// Applies one stored callback. `name` is its event or service name; its devices are
    /// taken from `known` where it has them.
    ///
    /// # Errors
    /// `Unknown` on storage failure (the event is marked FAILED).
    pub async fn handle(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        event: InboundEventId,
        name: &str,
        cb: Callback,
        known: Option<&Known>,
    ) -> DomainResult<Handled> {
        match cb {
            Callback::Unknown { name } => Ok(Handled::Ignored(format!("{name} is not a documented callback"))),
            Callback::Service { service_id, uuid, result } => {
                self.service_result(tenant, integration, &service_id, uuid.as_deref(), result).await
            }
            Callback::Event { uuid, home_id, room_id, at, fact } => {
                self.event(tenant, integration, event, name, uuid, home_id, room_id, at, fact, known).await
            }
        }
    }

    async fn device(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        uuid: Option<&str>,
    ) -> DomainResult<Option<Device>> {
        match uuid.filter(|u| !u.is_empty()) {
            Some(u) => self.devices.find_by_external(tenant, integration, u).await,
            None => Ok(None),
        }
    }

    /// `device`, from `known` when it has the uuid.
    async fn known_device(
        &self,
        known: Option<&Known>,
        tenant: TenantId,
        integration: IntegrationId,
        uuid: Option<&str>,
    ) -> DomainResult<Option<Device>> {
        let Some(u) = uuid.filter(|u| !u.is_empty()) else { return Ok(None) };
        match known.and_then(|k| k.get(u)) {
            Some(d) => Ok(d.clone()),
            None => self.device(tenant, integration, Some(u)).await,
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn event(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        event: InboundEventId,
        name: &str,
        uuid: Option<String>,
        home_id: Option<String>,
        room_id: Option<String>,
        at: DateTime<Utc>,
        fact: Fact,
        known: Option<&Known>,
    ) -> DomainResult<Handled> {
        match fact {
            Fact::Other { name } => return Ok(Handled::Ignored(format!("{name} is not a documented event"))),
            Fact::InstallerSubmitted => return self.installer_submitted(tenant, integration, home_id.as_deref()).await,
            Fact::Installed { kind, gateway_uuid, amount } => {
                return self
                    .installed(tenant, integration, uuid, home_id, room_id, kind, gateway_uuid, amount, at)
                    .await;
            }
            Fact::Replaced { old_uuid, kind } => {
                return self.replaced(tenant, integration, uuid, &old_uuid, home_id, room_id, kind).await;
            }
            Fact::MeterHistory { entries } => {
                let mut facts = Vec::new();
                for e in entries {
                    let Some(d) = self.known_device(known, tenant, integration, Some(&e.uuid)).await? else {
                        continue;
                    };
                    let (kind, what) = match e.event_id {
                        1 => ("METER_OVER_CAPACITY", format!("over capacity ({})", e.capacity.unwrap_or_default())),
                        2 => ("METER_OVER_AMOUNT", format!("out of credit ({})", e.amount.unwrap_or_default())),
                        _ => continue,
                    };
                    facts.push(raised(alarm(self.clock.now(), &d, kind, AlarmSeverity::Major, what, name, event)));
                }
                return Ok(if facts.is_empty() {
                    Handled::Ignored("no known meter in the history".into())
                } else {
                    Handled::Facts(facts)
                });
            }
            _ => {}
        }
        let Some(d) = self.known_device(known, tenant, integration, uuid.as_deref()).await? else {
            return Ok(Handled::Ignored(format!("unknown device {}", uuid.unwrap_or_default())));
        };
        let t = tenant;
        let now = self.clock.now();
        let seen = |online: Option<bool>, battery: Option<i32>| Neutral::Status {
            device: d.id,
            status: status(online, battery, at),
        };
        let reading = |metric: &str, value: Value, ts: DateTime<Utc>| Neutral::Readings {
            device: d.id,
            readings: vec![NewReading { metric: metric.into(), value, ts }],
        };
        let raise = |kind: &'static str, severity: AlarmSeverity, msg: String| {
            raised(alarm(now, &d, kind, severity, msg, name, event))
        };
        let clear = |kind: &'static str, note: String| Neutral::AlarmCleared {
            key: alarm(now, &d, kind, AlarmSeverity::Minor, String::new(), name, event),
            note,
            plan: None,
        };
        let facts = match fact {
            Fact::BatteryLow { level } => {
                let msg = format!("battery low ({}%)", level.map_or("?".into(), |l| l.to_string()));
                vec![seen(None, level), raise("LOCK_LOW_BATTERY", AlarmSeverity::Minor, msg)]
            }
            Fact::BatteryRecovered { level } => {
                vec![seen(None, level), clear("LOCK_LOW_BATTERY", "battery recovered (clearBatteryAlarm)".into())]
            }
            Fact::Battery { level } => vec![seen(None, level)],
            Fact::Tampered => vec![raise("LOCK_TAMPERED", AlarmSeverity::Critical, "the lock is being forced".into())],
            Fact::WrongPassword => {
                vec![raise("LOCK_WRONG_PASSWORD", AlarmSeverity::Major, "three wrong passwords in a row".into())]
            }
            Fact::AdminPasswordSynced { ids } => {
                for id in ids {
                    self.local_password(&d, id, PasswordKind::Admin).await?;
                }
                return Ok(Handled::Processed);
            }
            Fact::LocalPasswordSet { id, .. } => {
                let kind = if id == 999 { PasswordKind::Admin } else { PasswordKind::Local };
                self.local_password(&d, id, kind).await?;
                return Ok(Handled::Processed);
            }
            Fact::LocalPasswordDeleted { id } => {
                if let Some(mut p) = self.repo.password_by_vendor_id(t, d.id, id).await? {
                    p.deleted = true;
                    p.updated_at = self.clock.now();
                    self.repo.save_password(t, &p).await?;
                }
                return Ok(Handled::Processed);
            }
            Fact::DoorOpened { source, source_id, source_name } => {
                let value = json!({"source": source, "sourceId": source_id, "sourceName": source_name});
                vec![reading("door_opened", value, at)]
            }
            Fact::GatewayOffline(offline) => {
                let mut facts = offline_facts(now, &d, offline, at, name, event);
                facts.extend(self.sub_devices(&d, offline).await?);
                facts
            }
            Fact::DeviceOffline(offline) => offline_facts(now, &d, offline, at, name, event),
            Fact::WaterGatewayOffline(offline) => {
                let change = if offline {
                    raise("WATER_GATEWAY_OFFLINE", AlarmSeverity::Major, "water gateway offline".into())
                } else {
                    clear("WATER_GATEWAY_OFFLINE", "water gateway online (waterGatewayOnlineAlarm)".into())
                };
                vec![seen(Some(!offline), None), change]
            }
            Fact::Uninstalled { .. } => {
                let mut attributes = d.attributes.clone();
                attributes["installed"] = json!(false);
                self.upsert(t, &d, None, None, attributes).await?;
                return Ok(Handled::Processed);
            }
            Fact::MeterPower { amount, at: when } => {
                let ts = when.unwrap_or(at);
                let mut facts = vec![reading("consume_amount", json!(amount), ts)];
                facts.extend(register(d.id, amount, ts));
                facts
            }
            Fact::MeterPowerHistory { mut points } => {
                points.sort_by_key(|(ts, _)| *ts);
                let totals: Vec<Neutral> = points.iter().filter_map(|(ts, v)| register(d.id, *v, *ts)).collect();
                let readings = points
                    .into_iter()
                    .map(|(ts, v)| NewReading { metric: "consume_amount".into(), value: json!(v), ts })
                    .collect();
                let mut facts = vec![Neutral::Readings { device: d.id, readings }];
                facts.extend(totals);
                facts
            }
            Fact::MeterOverAmount { amount } => {
                let msg = format!("out of credit ({})", amount.unwrap_or_default());
                vec![raise("METER_OVER_AMOUNT", AlarmSeverity::Major, msg)]
            }
            Fact::MeterOverCapacity { capacity } => {
                let msg = format!("over capacity ({})", capacity.unwrap_or_default());
                vec![raise("METER_OVER_CAPACITY", AlarmSeverity::Major, msg)]
            }
            Fact::MeterLocalClose => vec![reading("switch", json!("ON"), at)],
            Fact::MeterTransmissionError => {
                vec![raise("METER_TRANSMISSION_ERROR", AlarmSeverity::Minor, "meter transmission error".into())]
            }
            Fact::WaterReading { amount } => {
                // The register (m3): billed like an electricity meter's.
                let mut facts = vec![reading("water_amount", json!(amount), at)];
                facts.extend(register(d.id, amount, at));
                facts
            }
            Fact::Other { .. }
            | Fact::InstallerSubmitted
            | Fact::Installed { .. }
            | Fact::Replaced { .. }
            | Fact::MeterHistory { .. } => return Ok(Handled::Processed),
        };
        Ok(Handled::Facts(facts))
    }

    /// A gateway's locks and meters go offline with it, and come back with it.
    async fn sub_devices(&self, gateway: &Device, offline: bool) -> DomainResult<Vec<Neutral>> {
        let filter = DeviceFilter { integration_id: Some(gateway.integration_id), ..DeviceFilter::default() };
        let mut after = None;
        let mut facts = Vec::new();
        loop {
            let page = self.device_repo.list(gateway.tenant_id, &filter, PageRequest::new(Some(100), after)?).await?;
            for d in &page.items {
                let parent = d.attributes.get("centerUuid").and_then(Value::as_str);
                if d.id != gateway.id && parent == Some(gateway.external_id.as_str()) {
                    let status = DeviceStatus { online: Some(!offline), battery: None, signal: None, seen_at: None };
                    facts.push(Neutral::Status { device: d.id, status });
                }
            }
            after = page.items.last().map(|d| d.id.as_uuid());
            if !page.has_next_page {
                return Ok(facts);
            }
        }
    }

    /// A password set on the lock itself (or the admin password synced from it).
    async fn local_password(&self, d: &Device, id: i64, kind: PasswordKind) -> DomainResult<()> {
        let now = self.clock.now();
        let mut p = match self.repo.password_by_vendor_id(d.tenant_id, d.id, id).await? {
            Some(p) => p,
            None => LockPassword {
                id: LockPasswordId::new(),
                tenant_id: d.tenant_id,
                integration_id: d.integration_id,
                device_id: d.id,
                vendor_id: Some(id),
                kind,
                name: if kind == PasswordKind::Admin { "admin".into() } else { format!("local {id}") },
                phone: None,
                begins_at: None,
                ends_at: None,
                pwd_state: Some(PwdState::Effective),
                operation: None,
                stage: None,
                error: None,
                sealed_secret: None,
                deleted: false,
                created_at: now,
                updated_at: now,
            },
        };
        p.deleted = false;
        p.pwd_state = Some(PwdState::Effective);
        p.updated_at = now;
        self.repo.save_password(d.tenant_id, &p).await
    }

    async fn upsert(
        &self,
        tenant: TenantId,
        d: &Device,
        home: Option<domain::ids::HomeId>,
        room: Option<domain::ids::RoomId>,
        attributes: Value,
    ) -> DomainResult<Device> {
        let input = UpsertDeviceInput {
            integration_id: d.integration_id,
            external_id: d.external_id.clone(),
            kind: d.kind,
            name: d.name.clone(),
            home_id: home,
            room_id: room,
            attributes: Some(attributes),
        };
        Ok(self.devices.upsert_in(tenant, input).await?.0)
    }

    /// The home and room a callback's `home_id`/`room_id` name, when mirrored here.
    async fn place(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        home_id: Option<&str>,
        room_id: Option<&str>,
    ) -> DomainResult<(Option<domain::ids::HomeId>, Option<domain::ids::RoomId>)> {
        let Some(home) = home_id.filter(|h| !h.is_empty()) else { return Ok((None, None)) };
        let Some(h) = self.repo.home_by_external(tenant, integration, home).await? else { return Ok((None, None)) };
        let room = match room_id.filter(|r| !r.is_empty() && *r != home) {
            Some(r) => self.repo.room_by_external(tenant, h.id, r).await?.map(|r| r.id),
            None => None,
        };
        Ok((Some(h.id), room))
    }

    #[allow(clippy::too_many_arguments)]
    async fn installed(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        uuid: Option<String>,
        home_id: Option<String>,
        room_id: Option<String>,
        kind: Option<DeviceKind>,
        gateway_uuid: Option<String>,
        amount: Option<f64>,
        at: DateTime<Utc>,
    ) -> DomainResult<Handled> {
        let Some(uuid) = uuid.filter(|u| !u.is_empty()) else { return Ok(Handled::Ignored("no uuid".into())) };
        let existing = self.device(tenant, integration, Some(&uuid)).await?;
        let Some(kind) = kind.or(existing.as_ref().map(|d| d.kind)) else {
            return Ok(Handled::Ignored("unknown device type".into()));
        };
        let (home, room) = self.place(tenant, integration, home_id.as_deref(), room_id.as_deref()).await?;
        let mut attributes = existing.as_ref().map_or_else(|| json!({}), |d| d.attributes.clone());
        attributes["installed"] = json!(true);
        attributes["homeExternalId"] = json!(home_id);
        attributes["roomExternalId"] = json!(room_id);
        if let Some(g) = gateway_uuid {
            attributes["centerUuid"] = json!(g);
        }
        let name =
            existing.as_ref().map_or_else(|| format!("{} {uuid}", kind.as_str().to_lowercase()), |d| d.name.clone());
        let input = UpsertDeviceInput {
            integration_id: integration,
            external_id: uuid,
            kind,
            name,
            home_id: home,
            room_id: room,
            attributes: Some(attributes),
        };
        let (device, _) = self.devices.upsert_in(tenant, input).await?;
        if let Some(a) = amount {
            let r = NewReading { metric: "water_amount".into(), value: json!(a), ts: at };
            self.devices.record_readings(tenant, device.id, vec![r]).await?;
        }
        Ok(Handled::Processed)
    }

    #[allow(clippy::too_many_arguments)]
    async fn replaced(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        uuid: Option<String>,
        old_uuid: &str,
        home_id: Option<String>,
        room_id: Option<String>,
        kind: Option<DeviceKind>,
    ) -> DomainResult<Handled> {
        let Some(uuid) = uuid.filter(|u| !u.is_empty()) else { return Ok(Handled::Ignored("no uuid".into())) };
        let old = self.device(tenant, integration, Some(old_uuid)).await?;
        let Some(kind) = kind.or(old.as_ref().map(|d| d.kind)) else {
            return Ok(Handled::Ignored("unknown device type".into()));
        };
        let (home, room) = self.place(tenant, integration, home_id.as_deref(), room_id.as_deref()).await?;
        let mut attributes = old.as_ref().map_or_else(|| json!({}), |d| d.attributes.clone());
        attributes["installed"] = json!(true);
        attributes["replaces"] = json!(old_uuid);
        let input = UpsertDeviceInput {
            integration_id: integration,
            external_id: uuid.clone(),
            kind,
            name: old.as_ref().map_or_else(|| format!("{} {uuid}", kind.as_str().to_lowercase()), |d| d.name.clone()),
            home_id: home.or(old.as_ref().and_then(|d| d.home_id)),
            room_id: room.or(old.as_ref().and_then(|d| d.room_id)),
            attributes: Some(attributes),
        };
        self.devices.upsert_in(tenant, input).await?;
        if let Some(old) = old {
            let mut a = old.attributes.clone();
            a["installed"] = json!(false);
            a["replacedBy"] = json!(uuid);
            self.upsert(tenant, &old, None, None, a).await?;
        }
        Ok(Handled::Processed)
    }

    /// `installerSubmit` (8.2.10): the installer submitted the home, so its open booked
    /// installations of this integration (PENDING, UNASSIGNED, ASSIGNED) are COMPLETED
    /// (`ticket_state` 4 已完成). Dingding made the change: nothing is sent back. A repeat
    /// finds none open and changes nothing.
    async fn installer_submitted(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        home_id: Option<&str>,
    ) -> DomainResult<Handled> {
        use domain::tickets::{SaveTicketInput, TicketFilter, TicketKind, TicketStatus, WorkOrderStatus as S};
        let Some(home) = home_id.filter(|h| !h.is_empty()) else { return Ok(Handled::Ignored("no home_id".into())) };
        let Some(h) = self.repo.home_by_external(tenant, integration, home).await? else {
            return Ok(Handled::Ignored(format!("unknown home {home}")));
        };
        let filter = TicketFilter {
            kind: Some(TicketKind::Installation),
            integration_id: Some(integration),
            home_id: Some(h.id),
            ..TicketFilter::default()
        };
        let open = [S::Pending, S::Unassigned, S::Assigned].map(TicketStatus::WorkOrder);
        let mut after = None;
        loop {
            let page = self.tickets.list_in(tenant, &filter, PageRequest::new(Some(100), after)?).await?;
            for t in page.items.iter().filter(|t| open.contains(&t.status)) {
                let input = SaveTicketInput {
                    id: Some(t.id),
                    kind: t.kind,
                    integration_id: None,
                    device_id: None,
                    home_id: None,
                    status: Some(S::Completed.as_str().to_owned()),
                    fields: None,
                    external_id: None,
                };
                match self.tickets.save_in(tenant, None, input).await {
                    // Moved meanwhile (or no longer valid): logged, the others go on.
                    Err(e @ (DomainError::Invalid { .. } | DomainError::InvalidTransition(_))) => {
                        tracing::warn!(ticket_id = %t.id, error = %e, "installation order not completed");
                    }
                    other => {
                        other?;
                    }
                }
            }
            after = page.items.last().map(|t| t.id.as_uuid());
            if !page.has_next_page {
                return Ok(Handled::Processed);
            }
        }
    }

    async fn service_result(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        service_id: &str,
        uuid: Option<&str>,
        result: ServiceResult,
    ) -> DomainResult<Handled> {
        let Some(d) = self.device(tenant, integration, uuid).await? else {
            return Ok(Handled::Ignored(format!("unknown device {}", uuid.unwrap_or_default())));
        };
        match result {
            ServiceResult::Password { operation, password_id, code } => {
                let passwords = self.repo.passwords(tenant, d.id).await?;
                let pending =
                    |p: &&LockPassword| p.operation == Some(operation) && p.stage == Some(OperationStage::Pending);
                // By the lock's password id; an add's result may come before its answer.
                let found = passwords
                    .iter()
                    .filter(pending)
                    .find(|p| password_id.is_some() && p.vendor_id == password_id)
                    .or_else(|| {
                        passwords
                            .iter()
                            .filter(pending)
                            .find(|p| p.vendor_id.is_none() && operation == PasswordOperation::Add)
                    })
                    .cloned();
                let Some(mut p) = found else {
                    return Ok(Handled::Ignored(format!(
                        "no {} in progress for password {password_id:?}",
                        operation.as_str()
                    )));
                };
                if p.vendor_id.is_none() {
                    p.vendor_id = password_id;
                }
                if code == Some(SERVICE_OK) {
                    p.stage = Some(OperationStage::Succeeded);
                    p.error = None;
                    match operation {
                        PasswordOperation::Add | PasswordOperation::Update | PasswordOperation::Unfreeze => {
                            let upcoming = p.begins_at.is_some_and(|b| b > self.clock.now());
                            p.pwd_state = Some(if upcoming { PwdState::Upcoming } else { PwdState::Effective });
                        }
                        PasswordOperation::Freeze => p.pwd_state = Some(PwdState::Frozen),
                        PasswordOperation::Delete => p.deleted = true,
                    }
                } else {
                    p.stage = Some(OperationStage::Failed);
                    p.error = Some(password_error_text(code.unwrap_or(5103)));
                }
                p.updated_at = self.clock.now();
                self.repo.save_password(tenant, &p).await?;
                Ok(Handled::Processed)
            }
            ServiceResult::Meter { operation_type, code, values } => {
                let mut op =
                    match self.repo.operation_by_service(tenant, integration, service_id).await? {
                        Some(op) => Some(op),
                        // The result came before Dingding's answer was recorded: the oldest
                        // pending operation of that type on the meter.
                        None => self.repo.operations(tenant, d.id, 100).await?.into_iter().rev().find(|o| {
                            o.stage == OperationStage::Pending && o.command.operation_type() == operation_type
                        }),
                    };
                let ok = code == Some(SERVICE_OK);
                if ok
                    && operation_type == Some(5)
                    && let Some(amount) = values
                        .get("consume_amount")
                        .and_then(|v| v.as_f64().or_else(|| v.as_str()?.trim().parse().ok()))
                {
                    let r = NewReading { metric: "consume_amount".into(), value: json!(amount), ts: self.clock.now() };
                    self.devices.record_readings(tenant, d.id, vec![r]).await?;
                }
                let Some(op) = op.as_mut() else {
                    return Ok(Handled::Ignored(format!("no operation for serviceid {service_id}")));
                };
                if op.service_id.is_none() {
                    op.service_id = Some(service_id.to_owned());
                }
                op.stage = if ok { OperationStage::Succeeded } else { OperationStage::Failed };
                op.error =
                    (!ok).then(|| format!("{} meter operation failed", code.map_or("?".into(), |c| c.to_string())));
                op.result = values;
                op.updated_at = self.clock.now();
                if op.command == MeterCommand::SwitchOn || op.command == MeterCommand::SwitchOff {
                    let on = op.command == MeterCommand::SwitchOn;
                    if ok {
                        let r = NewReading {
                            metric: "switch".into(),
                            value: json!(if on { "ON" } else { "OFF" }),
                            ts: self.clock.now(),
                        };
                        self.devices.record_readings(tenant, d.id, vec![r]).await?;
                    }
                }
                self.repo.save_operation(tenant, op).await?;
                Ok(Handled::Processed)
            }
        }
    }
}
