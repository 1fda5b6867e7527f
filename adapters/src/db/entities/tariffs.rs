use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "tariffs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub integration_id: Option<Uuid>,
    pub code: String,
    pub version: i32,
    pub utility: String,
    pub tiers: Json,
    pub cycle_months: i32,
    pub effective_from: ChronoDateTimeUtc,
    pub clear_cycle: bool,
    pub created_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
