//! The connection a repository writes through: the pool, or a unit of work's transaction
//! (`domain::ingest::UnitOfWork`), so that one set of repositories serves both and a unit
//! of work's writes commit or roll back together.

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult, QueryResult, Statement,
    TransactionTrait,
};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};

tokio::task_local! {
    /// The authenticated tenant of the request this task serves (`with_tenant`).
    static TENANT: Option<uuid::Uuid>;
}

/// Runs `f` on behalf of `tenant`: on PostgreSQL every statement the repositories run for
/// it goes through a transaction whose `linkyard.tenant` names the tenant, so the
/// row-level security policies (migration `row_security`) show and take that tenant's rows
/// only, whatever a repository's query forgets. Work outside such a scope (workers,
/// callbacks) runs without the setting and is scoped by the repositories alone.
pub async fn with_tenant<F: std::future::Future>(tenant: domain::ids::TenantId, f: F) -> F::Output {
    TENANT.scope(Some(tenant.as_uuid()), f).await
}

/// Runs `f` outside any tenant's scope, for the few steps of a request that are not its
/// tenant's own: `login` looks the account up by email across tenants.
pub async fn without_tenant<F: std::future::Future>(f: F) -> F::Output {
    TENANT.scope(None, f).await
}

/// The tenant of the current scope, if any.
fn scoped_tenant() -> Option<uuid::Uuid> {
    TENANT.try_with(|t| *t).ok().flatten()
}

/// Names the scope's tenant for the rest of `tx` (`set_config(.., true)`: transaction-local,
/// gone at commit or rollback, so a pooled connection never carries it to other work).
pub(super) async fn set_tenant(tx: &DatabaseTransaction, tenant: uuid::Uuid) -> Result<(), DbErr> {
    tx.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT set_config('linkyard.tenant', $1, true)",
        [tenant.to_string().into()],
    ))
    .await
    .map(|_| ())
}

/// The tenant to set on a pool statement: on PostgreSQL, inside a `with_tenant` scope.
pub(super) fn tenant_for(db: &DatabaseConnection) -> Option<uuid::Uuid> {
    (db.get_database_backend() == DbBackend::Postgres).then(scoped_tenant).flatten()
}

/// Runs one statement of a tenant's scope in its own transaction carrying the tenant.
async fn in_tenant_tx<T, F>(db: &DatabaseConnection, tenant: uuid::Uuid, run: F) -> Result<T, DbErr>
where
    F: for<'a> FnOnce(&'a DatabaseTransaction) -> futures::future::BoxFuture<'a, Result<T, DbErr>>,
{
    let tx = db.begin().await?;
    set_tenant(&tx, tenant).await?;
    let out = run(&tx).await?;
    tx.commit().await?;
    Ok(out)
}

/// SQLite has one writer. A unit of work holds the write lock from `BEGIN IMMEDIATE` to its
/// commit, and while it is open its task also reads through the pool (the services it
/// calls read integrations, devices, settings with their pool repositories). When every
/// other connection of the pool waits for the write lock (hook requests, workers, sweeps:
/// their busy timeout is 10 s), the pool has none to give that read: both sides wait out
/// the timeouts and the unit fails (seen: a restarted process's first callback FAILED
/// after a 10 s stall). So on SQLite a pool statement of a task with an open unit on the
/// same pool runs on the unit's transaction, which needs no second connection (and sees
/// the unit's own writes). PostgreSQL has no such lock; its units are not listed here.
static OPEN_UNITS: LazyLock<Mutex<HashMap<tokio::task::Id, OpenUnit>>> = LazyLock::new(Mutex::default);

struct OpenUnit {
    pool: usize,
    tx: Weak<DatabaseTransaction>,
}

/// The identity of a SQLite pool (its options live as long as it does).
fn pool_key(db: &DatabaseConnection) -> usize {
    Arc::as_ptr(&db.get_sqlite_connection_pool().connect_options()) as usize
}

/// Lists an open unit's transaction for its task (`OPEN_UNITS`) until dropped; nothing on
/// PostgreSQL or outside a task.
pub(crate) struct UnitListing(Option<tokio::task::Id>);

