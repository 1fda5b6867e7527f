//! Use cases on Dingding devices: lock passwords (6.7-6.15, rate limit 3.5), meter
//! commands and recharges (11.x, 15.3), mirroring homes and rooms (5.x), and recording
//! what Dingding answered to a delivered command.

use super::{
    Accepted, Command, DeviceOperation, DingdingApi, DingdingRepo, LockPassword, LockPasswordId, MeterCommand,
    OperationId, OperationStage, PREFIX, PasswordKind, PasswordOperation, PwdState, Query, Reveal, Revealed,
};
use chrono::{DateTime, Utc};
use domain::deliveries::{DeliveryService, NewDelivery};
use domain::devices::{Device, DeviceKind, DeviceRepo, DeviceService};
use domain::homes::{Home, HomeRepo};
use domain::ids::{DeviceId, IntegrationId, TenantId};
use domain::integrations::{Integration, IntegrationKind, IntegrationRepo};
use domain::limits::RateLimiter;
use domain::security::SecretBox;
use domain::{Actor, Clock, DomainError, DomainResult};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// 3.5: the same password operation on one lock at most 5 times in 2 minutes ...
pub const PASSWORD_OPS_PER_2_MIN: u32 = 5;
/// ... and 100 times in 24 hours.
pub const PASSWORD_OPS_PER_DAY: u32 = 100;

/// Input of `addLockPassword`.
#[derive(Debug, Clone)]
pub struct AddPasswordInput {
    pub device_id: DeviceId,
    pub password: String,
    pub name: String,
    pub phone: Option<String>,
    pub begins_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
}

/// Input of `updateLockPassword`; `None` keeps the current value.
#[derive(Debug, Clone)]
pub struct UpdatePasswordInput {
    pub id: LockPasswordId,
    pub password: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub begins_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
}

/// Input of `addLockActivationCode` (6.14).
#[derive(Debug, Clone)]
pub struct ActivationCodeInput {
    pub device_id: DeviceId,
    /// 1 tenant, 2 staff, 3 admin.
    pub cmd: i64,
    pub name: String,
    pub phone: String,
    pub ends_at: Option<DateTime<Utc>>,
}

/// Input of `updateLockActivationCode` (6.15); `None` keeps the current value.
#[derive(Debug, Clone)]
pub struct UpdateActivationCodeInput {
    pub id: LockPasswordId,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub ends_at: Option<DateTime<Utc>>,
}

/// 6.14 `CMD`: the password ids of activation codes, 3000 the admin's (which has no end).
const ACTIVATION_CODE_IDS: std::ops::RangeInclusive<i64> = 3000..=3048;
const ADMIN_ACTIVATION_CODE_ID: i64 = 3000;

/// 6.14/6.15 `permission_end`: after the next full hour but one (at 15:28, 17:00 or later).
fn check_code_end(now: DateTime<Utc>, end: DateTime<Utc>) -> DomainResult<()> {
    use chrono::{DurationRound, TimeDelta};
    let hour = now.duration_trunc(TimeDelta::hours(1)).map_err(|e| DomainError::Unknown(e.into()))?;
    if end < hour + TimeDelta::hours(2) {
        return Err(DomainError::invalid("endsAt", "must be at the next full hour but one or later (6.15)"));
    }
    Ok(())
}

/// Input of `sendMeterCommand` on a Dingding meter.
#[derive(Debug, Clone)]
pub struct MeterCommandInput {
    pub device_id: DeviceId,
    pub command: MeterCommand,
    pub amount: Option<Decimal>,
    pub params: Value,
}

/// Everything the Dingding use cases run on.
pub struct DingdingPorts {
    pub repo: Arc<dyn DingdingRepo>,
    pub api: Arc<dyn DingdingApi>,
    pub devices: DeviceService,
    pub device_repo: Arc<dyn DeviceRepo>,
    pub homes: Arc<dyn HomeRepo>,
    pub integrations: Arc<dyn IntegrationRepo>,
    pub deliveries: DeliveryService,
    pub limiter: Arc<dyn RateLimiter>,
    pub secrets: Arc<dyn SecretBox>,
    pub tickets: domain::tickets::TicketService,
    /// Password windows, record stamps and alarm times.
    pub clock: Arc<dyn Clock>,
}

/// The Dingding use cases.
#[derive(Clone)]
pub struct DingdingService {
    pub(super) repo: Arc<dyn DingdingRepo>,
    pub(super) api: Arc<dyn DingdingApi>,
    pub(super) devices: DeviceService,
    pub(super) device_repo: Arc<dyn DeviceRepo>,
    pub(super) homes: Arc<dyn HomeRepo>,
    pub(super) integrations: Arc<dyn IntegrationRepo>,
    pub(super) deliveries: DeliveryService,
    pub(super) limiter: Arc<dyn RateLimiter>,
    pub(super) secrets: Arc<dyn SecretBox>,
    pub(super) tickets: domain::tickets::TicketService,
    pub(super) clock: Arc<dyn Clock>,
}

