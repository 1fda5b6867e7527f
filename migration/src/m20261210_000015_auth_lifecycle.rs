//! Account and key lifecycle: a user's token version (every access token carries it; a
//! bump revokes them all at once) and whether the account is disabled; when an API key
//! was revoked and (coarsely) last used.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one column at a time.
        m.alter_table(Table::alter().table("users").add_column(big_integer("token_version").default(0)).to_owned())
            .await?;
        m.alter_table(Table::alter().table("users").add_column(boolean("disabled").default(false)).to_owned()).await?;
        m.alter_table(
            Table::alter().table("api_keys").add_column(timestamp_with_time_zone_null("revoked_at")).to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter().table("api_keys").add_column(timestamp_with_time_zone_null("last_used_at")).to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table("api_keys").drop_column("last_used_at").to_owned()).await?;
        m.alter_table(Table::alter().table("api_keys").drop_column("revoked_at").to_owned()).await?;
        m.alter_table(Table::alter().table("users").drop_column("disabled").to_owned()).await?;
        m.alter_table(Table::alter().table("users").drop_column("token_version").to_owned()).await
    }
}
