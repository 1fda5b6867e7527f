//! Database access: connection, migrations, and the repositories implementing domain ports.
//! Entities are private to this module; repositories return domain types.

pub mod batch;
mod conn;
pub use conn::{Conn, with_tenant, without_tenant};
mod entities;
mod page;
pub mod reencrypt;
pub mod repos;
pub mod statistics;

use anyhow::Context;
use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbErr, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};
use std::time::Duration;

pub use sea_orm::DatabaseConnection as Db;

/// Every execution of a prepared statement is planned for its parameters on PostgreSQL.
/// A statement's generic plan is chosen after five executions and kept while the table
/// keeps its statistics: one chosen while a table was small (a fresh database, the first
/// seconds of a burst) is a sequential scan, which a batch's `= ANY(...)` then ran on
/// tens of thousands of rows (bench: 373 ms per 64-event update instead of 1 ms, until
/// autovacuum analysed the table). Planning these statements costs far less than a round trip.
const CUSTOM_PLANS: &str = "force_custom_plan";

/// Connects to `url` (SQLite or PostgreSQL). For a SQLite file the parent directory is
/// created first.
///
/// # Errors
/// When the directory cannot be created or the database cannot be reached.
pub async fn connect(url: &str) -> anyhow::Result<DatabaseConnection> {
    let dir = sqlite_path(url).and_then(|p| std::path::Path::new(p).parent()).filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(if url.starts_with("sqlite") { 8 } else { 20 })
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        // WAL lets readers run beside the one writer; in WAL, `synchronous = NORMAL` syncs
        // at checkpoints instead of at every commit and still never corrupts the file (a
        // power cut can lose the last commits, not the database).
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
        })
        .map_sqlx_postgres_opts(|o| o.options([("plan_cache_mode", CUSTOM_PLANS)]));
    Database::connect(opts).await.context("connecting to the database")
}

/// The statements of the keyed pools (`connect_keyed`, `connect_bookkeeping`: batched
/// delivery creates; a worker's claims, attempts, outcomes, lease renewals; the PostgreSQL
/// job storage's fetches and acknowledgements) find their rows by key, a batch of keys, or
/// a small partial index: each is planned once per connection (a generic plan) instead of
/// at every execution, and as index lookups in a nested loop whatever the tables' size
/// when it was planned, so that a plan made while a table was empty stays right once it
/// holds millions of rows (the risk `CUSTOM_PLANS` avoids on the main pool). Planning at
/// every execution was a third of PostgreSQL's time in the deliveries bench.
const KEYED_PLANS: [(&str, &str); 4] = [
    ("plan_cache_mode", "force_generic_plan"),
    ("enable_seqscan", "off"),
    ("enable_hashjoin", "off"),
    ("enable_mergejoin", "off"),
];

/// A pool on the same PostgreSQL database for statements by key (`KEYED_PLANS`), its
/// commits durable or not; on SQLite `db` itself.
async fn keyed_pool(url: &str, db: &DatabaseConnection, durable: bool) -> anyhow::Result<DatabaseConnection> {
    if !url.starts_with("postgres") {
        return Ok(db.clone());
    }
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(10)
        .min_connections(0)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        .map_sqlx_postgres_opts(move |o| {
            o.options(KEYED_PLANS).options([("synchronous_commit", if durable { "on" } else { "off" })])
        });
    Database::connect(opts).await.context("connecting a pool for statements by key")
}

/// Where batched delivery creates are written: durably, as on `db`, with `KEYED_PLANS`.
///
/// # Errors
/// When the database cannot be reached.
pub async fn connect_keyed(url: &str, db: &DatabaseConnection) -> anyhow::Result<DatabaseConnection> {
    keyed_pool(url, db, true).await
}

/// A pool on the same PostgreSQL database whose commits do not wait for the disk
/// (`synchronous_commit = off`), with `KEYED_PLANS`: for the delivery workers' bookkeeping,
/// four commits per delivery that would otherwise each wait for a WAL flush. A database
/// crash can lose the last fraction of a second of them (never corrupt anything); a lost
/// claim or outcome only sends that delivery again, with the same idempotency key; a lost
/// job of the PostgreSQL job storage (it lives here too) leaves its delivery PENDING for
/// the sweep. Deliveries themselves are created durably, with the change that causes them.
/// On SQLite this is `db` itself.
///
/// # Errors
/// When the database cannot be reached.
pub async fn connect_bookkeeping(url: &str, db: &DatabaseConnection) -> anyhow::Result<DatabaseConnection> {
    keyed_pool(url, db, false).await
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// Applies every pending migration.
///
/// # Errors
/// When a migration fails.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None).await.context("applying migrations")
}

/// Starts a transaction that writes. On SQLite it takes the write lock at `BEGIN`
/// (`BEGIN IMMEDIATE`): a deferred transaction that reads first and then writes fails at
/// once with "database is locked" when another writer committed meanwhile, without waiting
/// out the busy timeout; an immediate one waits its turn. PostgreSQL ignores the mode.
/// Inside a tenant's scope (`with_tenant`) the transaction carries the tenant.
///
/// # Errors
/// When no connection can be had or `BEGIN` fails.
pub(crate) async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    let tx = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        })
        .await?;
    if let Some(t) = conn::tenant_for(db) {
        conn::set_tenant(&tx, t).await?;
    }
    Ok(tx)
}

/// Checks that the database answers.
///
/// # Errors
/// When it does not.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.execute_unprepared("SELECT 1").await.map(|_| ())
}

