//! Electricity prices by scope (Dingding open API 11.15-11.18: `client_eleprice`,
//! `elemeter_set_eleprice_by_home`, `room_eleprice`, `eleprice_way`): a tariff bound to the
//! whole tenant, a home or a room, and per home the way that picks among them.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("price_assignments")
                .col(uuid("id").primary_key())
                .col(uuid("tenant_id"))
                // "tenant", "home:{id}" or "room:{id}": one assignment per scope.
                .col(string_len("scope_key", 64))
                .col(uuid_null("home_id"))
                .col(uuid_null("room_id"))
                .col(uuid_null("tariff_id"))
                .col(string_len_null("price_way", 16))
                .col(timestamp_with_time_zone("updated_at"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_price_assignments_tenant")
                        .from("price_assignments", "tenant_id")
                        .to("tenants", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_price_assignments_scope")
                .table("price_assignments")
                .col("tenant_id")
                .col("scope_key")
                .unique()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("price_assignments").to_owned()).await
    }
}
