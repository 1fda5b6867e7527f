//! Alarm escalation (issue 18): the tenants' escalation policies, and every step taken on
//! an alarm under one (notified, escalated, re-notified), keyed so that a step is taken
//! once however many processes check and however often they restart. Notification
//! channels are integrations (kind `NOTIFICATION_WEBHOOK`): no table of their own.
//!
//! On PostgreSQL both tables get the tenant row-level security policy of
//! `m20261207_000020_row_security` (same condition), written here so that it holds
//! whichever of the two ran first.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: [&str; 2] = ["escalation_policies", "escalation_steps"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("escalation_policies")
                .col(uuid("id").primary_key())
                .col(uuid("tenant_id"))
                .col(string_len("name", 100))
                .col(json_binary("kinds"))
                .col(string_len("min_severity", 16))
                .col(integer("ack_within_minutes"))
                .col(string_len_null("escalate_to", 16))
                .col(integer_null("renotify_every_minutes"))
                .col(json_binary("channel_ids"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_escalation_policies_name")
                .table("escalation_policies")
                .col("tenant_id")
                .col("name")
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("escalation_steps")
                .col(uuid("id").primary_key())
                .col(uuid("tenant_id"))
                .col(uuid("alarm_id"))
                .col(uuid("policy_id"))
                .col(string_len("kind", 16))
                .col(integer("number"))
                .col(timestamp_with_time_zone("at"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_escalation_steps_alarm")
                        .from("escalation_steps", "alarm_id")
                        .to("alarms", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_escalation_steps_policy")
                        .from("escalation_steps", "policy_id")
                        .to("escalation_policies", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // The key that makes each step happen once: insert-if-absent decides who sends.
        m.create_index(
            Index::create()
                .name("ux_escalation_steps_step")
                .table("escalation_steps")
                .col("alarm_id")
                .col("policy_id")
                .col("kind")
                .col("number")
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_escalation_steps_tenant")
                .table("escalation_steps")
                .col("tenant_id")
                .col("alarm_id")
                .to_owned(),
        )
        .await?;
        for table in TABLES {
            crate::m20261207_000020_row_security::protect(m.get_connection(), table, "tenant_id").await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("escalation_steps").to_owned()).await?;
        m.drop_table(Table::drop().table("escalation_policies").to_owned()).await
    }
}
