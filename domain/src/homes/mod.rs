//! Homes (a building, flat or site) and their rooms; devices and alarms hang off them.

use crate::ids::{HomeId, IntegrationId, RoomId, TenantId};
use crate::{Actor, DomainError, DomainResult, Page, PageRequest};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::sync::Arc;

/// A stored home.
#[derive(Debug, Clone, PartialEq)]
pub struct Home {
    pub id: HomeId,
    pub tenant_id: TenantId,
    /// The integration whose home it mirrors, if any.
    pub integration_id: Option<IntegrationId>,
    pub external_id: Option<String>,
    pub name: String,
    pub address: Option<String>,
    pub attributes: Value,
    pub created_at: DateTime<Utc>,
}

/// A stored room.
#[derive(Debug, Clone, PartialEq)]
pub struct Room {
    pub id: RoomId,
    pub tenant_id: TenantId,
    pub home_id: HomeId,
    pub external_id: Option<String>,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// Input to create a home.
#[derive(Debug, Clone)]
pub struct NewHome {
    pub integration_id: Option<IntegrationId>,
    pub external_id: Option<String>,
    pub name: String,
    pub address: Option<String>,
    pub attributes: Value,
}

/// Input to create a room.
#[derive(Debug, Clone)]
pub struct NewRoom {
    pub home_id: HomeId,
    pub external_id: Option<String>,
    pub name: String,
}

/// What `updateHome` changes: absent fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct HomeChanges {
    pub name: Option<String>,
    pub address: Option<String>,
    /// Replaces the attributes whole.
    pub attributes: Option<Value>,
}

/// Homes and rooms of a tenant.
#[async_trait]
pub trait HomeRepo: Send + Sync {
    /// # Errors
    /// `Duplicate` when the integration already has a home with that external id.
    async fn create_home(&self, tenant: TenantId, input: NewHome) -> DomainResult<Home>;
    /// # Errors
    /// `Unknown` on storage failure.
    async fn get_home(&self, tenant: TenantId, id: HomeId) -> DomainResult<Option<Home>>;
    /// The tenant's homes among `ids`, in one query.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn get_homes(&self, tenant: TenantId, ids: &[HomeId]) -> DomainResult<Vec<Home>>;
    /// # Errors
    /// `Unknown` on storage failure.
    async fn list_homes(&self, tenant: TenantId, page: PageRequest) -> DomainResult<Page<Home>>;
    /// # Errors
    /// `Duplicate` when the home already has a room of that name.
    async fn create_room(&self, tenant: TenantId, input: NewRoom) -> DomainResult<Room>;
    /// # Errors
    /// `Unknown` on storage failure.
    async fn get_room(&self, tenant: TenantId, id: RoomId) -> DomainResult<Option<Room>>;
    /// Rooms of one home, in creation order.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn rooms(&self, tenant: TenantId, home: HomeId) -> DomainResult<Vec<Room>>;
    /// The tenant's rooms among `ids`, in one query.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn get_rooms(&self, tenant: TenantId, ids: &[RoomId]) -> DomainResult<Vec<Room>>;
    /// The rooms of several homes, in one query, in creation order.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn rooms_of(&self, tenant: TenantId, homes: &[HomeId]) -> DomainResult<Vec<Room>>;
    /// Writes a home's name, address and attributes as given.
    ///
    /// # Errors
    /// `NotFound("home")` when absent or in another tenant.
    async fn update_home(&self, tenant: TenantId, home: &Home) -> DomainResult<Home>;
    /// Deletes a home and its rooms.
    ///
    /// # Errors
    /// `NotFound("home")` when absent or in another tenant.
    async fn delete_home(&self, tenant: TenantId, id: HomeId) -> DomainResult<()>;
    /// Renames a room.
    ///
    /// # Errors
    /// `NotFound("room")`; `Duplicate` when the home has a room of that name.
    async fn rename_room(&self, tenant: TenantId, id: RoomId, name: &str) -> DomainResult<Room>;
    /// # Errors
    /// `NotFound("room")` when absent or in another tenant.
    async fn delete_room(&self, tenant: TenantId, id: RoomId) -> DomainResult<()>;
    /// How many devices are in the home (or in one of its rooms).
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn devices_in(&self, tenant: TenantId, home: HomeId, room: Option<RoomId>) -> DomainResult<u64>;
}