/// The delivery that sends `cmd` (its payload), in the order of `order`.
pub(super) fn delivery(
    integration: IntegrationId,
    order: String,
    key: String,
    cmd: &Command,
) -> DomainResult<NewDelivery> {
    let payload = serde_json::to_value(cmd).map_err(|e| DomainError::Unknown(e.into()))?;
    Ok(NewDelivery {
        integration_id: integration,
        kind: cmd.kind(),
        idempotency_key: key,
        order_key: Some(order),
        payload,
        subject: None,
    })
}

fn check_password(p: &str) -> DomainResult<()> {
    if p.len() == 6 && p.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(DomainError::invalid("password", "6 digits"))
    }
}

fn check_text(field: &str, s: &str, max: usize) -> DomainResult<String> {
    let t = s.trim();
    if t.is_empty() || t.chars().count() > max || t.chars().any(char::is_control) {
        return Err(DomainError::invalid(field, format!("1-{max} printable characters")));
    }
    Ok(t.to_owned())
}

fn check_phone(phone: Option<String>) -> DomainResult<Option<String>> {
    match phone.map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()) {
        None => Ok(None),
        Some(p) if p.len() <= 32 && p.bytes().all(|b| b.is_ascii_digit() || b == b'+' || b == b'-') => Ok(Some(p)),
        Some(_) => Err(DomainError::invalid("phone", "digits, + and -, at most 32")),
    }
}

fn check_window(begins: Option<DateTime<Utc>>, ends: Option<DateTime<Utc>>) -> DomainResult<()> {
    if let (Some(b), Some(e)) = (begins, ends)
        && b >= e
    {
        return Err(DomainError::invalid("endsAt", "must be after beginsAt"));
    }
    Ok(())
}

impl DingdingService {
    pub fn new(p: DingdingPorts) -> Self {
        Self {
            repo: p.repo,
            api: p.api,
            devices: p.devices,
            device_repo: p.device_repo,
            homes: p.homes,
            integrations: p.integrations,
            deliveries: p.deliveries,
            limiter: p.limiter,
            secrets: p.secrets,
            tickets: p.tickets,
            clock: p.clock,
        }
    }

    /// The tenant's device of `kinds` on a Dingding integration.
    async fn device_of(&self, tenant: TenantId, id: DeviceId, kinds: &[DeviceKind]) -> DomainResult<Device> {
        let device = self.device_repo.get(tenant, id).await?.ok_or(DomainError::NotFound("device"))?;
        let integration = self.integration(tenant, device.integration_id).await?;
        if integration.kind != IntegrationKind::Dingding {
            return Err(DomainError::invalid("deviceId", "not a device of a DINGDING integration"));
        }
        if !kinds.contains(&device.kind) {
            let names: Vec<_> = kinds.iter().map(DeviceKind::as_str).collect();
            return Err(DomainError::invalid("deviceId", format!("must be a {} device", names.join(" or "))));
        }
        Ok(device)
    }

    pub(super) async fn integration(&self, tenant: TenantId, id: IntegrationId) -> DomainResult<Integration> {
        self.integrations.get(tenant, id).await?.ok_or(DomainError::NotFound("integration"))
    }

    /// Counts one `op` on the lock against 3.5, refusing the 6th in 2 minutes (or the
    /// 101st in a day) before anything is sent.
    async fn rate_limit(&self, device: &Device, op: PasswordOperation) -> DomainResult<()> {
        let key = format!("{PREFIX}:pwd:{}:{}", device.id, op.as_str());
        self.limiter
            .acquire(&format!("{key}:2m"), PASSWORD_OPS_PER_2_MIN, Duration::from_secs(120))
            .await?
            .into_result()?;
        self.limiter
            .acquire(&format!("{key}:24h"), PASSWORD_OPS_PER_DAY, Duration::from_secs(86_400))
            .await?
            .into_result()
    }

    async fn enqueue(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        order: String,
        key: String,
        cmd: &Command,
    ) -> DomainResult<()> {
        self.deliveries.enqueue(tenant, delivery(integration, order, key, cmd)?).await.map(|_| ())
    }

    /// Saves the password with the command that carries its operation out, in one
    /// transaction (neither is left without the other), and wakes the queue.
    async fn save_and_send(&self, device: &Device, p: &LockPassword, cmd: Command) -> DomainResult<()> {
        let key = format!("{}:{}:{}", cmd.api(), p.id, uuid::Uuid::now_v7());
        let send = delivery(device.integration_id, format!("lock:{}", device.external_id), key, &cmd)?;
        let id = self.repo.save_password_sending(device.tenant_id, p, send).await?;
        self.deliveries.dispatch(&[id]).await;
        Ok(())
    }

    fn seal(&self, password: &str) -> DomainResult<String> {
        self.secrets.seal(password.as_bytes())
    }

