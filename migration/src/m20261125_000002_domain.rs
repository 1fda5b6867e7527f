//! The domain core: homes, rooms, devices, readings, alarms and their timeline, tickets and
//! files, tariffs, meter accounts and their ledger, inbound events, the audit log.
//! Every tenant-owned table leads its list indexes with `tenant_id`.

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

const TABLES: &[&str] = &[
    "audit_log",
    "inbound_events",
    "ledger_entries",
    "meter_accounts",
    "tariffs",
    "ticket_files",
    "tickets",
    "alarm_entries",
    "alarms",
    "readings",
    "devices",
    "rooms",
    "homes",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("homes")
                .col(uuid("id").primary_key())
                .col(uuid("tenant_id"))
                .col(uuid_null("integration_id"))
                .col(string_len_null("external_id", 128))
                .col(string_len("name", 200))
                .col(string_null("address"))
                .col(json_binary("attributes"))
                .col(timestamp_with_time_zone("created_at"))
                .foreign_key(&mut fk("fk_homes_tenant", ("homes", "tenant_id"), "tenants"))
                .to_owned(),
        )
        .await?;
        index(m, "homes", "ix_homes_tenant", &["tenant_id", "id"], false).await?;
        index(m, "homes", "ux_homes_external", &["integration_id", "external_id"], true).await?;

        m.create_table(
            Table::create()
                .table("rooms")
                .col(uuid("id").primary_key())
                .col(uuid("tenant_id"))
                .col(uuid("home_id"))
                .col(string_len_null("external_id", 128))
                .col(string_len("name", 200))
                .col(timestamp_with_time_zone("created_at"))
                .foreign_key(&mut fk("fk_rooms_home", ("rooms", "home_id"), "homes"))
                .to_owned(),
        )
        .await?;
        index(m, "rooms", "ux_rooms_home_name", &["home_id", "name"], true).await?;
        index(m, "rooms", "ix_rooms_tenant", &["tenant_id", "home_id"], false).await?;

        m.create_table(
            Table::create()
                .table("devices")
                .col(uuid("id").primary_key())
                .col(uuid("tenant_id"))
                .col(uuid("integration_id"))
                .col(string_len("external_id", 128))
                .col(string_len("kind", 32))
                .col(string_len("name", 200))
                .col(string_len("search_text", 400))
                .col(uuid_null("home_id"))
                .col(uuid_null("room_id"))
                .col(boolean_null("online"))
                .col(timestamp_with_time_zone_null("online_changed_at"))
                .col(integer_null("battery"))
                .col(integer_null("signal"))
                .col(timestamp_with_time_zone_null("last_seen_at"))
                .col(json_binary("attributes"))
                .col(json_binary("latest"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .foreign_key(&mut fk("fk_devices_integration", ("devices", "integration_id"), "integrations"))
                .to_owned(),
        )
        .await?;
        index(m, "devices", "ux_devices_external", &["integration_id", "external_id"], true).await?;
        index(m, "devices", "ix_devices_tenant", &["tenant_id", "id"], false).await?;
        index(m, "devices", "ix_devices_kind", &["tenant_id", "kind", "id"], false).await?;
        index(m, "devices", "ix_devices_home", &["tenant_id", "home_id", "id"], false).await?;
        index(m, "devices", "ix_devices_integration", &["tenant_id", "integration_id", "id"], false).await?;
        index(m, "devices", "ix_devices_online", &["tenant_id", "online", "id"], false).await?;

        m.create_table(
            Table::create()
                .table("readings")
                .col(uuid("id").primary_key())
                .col(uuid("tenant_id"))
                .col(uuid("device_id"))
                .col(string_len("metric", 64))
                .col(json_binary("value"))
                .col(timestamp_with_time_zone("ts"))
                .foreign_key(&mut fk("fk_readings_device", ("readings", "device_id"), "devices"))
                .to_owned(),
        )
        .await?;
        index(m, "readings", "ix_readings_device_ts", &["device_id", "ts"], false).await?;

        m.create_table(
            Table::create()
                .table("alarms")
                .col(uuid("id").primary_key())
                .col(uuid("tenant_id"))
                .col(uuid_null("device_id"))
                .col(uuid_null("home_id"))
                .col(uuid_null("integration_id"))
                .col(uuid_null("ticket_id"))
                .col(string_len("kind", 64))
                .col(string_len("severity", 16))
                .col(string_len("state", 16))
                .col(text("message"))
                .col(string_len_null("vendor_code", 64))
                .col(text_null("vendor_text"))
                .col(uuid_null("inbound_event_id"))
                .col(integer("occurrences"))
                .col(timestamp_with_time_zone("raised_at"))
                .col(timestamp_with_time_zone("last_seen_at"))
                .col(timestamp_with_time_zone_null("acknowledged_at"))
                .col(uuid_null("acknowledged_by"))
                .col(timestamp_with_time_zone_null("cleared_at"))
                .col(uuid_null("cleared_by"))
                .col(text_null("clear_note"))
                .col(json_binary("attributes"))
                // Set while open, NULL once cleared: the unique index below lets only one
                // open alarm per (subject, kind) exist.
                .col(string_len_null("open_key", 200))
                .col(timestamp_with_time_zone("updated_at"))
                .foreign_key(&mut fk("fk_alarms_tenant", ("alarms", "tenant_id"), "tenants"))
                .to_owned(),
        )
        .await?;
        index(m, "alarms", "ux_alarms_open_key", &["tenant_id", "open_key"], true).await?;
        index(m, "alarms", "ix_alarms_tenant", &["tenant_id", "id"], false).await?;
        index(m, "alarms", "ix_alarms_state", &["tenant_id", "state", "id"], false).await?;
        index(m, "alarms", "ix_alarms_severity", &["tenant_id", "severity", "id"], false).await?;
        index(m, "alarms", "ix_alarms_device", &["tenant_id", "device_id", "id"], false).await?;
        index(m, "alarms", "ix_alarms_home", &["tenant_id", "home_id", "state"], false).await?;
        index(m, "alarms", "ix_alarms_kind", &["tenant_id", "kind", "id"], false).await?;
        index(m, "alarms", "ix_alarms_raised", &["tenant_id", "raised_at"], false).await?;

        m.create_table(
            Table::create()
                .table("alarm_entries")
                .col(uuid("id").primary_key())
                .col(uuid("tenant_id"))
                .col(uuid("alarm_id"))
                .col(timestamp_with_time_zone("at"))
                .col(uuid_null("actor_id"))
                .col(string_len("kind", 32))
                .col(text("text"))
                .foreign_key(&mut fk("fk_alarm_entries_alarm", ("alarm_entries", "alarm_id"), "alarms"))
                .to_owned(),
        )
        .await?;
        index(m, "alarm_entries", "ix_alarm_entries_alarm", &["alarm_id", "id"], false).await?;

        m.create_table(
            Table::create()
                .table("tickets")
                .col(uuid("id").primary_key())
                .col(uuid("tenant_id"))
                .col(string_len("kind", 32))
                .col(uuid_null("integration_id"))
                .col(uuid_null("device_id"))
                .col(uuid_null("home_id"))
                .col(string_len("status", 32))
                .col(json_binary("fields"))
                .col(string_len_null("external_id", 128))
                .col(uuid_null("created_by"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .foreign_key(&mut fk("fk_tickets_tenant", ("tickets", "tenant_id"), "tenants"))
                .to_owned(),
        )
        .await?;
        index(m, "tickets", "ix_tickets_tenant", &["tenant_id", "id"], false).await?;
        index(m, "tickets", "ix_tickets_kind", &["tenant_id", "kind", "id"], false).await?;
        index(m, "tickets", "ix_tickets_status", &["tenant_id", "status", "id"], false).await?;
        index(m, "tickets", "ix_tickets_device", &["tenant_id", "device_id", "id"], false).await?;

        m.create_table(
            Table::create()
                .table("ticket_files")
                .col(uuid("id").primary_key())
                .col(uuid("tenant_id"))
                .col(uuid("ticket_id"))
                .col(string_len("filename", 255))
                .col(string_len("content_type", 128))
                .col(big_integer("size"))
                .col(string_len("storage_key", 255))
                .col(timestamp_with_time_zone("created_at"))
                .foreign_key(&mut fk("fk_ticket_files_ticket", ("ticket_files", "ticket_id"), "tickets"))
                .to_owned(),
        )
        .await?;
        index(m, "ticket_files", "ix_ticket_files_ticket", &["tenant_id", "ticket_id"], false).await?;

        m.create_table(
            Table::create()
                .table("tariffs")
                .col(uuid("id").primary_key())
                .col(uuid("tenant_id"))
                .col(uuid_null("integration_id"))
                .col(string_len("code", 64))
                .col(integer("version"))
                .col(string_len("utility", 16))
                .col(json_binary("tiers"))
                .col(integer("cycle_months"))
                .col(timestamp_with_time_zone("effective_from"))
                .col(boolean("clear_cycle"))
                .col(timestamp_with_time_zone("created_at"))
                .foreign_key(&mut fk("fk_tariffs_tenant", ("tariffs", "tenant_id"), "tenants"))
                .to_owned(),
        )
        .await?;
        index(m, "tariffs", "ux_tariffs_code_version", &["tenant_id", "code", "version"], true).await?;

        m.create_table(
            Table::create()
                .table("meter_accounts")
                .col(uuid("id").primary_key())
                .col(uuid("tenant_id"))
                .col(uuid("device_id"))
                .col(uuid_null("tariff_id"))
                .col(string_len("pay_model", 16))
                .col(string_len("billing_model", 16))
                // Decimals as exact text: SQLite has no decimal type.
                .col(string_len("balance", 40))
                .col(string_len("overdraft", 40))
                .col(string_len("cycle_usage", 40))
                .col(timestamp_with_time_zone_null("cycle_started_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .foreign_key(&mut fk("fk_meter_accounts_device", ("meter_accounts", "device_id"), "devices"))
                .to_owned(),
        )
        .await?;
        index(m, "meter_accounts", "ux_meter_accounts_device", &["device_id"], true).await?;

        m.create_table(
            Table::create()
                .table("ledger_entries")
                .col(uuid("id").primary_key())
                .col(uuid("tenant_id"))
                .col(uuid("account_id"))
                .col(string_len("kind", 16))
                .col(string_len("amount", 40))
                .col(string_len_null("volume", 40))
                .col(string_len("balance_after", 40))
                .col(string_len_null("reference", 128))
                .col(uuid_null("created_by"))
                .col(timestamp_with_time_zone("at"))
                .foreign_key(&mut fk("fk_ledger_entries_account", ("ledger_entries", "account_id"), "meter_accounts"))
                .to_owned(),
        )
        .await?;
        index(m, "ledger_entries", "ix_ledger_entries_account", &["account_id", "id"], false).await?;
        index(m, "ledger_entries", "ux_ledger_entries_reference", &["account_id", "reference"], true).await?;

        m.create_table(
            Table::create()
                .table("inbound_events")
                .col(uuid("id").primary_key())
                .col(uuid("tenant_id"))
                .col(uuid("integration_id"))
                .col(string_len("protocol", 32))
                .col(string_len("kind", 128))
                .col(string_len("dedup_key", 255))
                .col(json_binary("headers"))
                .col(text("body"))
                .col(timestamp_with_time_zone("received_at"))
                .col(string_len("state", 16))
                .col(text_null("error"))
                .col(timestamp_with_time_zone_null("processed_at"))
                .foreign_key(&mut fk(
                    "fk_inbound_events_integration",
                    ("inbound_events", "integration_id"),
                    "integrations",
                ))
                .to_owned(),
        )
        .await?;
        index(m, "inbound_events", "ux_inbound_events_dedup", &["integration_id", "dedup_key"], true).await?;
        index(m, "inbound_events", "ix_inbound_events_tenant", &["tenant_id", "id"], false).await?;

        m.create_table(
            Table::create()
                .table("audit_log")
                .col(uuid("id").primary_key())
                .col(uuid_null("tenant_id"))
                .col(uuid_null("actor_id"))
                .col(string_len_null("actor_role", 20))
                .col(string_len("action", 64))
                .col(string_len_null("target", 128))
                .col(string_len("outcome", 32))
                .col(timestamp_with_time_zone("at"))
                .to_owned(),
        )
        .await?;
        index(m, "audit_log", "ix_audit_log_tenant", &["tenant_id", "id"], false).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in TABLES {
            m.drop_table(Table::drop().table(*t).to_owned()).await?;
        }
        Ok(())
    }
}
