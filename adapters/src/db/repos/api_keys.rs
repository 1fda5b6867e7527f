use crate::db::entities::api_keys as k;
use crate::db::{Conn, map_err, unknown};
use async_trait::async_trait;
use domain::DomainResult;
use domain::ids::{ApiKeyId, IntegrationId, TenantId};
use domain::integrations::{ApiKey, ApiKeyRepo};
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};

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

fn to_domain(m: k::Model) -> ApiKey {
    ApiKey {
        id: ApiKeyId::from_uuid(m.id),
        tenant_id: TenantId::from_uuid(m.tenant_id),
        integration_id: IntegrationId::from_uuid(m.integration_id),
        prefix: m.prefix,
        created_at: m.created_at,
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
            .one(&self.db)
            .await
            .map_err(unknown)?;
        Ok(row.map(to_domain))
    }
}
