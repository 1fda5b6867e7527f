use crate::db::entities::integrations as i;
use crate::db::page::fetch_page;
use crate::db::{Conn, map_err, unknown};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::ids::{IntegrationId, TenantId};
use domain::integrations::{HookSeeds, Integration, IntegrationKind, IntegrationRepo, NewIntegration};
use domain::{DomainError, DomainResult, Page, PageRequest};
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Select, Set};

/// Integrations in SQL.
#[derive(Clone)]
pub struct SqlIntegrationRepo {
    db: Conn,
}

impl SqlIntegrationRepo {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db: db.into() }
    }

    async fn row(&self, tenant: TenantId, id: IntegrationId) -> DomainResult<i::Model> {
        scoped(tenant)
            .filter(i::Column::Id.eq(id.as_uuid()))
            .one(&self.db)
            .await
            .map_err(unknown)?
            .ok_or(DomainError::NotFound("integration"))
    }
}

/// Integrations of one tenant: the only way to read them (but `resolve_hook`).
fn scoped(tenant: TenantId) -> Select<i::Entity> {
    i::Entity::find().filter(i::Column::TenantId.eq(tenant.as_uuid()))
}

const DUPLICATE: &str = "an integration with this name exists";

fn to_domain(m: i::Model) -> DomainResult<Integration> {
    Ok(Integration {
        id: IntegrationId::from_uuid(m.id),
        tenant_id: TenantId::from_uuid(m.tenant_id),
        kind: IntegrationKind::parse(&m.kind).map_err(|e| DomainError::Unknown(anyhow::anyhow!("stored kind: {e}")))?,
        name: m.name,
        settings: m.settings,
        credential_names: serde_json::from_value(m.credential_names).unwrap_or_default(),
        secret_rotated_at: m.secret_rotated_at,
        hook_seeds: m
            .hook_seed
            .map(|current| HookSeeds { current, previous: m.previous_hook_seed.zip(m.previous_hook_seed_until) }),
        disabled_at: m.disabled_at,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

#[async_trait]
impl IntegrationRepo for SqlIntegrationRepo {
    async fn create(&self, tenant: TenantId, input: NewIntegration) -> DomainResult<Integration> {
        let now = Utc::now();
        let sealed = input.credentials_sealed.ok_or_else(|| DomainError::invalid("credentials", "is required"))?;
        let row = i::ActiveModel {
            id: Set(IntegrationId::new().as_uuid()),
            tenant_id: Set(tenant.as_uuid()),
            kind: Set(input.kind.as_str().to_owned()),
            name: Set(input.name),
            settings: Set(input.settings),
            credentials_sealed: Set(sealed),
            credential_names: Set(serde_json::json!(input.credential_names)),
            secret_rotated_at: Set(None),
            hook_seed: Set(input.hook_seed),
            previous_hook_seed: Set(None),
            previous_hook_seed_until: Set(None),
            disabled_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&self.db)
        .await
        .map_err(map_err(DUPLICATE))?;
        to_domain(row)
    }

    async fn update(&self, tenant: TenantId, id: IntegrationId, input: NewIntegration) -> DomainResult<Integration> {
        let mut row: i::ActiveModel = self.row(tenant, id).await?.into();
        row.name = Set(input.name);
        row.settings = Set(input.settings);
        if let Some(sealed) = input.credentials_sealed {
            row.credentials_sealed = Set(sealed);
            row.credential_names = Set(serde_json::json!(input.credential_names));
        }
        row.updated_at = Set(Utc::now());
        to_domain(row.update(&self.db).await.map_err(map_err(DUPLICATE))?)
    }

    async fn get(&self, tenant: TenantId, id: IntegrationId) -> DomainResult<Option<Integration>> {
        match self.row(tenant, id).await {
            Ok(m) => to_domain(m).map(Some),
            Err(DomainError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn list(&self, tenant: TenantId, page: PageRequest) -> DomainResult<Page<Integration>> {
        let page = fetch_page(&self.db, scoped(tenant), i::Column::Id, page).await.map_err(unknown)?;
        let Page { items, has_next_page, has_previous_page, total_count } = page;
        let items = items.into_iter().map(to_domain).collect::<DomainResult<Vec<_>>>()?;
        Ok(Page { items, has_next_page, has_previous_page, total_count })
    }

    async fn sealed_credentials(&self, tenant: TenantId, id: IntegrationId) -> DomainResult<String> {
        Ok(self.row(tenant, id).await?.credentials_sealed)
    }

    async fn store_rotated_credentials(
        &self,
        tenant: TenantId,
        id: IntegrationId,
        sealed: String,
        names: Vec<String>,
        hook_seeds: Option<HookSeeds>,
        at: DateTime<Utc>,
    ) -> DomainResult<Integration> {
        let mut row: i::ActiveModel = self.row(tenant, id).await?.into();
        if let Some(seeds) = hook_seeds {
            let (previous, until) = seeds.previous.unzip();
            row.hook_seed = Set(Some(seeds.current));
            row.previous_hook_seed = Set(previous);
            row.previous_hook_seed_until = Set(until);
        }
        row.credentials_sealed = Set(sealed);
        row.credential_names = Set(serde_json::json!(names));
        row.secret_rotated_at = Set(Some(at));
        row.updated_at = Set(at);
        to_domain(row.update(&self.db).await.map_err(unknown)?)
    }

    async fn set_disabled(
        &self,
        tenant: TenantId,
        id: IntegrationId,
        at: Option<DateTime<Utc>>,
    ) -> DomainResult<Integration> {
        let mut row: i::ActiveModel = self.row(tenant, id).await?.into();
        row.disabled_at = Set(at);
        row.updated_at = Set(Utc::now());
        to_domain(row.update(&self.db).await.map_err(unknown)?)
    }

    async fn resolve_hook(&self, id: IntegrationId) -> DomainResult<Option<Integration>> {
        i::Entity::find_by_id(id.as_uuid()).one(&self.db).await.map_err(unknown)?.map(to_domain).transpose()
    }

    async fn all_of_kinds(&self, kinds: &[IntegrationKind]) -> DomainResult<Vec<Integration>> {
        // The scheduler's view across tenants, by design; every job it runs is scoped to
        // the integration's own tenant.
        i::Entity::find()
            .filter(i::Column::Kind.is_in(kinds.iter().map(IntegrationKind::as_str)))
            .filter(i::Column::DisabledAt.is_null())
            .all(&self.db)
            .await
            .map_err(unknown)?
            .into_iter()
            .map(to_domain)
            .collect()
    }
}
