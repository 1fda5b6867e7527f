//! Files devices hand over (ETC door-opening pictures): one record per device, purpose and
//! moment, the content kept through the file store.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("device_files")
                .col(uuid("id").primary_key())
                .col(uuid("tenant_id"))
                .col(uuid("device_id"))
                .col(uuid("integration_id"))
                .col(string_len("purpose", 32))
                .col(string_len("taken_at", 64))
                .col(string_len("state", 16))
                .col(text_null("filename"))
                .col(text_null("content_type"))
                .col(big_integer_null("size"))
                .col(string_len_null("md5", 64))
                .col(text_null("note"))
                .col(timestamp_with_time_zone("created_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_device_files_moment")
                .table("device_files")
                .col("device_id")
                .col("purpose")
                .col("taken_at")
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_device_files_tenant")
                .table("device_files")
                .col("tenant_id")
                .col("device_id")
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("device_files").to_owned()).await
    }
}