fn check_name(field: &str, name: &str) -> DomainResult<String> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 200 {
        return Err(DomainError::invalid(field, "1-200 characters"));
    }
    Ok(n.to_owned())
}

/// Managing homes and rooms.
#[derive(Clone)]
pub struct HomeService {
    repo: Arc<dyn HomeRepo>,
    integrations: Arc<dyn crate::integrations::IntegrationRepo>,
    outbound: Option<crate::outbound::Outbound>,
}

impl HomeService {
    pub fn new(repo: Arc<dyn HomeRepo>, integrations: Arc<dyn crate::integrations::IntegrationRepo>) -> Self {
        Self { repo, integrations, outbound: None }
    }

    /// Writes new homes and rooms in units of work with the deliveries the vendor modules
    /// plan for them (a mirrored vendor home gets its `HomeAdded`, `RoomAdded`).
    #[must_use]
    pub fn with_outbound(mut self, outbound: crate::outbound::Outbound) -> Self {
        self.outbound = Some(outbound);
        self
    }

    /// # Errors
    /// `Forbidden` for viewers; `Invalid` on the name or attributes; `NotFound` for a foreign integration.
    pub async fn add_home(&self, actor: &Actor, mut input: NewHome) -> DomainResult<Home> {
        let tenant = actor.require_operator()?;
        input.name = check_name("name", &input.name)?;
        if input.attributes.is_null() {
            input.attributes = Value::Object(Default::default());
        } else if !input.attributes.is_object() {
            return Err(DomainError::invalid("attributes", "must be a JSON object"));
        }
        if let Some(i) = input.integration_id {
            self.integrations.get(tenant, i).await?.ok_or(DomainError::NotFound("integration"))?;
        }
        let Some(out) = &self.outbound else { return self.repo.create_home(tenant, input).await };
        let unit = out.begin().await?;
        let home = unit.homes().create_home(tenant, input).await?;
        out.commit(unit, tenant, &[crate::outbound::Message::HomeAdded(home.clone())]).await?;
        Ok(home)
    }

    /// # Errors
    /// `Forbidden` for viewers; `NotFound` for a home of another tenant; `Duplicate` on a taken name.
    pub async fn add_room(&self, actor: &Actor, mut input: NewRoom) -> DomainResult<Room> {
        let tenant = actor.require_operator()?;
        input.name = check_name("name", &input.name)?;
        let home = self.repo.get_home(tenant, input.home_id).await?.ok_or(DomainError::NotFound("home"))?;
        let Some(out) = &self.outbound else { return self.repo.create_room(tenant, input).await };
        let unit = out.begin().await?;
        let room = unit.homes().create_room(tenant, input).await?;
        out.commit(unit, tenant, &[crate::outbound::Message::RoomAdded { home, room: room.clone() }]).await?;
        Ok(room)
    }

