use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "inbound_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub integration_id: Uuid,
    pub protocol: String,
    pub kind: String,
    pub dedup_key: String,
    pub headers: Json,
    pub body: String,
    pub received_at: ChronoDateTimeUtc,
    pub state: String,
    pub error: Option<String>,
    pub processed_at: Option<ChronoDateTimeUtc>,
    pub answer: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
