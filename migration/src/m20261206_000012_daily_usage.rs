//! Meters' daily usage as their vendor reports it (gas DAS 1015): one row per meter and
//! day, replaced when fetched again.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("daily_usage")
                .col(uuid("tenant_id"))
                .col(uuid("device_id"))
                .col(string_len("day", 10))
                .col(text("volume"))
                .col(text("amount"))
                .col(text("prices"))
                .col(timestamp_with_time_zone("fetched_at"))
                .primary_key(Index::create().col("device_id").col("day"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_daily_usage_tenant")
                .table("daily_usage")
                .col("tenant_id")
                .col("device_id")
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("daily_usage").to_owned()).await
    }
}
