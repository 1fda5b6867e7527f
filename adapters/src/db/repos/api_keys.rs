use crate::db::entities::api_keys as k;
use crate::db::page::fetch_page;
use crate::db::{Conn, map_err, unknown};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::ids::{ApiKeyId, IntegrationId, TenantId};
use domain::integrations::{ApiKey, ApiKeyRepo};
use domain::{DomainError, DomainResult, Page, PageRequest};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Select, Set};

/// API keys in SQL (digests only).
#[derive(Clone)]
pub struct SqlApiKeyRepo {
    db: Conn,
}

impl SqlApiKeyRepo {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db: db.into() }
    }
}

/// Keys of one tenant: the only way to read or change them by id.
fn scoped(tenant: TenantId) -> Select<k::Entity> {
    k::Entity::find().filter(k::Column::TenantId.eq(tenant.as_uuid()))
}

fn to_domain(m: k::Model) -> ApiKey {
    ApiKey {
        id: ApiKeyId::from_uuid(m.id),
        tenant_id: TenantId::from_uuid(m.tenant_id),
        integration_id: IntegrationId::from_uuid(m.integration_id),
        prefix: m.prefix,
        created_at: m.created_at,
        last_used_at: m.last_used_at,
        revoked_at: m.revoked_at,
    }
}

#[async_trait]
impl ApiKeyRepo for SqlApiKeyRepo {
    async fn create(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        prefix: String,
        digest: String,
    ) -> DomainResult<ApiKey> {
        let row = k::ActiveModel {
            id: Set(ApiKeyId::new().as_uuid()),
            tenant_id: Set(tenant.as_uuid()),
            integration_id: Set(integration.as_uuid()),
            prefix: Set(prefix),
            key_digest: Set(digest),
            created_at: Set(chrono::Utc::now()),
            revoked_at: Set(None),
            last_used_at: Set(None),
        }
        .insert(&self.db)
        .await
        .map_err(map_err("api key"))?;
        Ok(to_domain(row))
    }

    async fn find(&self, integration: IntegrationId, digest: &str) -> DomainResult<Option<ApiKey>> {
        let row = k::Entity::find()
            .filter(k::Column::IntegrationId.eq(integration.as_uuid()))
            .filter(k::Column::KeyDigest.eq(digest))
            .filter(k::Column::RevokedAt.is_null())
            .one(&self.db)
            .await
            .map_err(unknown)?;
        Ok(row.map(to_domain))
    }

    async fn list(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        page: PageRequest,
    ) -> DomainResult<Page<ApiKey>> {
        let q = scoped(tenant).filter(k::Column::IntegrationId.eq(integration.as_uuid()));
        let page = fetch_page(&self.db, q, k::Column::Id, page).await.map_err(unknown)?;
        let Page { items, has_next_page, has_previous_page, total_count } = page;
        Ok(Page { items: items.into_iter().map(to_domain).collect(), has_next_page, has_previous_page, total_count })
    }

    async fn revoke(&self, tenant: TenantId, id: ApiKeyId, at: DateTime<Utc>) -> DomainResult<ApiKey> {
        // Only the first revocation sets the time.
        k::Entity::update_many()
            .col_expr(k::Column::RevokedAt, Expr::value(at))
            .filter(k::Column::TenantId.eq(tenant.as_uuid()))
            .filter(k::Column::Id.eq(id.as_uuid()))
            .filter(k::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await
            .map_err(unknown)?;
        let row = scoped(tenant).filter(k::Column::Id.eq(id.as_uuid())).one(&self.db).await.map_err(unknown)?;
        row.map(to_domain).ok_or(DomainError::NotFound("api key"))
    }

    async fn touch(&self, tenant: TenantId, id: ApiKeyId, at: DateTime<Utc>) -> DomainResult<()> {
        k::Entity::update_many()
            .col_expr(k::Column::LastUsedAt, Expr::value(at))
            .filter(k::Column::TenantId.eq(tenant.as_uuid()))
            .filter(k::Column::Id.eq(id.as_uuid()))
            .exec(&self.db)
            .await
            .map_err(unknown)?;
        Ok(())
    }
}
