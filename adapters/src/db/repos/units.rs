//! `domain::ingest::UnitOfWork` in SQL: one transaction; the device and alarm repositories
//! of a unit write through it (savepoints where they open their own).

use super::{SqlAlarmRepo, SqlDeviceRepo, SqlHomeRepo, SqlTicketRepo};
use crate::db::conn::UnitListing;
use crate::db::entities::inbound_events as ev;
use crate::db::{Conn, unknown};
use async_trait::async_trait;
use domain::alarms::AlarmRepo;
use domain::deliveries::NewDelivery;
use domain::devices::DeviceRepo;
use domain::events::EventState;
use domain::homes::HomeRepo;
use domain::ids::{DeliveryId, InboundEventId, TenantId};
use domain::ingest::{Unit, UnitOfWork};
use domain::tickets::TicketRepo;
use domain::{DomainError, DomainResult};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement,
};
use std::sync::Arc;

/// Opens units on the pool.
#[derive(Clone)]
pub struct SqlUnitOfWork {
    db: DatabaseConnection,
    /// SQLite has one writer: units of this process open one after the other, waiting
    /// here rather than each holding a pooled connection while the database is locked
    /// (a unit also reads through the pool while it is open).
    gate: Option<Arc<tokio::sync::Semaphore>>,
}

impl SqlUnitOfWork {
    pub fn new(db: DatabaseConnection) -> Self {
        let sqlite = db.get_database_backend() == sea_orm::DbBackend::Sqlite;
        Self { db, gate: sqlite.then(|| Arc::new(tokio::sync::Semaphore::new(1))) }
    }
}

#[async_trait]
impl UnitOfWork for SqlUnitOfWork {
    async fn begin(&self) -> DomainResult<Box<dyn Unit>> {
        let permit = match &self.gate {
            Some(g) => Some(g.clone().acquire_owned().await.map_err(|e| DomainError::Unknown(e.into()))?),
            None => None,
        };
        let tx = Arc::new(crate::db::begin_write(&self.db).await.map_err(unknown)?);
        let listing = UnitListing::new(&self.db, &tx);
        Ok(Box::new(SqlUnit { tx, listing, _permit: permit }))
    }
}

struct SqlUnit {
    tx: Arc<DatabaseTransaction>,
    /// Held until the unit commits or is dropped (SQLite).
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
    /// Its task's pool statements run on `tx` while it is open (SQLite).
    listing: UnitListing,
}

#[async_trait]
impl Unit for SqlUnit {
    fn devices(&self) -> Arc<dyn DeviceRepo> {
        Arc::new(SqlDeviceRepo::within(Conn::Tx(self.tx.clone())))
    }

    fn alarms(&self) -> Arc<dyn AlarmRepo> {
        Arc::new(SqlAlarmRepo::within(Conn::Tx(self.tx.clone())))
    }

    fn homes(&self) -> Arc<dyn HomeRepo> {
        Arc::new(SqlHomeRepo::within(Conn::Tx(self.tx.clone())))
    }

    fn tickets(&self) -> Arc<dyn TicketRepo> {
        Arc::new(SqlTicketRepo::within(Conn::Tx(self.tx.clone())))
    }

    fn accounts(&self) -> Arc<dyn domain::tariffs::MeterAccountRepo> {
        Arc::new(super::SqlTariffRepo::within(Conn::Tx(self.tx.clone())))
    }

    fn tariffs(&self) -> Arc<dyn domain::tariffs::TariffRepo> {
        Arc::new(super::SqlTariffRepo::within(Conn::Tx(self.tx.clone())))
    }

    async fn outbox(&self, tenant: TenantId, planned: Vec<NewDelivery>) -> DomainResult<Vec<DeliveryId>> {
        super::deliveries::insert_outbox_once(&*self.tx, tenant, planned).await
    }

    async fn finish_event(
        &self,
        tenant: TenantId,
        event: InboundEventId,
        state: EventState,
        note: Option<String>,
    ) -> DomainResult<bool> {
        let done = [EventState::Processed.as_str(), EventState::Ignored.as_str()];
        let res = super::events::finish_update(tenant, event, state, note)
            .filter(ev::Column::State.is_not_in(done))
            .exec(&*self.tx)
            .await
            .map_err(unknown)?;
        if res.rows_affected == 1 {
            return Ok(true);
        }
        let exists = ev::Entity::find()
            .filter(ev::Column::TenantId.eq(tenant.as_uuid()))
            .filter(ev::Column::Id.eq(event.as_uuid()))
            .one(&*self.tx)
            .await
            .map_err(unknown)?;
        exists.map(|_| false).ok_or(DomainError::NotFound("inbound event"))
    }

