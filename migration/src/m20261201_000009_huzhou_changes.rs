//! When each Huzhou subscription was last written (`changed_ms`, Unix ms), indexed: a live
//! slot read ahead of its time checks the subscriptions changed since its read (ended by
//! `subscribe=2`, or extended) in one short read just before it sends, instead of reading
//! the whole slot again. Ended subscriptions now keep their row, ended, for a minute.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter().table("huzhou_subscriptions").add_column(big_integer("changed_ms").default(0)).to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_huzhou_subscriptions_changed")
                .table("huzhou_subscriptions")
                .col("changed_ms")
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("ix_huzhou_subscriptions_changed").table("huzhou_subscriptions").to_owned())
            .await?;
        m.alter_table(Table::alter().table("huzhou_subscriptions").drop_column("changed_ms").to_owned()).await
    }
}
