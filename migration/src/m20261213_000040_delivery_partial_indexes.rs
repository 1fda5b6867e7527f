//! Smaller delivery indexes (issue 19): every delivery is written three times (created,
//! claimed, finished), and each write of a row adds an entry to every index whose columns
//! it changes or whose condition it meets. The indexes that only ever look up unfinished
//! deliveries (the sweep's due ones, the heartbeat's abandoned ones, the queue depth) become
//! one index over unfinished deliveries, and the order-key and subject indexes leave out
//! the deliveries without one (most). A finished delivery is then in four indexes, not
//! eight.
//!
//! PostgreSQL only for the unfinished-deliveries index: its queries compare `state` with a
//! bound value, which PostgreSQL's custom plans (the pools run `plan_cache_mode =
//! force_custom_plan`) prove inside the index's condition and SQLite does not. The order-key
//! and subject indexes are partial on both (`col = ?` implies `col IS NOT NULL` on both).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP_BOTH: &[&str] = &[
    "DROP INDEX IF EXISTS ix_deliveries_order",
    "CREATE INDEX ix_deliveries_order ON deliveries (integration_id, order_key, id) WHERE order_key IS NOT NULL",
    "DROP INDEX IF EXISTS ix_deliveries_subject",
    "CREATE INDEX ix_deliveries_subject ON deliveries (tenant_id, subject) WHERE subject IS NOT NULL",
];

const UP_POSTGRES: &[&str] = &[
    "DROP INDEX IF EXISTS ix_deliveries_due",
    "DROP INDEX IF EXISTS ix_deliveries_lease",
    "CREATE INDEX ix_deliveries_unfinished ON deliveries (state, next_attempt_at, lease_until) \
     WHERE state IN ('PENDING', 'IN_FLIGHT', 'RETRYING')",
];

const DOWN_BOTH: &[&str] = &[
    "DROP INDEX IF EXISTS ix_deliveries_order",
    "CREATE INDEX ix_deliveries_order ON deliveries (integration_id, order_key, id)",
    "DROP INDEX IF EXISTS ix_deliveries_subject",
    "CREATE INDEX ix_deliveries_subject ON deliveries (tenant_id, subject)",
];

const DOWN_POSTGRES: &[&str] = &[
    "DROP INDEX IF EXISTS ix_deliveries_unfinished",
    "CREATE INDEX ix_deliveries_due ON deliveries (state, next_attempt_at)",
    "CREATE INDEX ix_deliveries_lease ON deliveries (state, lease_until)",
];

/// All the statements in one call, so on one connection: on a SQLite pool a second
/// connection holding an older snapshot still saw the dropped index ("already exists").
async fn run(m: &SchemaManager<'_>, both: &[&str], postgres: &[&str]) -> Result<(), DbErr> {
    let db = m.get_connection();
    let pg = db.get_database_backend() == DbBackend::Postgres;
    let sql: Vec<&str> = both.iter().chain(if pg { postgres } else { &[] }).copied().collect();
    db.execute_unprepared(&sql.join(";\n")).await?;
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        run(m, UP_BOTH, UP_POSTGRES).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        run(m, DOWN_BOTH, DOWN_POSTGRES).await
    }
}
