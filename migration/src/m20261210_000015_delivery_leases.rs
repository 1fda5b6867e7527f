//! Delivery timing (issue 18): the lease a worker holds on a delivery it is sending and
//! renews with its heartbeat (`lease_until`: once past, the delivery is taken up again),
//! the start of a delivery's retry window (`first_attempt_at`: DEAD only 24 h after it),
//! and, on each attempt, when the retry policy scheduled the next one.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter().table("deliveries").add_column(timestamp_with_time_zone_null("lease_until")).to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter().table("deliveries").add_column(timestamp_with_time_zone_null("first_attempt_at")).to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("delivery_attempts")
                .add_column(timestamp_with_time_zone_null("next_attempt_at"))
                .to_owned(),
        )
        .await?;
        // Deliveries attempted before: their window started when they were written.
        m.get_connection()
            .execute_unprepared("UPDATE deliveries SET first_attempt_at = created_at WHERE attempts > 0")
            .await?;
        // Heartbeats look for IN_FLIGHT deliveries whose lease ran out.
        m.create_index(
            Index::create().name("ix_deliveries_lease").table("deliveries").col("state").col("lease_until").to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("ix_deliveries_lease").table("deliveries").to_owned()).await?;
        m.alter_table(Table::alter().table("delivery_attempts").drop_column("next_attempt_at").to_owned()).await?;
        m.alter_table(Table::alter().table("deliveries").drop_column("first_attempt_at").to_owned()).await?;
        m.alter_table(Table::alter().table("deliveries").drop_column("lease_until").to_owned()).await
    }
}