    /// Sends a new password to a lock (`add_password`); the lock's `Password_Add_Service`
    /// result moves it to SUCCEEDED or FAILED.
    ///
    /// # Errors
    /// `Forbidden` for viewers; `NotFound` for a device outside the tenant; `Invalid` on a
    /// field; `RateLimited` for the 6th add on this lock within 2 minutes.
    pub async fn add_password(&self, actor: &Actor, input: AddPasswordInput) -> DomainResult<LockPassword> {
        let tenant = actor.require_operator()?;
        check_password(&input.password)?;
        let name = check_text("name", &input.name, 64)?;
        let phone = check_phone(input.phone)?;
        check_window(input.begins_at, input.ends_at)?;
        let device = self.device_of(tenant, input.device_id, &[DeviceKind::Lock]).await?;
        self.rate_limit(&device, PasswordOperation::Add).await?;
        let now = self.clock.now();
        let sealed = self.seal(&input.password)?;
        let p = LockPassword {
            id: LockPasswordId::new(),
            tenant_id: tenant,
            integration_id: device.integration_id,
            device_id: device.id,
            vendor_id: None,
            kind: PasswordKind::Platform,
            name: name.clone(),
            phone: phone.clone(),
            begins_at: input.begins_at,
            ends_at: input.ends_at,
            pwd_state: Some(PwdState::Initial),
            operation: Some(PasswordOperation::Add),
            stage: Some(OperationStage::Pending),
            error: None,
            sealed_secret: Some(sealed.clone()),
            deleted: false,
            created_at: now,
            updated_at: now,
        };
        let cmd = Command::AddPassword {
            password: p.id,
            uuid: device.external_id.clone(),
            sealed,
            name,
            phone,
            is_default: false,
            begin: input.begins_at.map(|t| t.timestamp()),
            end: input.ends_at.map(|t| t.timestamp()),
        };
        self.save_and_send(&device, &p, cmd).await?;
        Ok(p)
    }

    /// The password and its lock, for an operation that needs the password's lock id.
    async fn password_for(&self, tenant: TenantId, id: LockPasswordId) -> DomainResult<(LockPassword, Device)> {
        let p = self
            .repo
            .get_password(tenant, id)
            .await?
            .filter(|p| !p.deleted)
            .ok_or(DomainError::NotFound("lock password"))?;
        let device = self.device_of(tenant, p.device_id, &[DeviceKind::Lock]).await?;
        if p.stage == Some(OperationStage::Pending) {
            let op = p.operation.map_or("an operation", |o| o.as_str());
            return Err(DomainError::InvalidTransition(format!("{op} is still in progress on this password")));
        }
        Ok((p, device))
    }

    fn vendor_id(p: &LockPassword) -> DomainResult<i64> {
        p.vendor_id.ok_or_else(|| DomainError::InvalidTransition("the lock has not accepted this password".into()))
    }

    fn start(&self, p: &mut LockPassword, op: PasswordOperation) {
        p.operation = Some(op);
        p.stage = Some(OperationStage::Pending);
        p.error = None;
        p.updated_at = self.clock.now();
    }

    /// Changes a password's validity, name, recipient or digits (`update_password`).
    ///
    /// # Errors
    /// As `add_password`; `Conflict` while another operation on it is in progress.
    pub async fn update_password(&self, actor: &Actor, input: UpdatePasswordInput) -> DomainResult<LockPassword> {
        let tenant = actor.require_operator()?;
        if let Some(pw) = &input.password {
            check_password(pw)?;
        }
        let name = input.name.as_deref().map(|n| check_text("name", n, 64)).transpose()?;
        let phone = check_phone(input.phone)?;
        let (mut p, device) = self.password_for(tenant, input.id).await?;
        let password_id = Self::vendor_id(&p)?;
        if p.kind == PasswordKind::Admin && (input.begins_at.is_some() || input.ends_at.is_some()) {
            return Err(DomainError::invalid("beginsAt", "the admin password has no validity window"));
        }
        let begins_at = input.begins_at.or(p.begins_at);
        let ends_at = input.ends_at.or(p.ends_at);
        check_window(begins_at, ends_at)?;
        let sealed = match (&input.password, &p.sealed_secret) {
            (Some(pw), _) => self.seal(pw)?,
            (None, Some(s)) => s.clone(),
            (None, None) => return Err(DomainError::invalid("password", "required: the current digits are not known")),
        };
        self.rate_limit(&device, PasswordOperation::Update).await?;
        self.start(&mut p, PasswordOperation::Update);
        if let Some(n) = name {
            p.name = n;
        }
        if phone.is_some() {
            p.phone = phone;
        }
        p.begins_at = begins_at;
        p.ends_at = ends_at;
        p.sealed_secret = Some(sealed.clone());
        let cmd = Command::UpdatePassword {
            password: p.id,
            uuid: device.external_id.clone(),
            password_id,
            sealed,
            name: p.name.clone(),
            phone: p.phone.clone(),
            begin: begins_at.map(|t| t.timestamp()),
            end: ends_at.map(|t| t.timestamp()),
        };
        self.save_and_send(&device, &p, cmd).await?;
        Ok(p)
    }

