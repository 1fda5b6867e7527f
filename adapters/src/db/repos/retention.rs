use crate::db::entities::{audit_log, deliveries, delivery_attempts, inbound_events};
use crate::db::{Conn, unknown};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::DomainResult;
use domain::retention::{Pruned, RetentionRepo};
use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

/// Old traffic records deleted in SQL.
#[derive(Clone)]
pub struct SqlRetentionRepo {
    db: Conn,
}

impl SqlRetentionRepo {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db: Conn::Pool(db) }
    }
}

#[async_trait]
impl RetentionRepo for SqlRetentionRepo {
    async fn prune(&self, before: DateTime<Utc>) -> DomainResult<Pruned> {
        let events = inbound_events::Entity::delete_many()
            .filter(inbound_events::Column::ReceivedAt.lt(before))
            .filter(inbound_events::Column::State.ne("RECEIVED"))
            .exec(&self.db)
            .await
            .map_err(unknown)?;
        let finished = Query::select()
            .column(deliveries::Column::Id)
            .from(deliveries::Entity)
            .and_where(deliveries::Column::State.is_in(["SUCCEEDED", "DEAD"]))
            .to_owned();
        let attempts = delivery_attempts::Entity::delete_many()
            .filter(delivery_attempts::Column::At.lt(before))
            .filter(delivery_attempts::Column::DeliveryId.in_subquery(finished))
            .exec(&self.db)
            .await
            .map_err(unknown)?;
        let audit = audit_log::Entity::delete_many()
            .filter(audit_log::Column::At.lt(before))
            .exec(&self.db)
            .await
            .map_err(unknown)?;
        Ok(Pruned {
            inbound_events: events.rows_affected,
            delivery_attempts: attempts.rows_affected,
            audit_entries: audit.rows_affected,
        })
    }
}
