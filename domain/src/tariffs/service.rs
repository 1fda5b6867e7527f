use super::rules::{Account, BillingModel, Consumption, LedgerDraft, PayModel, Tier, Tiers, Utility};
use super::{
    LedgerEntry, MeterAccount, MeterAccountRepo, NewTariff, PriceAssignment, PriceScope, PriceWay, Tariff,
    TariffFilter, TariffRepo, effective_price,
};
use crate::clock::{self, Clock};
use crate::devices::{Device, DeviceKind, DeviceRepo};
use crate::homes::HomeRepo;
use crate::ids::{AccountId, DeviceId, HomeId, IntegrationId, RoomId, TariffId, TenantId, UserId};
use crate::integrations::IntegrationRepo;
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
}

impl TariffService {
    pub fn new(
        tariffs: Arc<dyn TariffRepo>,
        accounts: Arc<dyn MeterAccountRepo>,
        devices: Arc<dyn DeviceRepo>,
        homes: Arc<dyn HomeRepo>,
        integrations: Arc<dyn IntegrationRepo>,
    ) -> Self {
        Self { tariffs, accounts, devices, homes, integrations, clock: clock::system() }
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
                other => return other,
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
        match self.accounts.by_device(tenant, device.id).await? {
            None => {
                let account = Account::new(
                    input.pay_model.unwrap_or(PayModel::Prepaid),
                    input.billing_model.unwrap_or(BillingModel::Centre),
                    input.overdraft.unwrap_or(Decimal::ZERO),
                )?;
                self.accounts.open(tenant, device.id, Some(tariff.id), &account).await
            }
            Some(existing) => {
                let mut terms = Account::new(
                    input.pay_model.unwrap_or(existing.account.pay_model),
                    input.billing_model.unwrap_or(existing.account.billing_model),
                    input.overdraft.unwrap_or(existing.account.overdraft),
                )?;
                terms.balance = existing.account.balance;
                terms.cycle_usage = existing.account.cycle_usage;
                let mut cycle_started_at = existing.cycle_started_at;
                if tariff.clear_cycle && existing.tariff_id != Some(tariff.id) {
                    terms.reset_cycle();
                    cycle_started_at = Some(self.clock.now());
                }
                self.accounts.set_terms(tenant, existing.id, Some(tariff.id), &terms, cycle_started_at).await
            }
        }
    }

    /// # Errors
    /// `NotFound` when the device has no account or is not the tenant's.
    pub async fn account(&self, actor: &Actor, device: DeviceId) -> DomainResult<MeterAccount> {
        let tenant = actor.require_reader()?;
        self.accounts.by_device(tenant, device).await?.ok_or(DomainError::NotFound("meter account"))
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

    /// Charges a consumed volume on the meter's tariff (meter readings, the gas DAS's
    /// reports). Idempotent on `reference`.
    ///
    /// # Errors
    /// `NotFound` for a device without account; `Invalid { field: "tariffId" }` when the
    /// account has no tariff; `Invalid { field: "volume" }` when negative.
    pub async fn charge_in(
        &self,
        tenant: TenantId,
        device: DeviceId,
        volume: Decimal,
        reference: Option<String>,
    ) -> DomainResult<(MeterAccount, LedgerEntry, bool)> {
        let account = self.accounts.by_device(tenant, device).await?.ok_or(DomainError::NotFound("meter account"))?;
        let tariff_id = account.tariff_id.ok_or_else(|| DomainError::invalid("tariffId", "the meter has no tariff"))?;
        let tariff = self.tariffs.get(tenant, tariff_id).await?.ok_or(DomainError::NotFound("tariff"))?;
        let mut cut_off = false;
        let (acc, entry) = self
            .write(tenant, device, None, reference.as_deref(), |acc| {
                let Consumption { entry, cut_off: c } = acc.consume(&tariff.tiers, volume, reference.clone())?;
                cut_off = c;
                Ok(entry)
            })
            .await?;
        Ok((acc, entry, cut_off))
    }

    /// Applies one rule to the account with compare-and-set, retrying when another write
    /// moved it first; a reference already on the ledger answers its entry.
    async fn write(
        &self,
        tenant: TenantId,
        device: DeviceId,
        by: Option<UserId>,
        reference: Option<&str>,
        mut rule: impl FnMut(&mut Account) -> DomainResult<LedgerDraft>,
    ) -> DomainResult<(MeterAccount, LedgerEntry)> {
        for _ in 0..APPLY_ATTEMPTS {
            let current =
                self.accounts.by_device(tenant, device).await?.ok_or(DomainError::NotFound("meter account"))?;
            if let Some(r) = reference
                && let Some(e) = self.accounts.entry_by_reference(tenant, current.id, r).await?
            {
                return Ok((current, e));
            }
            let mut next = current.account.clone();
            let draft = rule(&mut next)?;
            match self.accounts.apply(tenant, current.id, &current.account, &next, draft, by).await {
                Ok(entry) => {
                    let updated = MeterAccount { account: next, updated_at: entry.at, ..current };
                    return Ok((updated, entry));
                }
                // Moved meanwhile, or the same reference landed first: look again.
                Err(DomainError::InvalidTransition(_) | DomainError::Duplicate(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(DomainError::Unknown(anyhow::anyhow!("meter account kept changing; gave up after {APPLY_ATTEMPTS} tries")))
    }
}
