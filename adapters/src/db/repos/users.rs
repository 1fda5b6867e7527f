use crate::db::entities::users as u;
use crate::db::page::fetch_page;
use crate::db::{Conn, map_err, unknown};
use async_trait::async_trait;
use domain::ids::{TenantId, UserId};
use domain::users::{Email, NewUser, User, UserChange, UserCredentials, UserRepo};
use domain::{DomainError, DomainResult, Page, PageRequest, Role};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Select, Set,
};

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

/// A tenant's users with `tenant`, platform admins without.
fn scope_of(tenant: Option<TenantId>) -> Select<u::Entity> {
    tenant.map_or_else(platform_admins, scoped)
}

/// The same scope as a condition, for updates.
fn scope_condition(tenant: Option<TenantId>) -> sea_orm::Condition {
    match tenant {
        Some(t) => sea_orm::Condition::all().add(u::Column::TenantId.eq(t.as_uuid())),
        None => sea_orm::Condition::all().add(u::Column::Scope.eq(PLATFORM_SCOPE)),
    }
}

fn to_domain(m: u::Model) -> DomainResult<User> {
    Ok(User {
        id: UserId::from_uuid(m.id),
        tenant_id: m.tenant_id.map(TenantId::from_uuid),
        email: m.email,
        role: Role::parse(&m.role).map_err(|e| DomainError::Unknown(anyhow::anyhow!("stored role: {e}")))?,
        disabled: m.disabled,
        token_version: m.token_version,
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
        token_version: Set(0),
        disabled: Set(false),
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

    async fn session(&self, tenant: Option<TenantId>, id: UserId) -> DomainResult<Option<User>> {
        scope_of(tenant)
            .filter(u::Column::Id.eq(id.as_uuid()))
            .one(&self.db)
            .await
            .map_err(unknown)?
            .map(to_domain)
            .transpose()
    }

    async fn credentials(&self, tenant: Option<TenantId>, id: UserId) -> DomainResult<Option<UserCredentials>> {
        let Some(m) = scope_of(tenant).filter(u::Column::Id.eq(id.as_uuid())).one(&self.db).await.map_err(unknown)?
        else {
            return Ok(None);
        };
        let password_hash = m.password_hash.clone();
        Ok(Some(UserCredentials { user: to_domain(m)?, password_hash }))
    }

    async fn set_password(&self, tenant: Option<TenantId>, id: UserId, password_hash: String) -> DomainResult<User> {
        let done = u::Entity::update_many()
            .col_expr(u::Column::PasswordHash, Expr::value(password_hash))
            .col_expr(u::Column::TokenVersion, Expr::col(u::Column::TokenVersion).add(1))
            .filter(scope_condition(tenant))
            .filter(u::Column::Id.eq(id.as_uuid()))
            .exec(&self.db)
            .await
            .map_err(unknown)?;
        if done.rows_affected == 0 {
            return Err(DomainError::NotFound("user"));
        }
        self.session(tenant, id).await?.ok_or(DomainError::NotFound("user"))
    }

    async fn revoke_tokens(&self, tenant: Option<TenantId>, id: UserId) -> DomainResult<()> {
        let done = u::Entity::update_many()
            .col_expr(u::Column::TokenVersion, Expr::col(u::Column::TokenVersion).add(1))
            .filter(scope_condition(tenant))
            .filter(u::Column::Id.eq(id.as_uuid()))
            .exec(&self.db)
            .await
            .map_err(unknown)?;
        if done.rows_affected == 0 { Err(DomainError::NotFound("user")) } else { Ok(()) }
    }

    async fn update(&self, tenant: TenantId, id: UserId, change: UserChange) -> DomainResult<User> {
        let tx = self.db.begin_write().await.map_err(unknown)?;
        // The tenant's enabled admins, locked (PostgreSQL; SQLite's write transaction is
        // exclusive already) so that two admins demoting each other cannot both succeed.
        let admins = scoped(tenant)
            .filter(u::Column::Role.eq(Role::TenantAdmin.as_str()))
            .filter(u::Column::Disabled.eq(false))
            .order_by_asc(u::Column::Id);
        let admins = if tx.get_database_backend() == DbBackend::Postgres { admins.lock_exclusive() } else { admins };
        let admins = admins.all(&tx).await.map_err(unknown)?;
        let row = scoped(tenant)
            .filter(u::Column::Id.eq(id.as_uuid()))
            .one(&tx)
            .await
            .map_err(unknown)?
            .ok_or(DomainError::NotFound("user"))?;
        let role = change.role.map_or_else(|| row.role.clone(), |r| r.as_str().to_owned());
        let disabled = change.disabled.unwrap_or(row.disabled);
        let admin_now = admins.iter().any(|a| a.id == row.id);
        let admin_after = role == Role::TenantAdmin.as_str() && !disabled;
        if admin_now && !admin_after && admins.len() <= 1 {
            return Err(DomainError::InvalidTransition(
                "the tenant's last enabled TENANT_ADMIN cannot be disabled or demoted".into(),
            ));
        }
        let newly_disabled = disabled && !row.disabled;
        let mut am: u::ActiveModel = row.clone().into();
        am.role = Set(role);
        am.disabled = Set(disabled);
        if newly_disabled {
            am.token_version = Set(row.token_version + 1);
        }
        let saved = am.update(&tx).await.map_err(unknown)?;
        tx.commit().await.map_err(unknown)?;
        to_domain(saved)
    }

    async fn tenant_of(&self, id: UserId) -> DomainResult<Option<TenantId>> {
        let row = u::Entity::find().filter(u::Column::Id.eq(id.as_uuid())).one(&self.db).await.map_err(unknown)?;
        Ok(row.and_then(|m| m.tenant_id).map(TenantId::from_uuid))
    }
}
