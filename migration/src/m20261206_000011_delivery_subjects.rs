//! What a delivery is about (`subject`, e.g. `device:{id}`: a meter's commands, a permit's
//! uploads) and what its vendor later reported of it (`result`, JSON text: a gas meter's
//! execution of a command, a device's answer code).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table("deliveries").add_column(text_null("subject")).to_owned()).await?;
        m.alter_table(Table::alter().table("deliveries").add_column(text_null("result")).to_owned()).await?;
        m.create_index(
            Index::create()
                .name("ix_deliveries_subject")
                .table("deliveries")
                .col("tenant_id")
                .col("subject")
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("ix_deliveries_subject").table("deliveries").to_owned()).await?;
        m.alter_table(Table::alter().table("deliveries").drop_column("result").to_owned()).await?;
        m.alter_table(Table::alter().table("deliveries").drop_column("subject").to_owned()).await
    }
}
