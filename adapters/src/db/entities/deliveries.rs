use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub integration_id: Uuid,
    pub kind: String,
    pub idempotency_key: String,
    pub order_key: Option<String>,
    pub payload: Json,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: Option<ChronoDateTimeUtc>,
    pub last_error: Option<String>,
    pub created_at: ChronoDateTimeUtc,
    pub updated_at: ChronoDateTimeUtc,
    pub subject: Option<String>,
    pub result: Option<String>,
    /// While IN_FLIGHT: until when the claim holds unless its worker's heartbeat renews it.
    pub lease_until: Option<ChronoDateTimeUtc>,
    pub first_attempt_at: Option<ChronoDateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
