//! Tariffs, meter accounts and their ledgers.

use super::connection::{Conn, page_request, to_connection};
use super::enums::{BillingModelGql, LedgerKindGql, PayModelGql, PriceWayGql, UtilityGql};
use super::{actor, parse_id, state};
use crate::error::GqlResultExt;
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use domain::ids::{AccountId, DeviceId, HomeId, IntegrationId, RoomId, TariffId};
use domain::tariffs::{
    AssignTariffInput, LedgerEntry, MeterAccount, PriceAssignment, PriceScope, SaveTariffInput, Tariff, TariffFilter,
    Tier,
};
use rust_decimal::Decimal;

/// One tier: the price of each unit while the cycle's cumulative volume is below `upTo`.
#[derive(SimpleObject, InputObject, Clone)]
#[graphql(name = "Tier", input_name = "TierInput")]
pub struct TierGql {
    /// Cumulative cycle volume where the tier ends; null for the last, unbounded tier.
    pub up_to: Option<Decimal>,
    pub price: Decimal,
}

/// One version of a tariff.
#[derive(SimpleObject)]
#[graphql(name = "Tariff")]
pub struct TariffGql {
    pub id: ID,
    pub integration_id: Option<ID>,
    pub code: String,
    pub version: i32,
    pub utility: UtilityGql,
    pub tiers: Vec<TierGql>,
    pub cycle_months: i32,
    pub effective_from: DateTime<Utc>,
    /// Adopting this version restarts the accounts' cycle usage.
    pub clear_cycle: bool,
    pub created_at: DateTime<Utc>,
}

impl From<Tariff> for TariffGql {
    fn from(t: Tariff) -> Self {
        Self {
            id: ID(t.id.to_string()),
            integration_id: t.integration_id.map(|i| ID(i.to_string())),
            code: t.code,
            version: t.version,
            utility: t.utility.into(),
            tiers: t.tiers.as_slice().iter().map(|x| TierGql { up_to: x.up_to, price: x.price }).collect(),
            cycle_months: t.cycle_months,
            effective_from: t.effective_from,
            clear_cycle: t.clear_cycle,
            created_at: t.created_at,
        }
    }
}

/// A meter's account; its balance is always the sum of its ledger.
#[derive(SimpleObject)]
#[graphql(name = "MeterAccount", complex)]
pub struct MeterAccountGql {
    pub id: ID,
    pub device_id: ID,
    pub tariff_id: Option<ID>,
    pub pay_model: PayModelGql,
    pub billing_model: BillingModelGql,
    pub balance: Decimal,
    /// How far below zero a prepaid balance may go before the meter is cut off.
    pub overdraft: Decimal,
    /// Volume used in the current tier cycle.
    pub cycle_usage: Decimal,
    pub cycle_started_at: Option<DateTime<Utc>>,
    /// The register as last billed (or at installation).
    pub last_reading: Option<Decimal>,
    pub last_read_at: Option<DateTime<Utc>>,
    /// The supply is cut (valve closed) for lack of credit.
    pub cut_off: bool,
    pub updated_at: DateTime<Utc>,
    #[graphql(skip)]
    pub account_id: AccountId,
    #[graphql(skip)]
    pub tariff: Option<TariffId>,
}

impl From<MeterAccount> for MeterAccountGql {
    fn from(a: MeterAccount) -> Self {
        Self {
            id: ID(a.id.to_string()),
            device_id: ID(a.device_id.to_string()),
            tariff_id: a.tariff_id.map(|t| ID(t.to_string())),
            pay_model: a.account.pay_model.into(),
            billing_model: a.account.billing_model.into(),
            balance: a.account.balance,
            overdraft: a.account.overdraft,
            cycle_usage: a.account.cycle_usage,
            cycle_started_at: a.cycle_started_at,
            last_reading: a.meter.last_reading,
            last_read_at: a.meter.last_read_at,
            cut_off: a.meter.cut_off,
            updated_at: a.updated_at,
            account_id: a.id,
            tariff: a.tariff_id,
        }
    }
}

