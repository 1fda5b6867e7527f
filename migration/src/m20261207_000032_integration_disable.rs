//! A disabled integration (`disableIntegration`): it keeps its devices, events and
//! deliveries, but accepts no callbacks, sends nothing and runs no scheduled job until
//! it is enabled again.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter().table("integrations").add_column(timestamp_with_time_zone_null("disabled_at")).to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table("integrations").drop_column("disabled_at").to_owned()).await
    }
}
