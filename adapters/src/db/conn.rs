//! The connection a repository writes through: the pool, or a unit of work's transaction
//! (`domain::ingest::UnitOfWork`), so that one set of repositories serves both and a unit
//! of work's writes commit or roll back together.

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult, QueryResult, Statement,
    TransactionTrait,
};
use std::sync::Arc;

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
            Self::Pool(db) => db.execute_raw(stmt).await,
            Self::Tx(tx) => tx.execute_raw(stmt).await,
        }
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        match self {
            Self::Pool(db) => db.execute_unprepared(sql).await,
            Self::Tx(tx) => tx.execute_unprepared(sql).await,
        }
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        match self {
            Self::Pool(db) => db.query_one_raw(stmt).await,
            Self::Tx(tx) => tx.query_one_raw(stmt).await,
        }
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        match self {
            Self::Pool(db) => db.query_all_raw(stmt).await,
            Self::Tx(tx) => tx.query_all_raw(stmt).await,
        }
    }
}
