use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "delivery_attempts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub delivery_id: Uuid,
    pub number: i32,
    pub at: ChronoDateTimeUtc,
    pub request: String,
    pub http_status: Option<i32>,
    pub vendor_code: Option<String>,
    pub vendor_message: Option<String>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub outcome: String,
    pub next_attempt_at: Option<ChronoDateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
