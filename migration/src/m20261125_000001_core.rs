//! The multi-tenant core: tenants, users, integrations, API keys.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("tenants")
                .col(uuid("id").primary_key())
                .col(string_len_uniq("slug", 63))
                .col(string_len("name", 200))
                .col(timestamp_with_time_zone("created_at"))
                .to_owned(),
        )
        .await?;

        // `scope` is the tenant id as text, or "platform" for platform admins: one unique
        // index then covers "email unique per tenant" and "one platform admin per email".
        m.create_table(
            Table::create()
                .table("users")
                .col(uuid("id").primary_key())
                .col(uuid_null("tenant_id"))
                .col(string_len("scope", 40))
                .col(string_len("email", 254))
                .col(string("password_hash"))
                .col(string_len("role", 20))
                .col(timestamp_with_time_zone("created_at"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_users_tenant")
                        .from("users", "tenant_id")
                        .to("tenants", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("ux_users_scope_email").table("users").col("scope").col("email").unique().to_owned(),
        )
        .await?;
        m.create_index(Index::create().name("ix_users_email").table("users").col("email").to_owned()).await?;
        m.create_index(Index::create().name("ix_users_tenant").table("users").col("tenant_id").col("id").to_owned())
            .await?;

        m.create_table(
            Table::create()
                .table("integrations")
                .col(uuid("id").primary_key())
                .col(uuid("tenant_id"))
                .col(string_len("kind", 32))
                .col(string_len("name", 100))
                .col(json_binary("settings"))
                .col(text("credentials_sealed"))
                .col(json_binary("credential_names"))
                .col(timestamp_with_time_zone_null("secret_rotated_at"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_integrations_tenant")
                        .from("integrations", "tenant_id")
                        .to("tenants", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_integrations_tenant_name")
                .table("integrations")
                .col("tenant_id")
                .col("name")
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("api_keys")
                .col(uuid("id").primary_key())
                .col(uuid("tenant_id"))
                .col(uuid("integration_id"))
                .col(string_len("prefix", 16))
                .col(string_len_uniq("key_digest", 64))
                .col(timestamp_with_time_zone("created_at"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_api_keys_integration")
                        .from("api_keys", "integration_id")
                        .to("integrations", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(Index::create().name("ix_api_keys_tenant").table("api_keys").col("tenant_id").to_owned())
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in ["api_keys", "integrations", "users", "tenants"] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
