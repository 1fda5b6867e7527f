//! Devices, their readings and their alarms.

use super::alarms::AlarmGql;
use super::connection::{Conn, page_request, to_connection};
use super::enums::{AlarmStateGql, DeviceKindGql};
use super::loaders;
use super::{actor, parse_id, state};
use crate::error::GqlResultExt;
use async_graphql::{ComplexObject, Context, ID, InputObject, Json, MaybeUndefined, Object, SimpleObject};
use chrono::{DateTime, Utc};
use domain::alarms::AlarmFilter;
use domain::devices::{Device, DeviceChanges, DeviceFilter, Reading, UpsertDeviceInput};
use domain::ids::{DeviceId, HomeId, IntegrationId, RoomId};

/// A device of any kind.
#[derive(SimpleObject)]
#[graphql(name = "Device", complex)]
pub struct DeviceGql {
    pub id: ID,
    pub integration_id: ID,
    pub external_id: String,
    pub kind: DeviceKindGql,
    pub name: String,
    pub home_id: Option<ID>,
    pub room_id: Option<ID>,
    pub online: Option<bool>,
    pub online_changed_at: Option<DateTime<Utc>>,
    pub battery: Option<i32>,
    pub signal: Option<i32>,
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Vendor specifics.
    pub attributes: Json<serde_json::Value>,
    /// The latest reading per metric: `{metric: {value, ts}}`.
    pub latest: Json<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[graphql(skip)]
    pub device_id: DeviceId,
    #[graphql(skip)]
    pub home: Option<HomeId>,
    #[graphql(skip)]
    pub room: Option<RoomId>,
}

impl From<Device> for DeviceGql {
    fn from(d: Device) -> Self {
        Self {
            id: ID(d.id.to_string()),
            integration_id: ID(d.integration_id.to_string()),
            external_id: d.external_id,
            kind: d.kind.into(),
            name: d.name,
            home_id: d.home_id.map(|h| ID(h.to_string())),
            room_id: d.room_id.map(|r| ID(r.to_string())),
            online: d.online,
            online_changed_at: d.online_changed_at,
            battery: d.battery,
            signal: d.signal,
            last_seen_at: d.last_seen_at,
            attributes: Json(d.attributes),
            latest: Json(d.latest),
            created_at: d.created_at,
            updated_at: d.updated_at,
            device_id: d.id,
            home: d.home_id,
            room: d.room_id,
        }
    }
}

/// One value of one metric at one time.
#[derive(SimpleObject)]
#[graphql(name = "Reading")]
pub struct ReadingGql {
    pub id: ID,
    pub metric: String,
    pub value: Json<serde_json::Value>,
    pub ts: DateTime<Utc>,
}

impl From<Reading> for ReadingGql {
    fn from(r: Reading) -> Self {
        Self { id: ID(r.id.to_string()), metric: r.metric, value: Json(r.value), ts: r.ts }
    }
}