/// Maps a storage error: unique violations become `Duplicate(what)`, the rest `Unknown`.
pub(crate) fn map_err(what: &str) -> impl Fn(DbErr) -> domain::DomainError + '_ {
    move |e| match e.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => domain::DomainError::Duplicate(what.to_owned()),
        _ => domain::DomainError::Unknown(anyhow::Error::new(e)),
    }
}

/// Wraps any storage error as `Unknown`.
pub(crate) fn unknown(e: DbErr) -> domain::DomainError {
    domain::DomainError::Unknown(anyhow::Error::new(e))
}

/// The rows an `INSERT ... ON CONFLICT DO NOTHING RETURNING` wrote: none when every one
/// conflicted (sea-orm says "conflicted", "not inserted" or, with RETURNING, "not found").
pub(crate) fn inserted<M>(r: Result<sea_orm::TryInsertResult<Vec<M>>, DbErr>) -> domain::DomainResult<Vec<M>> {
    match r {
        Ok(sea_orm::TryInsertResult::Inserted(models)) => Ok(models),
        Ok(sea_orm::TryInsertResult::Conflicted | sea_orm::TryInsertResult::Empty)
        | Err(DbErr::RecordNotInserted | DbErr::RecordNotFound(_)) => Ok(Vec::new()),
        Err(e) => Err(unknown(e)),
    }
}

/// `column IN (values)` for a batch. On PostgreSQL it is one parameter whatever the count
/// (`= ANY(...)` of a uuid array spelt as text), so the statement has one text: prepared
/// once per connection and planned once, where an `IN ($1, ..., $n)` list is a new
/// statement for every batch size; on SQLite, the list.
pub(crate) fn in_uuids<C: sea_orm::ColumnTrait>(
    backend: sea_orm::DbBackend,
    column: C,
    values: impl IntoIterator<Item = uuid::Uuid>,
) -> sea_orm::sea_query::SimpleExpr {
    use sea_orm::sea_query::Expr;
    if backend == sea_orm::DbBackend::Postgres {
        let list: Vec<String> = values.into_iter().map(|u| u.to_string()).collect();
        let sql = format!("\"{}\" = ANY(string_to_array($1, ',')::uuid[])", column.as_str());
        Expr::cust_with_values(sql, [list.join(",")])
    } else {
        column.is_in(values)
    }
}

/// `tenant_id = tenant` for rows a statement finds by their ids ([`in_uuids`]): on
/// PostgreSQL a condition checked on each row found, never a way to find them. Beside an
/// id list the planner otherwise may read every row of the tenant and filter the ids,
/// which it does when its statistics predate the tenant's rows (a new tenant's first
/// burst on a table analysed before it: 5 ms a claim of a dozen events in the callback
/// bench, against a probe of the primary key per id).
pub(crate) fn tenant_of_found<C: sea_orm::ColumnTrait>(
    backend: sea_orm::DbBackend,
    column: C,
    tenant: uuid::Uuid,
) -> sea_orm::sea_query::SimpleExpr {
    use sea_orm::sea_query::Expr;
    if backend == sea_orm::DbBackend::Postgres {
        Expr::cust_with_values(format!("(\"{}\" = $1) IS TRUE", column.as_str()), [tenant])
    } else {
        column.eq(tenant)
    }
}

/// [`in_uuids`] for text values (any text). On PostgreSQL the list is one `text[]`
/// parameter written as an array literal, so the planner sees the values: a list derived
/// in the statement (`ARRAY(SELECT ...)` of a JSON array, as it was) is unknown when it
/// plans, and on a table without statistics yet (a fresh database's first burst) it
/// chose to read every row of the integration for each lookup (22 ms a dedup lookup in
/// the callback bench instead of one index probe per key).
pub(crate) fn in_texts<C: sea_orm::ColumnTrait>(
    backend: sea_orm::DbBackend,
    column: C,
    values: impl IntoIterator<Item = String>,
) -> sea_orm::sea_query::SimpleExpr {
    use sea_orm::sea_query::Expr;
    if backend == sea_orm::DbBackend::Postgres {
        let sql = format!("\"{}\" = ANY($1::text[])", column.as_str());
        Expr::cust_with_values(sql, [text_array_literal(values)])
    } else {
        column.is_in(values)
    }
}

/// PostgreSQL's input form of a `text[]` holding `values` as they are: every element
/// quoted, its `"` and `\` escaped (a value with commas, braces, quotes or spaces, or
/// spelt `NULL`, is one element, the text itself).
pub(crate) fn text_array_literal(values: impl IntoIterator<Item = String>) -> String {
    let mut out = String::from("{");
    for (k, v) in values.into_iter().enumerate() {
        if k > 0 {
            out.push(',');
        }
        out.push('"');
        for c in v.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::sqlite_path;

    #[test]
    fn text_arrays_quote_every_element() {
        let values = ["a", "b,c", "d\"e", "f\\g", "NULL", "{h}", " i "].map(str::to_owned);
        assert_eq!(super::text_array_literal(values), r#"{"a","b,c","d\"e","f\\g","NULL","{h}"," i "}"#);
        assert_eq!(super::text_array_literal(Vec::new()), "{}");
    }

    #[test]
    fn finds_sqlite_file_paths() {
        assert_eq!(sqlite_path("sqlite://./data/linkyard.db?mode=rwc"), Some("./data/linkyard.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://localhost/x"), None);
    }
}
