//! Homes and rooms.

use super::alarms::AlarmGql;
use super::connection::{Conn, page_request, to_connection};
use super::devices::DeviceGql;
use super::loaders::{self, RoomsOf};
use super::{actor, parse_id, state};
use crate::error::GqlResultExt;
use async_graphql::{ComplexObject, Context, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use domain::alarms::AlarmFilter;
use domain::devices::DeviceFilter;
use domain::homes::{Home, HomeChanges, NewHome, NewRoom, Room};
use domain::ids::{HomeId, IntegrationId, RoomId};

/// A home (building, flat or site).
#[derive(SimpleObject)]
#[graphql(name = "Home", complex)]
pub struct HomeGql {
    pub id: ID,
    pub name: String,
    pub address: Option<String>,
    pub integration_id: Option<ID>,
    pub external_id: Option<String>,
    pub attributes: Json<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    #[graphql(skip)]
    pub home_id: HomeId,
}

impl From<Home> for HomeGql {
    fn from(h: Home) -> Self {
        Self {
            id: ID(h.id.to_string()),
            name: h.name,
            address: h.address,
            integration_id: h.integration_id.map(|i| ID(i.to_string())),
            external_id: h.external_id,
            attributes: Json(h.attributes),
            created_at: h.created_at,
            home_id: h.id,
        }
    }
}

#[ComplexObject]
impl HomeGql {
    async fn rooms(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<RoomGql>> {
        Ok(loaders::load_all(ctx, RoomsOf(self.home_id)).await?.into_iter().map(Into::into).collect())
    }

    #[graphql(complexity = "super::connection::cost(first, child_complexity)")]
    async fn devices(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<DeviceGql>> {
        let actor = actor(ctx)?;
        let filter = DeviceFilter { home_id: Some(self.home_id), ..Default::default() };
        let page = state(ctx).devices.list(&actor, &filter, page_request(first, after)?).await.gql()?;
        Ok(to_connection(page, |d| d.id.as_uuid(), DeviceGql::from))
    }

    /// The open alarms of the home's devices, newest first.
    #[graphql(complexity = "super::connection::cost(first, child_complexity)")]
    async fn alarms(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<AlarmGql>> {
        let actor = actor(ctx)?;
        let filter = AlarmFilter { home_id: Some(self.home_id), open: true, ..Default::default() };
        let page = state(ctx).alarms.list(&actor, &filter, page_request(first, after)?).await.gql()?;
        Ok(to_connection(page, |a| a.id.as_uuid(), AlarmGql::from))
    }
}

/// A room of a home.
#[derive(SimpleObject)]
#[graphql(name = "Room")]
pub struct RoomGql {
    pub id: ID,
    pub home_id: ID,
    pub name: String,
    pub external_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<Room> for RoomGql {
    fn from(r: Room) -> Self {
        Self {
            id: ID(r.id.to_string()),
            home_id: ID(r.home_id.to_string()),
            name: r.name,
            external_id: r.external_id,
            created_at: r.created_at,
        }
    }
}

#[derive(InputObject)]
pub struct AddHomeInput {
    pub name: String,
    pub address: Option<String>,
    /// The integration the home belongs to (e.g. a Dingding account).
    pub integration_id: Option<ID>,
    pub external_id: Option<String>,
    pub attributes: Option<Json<serde_json::Value>>,
}

#[derive(InputObject)]
pub struct AddRoomInput {
    pub home_id: ID,
    pub name: String,
    pub external_id: Option<String>,
}

#[derive(Default)]
pub struct HomeQuery;

#[Object]
impl HomeQuery {
    #[graphql(complexity = "super::connection::cost(first, child_complexity)")]
    async fn homes(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<HomeGql>> {
        let actor = actor(ctx)?;
        let page = state(ctx).homes.list(&actor, page_request(first, after)?).await.gql()?;
        Ok(to_connection(page, |h| h.id.as_uuid(), HomeGql::from))
    }

    async fn home(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<HomeGql> {
        let actor = actor(ctx)?;
        let id: HomeId = parse_id("id", &id)?;
        state(ctx).homes.get(&actor, id).await.gql().map(Into::into)
    }
}

#[derive(Default)]
pub struct HomeMutation;

#[Object]
impl HomeMutation {
    async fn add_home(&self, ctx: &Context<'_>, input: AddHomeInput) -> async_graphql::Result<HomeGql> {
        let actor = actor(ctx)?;
        let integration_id =
            input.integration_id.as_ref().map(|i| parse_id::<IntegrationId>("integrationId", i)).transpose()?;
        // A vendor's home may need its id there before it is mirrored (Dingding 5.1).
        let external_id =
            state(ctx).dingding.external_id_for_home(&actor, integration_id, input.external_id).await.gql()?;
        let new = NewHome {
            integration_id,
            external_id,
            name: input.name,
            address: input.address,
            attributes: input.attributes.map_or(serde_json::Value::Null, |j| j.0),
        };
        let home = state(ctx).homes.add_home(&actor, new).await.gql()?;
        Ok(home.into())
    }

    async fn add_room(&self, ctx: &Context<'_>, input: AddRoomInput) -> async_graphql::Result<RoomGql> {
        let actor = actor(ctx)?;
        let home_id: HomeId = parse_id("homeId", &input.home_id)?;
        let external_id = state(ctx).dingding.external_id_for_room(&actor, home_id, input.external_id).await.gql()?;
        let new = NewRoom { home_id, external_id, name: input.name };
        let room = state(ctx).homes.add_room(&actor, new).await.gql()?;
        Ok(room.into())
    }
    /// Adds several rooms to a home at once (1-100; all or none). A Dingding home gets
    /// them in one `add_rooms` call.
    async fn add_rooms(
        &self,
        ctx: &Context<'_>,
        home_id: ID,
        rooms: Vec<NewRoomInput>,
    ) -> async_graphql::Result<Vec<RoomGql>> {
        let actor = actor(ctx)?;
        let home_id: HomeId = parse_id("homeId", &home_id)?;
        let mut new = Vec::with_capacity(rooms.len());
        for r in rooms {
            let external_id = state(ctx).dingding.external_id_for_room(&actor, home_id, r.external_id).await.gql()?;
            new.push(NewRoom { home_id, external_id, name: r.name });
        }
        let added = state(ctx).homes.add_rooms(&actor, home_id, new).await.gql()?;
        Ok(added.into_iter().map(Into::into).collect())
    }

    /// Changes a home's name, address or attributes (mirrored to Dingding where the home
    /// belongs to a DINGDING integration: `update_home`; an `spState` attribute of 2
    /// tells Dingding the installation was accepted).
    async fn update_home(&self, ctx: &Context<'_>, id: ID, input: UpdateHomeInput) -> async_graphql::Result<HomeGql> {
        let actor = actor(ctx)?;
        let id: HomeId = parse_id("id", &id)?;
        let changes =
            HomeChanges { name: input.name, address: input.address, attributes: input.attributes.map(|j| j.0) };
        state(ctx).homes.update_home(&actor, id, changes).await.gql().map(Into::into)
    }

    /// Deletes a home with its rooms (cascade), mirrored to Dingding (`del_home`). Refused
    /// with CONFLICT while devices are in it: move them (`updateDevice`) or delete them
    /// first. Its tickets and alarms stay in the history. Answers the home as it was.
    async fn delete_home(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<HomeGql> {
        let actor = actor(ctx)?;
        let id: HomeId = parse_id("id", &id)?;
        state(ctx).homes.delete_home(&actor, id).await.gql().map(Into::into)
    }

    /// Renames a room (mirrored to Dingding: `update_room`).
    async fn update_room(&self, ctx: &Context<'_>, id: ID, input: UpdateRoomInput) -> async_graphql::Result<RoomGql> {
        let actor = actor(ctx)?;
        let id: RoomId = parse_id("id", &id)?;
        state(ctx).homes.update_room(&actor, id, &input.name).await.gql().map(Into::into)
    }

    /// Deletes a room (mirrored to Dingding: `del_room`). Refused with CONFLICT while
    /// devices are in it. Answers the room as it was.
    async fn delete_room(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<RoomGql> {
        let actor = actor(ctx)?;
        let id: RoomId = parse_id("id", &id)?;
        state(ctx).homes.delete_room(&actor, id).await.gql().map(Into::into)
    }
}

/// One room of `addRooms`.
#[derive(InputObject)]
pub struct NewRoomInput {
    pub name: String,
    pub external_id: Option<String>,
}

/// `updateHome`'s input: absent fields stay as they are.
#[derive(InputObject)]
pub struct UpdateHomeInput {
    pub name: Option<String>,
    pub address: Option<String>,
    /// Replaces the attributes whole.
    pub attributes: Option<Json<serde_json::Value>>,
}

/// `updateRoom`'s input.
#[derive(InputObject)]
pub struct UpdateRoomInput {
    pub name: String,
}