#[ComplexObject]
impl DeviceGql {
    /// The home it is in, if any.
    async fn home(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<super::homes::HomeGql>> {
        let Some(h) = self.home else { return Ok(None) };
        Ok(loaders::load(ctx, h).await?.map(Into::into))
    }

    /// The room it is in, if any.
    async fn room(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<super::homes::RoomGql>> {
        let Some(r) = self.room else { return Ok(None) };
        Ok(loaders::load(ctx, r).await?.map(Into::into))
    }

    /// The newest readings (of one metric when given), newest first; at most 1000.
    #[graphql(complexity = "super::connection::cost_of(last, domain::devices::MAX_READINGS, child_complexity)")]
    async fn readings(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 100)] last: i32,
        metric: Option<String>,
    ) -> async_graphql::Result<Vec<ReadingGql>> {
        let actor = actor(ctx)?;
        let last = u64::try_from(last).map_err(|_| crate::error::bad_input("last", "must not be negative"))?;
        let rows = state(ctx).devices.readings(&actor, self.device_id, metric.as_deref(), last).await.gql()?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// The tariff that prices this meter: its account's own, else (electricity) the price
    /// its home's way picks; null for devices that are not priced.
    async fn tariff(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<super::tariffs::TariffGql>> {
        let actor = actor(ctx)?;
        Ok(state(ctx).tariffs.tariff_of(&actor, self.device_id).await.gql()?.map(Into::into))
    }

    /// The device's alarms, newest first.
    #[graphql(complexity = "super::connection::cost(first, child_complexity)")]
    async fn alarms(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "state")] state_filter: Option<AlarmStateGql>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<AlarmGql>> {
        let actor = actor(ctx)?;
        let filter =
            AlarmFilter { device_id: Some(self.device_id), state: state_filter.map(Into::into), ..Default::default() };
        let page = state(ctx).alarms.list(&actor, &filter, page_request(first, after)?).await.gql()?;
        Ok(to_connection(page, |a| a.id.as_uuid(), AlarmGql::from))
    }
}

#[derive(InputObject, Default)]
pub struct DeviceFilterInput {
    pub kind: Option<DeviceKindGql>,
    pub integration_id: Option<ID>,
    pub home_id: Option<ID>,
    pub online: Option<bool>,
    /// Case-insensitive part of the name or external id.
    pub search: Option<String>,
}

#[derive(InputObject)]
#[graphql(name = "UpsertDeviceInput")]
pub struct UpsertDeviceInputGql {
    pub integration_id: ID,
    /// The device's id at its vendor; unique per integration.
    pub external_id: String,
    pub kind: DeviceKindGql,
    pub name: String,
    pub home_id: Option<ID>,
    pub room_id: Option<ID>,
    pub attributes: Option<Json<serde_json::Value>>,
}

#[derive(Default)]
pub struct DeviceQuery;

#[Object]
impl DeviceQuery {
    #[graphql(complexity = "super::connection::cost(first, child_complexity)")]
    async fn devices(
        &self,
        ctx: &Context<'_>,
        filter: Option<DeviceFilterInput>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<DeviceGql>> {
        let actor = actor(ctx)?;
        let f = filter.unwrap_or_default();
        let filter = DeviceFilter {
            kind: f.kind.map(Into::into),
            integration_id: f
                .integration_id
                .as_ref()
                .map(|i| parse_id::<IntegrationId>("filter.integrationId", i))
                .transpose()?,
            home_id: f.home_id.as_ref().map(|h| parse_id::<HomeId>("filter.homeId", h)).transpose()?,
            online: f.online,
            search: f.search,
        };
        let page = state(ctx).devices.list(&actor, &filter, page_request(first, after)?).await.gql()?;
        Ok(to_connection(page, |d| d.id.as_uuid(), DeviceGql::from))
    }

    async fn device(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<DeviceGql> {
        let actor = actor(ctx)?;
        let id: DeviceId = parse_id("id", &id)?;
        state(ctx).devices.get(&actor, id).await.gql().map(Into::into)
    }
}

#[derive(Default)]
pub struct DeviceMutation;

#[Object]
impl DeviceMutation {
    /// Creates the device, or updates the one with the same (integration, externalId).
    async fn upsert_device(&self, ctx: &Context<'_>, input: UpsertDeviceInputGql) -> async_graphql::Result<DeviceGql> {
        let actor = actor(ctx)?;
        let input = UpsertDeviceInput {
            integration_id: parse_id("integrationId", &input.integration_id)?,
            external_id: input.external_id,
            kind: input.kind.into(),
            name: input.name,
            home_id: input.home_id.as_ref().map(|h| parse_id::<HomeId>("homeId", h)).transpose()?,
            room_id: input.room_id.as_ref().map(|r| parse_id::<RoomId>("roomId", r)).transpose()?,
            attributes: input.attributes.map(|j| j.0),
        };
        let (device, _) = state(ctx).devices.upsert(&actor, input).await.gql()?;
        Ok(device.into())
    }
    /// Changes a device's name, home, room or attributes (the integration, external id
    /// and kind stay). `homeId: null` takes it out of its home; moving it to another home
    /// without a `roomId` takes it out of its room.
    async fn update_device(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateDeviceInput,
    ) -> async_graphql::Result<DeviceGql> {
        let actor = actor(ctx)?;
        let id: DeviceId = parse_id("id", &id)?;
        let changes = DeviceChanges {
            name: input.name,
            home_id: maybe_id::<HomeId>("homeId", input.home_id)?,
            room_id: maybe_id::<RoomId>("roomId", input.room_id)?,
            attributes: input.attributes.map(|j| j.0),
        };
        state(ctx).devices.update(&actor, id, changes).await.gql().map(Into::into)
    }

    /// Deletes a device, cascading to its readings, live state, meter account and ledger,
    /// lock passwords and commands; its closed alarms, tickets and deliveries stay in the
    /// history. Refused with CONFLICT while it has an open alarm, while its meter account
    /// holds money, or while it is a gas meter not yet cancelled at its DAS (`cancelMeter`).
    /// Answers the device as it was.
    async fn delete_device(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<DeviceGql> {
        let actor = actor(ctx)?;
        let id: DeviceId = parse_id("id", &id)?;
        state(ctx).devices.delete(&actor, id).await.gql().map(Into::into)
    }
}

/// `updateDevice`'s input: absent fields stay as they are.
#[derive(InputObject)]
pub struct UpdateDeviceInput {
    pub name: Option<String>,
    /// `null` takes the device out of its home (and room).
    pub home_id: MaybeUndefined<ID>,
    /// `null` takes the device out of its room.
    pub room_id: MaybeUndefined<ID>,
    /// Replaces the attributes whole.
    pub attributes: Option<Json<serde_json::Value>>,
}

/// An optional id argument: absent (unchanged), `null` (cleared) or an id.
pub(super) fn maybe_id<T: std::str::FromStr>(
    field: &str,
    v: MaybeUndefined<ID>,
) -> async_graphql::Result<Option<Option<T>>> {
    match v {
        MaybeUndefined::Undefined => Ok(None),
        MaybeUndefined::Null => Ok(Some(None)),
        MaybeUndefined::Value(id) => Ok(Some(Some(parse_id(field, &id)?))),
    }
}
