use crate::db::entities::{
    dingding_lock_passwords as pw, dingding_operations as op, homes as h, rooms as r, tickets as t,
};
use crate::db::{Conn, map_err, unknown};
use crate::vendors::dingding::{
    DeviceOperation, DingdingRepo, LockPassword, LockPasswordId, MeterCommand, OperationId, OperationStage,
    PasswordKind, PasswordOperation, PwdState,
};
use async_trait::async_trait;
use domain::deliveries::NewDelivery;
use domain::homes::{Home, Room};
use domain::ids::DeliveryId;
use domain::ids::{DeviceId, HomeId, IntegrationId, RoomId, TenantId, TicketId};
use domain::{DomainError, DomainResult};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select, Set,
};
use std::sync::Arc;

/// Dingding lock passwords and device operations in SQL.
#[derive(Clone)]
pub struct SqlDingdingRepo {
    db: Conn,
}

impl SqlDingdingRepo {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db: Conn::Pool(db) }
    }

    /// Runs `save` and writes `send` in one transaction.
    async fn sending<F, Fut>(&self, tenant: TenantId, send: NewDelivery, save: F) -> DomainResult<DeliveryId>
    where
        F: FnOnce(Self) -> Fut,
        Fut: Future<Output = DomainResult<()>>,
    {
        let tx = Arc::new(self.db.begin_write().await.map_err(unknown)?);
        save(Self { db: Conn::Tx(tx.clone()) }).await?;
        let sent = super::deliveries::insert_outbox(&*tx, tenant, vec![send]).await?;
        let tx =
            Arc::try_unwrap(tx).map_err(|_| DomainError::Unknown(anyhow::anyhow!("a transaction outlived its use")))?;
        tx.commit().await.map_err(unknown)?;
        sent.into_iter()
            .next()
            .map(|d| d.id)
            .ok_or_else(|| DomainError::Unknown(anyhow::anyhow!("no delivery written")))
    }
}

fn passwords(tenant: TenantId) -> Select<pw::Entity> {
    pw::Entity::find().filter(pw::Column::TenantId.eq(tenant.as_uuid()))
}

fn operations(tenant: TenantId) -> Select<op::Entity> {
    op::Entity::find().filter(op::Column::TenantId.eq(tenant.as_uuid()))
}

fn stored<T>(what: &str, r: DomainResult<T>) -> DomainResult<T> {
    r.map_err(|e| DomainError::Unknown(anyhow::anyhow!("stored {what}: {e}")))
}

