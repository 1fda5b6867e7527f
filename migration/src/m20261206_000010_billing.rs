//! Centre billing of meter readings (gas CIS<->DAS, `PROTOCOLS.md` 4): each account keeps
//! the register it last billed, the tariff version it billed under and whether its supply
//! is cut, with a version for compare-and-set; each charge keeps how it was priced (tier
//! split, price, tariff version) as JSON text. Inbound events keep the answer they were
//! given, so a resend is answered the same.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// One column per statement: SQLite alters one thing at a time.
fn added() -> Vec<(&'static str, ColumnDef)> {
    vec![
        ("meter_accounts", big_integer("version").default(0).to_owned()),
        ("meter_accounts", text_null("last_reading").to_owned()),
        ("meter_accounts", timestamp_with_time_zone_null("last_read_at").to_owned()),
        ("meter_accounts", uuid_null("billed_tariff_id").to_owned()),
        ("meter_accounts", boolean("cut_off").default(false).to_owned()),
        ("ledger_entries", text_null("detail").to_owned()),
        ("inbound_events", text_null("answer").to_owned()),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (table, mut col) in added() {
            m.alter_table(Table::alter().table(table).add_column(&mut col).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (table, col) in added().into_iter().rev() {
            m.alter_table(Table::alter().table(table).drop_column(col.get_column_name()).to_owned()).await?;
        }
        Ok(())
    }
}