    /// Deletes (`delete_password`), freezes (`frozen_password`) or unfreezes
    /// (`unfrozen_password`) a password. A password the lock never accepted is deleted here
    /// only.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound`, `RateLimited`; `Invalid` for deleting or freezing the admin
    /// password (15013); `Conflict` while another operation is in progress.
    pub async fn change_password(
        &self,
        actor: &Actor,
        id: LockPasswordId,
        op: PasswordOperation,
    ) -> DomainResult<LockPassword> {
        let tenant = actor.require_operator()?;
        let (mut p, device) = self.password_for(tenant, id).await?;
        if p.kind == PasswordKind::Admin {
            return Err(DomainError::invalid("id", "the admin password cannot be deleted or frozen"));
        }
        if op == PasswordOperation::Delete && p.vendor_id.is_none() {
            p.deleted = true;
            p.updated_at = self.clock.now();
            self.repo.save_password(tenant, &p).await?;
            return Ok(p);
        }
        let password_id = Self::vendor_id(&p)?;
        let (password, uuid) = (p.id, device.external_id.clone());
        let cmd = match op {
            PasswordOperation::Delete => Command::DeletePassword { password, uuid, password_id },
            PasswordOperation::Freeze => Command::FreezePassword { password, uuid, password_id },
            PasswordOperation::Unfreeze => Command::UnfreezePassword { password, uuid, password_id },
            PasswordOperation::Add | PasswordOperation::Update => {
                return Err(DomainError::invalid("operation", "use addLockPassword or updateLockPassword"));
            }
        };
        self.rate_limit(&device, op).await?;
        self.start(&mut p, op);
        self.save_and_send(&device, &p, cmd).await?;
        Ok(p)
    }

    /// Issues an activation code (`add_password_without_center`, 6.14); the code is sealed
    /// on the password once Dingding answers.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound`, `Invalid`, `RateLimited`.
    pub async fn add_activation_code(&self, actor: &Actor, input: ActivationCodeInput) -> DomainResult<LockPassword> {
        let tenant = actor.require_operator()?;
        if !(1..=3).contains(&input.cmd) {
            return Err(DomainError::invalid("kind", "TENANT, STAFF or ADMIN"));
        }
        let name = check_text("name", &input.name, 64)?;
        let phone = check_phone(Some(input.phone))?.ok_or_else(|| DomainError::invalid("phone", "is required"))?;
        let device = self.device_of(tenant, input.device_id, &[DeviceKind::Lock]).await?;
        self.rate_limit(&device, PasswordOperation::Add).await?;
        let now = self.clock.now();
        let p = LockPassword {
            id: LockPasswordId::new(),
            tenant_id: tenant,
            integration_id: device.integration_id,
            device_id: device.id,
            vendor_id: None,
            kind: PasswordKind::ActivationCode,
            name: name.clone(),
            phone: Some(phone.clone()),
            begins_at: Some(now),
            ends_at: input.ends_at,
            pwd_state: None,
            operation: Some(PasswordOperation::Add),
            stage: Some(OperationStage::Pending),
            error: None,
            sealed_secret: None,
            deleted: false,
            created_at: now,
            updated_at: now,
        };
        let cmd = Command::AddActivationCode {
            password: p.id,
            uuid: device.external_id.clone(),
            cmd: input.cmd,
            name,
            phone,
            end: input.ends_at.map(|t| t.timestamp()),
        };
        self.save_and_send(&device, &p, cmd).await?;
        Ok(p)
    }

    /// Changes an activation code (`update_password_without_center`, 6.15): its name,
    /// recipient or end; Dingding answers the new code at once, which is sealed on it. A
    /// password the lock holds under an activation code id (3000-3048, 6.14) is one, whoever
    /// issued it.
    ///
    /// # Errors
    /// `Forbidden` for viewers; `NotFound` for a password outside the tenant; `Invalid` for
    /// a password that is not an activation code, a bad phone, or an end too soon (6.15) or
    /// missing (all but the admin's code 3000); `Conflict` before the lock accepted it or
    /// while another operation on it is in progress; `RateLimited` (3.5).
    pub async fn update_activation_code(
        &self,
        actor: &Actor,
        input: UpdateActivationCodeInput,
    ) -> DomainResult<LockPassword> {
        let tenant = actor.require_operator()?;
        let name = input.name.as_deref().map(|n| check_text("name", n, 64)).transpose()?;
        let phone = check_phone(input.phone)?;
        let (mut p, device) = self.password_for(tenant, input.id).await?;
        let is_code =
            p.kind == PasswordKind::ActivationCode || p.vendor_id.is_some_and(|v| ACTIVATION_CODE_IDS.contains(&v));
        if !is_code {
            return Err(DomainError::invalid("id", "not an activation code: use updateLockPassword"));
        }
        let password_id = Self::vendor_id(&p)?;
        let phone = phone
            .or_else(|| p.phone.clone())
            .ok_or_else(|| DomainError::invalid("phone", "is required: the code has no recipient yet"))?;
        let ends_at = if password_id == ADMIN_ACTIVATION_CODE_ID {
            None
        } else {
            let end = input
                .ends_at
                .or(p.ends_at)
                .ok_or_else(|| DomainError::invalid("endsAt", "is required for all but the admin code"))?;
            check_code_end(self.clock.now(), end)?;
            Some(end)
        };
        self.rate_limit(&device, PasswordOperation::Update).await?;
        self.start(&mut p, PasswordOperation::Update);
        p.kind = PasswordKind::ActivationCode;
        if let Some(n) = name {
            p.name = n;
        }
        p.phone = Some(phone.clone());
        p.ends_at = ends_at;
        let cmd = Command::UpdateActivationCode {
            password: p.id,
            uuid: device.external_id.clone(),
            password_id,
            name: p.name.clone(),
            phone,
            end: ends_at.map(|t| t.timestamp()),
        };
        self.save_and_send(&device, &p, cmd).await?;
        Ok(p)
    }