#[ComplexObject]
impl MeterAccountGql {
    async fn tariff(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<TariffGql>> {
        let Some(t) = self.tariff else { return Ok(None) };
        Ok(Some(state(ctx).tariffs.get(&actor(ctx)?, t).await.gql()?.into()))
    }

    /// Every change of the balance, newest first.
    #[graphql(complexity = "super::connection::cost(first, child_complexity)")]
    async fn ledger(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<LedgerEntryGql>> {
        let page = state(ctx).tariffs.ledger(&actor(ctx)?, self.account_id, page_request(first, after)?).await.gql()?;
        Ok(to_connection(page, |e| e.id.as_uuid(), LedgerEntryGql::from))
    }
}

/// One change of a meter account's balance.
#[derive(SimpleObject)]
#[graphql(name = "LedgerEntry")]
pub struct LedgerEntryGql {
    pub id: ID,
    pub kind: LedgerKindGql,
    /// Signed: positive adds to the balance.
    pub amount: Decimal,
    pub volume: Option<Decimal>,
    pub balance_after: Decimal,
    pub reference: Option<String>,
    pub created_by: Option<ID>,
    pub at: DateTime<Utc>,
    /// For a charge of a reading: how it was priced.
    pub charge: Option<ChargeGql>,
}

/// How a reading's charge was priced: tier by tier, under which tariff version.
#[derive(SimpleObject)]
#[graphql(name = "Charge")]
pub struct ChargeGql {
    pub tariff_id: ID,
    pub tariff_version: i32,
    pub previous_reading: Decimal,
    pub reading: Decimal,
    pub read_at: DateTime<Utc>,
    pub tiers: Vec<TierChargeGql>,
    /// The cycle volume after the charge.
    pub cycle_usage: Decimal,
    /// The price of the next unit after the charge.
    pub price_after: Decimal,
    /// `CUT` or `RESTORE` when the charge changed the supply.
    pub supply: Option<String>,
}

/// One tier's share of a charge.
#[derive(SimpleObject)]
#[graphql(name = "TierCharge")]
pub struct TierChargeGql {
    pub tier: i32,
    pub volume: Decimal,
    pub price: Decimal,
    pub amount: Decimal,
}

impl From<domain::tariffs::ChargeDetail> for ChargeGql {
    fn from(d: domain::tariffs::ChargeDetail) -> Self {
        Self {
            tariff_id: ID(d.tariff_id.to_string()),
            tariff_version: d.tariff_version,
            previous_reading: d.previous_reading,
            reading: d.reading,
            read_at: d.read_at,
            tiers: d
                .tiers
                .into_iter()
                .map(|t| TierChargeGql {
                    tier: i32::try_from(t.tier).unwrap_or(i32::MAX),
                    volume: t.volume,
                    price: t.price,
                    amount: t.amount,
                })
                .collect(),
            cycle_usage: d.cycle_usage,
            price_after: d.price_after,
            supply: d.supply.map(|s| match s {
                domain::tariffs::SupplyChange::Cut => "CUT".to_owned(),
                domain::tariffs::SupplyChange::Restore => "RESTORE".to_owned(),
            }),
        }
    }
}

impl From<LedgerEntry> for LedgerEntryGql {
    fn from(e: LedgerEntry) -> Self {
        Self {
            id: ID(e.id.to_string()),
            kind: e.kind.into(),
            amount: e.amount,
            volume: e.volume,
            balance_after: e.balance_after,
            reference: e.reference,
            created_by: e.created_by.map(|u| ID(u.to_string())),
            at: e.at,
            charge: e.detail.map(Into::into),
        }
    }
}

/// An electricity price bound to the tenant, a home or a room (Dingding `client_eleprice`,
/// `eleprice` by home, `room_eleprice`); a home's entry also carries its price way.
#[derive(SimpleObject)]
#[graphql(name = "ElectricityPrice")]
pub struct ElectricityPriceGql {
    /// Null for the tenant-wide price.
    pub home_id: Option<ID>,
    pub room_id: Option<ID>,
    pub tariff_id: Option<ID>,
    pub price_way: Option<PriceWayGql>,
    pub updated_at: DateTime<Utc>,
}

impl From<PriceAssignment> for ElectricityPriceGql {
    fn from(p: PriceAssignment) -> Self {
        let (home, room) = match p.scope {
            PriceScope::Tenant => (None, None),
            PriceScope::Home(h) => (Some(h), None),
            PriceScope::Room(h, r) => (Some(h), Some(r)),
        };
        Self {
            home_id: home.map(|h| ID(h.to_string())),
            room_id: room.map(|r| ID(r.to_string())),
            tariff_id: p.tariff_id.map(|t| ID(t.to_string())),
            price_way: p.price_way.map(Into::into),
            updated_at: p.updated_at,
        }
    }
}

/// A recharge or adjustment and the account after it.
#[derive(SimpleObject)]
pub struct LedgerWrite {
    pub account: MeterAccountGql,
    pub entry: LedgerEntryGql,
}

#[derive(InputObject)]
#[graphql(name = "SaveTariffInput")]
pub struct SaveTariffInputGql {
    pub integration_id: Option<ID>,
    /// Saving an existing code adds a version.
    pub code: String,
    pub utility: UtilityGql,
    pub tiers: Vec<TierGql>,
    #[graphql(default = 12)]
    pub cycle_months: i32,
    pub effective_from: Option<DateTime<Utc>>,
    #[graphql(default)]
    pub clear_cycle: bool,
}

#[derive(InputObject)]
pub struct RechargeMeterInput {
    pub device_id: ID,
    pub amount: Decimal,
    /// The payment's trade number: recording the same trade twice answers the first entry.
    pub trade_no: Option<String>,
}

/// One day of a meter's usage.
#[derive(SimpleObject)]
#[graphql(name = "DailyUsage")]
pub struct DailyUsageGql {
    pub day: chrono::NaiveDate,
    pub volume: Decimal,
    pub amount: Decimal,
    /// The prices of the day (several when it crossed a tier).
    pub prices: Vec<Decimal>,
    pub fetched_at: DateTime<Utc>,
}

/// The valve as a gas meter's DAS last knew it.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "DasValveState")]
pub enum DasValveGql {
    Open,
    Closed,
    Unknown,
}

/// A gas meter as its DAS describes it (`meterDetails`, asked of the DAS when queried).
#[derive(SimpleObject)]
#[graphql(name = "GasMeterDetails")]
pub struct GasMeterDetailsGql {
    /// The DAS's id of the meter.
    pub das_device_id: Option<String>,
    pub meter_no: String,
    /// In use (the DAS's `meterState` 2).
    pub active: bool,
    pub installed_on: Option<chrono::NaiveDate>,
    /// The register at installation.
    pub base_reading: Option<Decimal>,
    pub reading: Option<Decimal>,
    pub valve: DasValveGql,
    /// The balance the DAS holds (meter-side billing keeps it on the meter).
    pub balance: Option<Decimal>,
    pub price: Option<Decimal>,
    pub price_code: Option<String>,
    pub last_read_at: Option<DateTime<Utc>>,
    pub total_volume: Option<Decimal>,
    pub total_spent: Option<Decimal>,
    pub total_recharged: Option<Decimal>,
    pub last_recharge_amount: Option<Decimal>,
    pub last_recharge_at: Option<DateTime<Utc>>,
    pub recharge_count: Option<i32>,
    pub voltage: Option<Decimal>,
    /// Signal strength in percent.
    pub signal: Option<i32>,
    pub user_name: Option<String>,
    pub address: Option<String>,
}

impl From<adapters::vendors::goldcard::GasMeterDetails> for GasMeterDetailsGql {
    fn from(d: adapters::vendors::goldcard::GasMeterDetails) -> Self {
        use adapters::vendors::goldcard::DasValve;
        Self {
            das_device_id: d.das_device_id,
            meter_no: d.meter_no,
            active: d.active,
            installed_on: d.installed_on,
            base_reading: d.base_reading,
            reading: d.reading,
            valve: match d.valve {
                DasValve::Open => DasValveGql::Open,
                DasValve::Closed => DasValveGql::Closed,
                DasValve::Unknown => DasValveGql::Unknown,
            },
            balance: d.balance,
            price: d.price,
            price_code: d.price_code,
            last_read_at: d.last_read_at,
            total_volume: d.total_volume,
            total_spent: d.total_spent,
            total_recharged: d.total_recharged,
            last_recharge_amount: d.last_recharge_amount,
            last_recharge_at: d.last_recharge_at,
            recharge_count: d.recharge_count,
            voltage: d.voltage,
            signal: d.signal,
            user_name: d.user_name,
            address: d.address,
        }
    }
}

#[derive(InputObject)]
pub struct ReplaceMeterInput {
    pub device_id: ID,
    /// The new meter's number (its external id from now on).
    pub new_external_id: String,
    /// The new meter's register at installation.
    #[graphql(default)]
    pub new_reading: Decimal,
}

#[derive(InputObject, Default)]
pub struct TariffFilterInput {
    pub utility: Option<UtilityGql>,
    pub code: Option<String>,
    pub integration_id: Option<ID>,
}

#[derive(Default)]
pub struct TariffQuery;

#[Object]
impl TariffQuery {
    /// Every tariff version, newest first.
    #[graphql(complexity = "super::connection::cost(first, child_complexity)")]
    async fn tariffs(
        &self,
        ctx: &Context<'_>,
        filter: Option<TariffFilterInput>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<TariffGql>> {
        let f = filter.unwrap_or_default();
        let filter = TariffFilter {
            utility: f.utility.map(Into::into),
            code: f.code,
            integration_id: f
                .integration_id
                .as_ref()
                .map(|i| parse_id::<IntegrationId>("filter.integrationId", i))
                .transpose()?,
        };
        let page = state(ctx).tariffs.list(&actor(ctx)?, &filter, page_request(first, after)?).await.gql()?;
        Ok(to_connection(page, |t| t.id.as_uuid(), TariffGql::from))
    }

    async fn tariff(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<TariffGql> {
        let id: TariffId = parse_id("id", &id)?;
        Ok(state(ctx).tariffs.get(&actor(ctx)?, id).await.gql()?.into())
    }

    /// The electricity prices bound to the tenant and, with `homeId`, to the home and its rooms.
    async fn electricity_prices(
        &self,
        ctx: &Context<'_>,
        home_id: Option<ID>,
    ) -> async_graphql::Result<Vec<ElectricityPriceGql>> {
        let home = home_id.as_ref().map(|h| parse_id::<HomeId>("homeId", h)).transpose()?;
        let prices = state(ctx).tariffs.electricity_prices(&actor(ctx)?, home).await.gql()?;
        Ok(prices.into_iter().map(Into::into).collect())
    }

    /// A meter's usage per day in `from..=to` (gas: as its DAS reported it, fetched daily by
    /// `DAILY_USAGE`).
    async fn daily_usage(
        &self,
        ctx: &Context<'_>,
        device_id: ID,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> async_graphql::Result<Vec<DailyUsageGql>> {
        let device: DeviceId = parse_id("deviceId", &device_id)?;
        let days = state(ctx).tariffs.daily_usage(&actor(ctx)?, device, from, to).await.gql()?;
        Ok(days
            .into_iter()
            .map(|d| DailyUsageGql {
                day: d.day,
                volume: d.volume,
                amount: d.amount,
                prices: d.prices,
                fetched_at: d.fetched_at,
            })
            .collect())
    }

    /// A gas meter's details as its DAS holds them (1014), asked for now.
    async fn meter_details(&self, ctx: &Context<'_>, device_id: ID) -> async_graphql::Result<GasMeterDetailsGql> {
        let id: DeviceId = parse_id("deviceId", &device_id)?;
        Ok(state(ctx).gas.details(&actor(ctx)?, id).await.gql()?.into())
    }

    /// The account of a gas, electricity or water meter.
    async fn meter_account(&self, ctx: &Context<'_>, device_id: ID) -> async_graphql::Result<MeterAccountGql> {
        let id: DeviceId = parse_id("deviceId", &device_id)?;
        Ok(state(ctx).tariffs.account(&actor(ctx)?, id).await.gql()?.into())
    }
}

#[derive(Default)]
pub struct TariffMutation;

#[Object]
impl TariffMutation {
    /// Saves the next version of a tariff (tenant admins).
    async fn save_tariff(&self, ctx: &Context<'_>, input: SaveTariffInputGql) -> async_graphql::Result<TariffGql> {
        let input = SaveTariffInput {
            integration_id: input
                .integration_id
                .as_ref()
                .map(|i| parse_id::<IntegrationId>("integrationId", i))
                .transpose()?,
            code: input.code,
            utility: input.utility.into(),
            tiers: input.tiers.into_iter().map(|t| Tier { up_to: t.up_to, price: t.price }).collect(),
            cycle_months: input.cycle_months,
            effective_from: input.effective_from.unwrap_or_else(Utc::now),
            clear_cycle: input.clear_cycle,
        };
        Ok(state(ctx).tariffs.save(&actor(ctx)?, input).await.gql()?.into())
    }

    /// Binds a tariff to a meter, opening its account when it has none (tenant admins).
    async fn assign_tariff(
        &self,
        ctx: &Context<'_>,
        device_id: ID,
        tariff_id: ID,
        pay_model: Option<PayModelGql>,
        billing_model: Option<BillingModelGql>,
        overdraft: Option<Decimal>,
    ) -> async_graphql::Result<MeterAccountGql> {
        let input = AssignTariffInput {
            device_id: parse_id("deviceId", &device_id)?,
            tariff_id: parse_id("tariffId", &tariff_id)?,
            pay_model: pay_model.map(Into::into),
            billing_model: billing_model.map(Into::into),
            overdraft,
        };
        Ok(state(ctx).tariffs.assign(&actor(ctx)?, input).await.gql()?.into())
    }

    /// Binds an ELECTRICITY tariff to the tenant (no `homeId`), a home, or one of its rooms,
    /// and/or sets a home's price way (tenant admins). Answers the prices now bound.
    async fn set_electricity_price(
        &self,
        ctx: &Context<'_>,
        home_id: Option<ID>,
        room_id: Option<ID>,
        tariff_id: Option<ID>,
        price_way: Option<PriceWayGql>,
    ) -> async_graphql::Result<Vec<ElectricityPriceGql>> {
        let home = home_id.as_ref().map(|h| parse_id::<HomeId>("homeId", h)).transpose()?;
        let room = room_id.as_ref().map(|r| parse_id::<RoomId>("roomId", r)).transpose()?;
        let tariff = tariff_id.as_ref().map(|t| parse_id::<TariffId>("tariffId", t)).transpose()?;
        let prices = state(ctx)
            .tariffs
            .set_electricity_price(&actor(ctx)?, home, room, tariff, price_way.map(Into::into))
            .await
            .gql()?;
        Ok(prices.into_iter().map(Into::into).collect())
    }

    /// Records money paid for a meter on its ledger.
    async fn recharge_meter(&self, ctx: &Context<'_>, input: RechargeMeterInput) -> async_graphql::Result<LedgerWrite> {
        let device: DeviceId = parse_id("deviceId", &input.device_id)?;
        let (account, entry) =
            state(ctx).tariffs.recharge(&actor(ctx)?, device, input.amount, input.trade_no.clone()).await.gql()?;
        // A Dingding meter is charged too (`elemeter_charge`, idempotent on the trade number).
        let trade_no = input.trade_no.or_else(|| Some(entry.id.to_string()));
        state(ctx).dingding.recharged(&actor(ctx)?, device, input.amount, trade_no).await.gql()?;
        Ok(LedgerWrite { account: account.into(), entry: entry.into() })
    }

    /// Withdraws a command sent to a meter, named by its delivery (`deliveries(filter:
    /// {subject: "device:<id>"})`): a gas meter's DAS gets a 1005. Answers the command.
    async fn cancel_meter_command(
        &self,
        ctx: &Context<'_>,
        delivery_id: ID,
    ) -> async_graphql::Result<crate::graphql::deliveries::DeliveryGql> {
        let id = parse_id::<domain::ids::DeliveryId>("deliveryId", &delivery_id)?;
        let actor = actor(ctx)?;
        // Refused before anything is looked up: tenant admins only.
        actor.require_tenant_admin().gql()?;
        let d = state(ctx).deliveries.get(&actor, id).await.gql()?;
        let device = d
            .subject
            .as_deref()
            .and_then(|s| s.strip_prefix("device:"))
            .and_then(|s| s.parse::<DeviceId>().ok())
            .filter(|_| d.kind.as_str() == "goldcard.1004")
            .ok_or_else(|| crate::error::bad_input("deliveryId", "not a command sent to a meter"))?;
        state(ctx).tariffs.cancel_command(&actor, device, d.idempotency_key.clone(), d.kind.to_string()).await.gql()?;
        Ok(d.into())
    }

    /// Takes a meter out of service (a gas meter's DAS hears of it: 1002).
    async fn cancel_meter(
        &self,
        ctx: &Context<'_>,
        device_id: ID,
        reason: Option<String>,
    ) -> async_graphql::Result<crate::graphql::devices::DeviceGql> {
        let device: DeviceId = parse_id("deviceId", &device_id)?;
        Ok(state(ctx).tariffs.cancel_meter(&actor(ctx)?, device, reason).await.gql()?.into())
    }

    /// Replaces a meter by another on the same account: its balance and cycle volume carry
    /// over, the new meter's register is the next charge's baseline (gas: 1009).
    async fn replace_meter(
        &self,
        ctx: &Context<'_>,
        input: ReplaceMeterInput,
    ) -> async_graphql::Result<MeterAccountGql> {
        let device: DeviceId = parse_id("deviceId", &input.device_id)?;
        let (_, account) = state(ctx)
            .tariffs
            .replace_meter(&actor(ctx)?, device, &input.new_external_id, input.new_reading)
            .await
            .gql()?;
        Ok(account.into())
    }

    /// A signed manual correction of a meter's balance (tenant admins).
    async fn adjust_meter_balance(
        &self,
        ctx: &Context<'_>,
        device_id: ID,
        amount: Decimal,
        reason: Option<String>,
    ) -> async_graphql::Result<LedgerWrite> {
        let device: DeviceId = parse_id("deviceId", &device_id)?;
        let (account, entry) = state(ctx).tariffs.adjust(&actor(ctx)?, device, amount, reason).await.gql()?;
        Ok(LedgerWrite { account: account.into(), entry: entry.into() })
    }
}
