use crate::db::entities::users as u;
use crate::db::page::fetch_page;
use crate::db::{Conn, map_err, unknown};
use async_trait::async_trait;
use domain::ids::{TenantId, UserId};
use domain::users::{Email, NewUser, User, UserCredentials, UserRepo};
use domain::{DomainError, DomainResult, Page, PageRequest, Role};
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Select, Set};

/// The `scope` of platform admins; tenant users carry their tenant id there.
const PLATFORM_SCOPE: &str = "platform";

/// Users in SQL.
#[derive(Clone)]
pub struct SqlUserRepo {
    db: Conn,
}

impl SqlUserRepo {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db: db.into() }
    }
}

/// Users of one tenant: the only way to read tenant users.
fn scoped(tenant: TenantId) -> Select<u::Entity> {
    u::Entity::find().filter(u::Column::TenantId.eq(tenant.as_uuid()))
}

fn platform_admins() -> Select<u::Entity> {
    u::Entity::find().filter(u::Column::Scope.eq(PLATFORM_SCOPE))
}

fn to_domain(m: u::Model) -> DomainResult<User> {
    Ok(User {
        id: UserId::from_uuid(m.id),
        tenant_id: m.tenant_id.map(TenantId::from_uuid),
        email: m.email,
        role: Role::parse(&m.role).map_err(|e| DomainError::Unknown(anyhow::anyhow!("stored role: {e}")))?,
        created_at: m.created_at,
    })
}

fn new_row(tenant: Option<TenantId>, input: NewUser) -> u::ActiveModel {
    u::ActiveModel {
        id: Set(UserId::new().as_uuid()),
        tenant_id: Set(tenant.map(|t| t.as_uuid())),
        scope: Set(tenant.map_or_else(|| PLATFORM_SCOPE.to_owned(), |t| t.to_string())),
        email: Set(input.email.as_str().to_owned()),
        password_hash: Set(input.password_hash),
        role: Set(input.role.as_str().to_owned()),
        created_at: Set(chrono::Utc::now()),
    }
}

#[async_trait]
impl UserRepo for SqlUserRepo {
    async fn create(&self, tenant: TenantId, input: NewUser) -> DomainResult<User> {
        let row = new_row(Some(tenant), input)
            .insert(&self.db)
            .await
            .map_err(map_err("a user with this email exists in the tenant"))?;
        to_domain(row)
    }

    async fn ensure_platform_admin(&self, input: NewUser) -> DomainResult<(User, bool)> {
        let existing = platform_admins().filter(u::Column::Email.eq(input.email.as_str()));
        if let Some(row) = existing.clone().one(&self.db).await.map_err(unknown)? {
            return Ok((to_domain(row)?, false));
        }
        match new_row(None, input).insert(&self.db).await {
            Ok(row) => Ok((to_domain(row)?, true)),
            // Another process created it between our read and our insert.
            Err(e) if matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) => {
                let row = existing.one(&self.db).await.map_err(unknown)?.ok_or(DomainError::NotFound("user"))?;
                Ok((to_domain(row)?, false))
            }
            Err(e) => Err(unknown(e)),
        }
    }

    async fn get(&self, tenant: TenantId, id: UserId) -> DomainResult<Option<User>> {
        scoped(tenant)
            .filter(u::Column::Id.eq(id.as_uuid()))
            .one(&self.db)
            .await
            .map_err(unknown)?
            .map(to_domain)
            .transpose()
    }

    async fn get_platform_admin(&self, id: UserId) -> DomainResult<Option<User>> {
        platform_admins()
            .filter(u::Column::Id.eq(id.as_uuid()))
            .one(&self.db)
            .await
            .map_err(unknown)?
            .map(to_domain)
            .transpose()
    }

    async fn list(&self, tenant: TenantId, page: PageRequest) -> DomainResult<Page<User>> {
        let page = fetch_page(&self.db, scoped(tenant), u::Column::Id, page).await.map_err(unknown)?;
        let Page { items, has_next_page, has_previous_page, total_count } = page;
        let items = items.into_iter().map(to_domain).collect::<DomainResult<Vec<_>>>()?;
        Ok(Page { items, has_next_page, has_previous_page, total_count })
    }

    async fn credentials_for_login(
        &self,
        email: &Email,
        tenant: Option<TenantId>,
    ) -> DomainResult<Vec<UserCredentials>> {
        let q = match tenant {
            Some(t) => scoped(t),
            None => u::Entity::find(),
        };
        let rows = q
            .filter(u::Column::Email.eq(email.as_str()))
            .order_by_asc(u::Column::Id)
            .all(&self.db)
            .await
            .map_err(unknown)?;
        rows.into_iter()
            .map(|m| {
                let password_hash = m.password_hash.clone();
                Ok(UserCredentials { user: to_domain(m)?, password_hash })
            })
            .collect()
    }
}