    /// A lock's passwords (not deleted).
    ///
    /// # Errors
    /// `NotFound` for a device outside the tenant.
    pub async fn passwords(&self, actor: &Actor, device: DeviceId) -> DomainResult<Vec<LockPassword>> {
        let tenant = actor.require_reader()?;
        self.device_repo.get(tenant, device).await?.ok_or(DomainError::NotFound("device"))?;
        self.repo.passwords(tenant, device).await
    }

    /// # Errors
    /// `NotFound` when absent, deleted or in another tenant.
    pub async fn password(&self, actor: &Actor, id: LockPasswordId) -> DomainResult<LockPassword> {
        let tenant = actor.require_reader()?;
        self.repo.get_password(tenant, id).await?.filter(|p| !p.deleted).ok_or(DomainError::NotFound("lock password"))
    }

    /// The plaintext of an activation code Dingding issued.
    ///
    /// # Errors
    /// `Forbidden` unless tenant admin; `NotFound`; `InvalidTransition` before Dingding answered.
    pub async fn activation_code(&self, actor: &Actor, id: LockPasswordId) -> DomainResult<String> {
        let tenant = actor.require_tenant_admin()?;
        let p = self
            .repo
            .get_password(tenant, id)
            .await?
            .filter(|p| !p.deleted)
            .ok_or(DomainError::NotFound("lock password"))?;
        match (p.kind, &p.sealed_secret) {
            (PasswordKind::ActivationCode, Some(sealed)) => {
                let bytes = self.secrets.open(sealed)?;
                String::from_utf8(bytes).map_err(|e| DomainError::Unknown(e.into()))
            }
            (PasswordKind::ActivationCode, None) => Err(DomainError::InvalidTransition("no code yet".into())),
            _ => Err(DomainError::invalid("id", "not an activation code")),
        }
    }

    /// Reads a lock's admin or dynamic password in plaintext from Dingding (tenant admins;
    /// the mutation is audited).
    ///
    /// # Errors
    /// `Forbidden` unless tenant admin; `NotFound`; `Upstream`.
    pub async fn reveal(&self, actor: &Actor, device: DeviceId, which: Reveal) -> DomainResult<Revealed> {
        let tenant = actor.require_tenant_admin()?;
        let device = self.device_of(tenant, device, &[DeviceKind::Lock]).await?;
        self.api.reveal(tenant, device.integration_id, &device.external_id, which).await
    }

    /// A read-only query about a device of the tenant.
    ///
    /// # Errors
    /// `NotFound` for a device outside the tenant; `Upstream`.
    pub async fn query_device(
        &self,
        actor: &Actor,
        device: DeviceId,
        make: impl FnOnce(&Device) -> Query,
    ) -> DomainResult<Value> {
        let tenant = actor.require_reader()?;
        let device = self.device_repo.get(tenant, device).await?.ok_or(DomainError::NotFound("device"))?;
        let integration = self.integration(tenant, device.integration_id).await?;
        if integration.kind != IntegrationKind::Dingding {
            return Err(DomainError::invalid("deviceId", "not a device of a DINGDING integration"));
        }
        self.api.query(tenant, integration.id, &make(&device)).await
    }

    /// A read-only query on an integration of the tenant.
    ///
    /// # Errors
    /// `NotFound` for an integration outside the tenant; `Upstream`.
    pub async fn query(&self, actor: &Actor, integration: IntegrationId, query: &Query) -> DomainResult<Value> {
        let tenant = actor.require_reader()?;
        let i = self.integration(tenant, integration).await?;
        if i.kind != IntegrationKind::Dingding {
            return Err(DomainError::invalid("integrationId", "not a DINGDING integration"));
        }
        self.api.query(tenant, i.id, query).await
    }

