//! Ordered deliveries (an index to find a delivery's predecessors by order key) and the
//! runs of periodic jobs: one row per (job, scope, tick), so that however many worker
//! processes see a tick, only the one that inserts the row runs it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name("ix_deliveries_order")
                .table("deliveries")
                .col("integration_id")
                .col("order_key")
                .col("id")
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("scheduled_runs")
                .col(uuid("id").primary_key())
                .col(string_len("job", 32))
                // The integration's id, or "global" for jobs of the whole deployment.
                .col(string_len("scope", 64))
                .col(uuid_null("tenant_id"))
                .col(timestamp_with_time_zone("tick"))
                .col(string_len("trigger", 16))
                .col(string_len("worker", 128))
                .col(timestamp_with_time_zone("started_at"))
                .col(timestamp_with_time_zone_null("finished_at"))
                .col(string_len_null("outcome", 16))
                .col(text_null("detail"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_scheduled_runs_tick")
                .table("scheduled_runs")
                .col("job")
                .col("scope")
                .col("tick")
                .unique()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("scheduled_runs").to_owned()).await?;
        m.drop_index(Index::drop().name("ix_deliveries_order").table("deliveries").to_owned()).await
    }
}
