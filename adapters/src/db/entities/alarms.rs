use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "alarms")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub device_id: Option<Uuid>,
    pub home_id: Option<Uuid>,
    pub integration_id: Option<Uuid>,
    pub ticket_id: Option<Uuid>,
    pub kind: String,
    pub severity: String,
    pub state: String,
    pub message: String,
    pub vendor_code: Option<String>,
    pub vendor_text: Option<String>,
    pub inbound_event_id: Option<Uuid>,
    pub occurrences: i32,
    pub raised_at: ChronoDateTimeUtc,
    pub last_seen_at: ChronoDateTimeUtc,
    pub acknowledged_at: Option<ChronoDateTimeUtc>,
    pub acknowledged_by: Option<Uuid>,
    pub cleared_at: Option<ChronoDateTimeUtc>,
    pub cleared_by: Option<Uuid>,
    pub clear_note: Option<String>,
    pub attributes: Json,
    pub open_key: Option<String>,
    pub updated_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
