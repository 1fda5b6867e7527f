use crate::db::entities::{devices as d, homes as h, rooms as r};
use crate::db::page::fetch_page;
use crate::db::{Conn, map_err, unknown};
use async_trait::async_trait;
use domain::homes::{Home, HomeRepo, NewHome, NewRoom, Room};
use domain::ids::{HomeId, IntegrationId, RoomId, TenantId};
use domain::{DomainError, DomainResult, Page, PageRequest};
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Select, Set};

/// Homes and rooms in SQL.
#[derive(Clone)]
pub struct SqlHomeRepo {
    db: Conn,
}

impl SqlHomeRepo {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db: Conn::Pool(db) }
    }

    /// The same repository writing through a unit of work's transaction.
    pub(crate) fn within(db: Conn) -> Self {
        Self { db }
    }
}

fn homes(tenant: TenantId) -> Select<h::Entity> {
    h::Entity::find().filter(h::Column::TenantId.eq(tenant.as_uuid()))
}

fn rooms(tenant: TenantId) -> Select<r::Entity> {
    r::Entity::find().filter(r::Column::TenantId.eq(tenant.as_uuid()))
}

fn home(m: h::Model) -> Home {
    Home {
        id: HomeId::from_uuid(m.id),
        tenant_id: TenantId::from_uuid(m.tenant_id),
        integration_id: m.integration_id.map(IntegrationId::from_uuid),
        external_id: m.external_id,
        name: m.name,
        address: m.address,
        attributes: m.attributes,
        created_at: m.created_at,
    }
}

fn room(m: r::Model) -> Room {
    Room {
        id: RoomId::from_uuid(m.id),
        tenant_id: TenantId::from_uuid(m.tenant_id),
        home_id: HomeId::from_uuid(m.home_id),
        external_id: m.external_id,
        name: m.name,
        created_at: m.created_at,
    }
}

#[async_trait]
impl HomeRepo for SqlHomeRepo {
    async fn create_home(&self, tenant: TenantId, input: NewHome) -> DomainResult<Home> {
        let row = h::ActiveModel {
            id: Set(HomeId::new().as_uuid()),
            tenant_id: Set(tenant.as_uuid()),
            integration_id: Set(input.integration_id.map(|i| i.as_uuid())),
            external_id: Set(input.external_id),
            name: Set(input.name),
            address: Set(input.address),
            attributes: Set(input.attributes),
            created_at: Set(chrono::Utc::now()),
        }
        .insert(&self.db)
        .await
        .map_err(map_err("a home with this external id exists"))?;
        Ok(home(row))
    }

    async fn get_home(&self, tenant: TenantId, id: HomeId) -> DomainResult<Option<Home>> {
        Ok(homes(tenant).filter(h::Column::Id.eq(id.as_uuid())).one(&self.db).await.map_err(unknown)?.map(home))
    }

