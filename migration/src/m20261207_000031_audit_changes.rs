//! What each audited mutation changed: the entity (`entity_type`, `entity_id`) and its
//! state before and after (JSON text, the fields the audit log keeps, never a secret), so
//! the audit log can be filtered by entity.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const COLUMNS: [&str; 4] = ["entity_type", "entity_id", "state_before", "state_after"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one at a time.
        m.alter_table(Table::alter().table("audit_log").add_column(string_len_null("entity_type", 64)).to_owned())
            .await?;
        m.alter_table(Table::alter().table("audit_log").add_column(string_len_null("entity_id", 128)).to_owned())
            .await?;
        m.alter_table(Table::alter().table("audit_log").add_column(text_null("state_before")).to_owned()).await?;
        m.alter_table(Table::alter().table("audit_log").add_column(text_null("state_after")).to_owned()).await?;
        m.create_index(
            Index::create()
                .name("ix_audit_log_entity")
                .table("audit_log")
                .col("tenant_id")
                .col("entity_type")
                .col("entity_id")
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("ix_audit_log_entity").table("audit_log").to_owned()).await?;
        for c in COLUMNS.iter().rev() {
            m.alter_table(Table::alter().table("audit_log").drop_column(*c).to_owned()).await?;
        }
        Ok(())
    }
}
