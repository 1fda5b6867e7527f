//! Huzhou live subscriptions by time slot (seed 000 7.4/7.5, issue 6): a subscription no
//! longer moves on at every push. It keeps its first due time and its phase
//! (`first_due_ms % interval_ms`), so the pushes due in a slot of time are one indexed
//! read on `(interval_ms, phase_ms)`; a process claims a whole slot with one row of
//! `huzhou_live_slots`, so each push still goes out from one process only.
//!
//! Subscriptions last minutes, so the old table is replaced rather than converted: a
//! data center subscribed during the upgrade subscribes again.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("huzhou_subscriptions").to_owned()).await?;
        m.create_table(
            Table::create()
                .table("huzhou_subscriptions")
                .col(uuid("integration_id"))
                .col(string_len("unique_id", 64))
                .col(uuid("tenant_id"))
                .col(big_integer("first_due_ms"))
                .col(big_integer("interval_ms"))
                .col(big_integer("phase_ms"))
                .col(big_integer("until_ms"))
                .primary_key(Index::create().col("integration_id").col("unique_id"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_huzhou_subscriptions_phase")
                .table("huzhou_subscriptions")
                .col("interval_ms")
                .col("phase_ms")
                .to_owned(),
        )
        .await?;
        m.create_table(Table::create().table("huzhou_live_slots").col(big_integer("slot_ms").primary_key()).to_owned())
            .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("huzhou_live_slots").to_owned()).await?;
        m.drop_table(Table::drop().table("huzhou_subscriptions").to_owned()).await?;
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
        .await
    }
}