    async fn get_homes(&self, tenant: TenantId, ids: &[HomeId]) -> DomainResult<Vec<Home>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let q = homes(tenant).filter(h::Column::Id.is_in(ids.iter().map(|i| i.as_uuid())));
        Ok(q.all(&self.db).await.map_err(unknown)?.into_iter().map(home).collect())
    }

    async fn list_homes(&self, tenant: TenantId, page: PageRequest) -> DomainResult<Page<Home>> {
        Ok(fetch_page(&self.db, homes(tenant), h::Column::Id, page).await.map_err(unknown)?.map(home))
    }

    async fn create_room(&self, tenant: TenantId, input: NewRoom) -> DomainResult<Room> {
        let row = r::ActiveModel {
            id: Set(RoomId::new().as_uuid()),
            tenant_id: Set(tenant.as_uuid()),
            home_id: Set(input.home_id.as_uuid()),
            external_id: Set(input.external_id),
            name: Set(input.name),
            created_at: Set(chrono::Utc::now()),
        }
        .insert(&self.db)
        .await
        .map_err(map_err("the home already has a room of this name"))?;
        Ok(room(row))
    }

    async fn get_room(&self, tenant: TenantId, id: RoomId) -> DomainResult<Option<Room>> {
        Ok(rooms(tenant).filter(r::Column::Id.eq(id.as_uuid())).one(&self.db).await.map_err(unknown)?.map(room))
    }

    async fn rooms(&self, tenant: TenantId, home_id: HomeId) -> DomainResult<Vec<Room>> {
        let rows = rooms(tenant)
            .filter(r::Column::HomeId.eq(home_id.as_uuid()))
            .order_by_asc(r::Column::Id)
            .all(&self.db)
            .await
            .map_err(unknown)?;
        Ok(rows.into_iter().map(room).collect())
    }

    async fn get_rooms(&self, tenant: TenantId, ids: &[RoomId]) -> DomainResult<Vec<Room>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let q = rooms(tenant).filter(r::Column::Id.is_in(ids.iter().map(|i| i.as_uuid())));
        Ok(q.all(&self.db).await.map_err(unknown)?.into_iter().map(room).collect())
    }

    async fn rooms_of(&self, tenant: TenantId, homes: &[HomeId]) -> DomainResult<Vec<Room>> {
        if homes.is_empty() {
            return Ok(vec![]);
        }
        let rows = rooms(tenant)
            .filter(r::Column::HomeId.is_in(homes.iter().map(|h| h.as_uuid())))
            .order_by_asc(r::Column::Id)
            .all(&self.db)
            .await
            .map_err(unknown)?;
        Ok(rows.into_iter().map(room).collect())
    }

    async fn update_home(&self, tenant: TenantId, home_in: &Home) -> DomainResult<Home> {
        let found = homes(tenant)
            .filter(h::Column::Id.eq(home_in.id.as_uuid()))
            .one(&self.db)
            .await
            .map_err(unknown)?
            .ok_or(DomainError::NotFound("home"))?;
        let mut row: h::ActiveModel = found.into();
        row.name = Set(home_in.name.clone());
        row.address = Set(home_in.address.clone());
        row.attributes = Set(home_in.attributes.clone());
        Ok(home(row.update(&self.db).await.map_err(unknown)?))
    }

    async fn delete_home(&self, tenant: TenantId, id: HomeId) -> DomainResult<()> {
        // The rooms first: not every store enforces the cascade.
        r::Entity::delete_many()
            .filter(r::Column::TenantId.eq(tenant.as_uuid()))
            .filter(r::Column::HomeId.eq(id.as_uuid()))
            .exec(&self.db)
            .await
            .map_err(unknown)?;
        let done = h::Entity::delete_many()
            .filter(h::Column::TenantId.eq(tenant.as_uuid()))
            .filter(h::Column::Id.eq(id.as_uuid()))
            .exec(&self.db)
            .await
            .map_err(unknown)?;
        if done.rows_affected == 0 { Err(DomainError::NotFound("home")) } else { Ok(()) }
    }

    async fn rename_room(&self, tenant: TenantId, id: RoomId, name: &str) -> DomainResult<Room> {
        let found = rooms(tenant)
            .filter(r::Column::Id.eq(id.as_uuid()))
            .one(&self.db)
            .await
            .map_err(unknown)?
            .ok_or(DomainError::NotFound("room"))?;
        let mut row: r::ActiveModel = found.into();
        row.name = Set(name.to_owned());
        Ok(room(row.update(&self.db).await.map_err(map_err("the home already has a room of this name"))?))
    }

    async fn delete_room(&self, tenant: TenantId, id: RoomId) -> DomainResult<()> {
        let done = r::Entity::delete_many()
            .filter(r::Column::TenantId.eq(tenant.as_uuid()))
            .filter(r::Column::Id.eq(id.as_uuid()))
            .exec(&self.db)
            .await
            .map_err(unknown)?;
        if done.rows_affected == 0 { Err(DomainError::NotFound("room")) } else { Ok(()) }
    }

    async fn devices_in(&self, tenant: TenantId, home_id: HomeId, room_id: Option<RoomId>) -> DomainResult<u64> {
        use sea_orm::PaginatorTrait;
        let mut q = d::Entity::find().filter(d::Column::TenantId.eq(tenant.as_uuid()));
        q = match room_id {
            Some(room_id) => q.filter(d::Column::RoomId.eq(room_id.as_uuid())),
            None => q.filter(d::Column::HomeId.eq(home_id.as_uuid())),
        };
        q.count(&self.db).await.map_err(unknown)
    }
}