    /// Sends a command to a meter (`elemeter_*`, `read_watermeter`).
    ///
    /// # Errors
    /// `Forbidden` for viewers; `NotFound`; `Invalid` for a command the device cannot take
    /// or a missing amount.
    pub async fn send_meter_command(&self, actor: &Actor, input: MeterCommandInput) -> DomainResult<DeviceOperation> {
        let tenant = actor.require_operator()?;
        let kinds: &[DeviceKind] = match input.command {
            MeterCommand::Read => &[DeviceKind::ElectricityMeter, DeviceKind::WaterMeter],
            MeterCommand::RefreshSignal => &[DeviceKind::ElectricityMeter, DeviceKind::Collector, DeviceKind::Lock],
            _ => &[DeviceKind::ElectricityMeter],
        };
        let device = self.device_of(tenant, input.device_id, kinds).await?;
        let mut params = match input.params {
            Value::Object(m) => m,
            Value::Null => serde_json::Map::new(),
            _ => return Err(DomainError::invalid("params", "must be a JSON object")),
        };
        let need_amount = |field: &str| -> DomainResult<Decimal> {
            input.amount.ok_or_else(|| DomainError::invalid(field, "is required for this command"))
        };
        match input.command {
            MeterCommand::Recharge => {
                let amount = need_amount("amount")?;
                if amount <= Decimal::ZERO {
                    return Err(DomainError::invalid("amount", "must be positive"));
                }
                return self.recharge(tenant, &device, amount, None).await;
            }
            MeterCommand::SetOverdraft if !params.contains_key("overdraft") => {
                params.insert("overdraft".into(), json!(need_amount("amount")?.to_string()));
            }
            MeterCommand::SetMaxCapacity if !params.contains_key("capacity") => {
                params.insert("capacity".into(), json!(need_amount("amount")?.to_string()));
            }
            MeterCommand::SetHomePrice if !params.contains_key("price") => {
                params.insert("price".into(), json!(need_amount("amount")?.to_string()));
            }
            MeterCommand::SetPriceWay => {
                let way = params.get("way").and_then(Value::as_str).unwrap_or_default();
                domain::tariffs::PriceWay::parse(way)
                    .map_err(|_| DomainError::invalid("params.way", "HOME, UNIFIED or ROOM"))?;
            }
            MeterCommand::SetPayType => {
                let t = params.get("payType").and_then(Value::as_str).unwrap_or_default();
                if !matches!(t, "PREPAID" | "POSTPAID") {
                    return Err(DomainError::invalid("params.payType", "PREPAID or POSTPAID"));
                }
            }
            MeterCommand::ForceOpen if !params.get("enabled").is_some_and(Value::is_boolean) => {
                return Err(DomainError::invalid("params.enabled", "true or false"));
            }
            MeterCommand::SetHomePrice => {}
            _ => {}
        }
        if device.kind == DeviceKind::WaterMeter {
            let m = device.attributes.get("manufactory").and_then(Value::as_str).unwrap_or("cy").to_owned();
            params.insert("manufactory".into(), json!(m));
        }
        if let Some(room) = device.attributes.get("roomExternalId").cloned() {
            params.entry("roomId").or_insert(room);
        }
        if let Some(home) = device.attributes.get("homeExternalId").cloned() {
            params.entry("homeId").or_insert(home);
        }
        self.start_operation(tenant, &device, input.command, Value::Object(params), None).await
    }

    async fn start_operation(
        &self,
        tenant: TenantId,
        device: &Device,
        command: MeterCommand,
        params: Value,
        trade_no: Option<String>,
    ) -> DomainResult<DeviceOperation> {
        let now = self.clock.now();
        let op = DeviceOperation {
            id: OperationId::new(),
            tenant_id: tenant,
            integration_id: device.integration_id,
            device_id: device.id,
            command,
            params: params.clone(),
            service_id: None,
            trade_no: trade_no.clone(),
            stage: OperationStage::Pending,
            error: None,
            result: Value::Null,
            created_at: now,
            updated_at: now,
        };
        let cmd = Command::Meter { operation: op.id, uuid: device.external_id.clone(), command, params };
        let key = match &trade_no {
            Some(t) => format!("elemeter_charge:{t}"),
            None => format!("{}:{}", cmd.api(), op.id),
        };
        // The operation and its command in one transaction.
        let send = delivery(device.integration_id, format!("meter:{}", device.external_id), key, &cmd)?;
        let id = self.repo.save_operation_sending(tenant, &op, send).await?;
        self.deliveries.dispatch(&[id]).await;
        Ok(op)
    }