impl UnitListing {
    pub(crate) fn new(db: &DatabaseConnection, tx: &Arc<DatabaseTransaction>) -> Self {
        if db.get_database_backend() != DbBackend::Sqlite {
            return Self(None);
        }
        let Some(task) = tokio::task::try_id() else { return Self(None) };
        let unit = OpenUnit { pool: pool_key(db), tx: Arc::downgrade(tx) };
        match OPEN_UNITS.lock() {
            Ok(mut open) => {
                open.insert(task, unit);
                Self(Some(task))
            }
            Err(_) => Self(None),
        }
    }
}

impl Drop for UnitListing {
    fn drop(&mut self) {
        if let (Some(task), Ok(mut open)) = (self.0, OPEN_UNITS.lock()) {
            open.remove(&task);
        }
    }
}

/// The open unit of this task on `db`'s pool, if any (SQLite; see `OPEN_UNITS`).
fn open_unit(db: &DatabaseConnection) -> Option<Arc<DatabaseTransaction>> {
    if db.get_database_backend() != DbBackend::Sqlite {
        return None;
    }
    let task = tokio::task::try_id()?;
    let open = OPEN_UNITS.lock().ok()?;
    let unit = open.get(&task)?;
    if unit.pool != pool_key(db) {
        return None;
    }
    unit.tx.upgrade()
}

/// The pool, or an open transaction shared by the repositories of one unit of work.
#[derive(Clone)]
pub enum Conn {
    Pool(DatabaseConnection),
    Tx(Arc<DatabaseTransaction>),
}

impl From<DatabaseConnection> for Conn {
    fn from(db: DatabaseConnection) -> Self {
        Self::Pool(db)
    }
}

impl Conn {
    /// A write transaction: `BEGIN IMMEDIATE` on the pool (see `begin_write`), a savepoint
    /// inside a unit of work.
    ///
    /// # Errors
    /// When no connection can be had or `BEGIN` fails.
    pub async fn begin_write(&self) -> Result<DatabaseTransaction, DbErr> {
        match self {
            Self::Pool(db) => super::begin_write(db).await,
            Self::Tx(tx) => tx.begin().await,
        }
    }

    /// The pool behind this connection.
    pub fn pool(&self) -> Option<&DatabaseConnection> {
        match self {
            Self::Pool(db) => Some(db),
            Self::Tx(_) => None,
        }
    }

    /// Inside a unit of work: batching and other pool-only shortcuts are off.
    pub fn in_unit(&self) -> bool {
        matches!(self, Self::Tx(_))
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for Conn {
    fn get_database_backend(&self) -> DbBackend {
        match self {
            Self::Pool(db) => db.get_database_backend(),
            Self::Tx(tx) => tx.get_database_backend(),
        }
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        match self {
            Self::Pool(db) => match (tenant_for(db), open_unit(db)) {
                (_, Some(unit)) => unit.execute_raw(stmt).await,
                (Some(t), None) => {
                    in_tenant_tx(db, t, move |tx| Box::pin(async move { tx.execute_raw(stmt).await })).await
                }
                (None, None) => db.execute_raw(stmt).await,
            },
            Self::Tx(tx) => tx.execute_raw(stmt).await,
        }
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        match self {
            Self::Pool(db) => match (tenant_for(db), open_unit(db)) {
                (_, Some(unit)) => unit.execute_unprepared(sql).await,
                (Some(t), None) => {
                    let sql = sql.to_owned();
                    in_tenant_tx(db, t, move |tx| Box::pin(async move { tx.execute_unprepared(&sql).await })).await
                }
                (None, None) => db.execute_unprepared(sql).await,
            },
            Self::Tx(tx) => tx.execute_unprepared(sql).await,
        }
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        match self {
            Self::Pool(db) => match (tenant_for(db), open_unit(db)) {
                (_, Some(unit)) => unit.query_one_raw(stmt).await,
                (Some(t), None) => {
                    in_tenant_tx(db, t, move |tx| Box::pin(async move { tx.query_one_raw(stmt).await })).await
                }
                (None, None) => db.query_one_raw(stmt).await,
            },
            Self::Tx(tx) => tx.query_one_raw(stmt).await,
        }
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        match self {
            Self::Pool(db) => match (tenant_for(db), open_unit(db)) {
                (_, Some(unit)) => unit.query_all_raw(stmt).await,
                (Some(t), None) => {
                    in_tenant_tx(db, t, move |tx| Box::pin(async move { tx.query_all_raw(stmt).await })).await
                }
                (None, None) => db.query_all_raw(stmt).await,
            },
            Self::Tx(tx) => tx.query_all_raw(stmt).await,
        }
    }
}
