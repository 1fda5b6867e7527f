//! Dingding lock passwords (with their current operation and its stage) and device
//! operations (meter commands and recharges, keyed by Dingding's `serviceid` and the
//! payer's `trade_num`).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn fk(name: &str, from: (&'static str, &'static str), to: &'static str) -> ForeignKeyCreateStatement {
    ForeignKey::create().name(name).from(from.0, from.1).to(to, "id").on_delete(ForeignKeyAction::Cascade).to_owned()
}

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
                .table("dingding_lock_passwords")
                .col(uuid("id").primary_key())
                .col(uuid("tenant_id"))
                .col(uuid("integration_id"))
                .col(uuid("device_id"))
                // The password id at the lock (3.3); unknown until Dingding answers.
                .col(big_integer_null("vendor_id"))
                .col(string_len("kind", 32))
                .col(string_len("name", 200))
                .col(string_len_null("phone", 32))
                .col(timestamp_with_time_zone_null("begins_at"))
                .col(timestamp_with_time_zone_null("ends_at"))
                .col(string_len_null("pwd_state", 16))
                .col(string_len_null("operation", 16))
                .col(string_len_null("stage", 16))
                .col(text_null("error"))
                // Sealed with the app's secret box; never returned.
                .col(text_null("sealed_secret"))
                .col(boolean("deleted"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .foreign_key(&mut fk(
                    "fk_dingding_passwords_device",
                    ("dingding_lock_passwords", "device_id"),
                    "devices",
                ))
                .to_owned(),
        )
        .await?;
        index(m, "dingding_lock_passwords", "ix_dingding_passwords_device", &["tenant_id", "device_id", "id"], false)
            .await?;
        index(m, "dingding_lock_passwords", "ux_dingding_passwords_vendor", &["device_id", "vendor_id"], true).await?;
        m.create_table(
            Table::create()
                .table("dingding_operations")
                .col(uuid("id").primary_key())
                .col(uuid("tenant_id"))
                .col(uuid("integration_id"))
                .col(uuid("device_id"))
                .col(string_len("command", 32))
                .col(json_binary("params"))
                .col(string_len_null("service_id", 128))
                .col(string_len_null("trade_no", 128))
                .col(string_len("stage", 16))
                .col(text_null("error"))
                .col(json_binary("result"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .foreign_key(&mut fk("fk_dingding_operations_device", ("dingding_operations", "device_id"), "devices"))
                .to_owned(),
        )
        .await?;
        index(m, "dingding_operations", "ix_dingding_operations_device", &["tenant_id", "device_id", "id"], false)
            .await?;
        index(m, "dingding_operations", "ix_dingding_operations_service", &["integration_id", "service_id"], false)
            .await?;
        index(m, "dingding_operations", "ux_dingding_operations_trade", &["integration_id", "trade_no"], true).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("dingding_operations").to_owned()).await?;
        m.drop_table(Table::drop().table("dingding_lock_passwords").to_owned()).await
    }
}
