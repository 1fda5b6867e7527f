use super::billing::{MeterState, SupplyChange, bill_reading, in_effect, supply_after};
use super::rules::{Account, BillingModel, LedgerDraft, PayModel, Tier, Tiers, Utility};
use super::{
    LedgerEntry, MeterAccount, MeterAccountRepo, NewTariff, PriceAssignment, PriceScope, PriceWay, Tariff,
    TariffFilter, TariffRepo, effective_price,
};
use crate::clock::{self, Clock};
use crate::devices::{Device, DeviceKind, DeviceRepo};
use crate::homes::HomeRepo;
use crate::ids::{AccountId, DeviceId, HomeId, IntegrationId, RoomId, TariffId, TenantId, UserId};
use crate::integrations::IntegrationRepo;
use crate::outbound::{Message, Outbound};
use crate::{Actor, DomainError, DomainResult, Page, PageRequest};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use std::sync::Arc;

/// How many times a ledger write is retried when another write moved the account first.
const APPLY_ATTEMPTS: usize = 8;

/// Input of `saveTariff`.
#[derive(Debug, Clone)]
pub struct SaveTariffInput {
    pub integration_id: Option<IntegrationId>,
    pub code: String,
    pub utility: Utility,
    pub tiers: Vec<Tier>,
    pub cycle_months: i32,
    pub effective_from: DateTime<Utc>,
    pub clear_cycle: bool,
}

/// Input of `assignTariff`: the terms default to those of the existing account, or to a
/// prepaid, centre-billed account without overdraft.
#[derive(Debug, Clone)]
pub struct AssignTariffInput {
    pub device_id: DeviceId,
    pub tariff_id: TariffId,
    pub pay_model: Option<PayModel>,
    pub billing_model: Option<BillingModel>,
    pub overdraft: Option<Decimal>,
}

/// Which utility a meter kind measures.
fn utility_of(kind: DeviceKind) -> Option<Utility> {
    match kind {
        DeviceKind::GasMeter => Some(Utility::Gas),
        DeviceKind::ElectricityMeter => Some(Utility::Electricity),
        DeviceKind::WaterMeter => Some(Utility::Water),
        _ => None,
    }
}

fn reference(r: Option<String>) -> DomainResult<Option<String>> {
    let Some(r) = r.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()) else { return Ok(None) };
    if r.chars().count() > 128 {
        return Err(DomainError::invalid("tradeNo", "at most 128 characters"));
    }
    Ok(Some(r))
}

/// In-process locks of meter accounts, striped: writers of one account in this process
/// queue here before opening a unit of work, instead of each holding a pooled connection
/// while waiting for the account's row lock (which still orders writers across processes).
pub struct MeterLocks {
    stripes: Vec<Arc<tokio::sync::Mutex<()>>>,
}

impl Default for MeterLocks {
    fn default() -> Self {
        Self { stripes: (0..4096).map(|_| Arc::new(tokio::sync::Mutex::new(()))).collect() }
    }
}

/// A device's stripe: the random tail of its id (many stripes, so that batches of
/// different meters rarely wait on each other).
fn stripe_of(d: &DeviceId) -> u16 {
    let b = *d.as_uuid().as_bytes();
    u16::from_be_bytes([b[14], b[15]])
}

impl MeterLocks {
    /// Locks the accounts of `devices` (in a fixed order: no two callers wait on each other).
    pub async fn lock(&self, devices: &[DeviceId]) -> Vec<tokio::sync::OwnedMutexGuard<()>> {
        let mut idx: Vec<usize> = devices.iter().map(|d| usize::from(stripe_of(d)) % self.stripes.len()).collect();
        idx.sort_unstable();
        idx.dedup();
        let mut guards = Vec::with_capacity(idx.len());
        for i in idx {
            guards.push(self.stripes[i].clone().lock_owned().await);
        }
        guards
    }
}

