use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "devices")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub integration_id: Uuid,
    pub external_id: String,
    pub kind: String,
    pub name: String,
    pub search_text: String,
    pub home_id: Option<Uuid>,
    pub room_id: Option<Uuid>,
    pub online: Option<bool>,
    pub online_changed_at: Option<ChronoDateTimeUtc>,
    pub battery: Option<i32>,
    pub signal: Option<i32>,
    pub last_seen_at: Option<ChronoDateTimeUtc>,
    pub attributes: Json,
    pub latest: Json,
    pub created_at: ChronoDateTimeUtc,
    pub updated_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
