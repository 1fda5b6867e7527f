//! Deliveries (the outbox of every outbound vendor message) and their attempts.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

async fn index(
    m: &SchemaManager<'_>,
    table: &'static str,
    name: &str,
    cols: &[&'static str],
    unique: bool,
) -> Result<(), DbErr> {
    let mut i = Index::create();
    i.name(name).table(table);
    for c in cols {
        i.col(*c);
    }
    if unique {
        i.unique();
    }
    m.create_index(i.to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("deliveries")
                .col(uuid("id").primary_key())
                .col(uuid("tenant_id"))
                .col(uuid("integration_id"))
                .col(string_len("kind", 64))
                .col(string_len("idempotency_key", 128))
                .col(string_len_null("order_key", 128))
                .col(json_binary("payload"))
                .col(string_len("state", 16))
                .col(integer("attempts"))
                .col(timestamp_with_time_zone_null("next_attempt_at"))
                .col(text_null("last_error"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_deliveries_integration")
                        .from("deliveries", "integration_id")
                        .to("integrations", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        index(m, "deliveries", "ux_deliveries_idempotency", &["integration_id", "idempotency_key"], true).await?;
        index(m, "deliveries", "ix_deliveries_tenant", &["tenant_id", "id"], false).await?;
        index(m, "deliveries", "ix_deliveries_state", &["tenant_id", "state", "id"], false).await?;
        index(m, "deliveries", "ix_deliveries_due", &["state", "next_attempt_at"], false).await?;
        m.create_table(
            Table::create()
                .table("delivery_attempts")
                .col(uuid("id").primary_key())
                .col(uuid("tenant_id"))
                .col(uuid("delivery_id"))
                .col(integer("number"))
                .col(timestamp_with_time_zone("at"))
                .col(text("request"))
                .col(integer_null("http_status"))
                .col(string_len_null("vendor_code", 64))
                .col(text_null("vendor_message"))
                .col(big_integer("latency_ms"))
                .col(text_null("error"))
                .col(string_len("outcome", 16))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_delivery_attempts_delivery")
                        .from("delivery_attempts", "delivery_id")
                        .to("deliveries", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        index(m, "delivery_attempts", "ix_delivery_attempts_delivery", &["tenant_id", "delivery_id", "id"], false).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("delivery_attempts").to_owned()).await?;
        m.drop_table(Table::drop().table("deliveries").to_owned()).await
    }
}
