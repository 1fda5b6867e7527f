use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "meter_accounts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub device_id: Uuid,
    pub tariff_id: Option<Uuid>,
    pub pay_model: String,
    pub billing_model: String,
    pub balance: String,
    pub overdraft: String,
    pub cycle_usage: String,
    pub cycle_started_at: Option<ChronoDateTimeUtc>,
    pub version: i64,
    pub last_reading: Option<String>,
    pub last_read_at: Option<ChronoDateTimeUtc>,
    pub billed_tariff_id: Option<Uuid>,
    pub cut_off: bool,
    pub updated_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
