//! The connection a repository writes through: the pool, or a unit of work's transaction
//! (`domain::ingest::UnitOfWork`), so that one set of repositories serves both and a unit
//! of work's writes commit or roll back together.

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult, QueryResult, Statement,
    TransactionTrait,
};
use std::sync::Arc;

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
            Self::Pool(db) => match tenant_for(db) {
                Some(t) => in_tenant_tx(db, t, move |tx| Box::pin(async move { tx.execute_raw(stmt).await })).await,
                None => db.execute_raw(stmt).await,
            },
            Self::Tx(tx) => tx.execute_raw(stmt).await,
        }
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        match self {
            Self::Pool(db) => match tenant_for(db) {
                Some(t) => {
                    let sql = sql.to_owned();
                    in_tenant_tx(db, t, move |tx| Box::pin(async move { tx.execute_unprepared(&sql).await })).await
                }
                None => db.execute_unprepared(sql).await,
            },
            Self::Tx(tx) => tx.execute_unprepared(sql).await,
        }
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        match self {
            Self::Pool(db) => match tenant_for(db) {
                Some(t) => in_tenant_tx(db, t, move |tx| Box::pin(async move { tx.query_one_raw(stmt).await })).await,
                None => db.query_one_raw(stmt).await,
            },
            Self::Tx(tx) => tx.query_one_raw(stmt).await,
        }
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        match self {
            Self::Pool(db) => match tenant_for(db) {
                Some(t) => in_tenant_tx(db, t, move |tx| Box::pin(async move { tx.query_all_raw(stmt).await })).await,
                None => db.query_all_raw(stmt).await,
            },
            Self::Tx(tx) => tx.query_all_raw(stmt).await,
        }
    }
}
