use crate::db::entities::device_files as f;
use crate::db::{Conn, unknown};
use async_trait::async_trait;
use domain::devices::{DeviceFile, DeviceFileRepo, DeviceFileState};
use domain::ids::{DeviceId, FileId, IntegrationId, TenantId};
use domain::{DomainError, DomainResult};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Select, Set};

/// Device files' records in SQL.
#[derive(Clone)]
pub struct SqlDeviceFileRepo {
    db: Conn,
}

impl SqlDeviceFileRepo {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db: Conn::Pool(db) }
    }
}

fn scoped(tenant: TenantId) -> Select<f::Entity> {
    f::Entity::find().filter(f::Column::TenantId.eq(tenant.as_uuid()))
}

fn to_domain(m: f::Model) -> DomainResult<DeviceFile> {
    let state = DeviceFileState::parse(&m.state)
        .map_err(|e| DomainError::Unknown(anyhow::anyhow!("stored device file: {e}")))?;
    Ok(DeviceFile {
        id: FileId::from_uuid(m.id),
        tenant_id: TenantId::from_uuid(m.tenant_id),
        device_id: DeviceId::from_uuid(m.device_id),
        integration_id: IntegrationId::from_uuid(m.integration_id),
        purpose: m.purpose,
        taken_at: m.taken_at,
        state,
        filename: m.filename,
        content_type: m.content_type,
        size: m.size,
        md5: m.md5,
        note: m.note,
        created_at: m.created_at,
    })
}

#[async_trait]
impl DeviceFileRepo for SqlDeviceFileRepo {
    async fn save(&self, tenant: TenantId, file: DeviceFile) -> DomainResult<DeviceFile> {
        let row = f::ActiveModel {
            id: Set(file.id.as_uuid()),
            tenant_id: Set(tenant.as_uuid()),
            device_id: Set(file.device_id.as_uuid()),
            integration_id: Set(file.integration_id.as_uuid()),
            purpose: Set(file.purpose.clone()),
            taken_at: Set(file.taken_at.clone()),
            state: Set(file.state.as_str().to_owned()),
            filename: Set(file.filename.clone()),
            content_type: Set(file.content_type.clone()),
            size: Set(file.size),
            md5: Set(file.md5.clone()),
            note: Set(file.note.clone()),
            created_at: Set(file.created_at),
        };
        // A second fetch of the same moment replaces the record (the device may have had
        // no file the first time).
        f::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([f::Column::DeviceId, f::Column::Purpose, f::Column::TakenAt])
                    .update_columns([
                        f::Column::Id,
                        f::Column::State,
                        f::Column::Filename,
                        f::Column::ContentType,
                        f::Column::Size,
                        f::Column::Md5,
                        f::Column::Note,
                        f::Column::CreatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await
            .map_err(unknown)?;
        Ok(DeviceFile { tenant_id: tenant, ..file })
    }

    async fn list(&self, tenant: TenantId, device: DeviceId) -> DomainResult<Vec<DeviceFile>> {
        scoped(tenant)
            .filter(f::Column::DeviceId.eq(device.as_uuid()))
            .order_by_desc(f::Column::CreatedAt)
            .all(&self.db)
            .await
            .map_err(unknown)?
            .into_iter()
            .map(to_domain)
            .collect()
    }

    async fn get(&self, tenant: TenantId, id: FileId) -> DomainResult<Option<DeviceFile>> {
        scoped(tenant)
            .filter(f::Column::Id.eq(id.as_uuid()))
            .one(&self.db)
            .await
            .map_err(unknown)?
            .map(to_domain)
            .transpose()
    }
}
