//! The outcome of each ticket's last upload to an outside system (a regulator): which
//! version of the ticket it carried, whether it was taken, and why not.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("ticket_syncs")
                .col(uuid("ticket_id").primary_key())
                .col(uuid("tenant_id"))
                .col(uuid("integration_id"))
                .col(string_len("state", 16))
                .col(timestamp_with_time_zone("version"))
                .col(text_null("last_error"))
                .col(timestamp_with_time_zone("last_upload_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_ticket_syncs_tenant")
                .table("ticket_syncs")
                .col("tenant_id")
                .col("ticket_id")
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("ticket_syncs").to_owned()).await
    }
}