    async fn claim_events(&self, tenant: TenantId, events: &[InboundEventId]) -> DomainResult<Vec<InboundEventId>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let done = [EventState::Processed.as_str(), EventState::Ignored.as_str()];
        let q = ev::Entity::find()
            .select_only()
            .column(ev::Column::Id)
            .filter(crate::db::tenant_of_found(self.tx.get_database_backend(), ev::Column::TenantId, tenant.as_uuid()))
            .filter(crate::db::in_uuids(
                self.tx.get_database_backend(),
                ev::Column::Id,
                events.iter().map(|e| e.as_uuid()),
            ))
            .filter(ev::Column::State.is_not_in(done))
            .order_by_asc(ev::Column::Id);
        // SQLite's unit is exclusive already; PostgreSQL locks the rows.
        let q = if self.tx.get_database_backend() == DbBackend::Postgres { q.lock_exclusive() } else { q };
        let ids: Vec<uuid::Uuid> = q.into_tuple().all(&*self.tx).await.map_err(unknown)?;
        Ok(ids.into_iter().map(InboundEventId::from_uuid).collect())
    }

    async fn claim_processed(&self, tenant: TenantId, events: &[InboundEventId]) -> DomainResult<Vec<InboundEventId>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        if self.tx.get_database_backend() != DbBackend::Postgres {
            // SQLite's unit is exclusive: claiming is reading.
            let claimed = self.claim_events(tenant, events).await?;
            self.finish_processed(tenant, &claimed).await?;
            return Ok(claimed);
        }
        // The update locks the rows it finishes (in the id order of the index scan, as
        // `claim_events` does): a concurrent unit waits, then finds them PROCESSED. The
        // tenant is checked on the rows the ids find (`tenant_of_found`).
        let mut ids: Vec<String> = events.iter().map(|e| e.as_uuid().to_string()).collect();
        ids.sort_unstable();
        let rows = self
            .tx
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "UPDATE inbound_events SET state = $1, error = NULL, processed_at = $2 \
                 WHERE id = ANY(string_to_array($4, ',')::uuid[]) AND (tenant_id = $3) IS TRUE AND state NOT IN ($5, $6) \
                 RETURNING id",
                [
                    EventState::Processed.as_str().into(),
                    chrono::Utc::now().into(),
                    tenant.as_uuid().into(),
                    ids.join(",").into(),
                    EventState::Processed.as_str().into(),
                    EventState::Ignored.as_str().into(),
                ],
            ))
            .await
            .map_err(unknown)?;
        rows.iter().map(|r| r.try_get::<uuid::Uuid>("", "id").map(InboundEventId::from_uuid).map_err(unknown)).collect()
    }

    async fn finish_processed(&self, tenant: TenantId, events: &[InboundEventId]) -> DomainResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        ev::Entity::update_many()
            .col_expr(ev::Column::State, sea_orm::sea_query::Expr::value(EventState::Processed.as_str()))
            .col_expr(ev::Column::Error, sea_orm::sea_query::Expr::value(Option::<String>::None))
            .col_expr(ev::Column::ProcessedAt, sea_orm::sea_query::Expr::value(Some(chrono::Utc::now())))
            .filter(crate::db::tenant_of_found(self.tx.get_database_backend(), ev::Column::TenantId, tenant.as_uuid()))
            .filter(crate::db::in_uuids(
                self.tx.get_database_backend(),
                ev::Column::Id,
                events.iter().map(|e| e.as_uuid()),
            ))
            .exec(&*self.tx)
            .await
            .map_err(unknown)?;
        Ok(())
    }

    async fn finish_answered(
        &self,
        tenant: TenantId,
        answers: Vec<(InboundEventId, serde_json::Value)>,
    ) -> DomainResult<()> {
        if answers.is_empty() {
            return Ok(());
        }
        if self.tx.get_database_backend() != DbBackend::Postgres {
            for (e, a) in answers {
                super::events::finish_update(tenant, e, EventState::Processed, None)
                    .col_expr(ev::Column::Answer, sea_orm::sea_query::Expr::value(a.to_string()))
                    .exec(&*self.tx)
                    .await
                    .map_err(unknown)?;
            }
            return Ok(());
        }
        let mut values: Vec<sea_orm::Value> =
            vec![tenant.as_uuid().into(), EventState::Processed.as_str().into(), chrono::Utc::now().into()];
        let mut rows = Vec::with_capacity(answers.len());
        for (e, a) in answers {
            let n = values.len();
            rows.push(format!("(${}::uuid, ${})", n + 1, n + 2));
            values.extend([e.as_uuid().into(), a.to_string().into()]);
        }
        let sql = format!(
            "UPDATE inbound_events AS e SET state = $2, error = NULL, processed_at = $3, answer = v.answer \
             FROM (VALUES {}) AS v (id, answer) WHERE e.tenant_id = $1 AND e.id = v.id",
            rows.join(", ")
        );
        self.tx.execute_raw(Statement::from_sql_and_values(DbBackend::Postgres, sql, values)).await.map_err(unknown)?;
        Ok(())
    }

    async fn keep_answer(
        &self,
        tenant: TenantId,
        event: InboundEventId,
        answer: &serde_json::Value,
    ) -> DomainResult<()> {
        ev::Entity::update_many()
            .col_expr(ev::Column::Answer, sea_orm::sea_query::Expr::value(answer.to_string()))
            .filter(ev::Column::TenantId.eq(tenant.as_uuid()))
            .filter(ev::Column::Id.eq(event.as_uuid()))
            .exec(&*self.tx)
            .await
            .map_err(unknown)?;
        Ok(())
    }

    async fn commit(self: Box<Self>) -> DomainResult<()> {
        let SqlUnit { tx, listing, _permit } = *self;
        drop(listing);
        let tx = Arc::try_unwrap(tx)
            .map_err(|_| DomainError::Unknown(anyhow::anyhow!("a unit's repositories outlived it")))?;
        tx.commit().await.map_err(unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{DbBackend, Statement};

    async fn count(conn: &Conn) -> Result<i64, sea_orm::DbErr> {
        let row = conn
            .query_one_raw(Statement::from_string(DbBackend::Sqlite, "SELECT COUNT(*) AS n FROM t"))
            .await?
            .ok_or_else(|| sea_orm::DbErr::Custom("no row".into()))?;
        row.try_get::<i64>("", "n")
    }

    /// Every other connection of the pool waits for the write lock the unit holds; the
    /// unit's task still reads through the pool (on its transaction, seeing its own write),
    /// and commits; the writers then write.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_unit_reads_through_the_pool_while_every_other_connection_waits_for_its_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = crate::db::connect(&format!("sqlite://{}/t.db?mode=rwc", dir.path().display())).await.expect("db");
        db.execute_unprepared("CREATE TABLE t (x INTEGER)").await.expect("table");
        let units = SqlUnitOfWork::new(db.clone());
        let (opened_tx, opened) = tokio::sync::oneshot::channel();
        let (go_tx, go) = tokio::sync::oneshot::channel::<()>();
        let pool = Conn::Pool(db.clone());
        let unit_task = tokio::spawn(async move {
            let unit = units.begin().await.expect("unit");
            pool.execute_unprepared("INSERT INTO t VALUES (1)").await.expect("written in the unit");
            opened_tx.send(()).expect("opened");
            go.await.expect("go");
            let seen = count(&pool).await;
            unit.commit().await.expect("commit");
            seen
        });
        opened.await.expect("the unit is open");
        let writers: Vec<_> = (0..10)
            .map(|_| {
                let db = db.clone();
                tokio::spawn(async move { db.execute_unprepared("INSERT INTO t VALUES (2)").await.map(|_| ()) })
            })
            .collect();
        // Every connection of the pool taken: the unit's and the writers' waiting for its lock.
        let sqlite = db.get_sqlite_connection_pool();
        for _ in 0..200 {
            if sqlite.size() == 8 && sqlite.num_idle() == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!((sqlite.size(), sqlite.num_idle()), (8, 0), "the pool is exhausted");
        go_tx.send(()).expect("go");
        assert_eq!(unit_task.await.expect("unit task").expect("the unit's read"), 1, "its own write");
        for w in writers {
            w.await.expect("writer").expect("written after the unit");
        }
        assert_eq!(count(&Conn::Pool(db)).await.expect("count"), 11);
    }
}
