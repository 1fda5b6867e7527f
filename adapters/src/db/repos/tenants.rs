use crate::db::entities::tenants as t;
use crate::db::page::fetch_page;
use crate::db::{Conn, map_err, unknown};
use async_trait::async_trait;
use domain::ids::TenantId;
use domain::tenants::{NewTenant, Tenant, TenantRepo};
use domain::{DomainResult, Page, PageRequest};
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};

/// Tenants in SQL.
#[derive(Clone)]
pub struct SqlTenantRepo {
    db: Conn,
}

impl SqlTenantRepo {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db: db.into() }
    }
}

fn to_domain(m: t::Model) -> Tenant {
    Tenant { id: TenantId::from_uuid(m.id), slug: m.slug, name: m.name, created_at: m.created_at }
}

#[async_trait]
impl TenantRepo for SqlTenantRepo {
    async fn create(&self, input: NewTenant) -> DomainResult<Tenant> {
        let row = t::ActiveModel {
            id: Set(TenantId::new().as_uuid()),
            slug: Set(input.slug.as_str().to_owned()),
            name: Set(input.name),
            created_at: Set(chrono::Utc::now()),
        }
        .insert(&self.db)
        .await
        .map_err(map_err("a tenant with this slug exists"))?;
        Ok(to_domain(row))
    }

    async fn get(&self, id: TenantId) -> DomainResult<Option<Tenant>> {
        Ok(t::Entity::find_by_id(id.as_uuid()).one(&self.db).await.map_err(unknown)?.map(to_domain))
    }

    async fn get_by_slug(&self, slug: &str) -> DomainResult<Option<Tenant>> {
        let row = t::Entity::find().filter(t::Column::Slug.eq(slug)).one(&self.db).await.map_err(unknown)?;
        Ok(row.map(to_domain))
    }

    async fn list(&self, page: PageRequest) -> DomainResult<Page<Tenant>> {
        let page = fetch_page(&self.db, t::Entity::find(), t::Column::Id, page).await.map_err(unknown)?;
        Ok(page.map(to_domain))
    }
}