/// Versioned tariffs, meter accounts and their ledgers.
#[derive(Clone)]
pub struct TariffService {
    tariffs: Arc<dyn TariffRepo>,
    accounts: Arc<dyn MeterAccountRepo>,
    devices: Arc<dyn DeviceRepo>,
    homes: Arc<dyn HomeRepo>,
    integrations: Arc<dyn IntegrationRepo>,
    /// Where the time comes from.
    clock: Arc<dyn Clock>,
    /// Writes with the deliveries the vendor modules plan (price tables, recharges, valves).
    outbound: Option<Outbound>,
    locks: Arc<MeterLocks>,
}

impl TariffService {
    pub fn new(
        tariffs: Arc<dyn TariffRepo>,
        accounts: Arc<dyn MeterAccountRepo>,
        devices: Arc<dyn DeviceRepo>,
        homes: Arc<dyn HomeRepo>,
        integrations: Arc<dyn IntegrationRepo>,
    ) -> Self {
        Self {
            tariffs,
            accounts,
            devices,
            homes,
            integrations,
            clock: clock::system(),
            outbound: None,
            locks: Arc::default(),
        }
    }

    /// Writes tariffs, assignments and ledger entries with the deliveries the vendor modules
    /// plan for them, in one unit of work.
    #[must_use]
    pub fn with_outbound(mut self, outbound: Outbound) -> Self {
        self.outbound = Some(outbound);
        self
    }

    /// Reads the time from `clock` instead of the system clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Binds an electricity price to the tenant (no home), a home, or a room of it, and/or
    /// sets the home's price way. Answers the pricing that now applies to the home (or the
    /// tenant-wide one).
    ///
    /// # Errors
    /// `Forbidden` unless tenant admin; `NotFound` for a home, room or tariff outside the
    /// tenant; `Invalid` for a tariff that is not ELECTRICITY (`tariffId`), a room of another
    /// home (`roomId`), a way without a home (`priceWay`), or nothing to change.
    pub async fn set_electricity_price(
        &self,
        actor: &Actor,
        home: Option<HomeId>,
        room: Option<RoomId>,
        tariff: Option<TariffId>,
        way: Option<PriceWay>,
    ) -> DomainResult<Vec<PriceAssignment>> {
        let tenant = actor.require_tenant_admin()?;
        if tariff.is_none() && way.is_none() {
            return Err(DomainError::invalid("tariffId", "give a tariff, a price way, or both"));
        }
        if let Some(t) = tariff {
            let t = self.tariffs.get(tenant, t).await?.ok_or(DomainError::NotFound("tariff"))?;
            if t.utility != Utility::Electricity {
                return Err(DomainError::invalid("tariffId", "only ELECTRICITY tariffs price homes and rooms"));
            }
        }
        let scope = match (home, room) {
            (None, None) => PriceScope::Tenant,
            (None, Some(_)) => return Err(DomainError::invalid("homeId", "a room's price needs its home")),
            (Some(h), r) => {
                self.homes.get_home(tenant, h).await?.ok_or(DomainError::NotFound("home"))?;
                match r {
                    None => PriceScope::Home(h),
                    Some(r) => {
                        let room = self.homes.get_room(tenant, r).await?.ok_or(DomainError::NotFound("room"))?;
                        if room.home_id != h {
                            return Err(DomainError::invalid("roomId", "the room belongs to another home"));
                        }
                        PriceScope::Room(h, r)
                    }
                }
            }
        };
        if way.is_some() && !matches!(scope, PriceScope::Home(_)) {
            return Err(DomainError::invalid("priceWay", "a price way is set on a home"));
        }
        if let Some(t) = tariff {
            self.tariffs.set_price(tenant, scope, Some(t), None).await?;
        }
        if let Some(w) = way {
            self.tariffs.set_price(tenant, scope, None, Some(w)).await?;
        }
        self.tariffs.prices(tenant, home).await
    }