    async fn recharge(
        &self,
        tenant: TenantId,
        device: &Device,
        amount: Decimal,
        trade_no: Option<String>,
    ) -> DomainResult<DeviceOperation> {
        let trade_no = trade_no.unwrap_or_else(|| format!("ly{}", uuid::Uuid::now_v7().simple()));
        if let Some(op) = self.repo.operation_by_trade_no(tenant, device.integration_id, &trade_no).await? {
            return Ok(op);
        }
        let params = json!({"amount": amount.to_string(), "tradeNo": trade_no});
        match self.start_operation(tenant, device, MeterCommand::Recharge, params, Some(trade_no.clone())).await {
            // The same trade recorded concurrently: the first one stands.
            Err(DomainError::Duplicate(_)) => self
                .repo
                .operation_by_trade_no(tenant, device.integration_id, &trade_no)
                .await?
                .ok_or(DomainError::NotFound("operation")),
            other => other,
        }
    }

    /// After `rechargeMeter` wrote the ledger: a Dingding electricity meter is charged too
    /// (`elemeter_charge`, `trade_num` = the trade number, so a repeat is sent once).
    /// Other devices answer `None`.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    pub async fn recharged(
        &self,
        actor: &Actor,
        device: DeviceId,
        amount: Decimal,
        trade_no: Option<String>,
    ) -> DomainResult<Option<DeviceOperation>> {
        let tenant = actor.require_operator()?;
        let Ok(device) = self.device_of(tenant, device, &[DeviceKind::ElectricityMeter]).await else { return Ok(None) };
        self.recharge(tenant, &device, amount, trade_no).await.map(Some)
    }

    /// # Errors
    /// `NotFound` for a device outside the tenant.
    pub async fn operations(&self, actor: &Actor, device: DeviceId) -> DomainResult<Vec<DeviceOperation>> {
        let tenant = actor.require_reader()?;
        self.device_repo.get(tenant, device).await?.ok_or(DomainError::NotFound("device"))?;
        self.repo.operations(tenant, device, 100).await
    }

    /// # Errors
    /// `NotFound`.
    pub async fn operation(&self, actor: &Actor, id: OperationId) -> DomainResult<DeviceOperation> {
        let tenant = actor.require_reader()?;
        self.repo.get_operation(tenant, id).await?.ok_or(DomainError::NotFound("operation"))
    }

    /// The Dingding integration a home mirrors, if any.
    async fn mirror_of(&self, tenant: TenantId, home: &Home) -> DomainResult<Option<Integration>> {
        super::mirror::mirror_of(&*self.integrations, tenant, home).await
    }

    /// The `home_id` a new home of a Dingding integration gets there (5.1: chosen by the
    /// caller, globally unique): the given external id, else a fresh one. Other homes keep
    /// theirs.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    pub async fn external_id_for_home(
        &self,
        actor: &Actor,
        integration: Option<IntegrationId>,
        given: Option<String>,
    ) -> DomainResult<Option<String>> {
        let tenant = actor.require_reader()?;
        let Some(id) = integration else { return Ok(given) };
        match self.integrations.get(tenant, id).await? {
            Some(i) if i.kind == IntegrationKind::Dingding && given.is_none() => {
                Ok(Some(format!("ly{}", uuid::Uuid::now_v7().simple())))
            }
            _ => Ok(given),
        }
    }

    /// The `room_id` a new room of a mirrored home gets at Dingding.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    pub async fn external_id_for_room(
        &self,
        actor: &Actor,
        home: domain::ids::HomeId,
        given: Option<String>,
    ) -> DomainResult<Option<String>> {
        let tenant = actor.require_reader()?;
        let Some(h) = self.homes.get_home(tenant, home).await? else { return Ok(given) };
        if given.is_none() && self.mirror_of(tenant, &h).await?.is_some() {
            return Ok(Some(format!("ly{}", uuid::Uuid::now_v7().simple())));
        }
        Ok(given)
    }
}

/// Input of `authorizeRoomBluetooth` / `revokeRoomBluetooth` (14.1, 14.2).
#[derive(Debug, Clone)]
pub struct BluetoothInput {
    pub home_id: domain::ids::HomeId,
    pub room_ids: Vec<domain::ids::RoomId>,
    pub phone: String,
    /// 1 manage, 2 open by bluetooth.
    pub auth_type: i64,
    pub begins_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
}

