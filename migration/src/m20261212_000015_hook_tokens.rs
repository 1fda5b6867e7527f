//! Hook tokens (issue 17, "Dingding callback forgery"): a Dingding callback URL carries a
//! per-integration token (`/hooks/{id}/dingding/{hook_token}`). Linkyard stores only the
//! random seed each token is derived from under `LINKYARD_SECRET_KEY` (useless without the
//! key), the seed it replaced and until when that one is still honoured. Every existing
//! Dingding integration gets a seed here, so its `hookUrl` carries a token from now on.

use sea_orm_migration::{prelude::*, schema::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const COLUMNS: [&str; 3] = ["hook_seed", "previous_hook_seed", "previous_hook_seed_until"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table("integrations").add_column(text_null("hook_seed")).to_owned()).await?;
        m.alter_table(Table::alter().table("integrations").add_column(text_null("previous_hook_seed")).to_owned())
            .await?;
        m.alter_table(
            Table::alter()
                .table("integrations")
                .add_column(timestamp_with_time_zone_null("previous_hook_seed_until"))
                .to_owned(),
        )
        .await?;
        // 192 bits from each database's strong random source, one value per row.
        let random = match m.get_database_backend() {
            DatabaseBackend::Postgres => {
                "replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', '')"
            }
            _ => "lower(hex(randomblob(24)))",
        };
        m.get_connection()
            .execute_unprepared(&format!(
                "UPDATE integrations SET hook_seed = {random} WHERE kind = 'DINGDING' AND hook_seed IS NULL"
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for col in COLUMNS.iter().rev() {
            m.alter_table(Table::alter().table("integrations").drop_column(*col).to_owned()).await?;
        }
        Ok(())
    }
}
