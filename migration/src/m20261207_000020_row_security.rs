//! Row-level security on PostgreSQL (issue 17): every table with a `tenant_id` column (and
//! `tenants` by its id) shows and takes only the rows of the tenant named in the
//! transaction-local setting `linkyard.tenant`, which the repositories set from the
//! authenticated tenant of a request. Work that belongs to no one request (workers,
//! vendor callbacks, the scheduler) runs without the setting and sees every row, scoped by
//! the repositories as before. `FORCE` makes the policies hold for the tables' owner too,
//! which is the role the server connects as (superusers and `BYPASSRLS` roles skip them:
//! do not run the server as one). SQLite has no row-level security: nothing to do there.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The condition of every policy: no tenant set (system work), or the row's tenant.
const VISIBLE: &str = "coalesce(current_setting('linkyard.tenant', true), '') = '' \
     OR {col} = nullif(current_setting('linkyard.tenant', true), '')::uuid";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        if db.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        for (table, col) in tenant_tables(db).await? {
            protect(db, &table, &col).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        if db.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        for (table, _) in tenant_tables(db).await? {
            db.execute_unprepared(&format!(
                "DROP POLICY IF EXISTS tenant_isolation ON \"{table}\"; \
                 ALTER TABLE \"{table}\" NO FORCE ROW LEVEL SECURITY; \
                 ALTER TABLE \"{table}\" DISABLE ROW LEVEL SECURITY;"
            ))
            .await?;
        }
        Ok(())
    }
}

/// Puts `table` under the tenant policy on `col` (PostgreSQL only; a migration that adds a
/// tenant table after this one calls it for its own tables).
///
/// # Errors
/// When a statement fails.
pub(crate) async fn protect(db: &SchemaManagerConnection<'_>, table: &str, col: &str) -> Result<(), DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let cond = VISIBLE.replace("{col}", &format!("\"{col}\""));
    db.execute_unprepared(&format!(
        "ALTER TABLE \"{table}\" ENABLE ROW LEVEL SECURITY; \
         ALTER TABLE \"{table}\" FORCE ROW LEVEL SECURITY; \
         DROP POLICY IF EXISTS tenant_isolation ON \"{table}\"; \
         CREATE POLICY tenant_isolation ON \"{table}\" USING ({cond}) WITH CHECK ({cond});"
    ))
    .await
    .map(|_| ())
}

/// Every table of this schema with a `tenant_id` column, and `tenants` keyed by `id`.
async fn tenant_tables(db: &SchemaManagerConnection<'_>) -> Result<Vec<(String, String)>, DbErr> {
    let rows = db
        .query_all_raw(sea_orm_migration::sea_orm::Statement::from_string(
            DbBackend::Postgres,
            "SELECT table_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND column_name = 'tenant_id' \
             AND table_name IN (SELECT table_name FROM information_schema.tables \
                                WHERE table_schema = current_schema() AND table_type = 'BASE TABLE') \
             ORDER BY 1",
        ))
        .await?;
    let mut out = vec![("tenants".to_owned(), "id".to_owned())];
    for r in rows {
        out.push((r.try_get::<String>("", "table_name")?, "tenant_id".to_owned()));
    }
    Ok(out)
}