    /// The electricity prices bound to the tenant and to `home` and its rooms.
    ///
    /// # Errors
    /// `Forbidden` for actors without a tenant.
    pub async fn electricity_prices(&self, actor: &Actor, home: Option<HomeId>) -> DomainResult<Vec<PriceAssignment>> {
        self.tariffs.prices(actor.require_reader()?, home).await
    }

    /// The tariff that prices a meter: its account's own, else (electricity) the price its
    /// home's way picks.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    pub async fn effective_tariff(&self, tenant: TenantId, device: &Device) -> DomainResult<Option<Tariff>> {
        let own = self.accounts.by_device(tenant, device.id).await?.and_then(|a| a.tariff_id);
        let id = match own {
            Some(t) => Some(t),
            None if device.kind == DeviceKind::ElectricityMeter => {
                let prices = self.tariffs.prices(tenant, device.home_id).await?;
                effective_price(&prices, device.home_id, device.room_id)
            }
            None => None,
        };
        match id {
            Some(t) => self.tariffs.get(tenant, t).await,
            None => Ok(None),
        }
    }

    /// `effective_tariff` for a reader.
    ///
    /// # Errors
    /// `NotFound` for a device outside the tenant.
    pub async fn tariff_of(&self, actor: &Actor, device: DeviceId) -> DomainResult<Option<Tariff>> {
        let tenant = actor.require_reader()?;
        let device = self.devices.get(tenant, device).await?.ok_or(DomainError::NotFound("device"))?;
        self.effective_tariff(tenant, &device).await
    }

    /// Saves the next version of the tariff `code`.
    ///
    /// # Errors
    /// `Forbidden` unless tenant admin; `Invalid` naming the field (`code`, `tiers[i].upTo`,
    /// `cycleMonths` ...); `NotFound` for an integration outside the tenant.
    pub async fn save(&self, actor: &Actor, input: SaveTariffInput) -> DomainResult<Tariff> {
        let tenant = actor.require_tenant_admin()?;
        let code = input.code.trim().to_owned();
        if code.is_empty() || code.chars().count() > 64 {
            return Err(DomainError::invalid("code", "1-64 characters"));
        }
        if !(1..=120).contains(&input.cycle_months) {
            return Err(DomainError::invalid("cycleMonths", "1-120"));
        }
        if let Some(i) = input.integration_id {
            self.integrations.get(tenant, i).await?.ok_or(DomainError::NotFound("integration"))?;
        }
        let new = NewTariff {
            integration_id: input.integration_id,
            code,
            utility: input.utility,
            tiers: Tiers::new(input.tiers)?,
            cycle_months: input.cycle_months,
            effective_from: input.effective_from,
            clear_cycle: input.clear_cycle,
        };
        // Two saves of one code race for the same version: the loser takes the next one.
        let mut last = None;
        for _ in 0..3 {
            match self.tariffs.create(tenant, new.clone()).await {
                Err(e @ DomainError::Duplicate(_)) => last = Some(e),
                Ok(tariff) => {
                    if let Some(o) = &self.outbound {
                        let unit = o.begin().await?;
                        o.commit(unit, tenant, &[Message::TariffSaved { tariff: tariff.clone() }]).await?;
                    }
                    return Ok(tariff);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(DomainError::Duplicate("tariff version".into())))
    }

    /// # Errors
    /// `NotFound` when absent or in another tenant.
    pub async fn get(&self, actor: &Actor, id: TariffId) -> DomainResult<Tariff> {
        self.tariffs.get(actor.require_reader()?, id).await?.ok_or(DomainError::NotFound("tariff"))
    }

    /// # Errors
    /// `Forbidden` for actors without a tenant.
    pub async fn list(&self, actor: &Actor, filter: &TariffFilter, page: PageRequest) -> DomainResult<Page<Tariff>> {
        self.tariffs.list(actor.require_reader()?, filter, page).await
    }

    /// Binds a tariff to a meter, opening its account when it has none.
    ///
    /// # Errors
    /// `Forbidden` unless tenant admin; `NotFound` for a device or tariff outside the
    /// tenant; `Invalid { field: "deviceId" }` for a device that is not a meter, `tariffId`
    /// for a tariff of another utility, `overdraft` when negative.
    pub async fn assign(&self, actor: &Actor, input: AssignTariffInput) -> DomainResult<MeterAccount> {
        let tenant = actor.require_tenant_admin()?;
        let device = self.devices.get(tenant, input.device_id).await?.ok_or(DomainError::NotFound("device"))?;
        let tariff = self.tariffs.get(tenant, input.tariff_id).await?.ok_or(DomainError::NotFound("tariff"))?;
        let utility = utility_of(device.kind)
            .ok_or_else(|| DomainError::invalid("deviceId", "only gas, electricity and water meters have accounts"))?;
        if tariff.utility != utility {
            return Err(DomainError::invalid(
                "tariffId",
                format!("a {} tariff cannot price a {}", tariff.utility.as_str(), device.kind.as_str()),
            ));
        }
        for _ in 0..APPLY_ATTEMPTS {
            let Some(existing) = self.accounts.by_device(tenant, device.id).await? else {
                let account = Account::new(
                    input.pay_model.unwrap_or(PayModel::Prepaid),
                    input.billing_model.unwrap_or(BillingModel::Centre),
                    input.overdraft.unwrap_or(Decimal::ZERO),
                )?;
                let opened =
                    self.accounts.open(tenant, device.id, Some(tariff.id), &account, &MeterState::default()).await;
                match opened {
                    Err(DomainError::Duplicate(_)) => continue,
                    other => return self.assigned(tenant, &device, &tariff, other?).await,
                }
            };
            let mut terms = Account::new(
                input.pay_model.unwrap_or(existing.account.pay_model),
                input.billing_model.unwrap_or(existing.account.billing_model),
                input.overdraft.unwrap_or(existing.account.overdraft),
            )?;
            terms.balance = existing.account.balance;
            terms.cycle_usage = existing.account.cycle_usage;
            let mut next = MeterAccount { tariff_id: Some(tariff.id), account: terms, ..existing.clone() };
            if tariff.clear_cycle && existing.tariff_id != Some(tariff.id) {
                next.account.reset_cycle();
                next.cycle_started_at = Some(self.clock.now());
            }
            match self.accounts.save(tenant, &existing, &next, None, None).await {
                Ok((saved, _)) => return self.assigned(tenant, &device, &tariff, saved).await,
                Err(DomainError::InvalidTransition(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(DomainError::Unknown(anyhow::anyhow!("meter account kept changing; gave up after {APPLY_ATTEMPTS} tries")))
    }

    /// Tells the vendor modules of an assignment (a gas meter's DAS switches its price).
    async fn assigned(
        &self,
        tenant: TenantId,
        device: &Device,
        tariff: &Tariff,
        account: MeterAccount,
    ) -> DomainResult<MeterAccount> {
        if let Some(o) = &self.outbound {
            let unit = o.begin().await?;
            let msg = Message::TariffAssigned { device: device.clone(), tariff: tariff.clone() };
            o.commit(unit, tenant, &[msg]).await?;
        }
        Ok(account)
    }

    /// # Errors
    /// `NotFound` when the device has no account or is not the tenant's.
    pub async fn account(&self, actor: &Actor, device: DeviceId) -> DomainResult<MeterAccount> {
        let tenant = actor.require_reader()?;
        self.accounts.by_device(tenant, device).await?.ok_or(DomainError::NotFound("meter account"))
    }

    /// Asks a meter to open or close its valve (`sendMeterCommand` on a gas meter): the
    /// vendor modules plan the command in one unit of work (a gas DAS's 1004).
    ///
    /// # Errors
    /// `Forbidden` for viewers; `NotFound` for a device outside the tenant; `Invalid {
    /// field: "deviceId" }` for a device that is not a gas meter.
    pub async fn meter_command(
        &self,
        actor: &Actor,
        device: DeviceId,
        command: crate::outbound::MeterCommand,
    ) -> DomainResult<Device> {
        let tenant = actor.require_operator()?;
        let d = self.devices.get(tenant, device).await?.ok_or(DomainError::NotFound("device"))?;
        if d.kind != DeviceKind::GasMeter {
            return Err(DomainError::invalid("deviceId", "only gas meters have a valve"));
        }
        let o = self.outbound.as_ref().ok_or_else(|| DomainError::Unknown(anyhow::anyhow!("no unit of work")))?;
        let unit = o.begin().await?;
        o.commit(unit, tenant, &[Message::MeterCommand { device: d.clone(), command, by: Some(actor.user_id) }])
            .await?;
        Ok(d)
    }

    /// Withdraws a command sent to a meter (`cancelMeterCommand`; a gas DAS's 1005): the
    /// command is the delivery `key` of kind `kind` about `device`.
    ///
    /// # Errors
    /// `Forbidden` unless tenant admin; `NotFound` for a device outside the tenant.
    pub async fn cancel_command(&self, actor: &Actor, device: DeviceId, key: String, kind: String) -> DomainResult<()> {
        let tenant = actor.require_tenant_admin()?;
        let d = self.devices.get(tenant, device).await?.ok_or(DomainError::NotFound("device"))?;
        let o = self.outbound.as_ref().ok_or_else(|| DomainError::Unknown(anyhow::anyhow!("no unit of work")))?;
        let unit = o.begin().await?;
        o.commit(unit, tenant, &[Message::CommandCancelled { device: d, key, kind }]).await
    }

    /// Takes a meter out of service (`cancelMeter`): it is marked cancelled and its vendor
    /// hears of it (a gas DAS's 1002), in one unit of work.
    ///
    /// # Errors
    /// `Forbidden` unless tenant admin; `NotFound` for a device outside the tenant;
    /// `Invalid { field: "deviceId" }` for a device that is not a meter; `Invalid { field:
    /// "reason" }` over 100 characters.
    pub async fn cancel_meter(&self, actor: &Actor, device: DeviceId, reason: Option<String>) -> DomainResult<Device> {
        let tenant = actor.require_tenant_admin()?;
        let d = self.devices.get(tenant, device).await?.ok_or(DomainError::NotFound("device"))?;
        utility_of(d.kind).ok_or_else(|| DomainError::invalid("deviceId", "only meters can be cancelled"))?;
        let reason =
            reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty()).unwrap_or_else(|| "cancelled".into());
        if reason.chars().count() > 100 {
            return Err(DomainError::invalid("reason", "at most 100 characters"));
        }
        let mut attributes = d.attributes.clone();
        if let Some(m) = attributes.as_object_mut() {
            m.insert("cancelledAt".into(), serde_json::json!(self.clock.now().to_rfc3339()));
        }
        let external = crate::devices::ExternalId::parse(&d.external_id)?;
        let Some(o) = &self.outbound else {
            return self.devices.rename(tenant, d.id, &external, attributes).await;
        };
        let unit = o.begin().await?;
        let after = unit.devices().rename(tenant, d.id, &external, attributes).await?;
        o.commit(unit, tenant, &[Message::MeterCancelled { device: d, reason }]).await?;
        Ok(after)
    }

    /// Replaces a meter by another on the same account (`replaceMeter`): the device takes
    /// the new meter's number, its account keeps its balance and cycle volume, and the
    /// new meter's register becomes the baseline of the next charge; its vendor hears of it
    /// (a gas DAS's 1009), in one unit of work.
    ///
    /// # Errors
    /// `Forbidden` unless tenant admin; `NotFound` for a device or account outside the
    /// tenant; `Invalid` naming `newExternalId` or `newReading`; `Duplicate` when the
    /// integration has a device with the new number.
    pub async fn replace_meter(
        &self,
        actor: &Actor,
        device: DeviceId,
        new_external_id: &str,
        new_reading: Decimal,
    ) -> DomainResult<(Device, MeterAccount)> {
        let tenant = actor.require_tenant_admin()?;
        let external = crate::devices::ExternalId::parse(new_external_id)
            .map_err(|_| DomainError::invalid("newExternalId", "1-128 printable characters"))?;
        if new_reading < Decimal::ZERO {
            return Err(DomainError::invalid("newReading", "must not be negative"));
        }
        let d = self.devices.get(tenant, device).await?.ok_or(DomainError::NotFound("device"))?;
        utility_of(d.kind).ok_or_else(|| DomainError::invalid("deviceId", "only meters can be replaced"))?;
        let o = self.outbound.as_ref().ok_or_else(|| DomainError::Unknown(anyhow::anyhow!("no unit of work")))?;
        let _queued = self.locks.lock(&[d.id]).await;
        for _ in 0..APPLY_ATTEMPTS {
            let unit = o.begin().await?;
            let accounts = unit.accounts();
            let current = accounts.lock_by_device(tenant, d.id).await?.ok_or(DomainError::NotFound("meter account"))?;
            let old_reading = current.meter.last_reading.unwrap_or_default();
            let mut next = current.clone();
            next.meter.last_reading = Some(new_reading);
            let saved = match accounts.save(tenant, &current, &next, None, None).await {
                Ok((saved, _)) => saved,
                Err(DomainError::InvalidTransition(_)) => continue,
                Err(e) => return Err(e),
            };
            drop(accounts);
            let after = unit.devices().rename(tenant, d.id, &external, d.attributes.clone()).await?;
            let msg = Message::MeterReplaced {
                device: after.clone(),
                old_external_id: d.external_id.clone(),
                old_reading,
                new_reading,
            };
            o.commit(unit, tenant, &[msg]).await?;
            return Ok((after, saved));
        }
        Err(DomainError::Unknown(anyhow::anyhow!("meter account kept changing; gave up after {APPLY_ATTEMPTS} tries")))
    }

    /// A meter's daily usage in `from..=to` (at most 366 days).
    ///
    /// # Errors
    /// `Forbidden` for actors without a tenant; `NotFound` for a device outside the tenant;
    /// `Invalid { field: "to" }` for a range backwards or longer than 366 days.
    pub async fn daily_usage(
        &self,
        actor: &Actor,
        device: DeviceId,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> DomainResult<Vec<super::DailyUsage>> {
        let tenant = actor.require_reader()?;
        if to < from || (to - from).num_days() > 366 {
            return Err(DomainError::invalid("to", "on or after `from`, at most 366 days later"));
        }
        self.devices.get(tenant, device).await?.ok_or(DomainError::NotFound("device"))?;
        self.accounts.daily_usage(tenant, device, from, to).await
    }

    /// Stores daily usage a vendor reported, for adapters acting for a tenant.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    pub async fn record_daily_usage(&self, tenant: TenantId, days: Vec<super::DailyUsage>) -> DomainResult<()> {
        self.accounts.save_daily_usage(tenant, days).await
    }

    /// Locks the accounts of `devices` in this process until the guards drop; take it
    /// before opening a unit of work that bills them.
    pub async fn lock_meters(&self, devices: &[DeviceId]) -> Vec<tokio::sync::OwnedMutexGuard<()>> {
        self.locks.lock(devices).await
    }

    /// A device's account, for adapters acting for a tenant.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    pub async fn account_in(&self, tenant: TenantId, device: DeviceId) -> DomainResult<Option<MeterAccount>> {
        self.accounts.by_device(tenant, device).await
    }

    /// # Errors
    /// `Forbidden` for actors without a tenant.
    pub async fn ledger(
        &self,
        actor: &Actor,
        account: AccountId,
        page: PageRequest,
    ) -> DomainResult<Page<LedgerEntry>> {
        self.accounts.ledger(actor.require_reader()?, account, page).await
    }

    /// Records money paid for a meter. Idempotent on `trade_no`: the same trade recorded
    /// again answers the first entry.
    ///
    /// # Errors
    /// `Forbidden` for viewers; `NotFound` for a device without account; `Invalid {
    /// field: "amount" }` unless positive; `Duplicate` when the trade number was used for
    /// another amount.
    pub async fn recharge(
        &self,
        actor: &Actor,
        device: DeviceId,
        amount: Decimal,
        trade_no: Option<String>,
    ) -> DomainResult<(MeterAccount, LedgerEntry)> {
        let tenant = actor.require_operator()?;
        let trade_no = reference(trade_no)?;
        self.write(tenant, device, Some(actor.user_id), trade_no.as_deref(), |acc| {
            acc.recharge(amount, trade_no.clone())
        })
        .await
        .and_then(|(a, e)| {
            if e.amount == amount {
                Ok((a, e))
            } else {
                Err(DomainError::Duplicate("trade number already used".into()))
            }
        })
    }

    /// A signed manual correction of the balance.
    ///
    /// # Errors
    /// `Forbidden` unless tenant admin; `NotFound` for a device without account; `Invalid
    /// { field: "amount" }` when zero.
    pub async fn adjust(
        &self,
        actor: &Actor,
        device: DeviceId,
        amount: Decimal,
        reason: Option<String>,
    ) -> DomainResult<(MeterAccount, LedgerEntry)> {
        let tenant = actor.require_tenant_admin()?;
        let reason = reference(reason).map_err(|_| DomainError::invalid("reason", "at most 128 characters"))?;
        self.write(tenant, device, Some(actor.user_id), None, |acc| acc.adjust(amount, reason.clone())).await
    }

    /// Bills a register reading of `device` (see `billing`), through `accounts` and
    /// `tariffs` (a unit of work's repositories: nothing else is read while the account is
    /// locked, and the charge commits with the reading and the deliveries it plans). `None` when the device has no account. Idempotent on `reference`: a reading
    /// billed before answers its entry and changes nothing.
    ///
    /// # Errors
    /// `Invalid` when the charge is out of range; `Unknown` on storage failure.
    pub async fn bill_in(
        &self,
        (accounts, tariffs): (&dyn MeterAccountRepo, &dyn TariffRepo),
        tenant: TenantId,
        device: DeviceId,
        total: Decimal,
        at: DateTime<Utc>,
        reference: &str,
    ) -> DomainResult<Option<MeterBill>> {
        for attempt in 0..APPLY_ATTEMPTS {
            let Some(current) = accounts.lock_by_device(tenant, device).await? else { return Ok(None) };
            let versions = match current.tariff_id {
                Some(t) => tariffs.versions_of(tenant, t).await?,
                None => Vec::new(),
            };
            // A reference already on the ledger makes the first save fail as a duplicate
            // (nothing written); the next attempt answers that entry.
            if attempt > 0
                && let Some(e) = accounts.entry_by_reference(tenant, current.id, reference).await?
            {
                let price = in_effect(&versions, at).map(|t| t.tiers.price_at(current.account.cycle_usage));
                return Ok(Some(MeterBill { account: current, entry: Some(e), supply: None, price, again: true }));
            }
            let mut next = current.clone();
            let bill = bill_reading(&mut next, &versions, total, at, reference.to_owned())?;
            let price = bill.tariff.as_ref().map(|t| t.tiers.price_at(next.account.cycle_usage));
            if bill.entry.is_none() && next == current {
                return Ok(Some(MeterBill { account: current, entry: None, supply: None, price, again: false }));
            }
            match accounts.save(tenant, &current, &next, bill.entry, None).await {
                Ok((account, entry)) => {
                    return Ok(Some(MeterBill { account, entry, supply: bill.supply, price, again: false }));
                }
                Err(DomainError::InvalidTransition(_) | DomainError::Duplicate(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(DomainError::Unknown(anyhow::anyhow!("meter account kept changing; gave up after {APPLY_ATTEMPTS} tries")))
    }

    /// The price of the next unit on a meter now, under the version in effect.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    pub async fn price_now(&self, tenant: TenantId, account: &MeterAccount) -> DomainResult<Option<Decimal>> {
        let Some(t) = account.tariff_id else { return Ok(None) };
        let versions = self.tariffs.versions_of(tenant, t).await?;
        Ok(in_effect(&versions, self.clock.now()).map(|t| t.tiers.price_at(account.account.cycle_usage)))
    }

    /// Applies one rule to the account with compare-and-set, retrying when another write
    /// moved it first; a reference already on the ledger answers its entry. With vendor
    /// modules registered, the write and the deliveries it causes (a restored supply, a
    /// recharge the meter must hear of) commit together.
    async fn write(
        &self,
        tenant: TenantId,
        device: DeviceId,
        by: Option<UserId>,
        reference: Option<&str>,
        mut rule: impl FnMut(&mut Account) -> DomainResult<LedgerDraft>,
    ) -> DomainResult<(MeterAccount, LedgerEntry)> {
        let _queued = self.locks.lock(&[device]).await;
        // Read before a unit opens: on SQLite a unit holds the one write lock.
        let meter = match &self.outbound {
            Some(_) => Some(self.devices.get(tenant, device).await?.ok_or(DomainError::NotFound("device"))?),
            None => None,
        };
        for _ in 0..APPLY_ATTEMPTS {
            let unit = match &self.outbound {
                Some(o) => Some(o.begin().await?),
                None => None,
            };
            let accounts = unit.as_ref().map_or_else(|| self.accounts.clone(), |u| u.accounts());
            let current =
                accounts.lock_by_device(tenant, device).await?.ok_or(DomainError::NotFound("meter account"))?;
            if let Some(r) = reference
                && let Some(e) = accounts.entry_by_reference(tenant, current.id, r).await?
            {
                return Ok((current, e));
            }
            let mut next = current.clone();
            let draft = rule(&mut next.account)?;
            let supply = supply_after(&mut next);
            let saved = accounts.save(tenant, &current, &next, Some(draft), by).await;
            // The unit's repositories go before it commits.
            drop(accounts);
            match saved {
                Ok((saved, Some(entry))) => {
                    if let (Some(o), Some(unit), Some(device)) = (&self.outbound, unit, meter.clone()) {
                        let mut msgs = vec![Message::AccountCredited {
                            device: device.clone(),
                            account: saved.clone(),
                            entry: entry.clone(),
                        }];
                        if let Some(change) = supply {
                            msgs.push(Message::SupplyChanged { device, change, reference: entry.id.to_string() });
                        }
                        o.commit(unit, tenant, &msgs).await?;
                    }
                    return Ok((saved, entry));
                }
                Ok((_, None)) => return Err(DomainError::Unknown(anyhow::anyhow!("the ledger entry was not written"))),
                // Moved meanwhile, or the same reference landed first: look again.
                Err(DomainError::InvalidTransition(_) | DomainError::Duplicate(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(DomainError::Unknown(anyhow::anyhow!("meter account kept changing; gave up after {APPLY_ATTEMPTS} tries")))
    }
}

/// What billing a reading came to, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct MeterBill {
    /// The account after the reading.
    pub account: MeterAccount,
    /// The charge (`None`: nothing charged, the baseline moved).
    pub entry: Option<LedgerEntry>,
    /// The supply change the charge called for (already recorded on the account).
    pub supply: Option<SupplyChange>,
    /// The price of the next unit after it, if the meter has a tariff.
    pub price: Option<Decimal>,
    /// The reading was billed before: nothing changed now.
    pub again: bool,
}