    /// Adds several rooms to a home at once (mirrored as one call where the vendor takes
    /// one call for several rooms). All or none are added.
    ///
    /// # Errors
    /// As `add_room`; `Invalid { field: "rooms" }` for none or more than 100.
    pub async fn add_rooms(&self, actor: &Actor, home_id: HomeId, rooms: Vec<NewRoom>) -> DomainResult<Vec<Room>> {
        let tenant = actor.require_operator()?;
        if rooms.is_empty() || rooms.len() > 100 {
            return Err(DomainError::invalid("rooms", "1-100 rooms"));
        }
        let home = self.repo.get_home(tenant, home_id).await?.ok_or(DomainError::NotFound("home"))?;
        let mut checked = Vec::with_capacity(rooms.len());
        for mut r in rooms {
            r.name = check_name("rooms.name", &r.name)?;
            r.home_id = home_id;
            checked.push(r);
        }
        let Some(out) = &self.outbound else {
            let mut added = Vec::with_capacity(checked.len());
            for r in checked {
                added.push(self.repo.create_room(tenant, r).await?);
            }
            return Ok(added);
        };
        let unit = out.begin().await?;
        let mut added = Vec::with_capacity(checked.len());
        for r in checked {
            added.push(unit.homes().create_room(tenant, r).await?);
        }
        out.commit(unit, tenant, &[crate::outbound::Message::RoomsAdded { home, rooms: added.clone() }]).await?;
        Ok(added)
    }

    /// Changes a home's name, address or attributes (mirrored to its vendor).
    ///
    /// # Errors
    /// `Forbidden` for viewers; `NotFound` when absent or in another tenant; `Invalid` on a field.
    pub async fn update_home(&self, actor: &Actor, id: HomeId, changes: HomeChanges) -> DomainResult<Home> {
        let tenant = actor.require_operator()?;
        let before = self.repo.get_home(tenant, id).await?.ok_or(DomainError::NotFound("home"))?;
        let mut after = before.clone();
        if let Some(n) = changes.name {
            after.name = check_name("name", &n)?;
        }
        if let Some(a) = changes.address {
            after.address = Some(a.trim().to_owned()).filter(|a| !a.is_empty());
        }
        match changes.attributes {
            Some(v @ Value::Object(_)) => after.attributes = v,
            Some(Value::Null) | None => {}
            Some(_) => return Err(DomainError::invalid("attributes", "must be a JSON object")),
        }
        if after == before {
            return Ok(before);
        }
        let Some(out) = &self.outbound else { return self.repo.update_home(tenant, &after).await };
        let unit = out.begin().await?;
        let after = unit.homes().update_home(tenant, &after).await?;
        out.commit(unit, tenant, &[crate::outbound::Message::HomeUpdated { before, after: after.clone() }]).await?;
        Ok(after)
    }

    /// Deletes a home with its rooms (mirrored to its vendor). Refused while devices are
    /// in it: move or delete them first. Its tickets and alarms stay in the history.
    ///
    /// # Errors
    /// `Forbidden` for viewers; `NotFound` when absent or in another tenant; `Conflict`
    /// while the home has devices.
    pub async fn delete_home(&self, actor: &Actor, id: HomeId) -> DomainResult<Home> {
        let tenant = actor.require_operator()?;
        let home = self.repo.get_home(tenant, id).await?.ok_or(DomainError::NotFound("home"))?;
        let Some(out) = &self.outbound else {
            Self::refuse_occupied(&*self.repo, tenant, id, None).await?;
            self.repo.delete_home(tenant, id).await?;
            return Ok(home);
        };
        let unit = out.begin().await?;
        Self::refuse_occupied(&*unit.homes(), tenant, id, None).await?;
        unit.homes().delete_home(tenant, id).await?;
        out.commit(unit, tenant, &[crate::outbound::Message::HomeDeleted(home.clone())]).await?;
        Ok(home)
    }

    /// Renames a room (mirrored to its vendor).
    ///
    /// # Errors
    /// `Forbidden` for viewers; `NotFound` when absent or in another tenant; `Duplicate`
    /// on a taken name.
    pub async fn update_room(&self, actor: &Actor, id: RoomId, name: &str) -> DomainResult<Room> {
        let tenant = actor.require_operator()?;
        let name = check_name("name", name)?;
        let before = self.repo.get_room(tenant, id).await?.ok_or(DomainError::NotFound("room"))?;
        if before.name == name {
            return Ok(before);
        }
        let home = self.repo.get_home(tenant, before.home_id).await?.ok_or(DomainError::NotFound("home"))?;
        let Some(out) = &self.outbound else { return self.repo.rename_room(tenant, id, &name).await };
        let unit = out.begin().await?;
        let after = unit.homes().rename_room(tenant, id, &name).await?;
        let msg = crate::outbound::Message::RoomUpdated { home, before, after: after.clone() };
        out.commit(unit, tenant, &[msg]).await?;
        Ok(after)
    }