impl DingdingService {
    /// Grants (`auth_room`) or revokes (`unauth_room`) bluetooth access to rooms of a
    /// mirrored home (14.x, v2).
    ///
    /// # Errors
    /// `Forbidden` for viewers; `NotFound` for a home or room outside the tenant; `Invalid`
    /// for a home not mirrored to Dingding or a bad phone.
    pub async fn bluetooth(&self, actor: &Actor, input: BluetoothInput, revoke: bool) -> DomainResult<()> {
        let tenant = actor.require_operator()?;
        let phone = check_phone(Some(input.phone))?.ok_or_else(|| DomainError::invalid("phone", "is required"))?;
        check_window(input.begins_at, input.ends_at)?;
        let home = self.homes.get_home(tenant, input.home_id).await?.ok_or(DomainError::NotFound("home"))?;
        let integration = self
            .mirror_of(tenant, &home)
            .await?
            .ok_or_else(|| DomainError::invalid("homeId", "not a Dingding home"))?;
        let home_id = home.external_id.clone().ok_or_else(|| DomainError::invalid("homeId", "not a Dingding home"))?;
        let mut room_ids = Vec::with_capacity(input.room_ids.len());
        for r in &input.room_ids {
            let room = self
                .homes
                .get_room(tenant, *r)
                .await?
                .filter(|x| x.home_id == home.id)
                .ok_or(DomainError::NotFound("room"))?;
            room_ids.push(
                room.external_id.ok_or_else(|| DomainError::invalid("roomIds", "a room not mirrored to Dingding"))?,
            );
        }
        if room_ids.is_empty() {
            return Err(DomainError::invalid("roomIds", "at least one room"));
        }
        let cmd = if revoke {
            Command::UnauthRoom { phone, home_id, room_ids }
        } else {
            Command::AuthRoom {
                phone,
                home_id,
                room_ids,
                auth_type: input.auth_type,
                begin: input.begins_at.map(|t| t.timestamp()),
                end: input.ends_at.map(|t| t.timestamp()),
            }
        };
        let key = format!("{}:{}", cmd.api(), uuid::Uuid::now_v7());
        self.enqueue(tenant, integration.id, format!("home:{}", home.id), key, &cmd).await
    }
}

/// Records what Dingding answered to a delivered command; the `dingding` sender calls it
/// (it runs before the services exist, so it holds the repository only).
#[derive(Clone)]
pub struct Outcomes {
    repo: Arc<dyn DingdingRepo>,
    secrets: Arc<dyn SecretBox>,
    clock: Arc<dyn Clock>,
}

impl Outcomes {
    pub fn new(repo: Arc<dyn DingdingRepo>, secrets: Arc<dyn SecretBox>) -> Self {
        Self { repo, secrets, clock: domain::clock::system() }
    }

    /// Stamps records with the time of `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The sealed plaintext of a command's password, for the sender to encrypt.
    ///
    /// # Errors
    /// `Unknown` when the sealed value does not open (another key).
    pub fn open(&self, sealed: &str) -> DomainResult<String> {
        String::from_utf8(self.secrets.open(sealed)?).map_err(|e| DomainError::Unknown(e.into()))
    }

    /// Dingding accepted `cmd`.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    pub async fn accepted(&self, tenant: TenantId, cmd: &Command, a: Accepted) -> DomainResult<()> {
        match cmd {
            Command::AddPassword { password, .. }
            | Command::AddActivationCode { password, .. }
            | Command::UpdateActivationCode { password, .. } => {
                let Some(mut p) = self.repo.get_password(tenant, *password).await? else { return Ok(()) };
                if p.vendor_id.is_none() {
                    p.vendor_id = a.password_id;
                }
                if p.kind == PasswordKind::ActivationCode {
                    // 6.14: issuing a code is not asynchronous; it is done when answered.
                    p.stage = Some(OperationStage::Succeeded);
                    if let Some(code) = &a.code {
                        p.sealed_secret = Some(self.secrets.seal(code.as_bytes())?);
                    }
                }
                p.updated_at = self.clock.now();
                self.repo.save_password(tenant, &p).await
            }
            Command::AddTicket { ticket, .. } => match &a.ticket_id {
                Some(ext) => self.repo.set_ticket_external(tenant, *ticket, ext).await,
                None => Ok(()),
            },
            Command::Meter { operation, command, .. } => {
                let Some(mut op) = self.repo.get_operation(tenant, *operation).await? else { return Ok(()) };
                if op.service_id.is_none() {
                    op.service_id = a.service_id;
                }
                if !command.has_service_result() && op.stage == OperationStage::Pending {
                    op.stage = OperationStage::Succeeded;
                }
                op.updated_at = self.clock.now();
                self.repo.save_operation(tenant, &op).await
            }
            _ => Ok(()),
        }
    }

    /// Dingding refused `cmd` for good.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    pub async fn refused(&self, tenant: TenantId, cmd: &Command, error: &str) -> DomainResult<()> {
        match cmd {
            Command::AddPassword { password, .. }
            | Command::UpdatePassword { password, .. }
            | Command::DeletePassword { password, .. }
            | Command::FreezePassword { password, .. }
            | Command::UnfreezePassword { password, .. }
            | Command::AddActivationCode { password, .. }
            | Command::UpdateActivationCode { password, .. } => {
                let Some(mut p) = self.repo.get_password(tenant, *password).await? else { return Ok(()) };
                p.stage = Some(OperationStage::Failed);
                p.error = Some(error.to_owned());
                p.updated_at = self.clock.now();
                self.repo.save_password(tenant, &p).await
            }
            Command::Meter { operation, .. } => {
                let Some(mut op) = self.repo.get_operation(tenant, *operation).await? else { return Ok(()) };
                op.stage = OperationStage::Failed;
                op.error = Some(error.to_owned());
                op.updated_at = self.clock.now();
                self.repo.save_operation(tenant, &op).await
            }
            _ => Ok(()),
        }
    }
}
