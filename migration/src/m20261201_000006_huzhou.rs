//! Huzhou elevator data center (seed 000): live subscriptions (7.4 `put_rt_notice`) and
//! the tokens the platform issues to the data center (7.1 `get_token`).
//!
//! Subscription times are Unix milliseconds in `BIGINT` columns, so one portable
//! `UPDATE ... SET next_due_ms = next_due_ms + interval_ms ... RETURNING` claims every push
//! due at a tick on SQLite and PostgreSQL alike.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("huzhou_subscriptions")
                .col(uuid("integration_id"))
                .col(string_len("unique_id", 64))
                .col(uuid("tenant_id"))
                .col(big_integer("next_due_ms"))
                .col(big_integer("interval_ms"))
                .col(big_integer("until_ms"))
                .primary_key(Index::create().col("integration_id").col("unique_id"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_huzhou_subscriptions_due")
                .table("huzhou_subscriptions")
                .col("next_due_ms")
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("huzhou_inbound_tokens")
                // SHA-256 of the token: the token itself is never stored.
                .col(string_len("digest", 64).primary_key())
                .col(uuid("tenant_id"))
                .col(uuid("integration_id"))
                .col(big_integer("expires_ms"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("huzhou_inbound_tokens").to_owned()).await?;
        m.drop_table(Table::drop().table("huzhou_subscriptions").to_owned()).await
    }
}