    /// Deletes a room (mirrored to its vendor). Refused while devices are in it.
    ///
    /// # Errors
    /// `Forbidden` for viewers; `NotFound` when absent or in another tenant; `Conflict`
    /// while the room has devices.
    pub async fn delete_room(&self, actor: &Actor, id: RoomId) -> DomainResult<Room> {
        let tenant = actor.require_operator()?;
        let room = self.repo.get_room(tenant, id).await?.ok_or(DomainError::NotFound("room"))?;
        let home = self.repo.get_home(tenant, room.home_id).await?.ok_or(DomainError::NotFound("home"))?;
        let Some(out) = &self.outbound else {
            Self::refuse_occupied(&*self.repo, tenant, home.id, Some(id)).await?;
            self.repo.delete_room(tenant, id).await?;
            return Ok(room);
        };
        let unit = out.begin().await?;
        Self::refuse_occupied(&*unit.homes(), tenant, home.id, Some(id)).await?;
        unit.homes().delete_room(tenant, id).await?;
        out.commit(unit, tenant, &[crate::outbound::Message::RoomDeleted { home, room: room.clone() }]).await?;
        Ok(room)
    }

    async fn refuse_occupied(
        repo: &dyn HomeRepo,
        tenant: TenantId,
        home: HomeId,
        room: Option<RoomId>,
    ) -> DomainResult<()> {
        let n = repo.devices_in(tenant, home, room).await?;
        if n == 0 {
            return Ok(());
        }
        let what = if room.is_some() { "room" } else { "home" };
        Err(DomainError::Conflict(format!(
            "the {what} has {n} device(s): move them elsewhere (updateDevice) or delete them (deleteDevice) first"
        )))
    }

    /// # Errors
    /// `NotFound` when absent or in another tenant.
    pub async fn get(&self, actor: &Actor, id: HomeId) -> DomainResult<Home> {
        self.repo.get_home(actor.require_reader()?, id).await?.ok_or(DomainError::NotFound("home"))
    }

    /// # Errors
    /// `Forbidden` for actors without a tenant.
    pub async fn list(&self, actor: &Actor, page: PageRequest) -> DomainResult<Page<Home>> {
        self.repo.list_homes(actor.require_reader()?, page).await
    }

    /// # Errors
    /// `Forbidden` for actors without a tenant.
    pub async fn rooms(&self, actor: &Actor, home: HomeId) -> DomainResult<Vec<Room>> {
        self.repo.rooms(actor.require_reader()?, home).await
    }

    /// The actor's homes among `ids` (others are left out), in one read.
    ///
    /// # Errors
    /// `Forbidden` for actors without a tenant.
    pub async fn get_many(&self, actor: &Actor, ids: &[HomeId]) -> DomainResult<Vec<Home>> {
        self.repo.get_homes(actor.require_reader()?, ids).await
    }

    /// The actor's rooms among `ids` (others are left out), in one read.
    ///
    /// # Errors
    /// `Forbidden` for actors without a tenant.
    pub async fn get_rooms(&self, actor: &Actor, ids: &[RoomId]) -> DomainResult<Vec<Room>> {
        self.repo.get_rooms(actor.require_reader()?, ids).await
    }

    /// The rooms of several homes, in one read.
    ///
    /// # Errors
    /// `Forbidden` for actors without a tenant.
    pub async fn rooms_of(&self, actor: &Actor, homes: &[HomeId]) -> DomainResult<Vec<Room>> {
        self.repo.rooms_of(actor.require_reader()?, homes).await
    }
}
