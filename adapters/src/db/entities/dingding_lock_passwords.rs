use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "dingding_lock_passwords")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub integration_id: Uuid,
    pub device_id: Uuid,
    pub vendor_id: Option<i64>,
    pub kind: String,
    pub name: String,
    pub phone: Option<String>,
    pub begins_at: Option<ChronoDateTimeUtc>,
    pub ends_at: Option<ChronoDateTimeUtc>,
    pub pwd_state: Option<String>,
    pub operation: Option<String>,
    pub stage: Option<String>,
    pub error: Option<String>,
    pub sealed_secret: Option<String>,
    pub deleted: bool,
    pub created_at: ChronoDateTimeUtc,
    pub updated_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