fn to_password(m: pw::Model) -> DomainResult<LockPassword> {
    Ok(LockPassword {
        id: LockPasswordId::from_uuid(m.id),
        tenant_id: TenantId::from_uuid(m.tenant_id),
        integration_id: IntegrationId::from_uuid(m.integration_id),
        device_id: DeviceId::from_uuid(m.device_id),
        vendor_id: m.vendor_id,
        kind: stored("kind", PasswordKind::parse(&m.kind))?,
        name: m.name,
        phone: m.phone,
        begins_at: m.begins_at,
        ends_at: m.ends_at,
        pwd_state: stored("pwd_state", m.pwd_state.as_deref().map(PwdState::parse).transpose())?,
        operation: stored("operation", m.operation.as_deref().map(PasswordOperation::parse).transpose())?,
        stage: stored("stage", m.stage.as_deref().map(OperationStage::parse).transpose())?,
        error: m.error,
        sealed_secret: m.sealed_secret,
        deleted: m.deleted,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

fn password_row(tenant: TenantId, p: &LockPassword) -> pw::ActiveModel {
    pw::ActiveModel {
        id: Set(p.id.as_uuid()),
        tenant_id: Set(tenant.as_uuid()),
        integration_id: Set(p.integration_id.as_uuid()),
        device_id: Set(p.device_id.as_uuid()),
        vendor_id: Set(p.vendor_id),
        kind: Set(p.kind.as_str().to_owned()),
        name: Set(p.name.clone()),
        phone: Set(p.phone.clone()),
        begins_at: Set(p.begins_at),
        ends_at: Set(p.ends_at),
        pwd_state: Set(p.pwd_state.map(|s| s.as_str().to_owned())),
        operation: Set(p.operation.map(|s| s.as_str().to_owned())),
        stage: Set(p.stage.map(|s| s.as_str().to_owned())),
        error: Set(p.error.clone()),
        sealed_secret: Set(p.sealed_secret.clone()),
        deleted: Set(p.deleted),
        created_at: Set(p.created_at),
        updated_at: Set(p.updated_at),
    }
}

fn to_operation(m: op::Model) -> DomainResult<DeviceOperation> {
    Ok(DeviceOperation {
        id: OperationId::from_uuid(m.id),
        tenant_id: TenantId::from_uuid(m.tenant_id),
        integration_id: IntegrationId::from_uuid(m.integration_id),
        device_id: DeviceId::from_uuid(m.device_id),
        command: stored("command", MeterCommand::parse(&m.command))?,
        params: m.params,
        service_id: m.service_id,
        trade_no: m.trade_no,
        stage: stored("stage", OperationStage::parse(&m.stage))?,
        error: m.error,
        result: m.result,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

fn operation_row(tenant: TenantId, o: &DeviceOperation) -> op::ActiveModel {
    op::ActiveModel {
        id: Set(o.id.as_uuid()),
        tenant_id: Set(tenant.as_uuid()),
        integration_id: Set(o.integration_id.as_uuid()),
        device_id: Set(o.device_id.as_uuid()),
        command: Set(o.command.as_str().to_owned()),
        params: Set(o.params.clone()),
        service_id: Set(o.service_id.clone()),
        trade_no: Set(o.trade_no.clone()),
        stage: Set(o.stage.as_str().to_owned()),
        error: Set(o.error.clone()),
        result: Set(o.result.clone()),
        created_at: Set(o.created_at),
        updated_at: Set(o.updated_at),
    }
}

#[async_trait]
impl DingdingRepo for SqlDingdingRepo {
    async fn save_password(&self, tenant: TenantId, p: &LockPassword) -> DomainResult<()> {
        let row = password_row(tenant, p);
        let exists =
            passwords(tenant).filter(pw::Column::Id.eq(p.id.as_uuid())).one(&self.db).await.map_err(unknown)?;
        if exists.is_some() {
            row.update(&self.db).await.map_err(map_err("another password of the lock has this id"))?;
        } else {
            row.insert(&self.db).await.map_err(map_err("another password of the lock has this id"))?;
        }
        Ok(())
    }

    async fn save_password_sending(
        &self,
        tenant: TenantId,
        p: &LockPassword,
        send: NewDelivery,
    ) -> DomainResult<DeliveryId> {
        self.sending(tenant, send, |repo| async move { repo.save_password(tenant, p).await }).await
    }

    async fn save_operation_sending(
        &self,
        tenant: TenantId,
        o: &DeviceOperation,
        send: NewDelivery,
    ) -> DomainResult<DeliveryId> {
        self.sending(tenant, send, |repo| async move { repo.save_operation(tenant, o).await }).await
    }

    async fn get_password(&self, tenant: TenantId, id: LockPasswordId) -> DomainResult<Option<LockPassword>> {
        passwords(tenant)
            .filter(pw::Column::Id.eq(id.as_uuid()))
            .one(&self.db)
            .await
            .map_err(unknown)?
            .map(to_password)
            .transpose()
    }

    async fn passwords(&self, tenant: TenantId, device: DeviceId) -> DomainResult<Vec<LockPassword>> {
        passwords(tenant)
            .filter(pw::Column::DeviceId.eq(device.as_uuid()))
            .filter(pw::Column::Deleted.eq(false))
            .order_by_asc(pw::Column::Id)
            .all(&self.db)
            .await
            .map_err(unknown)?
            .into_iter()
            .map(to_password)
            .collect()
    }

    async fn password_by_vendor_id(
        &self,
        tenant: TenantId,
        device: DeviceId,
        vendor_id: i64,
    ) -> DomainResult<Option<LockPassword>> {
        passwords(tenant)
            .filter(pw::Column::DeviceId.eq(device.as_uuid()))
            .filter(pw::Column::VendorId.eq(vendor_id))
            .one(&self.db)
            .await
            .map_err(unknown)?
            .map(to_password)
            .transpose()
    }

    async fn save_operation(&self, tenant: TenantId, o: &DeviceOperation) -> DomainResult<()> {
        let row = operation_row(tenant, o);
        let exists =
            operations(tenant).filter(op::Column::Id.eq(o.id.as_uuid())).one(&self.db).await.map_err(unknown)?;
        if exists.is_some() {
            row.update(&self.db).await.map_err(map_err("trade number already used"))?;
        } else {
            row.insert(&self.db).await.map_err(map_err("trade number already used"))?;
        }
        Ok(())
    }

    async fn get_operation(&self, tenant: TenantId, id: OperationId) -> DomainResult<Option<DeviceOperation>> {
        operations(tenant)
            .filter(op::Column::Id.eq(id.as_uuid()))
            .one(&self.db)
            .await
            .map_err(unknown)?
            .map(to_operation)
            .transpose()
    }

    async fn operations(&self, tenant: TenantId, device: DeviceId, limit: u64) -> DomainResult<Vec<DeviceOperation>> {
        operations(tenant)
            .filter(op::Column::DeviceId.eq(device.as_uuid()))
            .order_by_desc(op::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(unknown)?
            .into_iter()
            .map(to_operation)
            .collect()
    }

    async fn operation_by_service(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        service_id: &str,
    ) -> DomainResult<Option<DeviceOperation>> {
        operations(tenant)
            .filter(op::Column::IntegrationId.eq(integration.as_uuid()))
            .filter(op::Column::ServiceId.eq(service_id))
            .one(&self.db)
            .await
            .map_err(unknown)?
            .map(to_operation)
            .transpose()
    }

    async fn operation_by_trade_no(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        trade_no: &str,
    ) -> DomainResult<Option<DeviceOperation>> {
        operations(tenant)
            .filter(op::Column::IntegrationId.eq(integration.as_uuid()))
            .filter(op::Column::TradeNo.eq(trade_no))
            .one(&self.db)
            .await
            .map_err(unknown)?
            .map(to_operation)
            .transpose()
    }

    async fn home_by_external(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        external_id: &str,
    ) -> DomainResult<Option<Home>> {
        let m = h::Entity::find()
            .filter(h::Column::TenantId.eq(tenant.as_uuid()))
            .filter(h::Column::IntegrationId.eq(integration.as_uuid()))
            .filter(h::Column::ExternalId.eq(external_id))
            .one(&self.db)
            .await
            .map_err(unknown)?;
        Ok(m.map(|m| Home {
            id: HomeId::from_uuid(m.id),
            tenant_id: TenantId::from_uuid(m.tenant_id),
            integration_id: m.integration_id.map(IntegrationId::from_uuid),
            external_id: m.external_id,
            name: m.name,
            address: m.address,
            attributes: m.attributes,
            created_at: m.created_at,
        }))
    }

    async fn room_by_external(&self, tenant: TenantId, home: HomeId, external_id: &str) -> DomainResult<Option<Room>> {
        let m = r::Entity::find()
            .filter(r::Column::TenantId.eq(tenant.as_uuid()))
            .filter(r::Column::HomeId.eq(home.as_uuid()))
            .filter(r::Column::ExternalId.eq(external_id))
            .one(&self.db)
            .await
            .map_err(unknown)?;
        Ok(m.map(|m| Room {
            id: RoomId::from_uuid(m.id),
            tenant_id: TenantId::from_uuid(m.tenant_id),
            home_id: HomeId::from_uuid(m.home_id),
            external_id: m.external_id,
            name: m.name,
            created_at: m.created_at,
        }))
    }

    async fn ticket_by_external(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        external_id: &str,
    ) -> DomainResult<Option<TicketId>> {
        let m = t::Entity::find()
            .filter(t::Column::TenantId.eq(tenant.as_uuid()))
            .filter(t::Column::IntegrationId.eq(integration.as_uuid()))
            .filter(t::Column::ExternalId.eq(external_id))
            .one(&self.db)
            .await
            .map_err(unknown)?;
        Ok(m.map(|m| TicketId::from_uuid(m.id)))
    }

    async fn set_ticket_external(&self, tenant: TenantId, ticket: TicketId, external_id: &str) -> DomainResult<()> {
        t::Entity::update_many()
            .col_expr(t::Column::ExternalId, sea_orm::sea_query::Expr::value(external_id))
            .filter(t::Column::TenantId.eq(tenant.as_uuid()))
            .filter(t::Column::Id.eq(ticket.as_uuid()))
            .filter(t::Column::ExternalId.is_null())
            .exec(&self.db)
            .await
            .map_err(unknown)?;
        Ok(())
    }
}
