//! Planner statistics kept up with tables that grow faster than autovacuum analyses them.
//!
//! PostgreSQL plans every statement on the statistics of its last `ANALYZE`; autovacuum
//! analyses a table at most once a minute (`autovacuum_naptime`) and only after a fifth of
//! it changed. A new tenant's first burst (a table of deliveries, inbound events or jobs
//! going from nothing to tens of thousands of rows in seconds) is planned on statistics of
//! a nearly empty table: bitmap scans of a whole tenant's rows, or of every job a worker
//! ever locked, per statement, where an index probe per row was meant. This keeper analyses, every few seconds, the tables of this database's user
//! whose rows changed by as many as they had at their last analysis (and by at least
//! [`MIN_CHANGES`]): a table growing from nothing is analysed at about 1,000, 2,000,
//! 4,000... rows, a handful of times per burst, each in milliseconds.

use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement, TransactionTrait};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The statistics target of these analyses: 10 values per column, from a sample of
/// 3,000 rows (PostgreSQL's default, 100, samples 30,000: 40 to 90 ms per analysis of a
/// 20,000-row table with JSON bodies, measured during a burst).
const SAMPLE_TARGET: u32 = 10;

/// Changes below which a table is left to autovacuum (small tables plan well anyway).
pub const MIN_CHANGES: i64 = 1_000;

/// Tables of the connected user whose rows changed by as many as they had at their last analysis (at
/// least `min_changes`), schema-qualified and quoted.
const STALE: &str = "SELECT quote_ident(s.schemaname) || '.' || quote_ident(s.relname) AS name \
     FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
     WHERE c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user) \
       AND s.n_mod_since_analyze >= $1 AND s.n_mod_since_analyze >= GREATEST(c.reltuples, 0) \
     ORDER BY s.n_mod_since_analyze DESC";

/// Analyses what [`STALE`] finds, once; returns the tables analysed.
///
/// # Errors
/// When the database cannot be read or a table not analysed.
pub async fn analyse_stale(db: &DatabaseConnection, min_changes: i64) -> anyhow::Result<Vec<String>> {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(Vec::new());
    }
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(DatabaseBackend::Postgres, STALE, [min_changes.into()]))
        .await?;
    let mut analysed = Vec::with_capacity(rows.len());
    for row in rows {
        let name: String = row.try_get("", "name")?;
        // A small sample (`SAMPLE_TARGET`): the point is the row count and the rough shape,
        // fast; autovacuum's own analysis later refines it. SKIP_LOCKED: a table autovacuum
        // is busy with is left to it.
        let tx = db.begin().await?;
        tx.execute_unprepared(&format!("SET LOCAL default_statistics_target = {SAMPLE_TARGET}")).await?;
        tx.execute_unprepared(&format!("ANALYZE (SKIP_LOCKED) {name}")).await?;
        tx.commit().await?;
        analysed.push(name);
    }
    Ok(analysed)
}

/// Runs [`analyse_stale`] every `every` until `shutdown` (PostgreSQL only).
pub async fn keep_statistics(db: DatabaseConnection, every: Duration, shutdown: CancellationToken) {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return;
    }
    let db = &db;
    crate::ticks::every(every, &shutdown, || async move {
        match analyse_stale(db, MIN_CHANGES).await {
            Ok(t) if t.is_empty() => {}
            Ok(t) => tracing::debug!(tables = ?t, "planner statistics refreshed"),
            Err(e) => tracing::warn!(error = %e, "refreshing planner statistics"),
        }
    })
    .await;
}
