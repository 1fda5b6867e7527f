use crate::db::batch::Batcher;
use crate::db::entities::{deliveries as d, delivery_attempts as a};
use crate::db::page::{Order, fetch_page_ordered, try_map};
use crate::db::{Conn, inserted, map_err, unknown};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::deliveries::{
    Attempt, Claim, Delivery, DeliveryFilter, DeliveryKind, DeliveryRepo, DeliveryState, NewDelivery,
};
use domain::ids::{DeliveryId, EntryId, IntegrationId, TenantId};
use domain::{DomainError, DomainResult, Page, PageRequest};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    FromQueryResult, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Select, Set, Statement, TransactionTrait,
};
use std::collections::HashMap;
use std::sync::Arc;

/// Writes the deliveries a domain change planned, on the change's own connection or
/// transaction (the outbox): they commit or roll back with it.
///
/// # Errors
/// `Duplicate` when the integration already has a delivery with one of the keys.
pub(crate) async fn insert_outbox(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    planned: Vec<NewDelivery>,
) -> DomainResult<Vec<Delivery>> {
    let mut out = Vec::with_capacity(planned.len());
    for input in planned {
        let row = new_row(tenant, input)
            .insert(db)
            .await
            .map_err(map_err("the integration already has a delivery with this idempotency key"))?;
        out.push(to_domain(row)?);
    }
    Ok(out)
}

/// The same, skipping a delivery whose idempotency key its integration already used (a
/// change saved again that the vendor already heard of); returns the ids written.
///
/// # Errors
/// `Unknown` on storage failure.
pub(crate) async fn insert_outbox_once(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    planned: Vec<NewDelivery>,
) -> DomainResult<Vec<DeliveryId>> {
    let mut ids = Vec::with_capacity(planned.len());
    for input in planned {
        let rows = inserted(
            d::Entity::insert_many([new_row(tenant, input)])
                .on_conflict_do_nothing_on([d::Column::IntegrationId, d::Column::IdempotencyKey])
                .exec_with_returning_many(db)
                .await,
        )?;
        ids.extend(rows.into_iter().map(|m| DeliveryId::from_uuid(m.id)));
    }
    Ok(ids)
}

fn new_row(tenant: TenantId, input: NewDelivery) -> d::ActiveModel {
    let now = Utc::now();
    d::ActiveModel {
        id: Set(DeliveryId::new().as_uuid()),
        tenant_id: Set(tenant.as_uuid()),
        integration_id: Set(input.integration_id.as_uuid()),
        kind: Set(input.kind.as_str().to_owned()),
        idempotency_key: Set(input.idempotency_key),
        order_key: Set(input.order_key),
        payload: Set(input.payload),
        state: Set(DeliveryState::Pending.as_str().to_owned()),
        attempts: Set(0),
        next_attempt_at: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        subject: Set(input.subject),
        result: Set(None),
        lease_until: Set(None),
        first_attempt_at: Set(None),
    }
}

/// Concurrent `create`s in one insert (group commit, `crate::db::batch`); a key the
/// integration already used (before, or earlier in the batch) is that item's `Duplicate`.
async fn create_many(
    db: &DatabaseConnection,
    items: Vec<(TenantId, NewDelivery)>,
) -> DomainResult<Vec<DomainResult<Delivery>>> {
    let keys: Vec<(uuid::Uuid, String)> =
        items.iter().map(|(_, i)| (i.integration_id.as_uuid(), i.idempotency_key.clone())).collect();
    // One JSON parameter for the batch (as `claim_many`): one statement text for every size.
    let now = Utc::now();
    let batch: Vec<serde_json::Value> = items
        .into_iter()
        .map(|(t, i)| {
            serde_json::json!({
                "id": DeliveryId::new().as_uuid(),
                "tenant_id": t.as_uuid(),
                "integration_id": i.integration_id.as_uuid(),
                "kind": i.kind.as_str(),
                "idempotency_key": i.idempotency_key,
                "order_key": i.order_key,
                "payload": i.payload,
                "subject": i.subject,
            })
        })
        .collect();
    let sql = "INSERT INTO deliveries (id, tenant_id, integration_id, kind, idempotency_key, order_key, payload, state, \
         attempts, created_at, updated_at, subject) \
         SELECT id, tenant_id, integration_id, kind, idempotency_key, order_key, payload, $2, 0, $3, $3, subject \
         FROM jsonb_to_recordset($1::jsonb) AS v (id uuid, tenant_id uuid, integration_id uuid, kind text, \
         idempotency_key text, order_key text, payload jsonb, subject text) \
         ON CONFLICT (integration_id, idempotency_key) DO NOTHING RETURNING *";
    let values: Vec<sea_orm::Value> =
        vec![serde_json::Value::Array(batch).to_string().into(), DeliveryState::Pending.as_str().into(), now.into()];
    let inserted = d::Model::find_by_statement(Statement::from_sql_and_values(DbBackend::Postgres, sql, values))
        .all(db)
        .await
        .map_err(unknown)?;
    let mut fresh: HashMap<(uuid::Uuid, String), d::Model> =
        inserted.into_iter().map(|m| ((m.integration_id, m.idempotency_key.clone()), m)).collect();
    Ok(keys
        .into_iter()
        .map(|key| match fresh.remove(&key) {
            Some(m) => to_domain(m),
            None => {
                Err(DomainError::Duplicate("the integration already has a delivery with this idempotency key".into()))
            }
        })
        .collect())
}

/// How early a RETRYING delivery may be claimed: its job is pushed by a timer that fires
/// at `next_attempt_at`, give or take clock granularity.
const DUE_SLACK: chrono::Duration = chrono::Duration::seconds(1);

/// IN_FLIGHT and its worker stopped beating: the lease ran out before `now`, or (claimed
/// by a version without leases) the delivery was not updated since `stale`.
fn abandoned(now: DateTime<Utc>, stale: DateTime<Utc>) -> Condition {
    Condition::all().add(d::Column::State.eq(DeliveryState::InFlight.as_str())).add(
        Condition::any()
            .add(d::Column::LeaseUntil.lt(now))
            .add(Condition::all().add(d::Column::LeaseUntil.is_null()).add(d::Column::UpdatedAt.lt(stale))),
    )
}

/// States a delivery's successors in order wait for it to leave.
const UNFINISHED: [&str; 3] = ["PENDING", "IN_FLIGHT", "RETRYING"];

/// Deliveries and attempts in SQL.
#[derive(Clone)]
pub struct SqlDeliveryRepo {
    db: DatabaseConnection,
    /// `db` for statements a request runs (row-level security follows its tenant).
    conn: Conn,
    /// `create` batched on PostgreSQL.
    creates: Option<Arc<Batcher<(TenantId, NewDelivery), Delivery>>>,
    /// Workers' claims and outcomes batched on PostgreSQL (on `bookkeeping`): concurrent
    /// attempts share one statement each instead of one round trip per delivery.
    claims: Option<Arc<Batcher<ClaimItem, Option<d::Model>>>>,
    completions: Option<Arc<Batcher<CompleteItem, d::Model>>>,
    /// Where workers write their own bookkeeping (claims, attempts, outcomes): the
    /// connection of `crate::db::connect_bookkeeping`. A claim or outcome lost with a
    /// database crash only makes the delivery go out once more with its idempotency key.
    bookkeeping: DatabaseConnection,
}

impl SqlDeliveryRepo {
    /// Everything on `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self::with_pools(db.clone(), db.clone(), db)
    }

    /// Reads on `db`; batched creates on `keyed` (`crate::db::connect_keyed`), deliveries a
    /// change writes with it on the change's own transaction; workers' claims, attempts and
    /// outcomes on `bookkeeping`.
    pub fn with_pools(db: DatabaseConnection, keyed: DatabaseConnection, bookkeeping: DatabaseConnection) -> Self {
        let creates = (keyed.get_database_backend() == DbBackend::Postgres).then(|| {
            let db = keyed.clone();
            Arc::new(Batcher::new(
                64,
                4,
                Arc::new(move |items| {
                    let db = db.clone();
                    Box::pin(async move { create_many(&db, items).await }) as futures::future::BoxFuture<'static, _>
                }),
            ))
        });
        let pg = bookkeeping.get_database_backend() == DbBackend::Postgres;
        let claims = pg.then(|| {
            let db = bookkeeping.clone();
            Arc::new(Batcher::new(
                64,
                2,
                Arc::new(move |items| {
                    let db = db.clone();
                    Box::pin(async move { claim_many(&db, items).await }) as futures::future::BoxFuture<'static, _>
                }),
            ))
        });
        let completions = pg.then(|| {
            let db = bookkeeping.clone();
            Arc::new(Batcher::new(
                64,
                2,
                Arc::new(move |items| {
                    let db = db.clone();
                    Box::pin(async move { complete_many(&db, items).await }) as futures::future::BoxFuture<'static, _>
                }),
            ))
        });
        Self { conn: db.clone().into(), db, creates, claims, completions, bookkeeping }
    }
}

/// A claim to write: the delivery, now, the lease's end, and before when an IN_FLIGHT
/// delivery without a lease counts as abandoned.
type ClaimItem = (DeliveryId, DateTime<Utc>, DateTime<Utc>, DateTime<Utc>);

/// The ids a batched statement finds its rows by, as one parameter
/// (`= ANY(string_to_array($n, ',')::uuid[])`). Joined to the batch's VALUES alone, the
/// rows were found by whatever the planner's statistics suggested: on a table that grew
/// faster than it was analysed (the first thousands of deliveries) a scan of every
/// PENDING, RETRYING and IN_FLIGHT row through the state index, or of the whole table, for
/// each batch; the ids make it probe the primary key.
fn ids_of(ids: impl Iterator<Item = uuid::Uuid>) -> sea_orm::Value {
    ids.map(|u| u.to_string()).collect::<Vec<_>>().join(",").into()
}

/// One UPDATE for a batch of claims, each with `claim`'s condition (PENDING; RETRYING and
/// due; IN_FLIGHT and abandoned): the claimed rows come back, the others are taken. A
/// delivery twice in one batch is claimed by its first item only.
///
/// The batch is one JSON parameter (`jsonb_to_recordset`): one statement text for every
/// batch size, prepared once per connection. A `VALUES` list of four parameters a claim
/// made a statement per size, 64 of them beside the outcomes' 64, more than a
/// connection's statement cache holds (100): most batches were parsed again.
async fn claim_many(
    db: &DatabaseConnection,
    items: Vec<ClaimItem>,
) -> DomainResult<Vec<DomainResult<Option<d::Model>>>> {
    let batch: Vec<serde_json::Value> = items
        .iter()
        .map(|(id, now, lease, stale)| serde_json::json!({"id": id.as_uuid(), "now": now, "lease": lease, "stale": stale}))
        .collect();
    let values: Vec<sea_orm::Value> = vec![
        DeliveryState::InFlight.as_str().into(),
        DeliveryState::Pending.as_str().into(),
        DeliveryState::Retrying.as_str().into(),
        DUE_SLACK.num_seconds().into(),
        serde_json::Value::Array(batch).to_string().into(),
        // The rows are found by their ids (`ids_of`), the states checked on them.
        ids_of(items.iter().map(|(id, ..)| id.as_uuid())),
    ];
    let sql = "UPDATE deliveries AS d SET state = $1, attempts = d.attempts + 1, updated_at = v.now, \
         lease_until = v.lease, first_attempt_at = COALESCE(d.first_attempt_at, v.now) \
         FROM jsonb_to_recordset($5::jsonb) AS v (id uuid, now timestamptz, lease timestamptz, stale timestamptz) \
         WHERE d.id = v.id AND d.id = ANY(string_to_array($6, ',')::uuid[]) AND (d.state = $2 \
           OR (d.state = $3 AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= v.now + make_interval(secs => $4))) \
           OR (d.state = $1 AND (d.lease_until < v.now OR (d.lease_until IS NULL AND d.updated_at < v.stale)))) IS TRUE \
         RETURNING d.*";
    let claimed = d::Model::find_by_statement(Statement::from_sql_and_values(DbBackend::Postgres, sql, values))
        .all(db)
        .await
        .map_err(unknown)?;
    let mut by_id: HashMap<uuid::Uuid, d::Model> = claimed.into_iter().map(|m| (m.id, m)).collect();
    // A delivery twice in the batch: the row comes back once, for its first item.
    Ok(items.iter().map(|(id, ..)| Ok(by_id.remove(&id.as_uuid()))).collect())
}

/// An attempt and the state it leads to.
type CompleteItem = (TenantId, Attempt, DeliveryState, Option<DateTime<Utc>>, Option<String>);

/// One statement for a batch of outcomes: the attempts inserted, their deliveries updated
/// (as `complete` writes one).
async fn complete_many(db: &DatabaseConnection, items: Vec<CompleteItem>) -> DomainResult<Vec<DomainResult<d::Model>>> {
    let now = Utc::now();
    // One JSON parameter for the batch, as `claim_many`.
    let batch: Vec<serde_json::Value> = items
        .iter()
        .map(|(tenant, at, state, next_attempt_at, last_error)| {
            serde_json::json!({
                "aid": at.id.as_uuid(),
                "tenant_id": tenant.as_uuid(),
                "delivery_id": at.delivery_id.as_uuid(),
                "number": at.number,
                "at": at.at,
                "request": at.request,
                "http_status": at.http_status,
                "vendor_code": at.vendor_code,
                "vendor_message": at.vendor_message,
                "latency_ms": at.latency_ms,
                "error": at.error,
                "outcome": at.outcome,
                "attempt_next": at.next_attempt_at,
                "state": state.as_str(),
                "next_attempt_at": next_attempt_at,
                "last_error": last_error,
                "updated_at": now,
            })
        })
        .collect();
    let values: Vec<sea_orm::Value> = vec![
        serde_json::Value::Array(batch).to_string().into(),
        ids_of(items.iter().map(|(_, at, ..)| at.delivery_id.as_uuid())),
    ];
    let sql = "WITH v AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS v (aid uuid, tenant_id uuid, delivery_id uuid, \
         number int4, at timestamptz, request text, http_status int4, vendor_code text, vendor_message text, \
         latency_ms int8, error text, outcome text, attempt_next timestamptz, state text, next_attempt_at timestamptz, \
         last_error text, updated_at timestamptz)), \
         attempt AS (INSERT INTO delivery_attempts (id, tenant_id, delivery_id, number, at, request, http_status, \
         vendor_code, vendor_message, latency_ms, error, outcome, next_attempt_at) \
         SELECT aid, tenant_id, delivery_id, number, at, request, http_status, vendor_code, vendor_message, \
         latency_ms, error, outcome, attempt_next FROM v) \
         UPDATE deliveries AS d SET state = v.state, next_attempt_at = v.next_attempt_at, last_error = v.last_error, \
         updated_at = v.updated_at, attempts = v.number FROM v \
         WHERE d.id = v.delivery_id AND d.id = ANY(string_to_array($2, ',')::uuid[]) RETURNING d.*";
    let done = d::Model::find_by_statement(Statement::from_sql_and_values(DbBackend::Postgres, sql, values))
        .all(db)
        .await
        .map_err(unknown)?;
    let by_id: HashMap<uuid::Uuid, d::Model> = done.into_iter().map(|m| (m.id, m)).collect();
    Ok(items
        .iter()
        .map(|(_, at, ..)| by_id.get(&at.delivery_id.as_uuid()).cloned().ok_or(DomainError::NotFound("delivery")))
        .collect())
}

/// Stores an attempt.
async fn insert_attempt(c: &impl ConnectionTrait, tenant: TenantId, at: Attempt) -> DomainResult<()> {
    a::ActiveModel {
        id: Set(at.id.as_uuid()),
        tenant_id: Set(tenant.as_uuid()),
        delivery_id: Set(at.delivery_id.as_uuid()),
        number: Set(at.number),
        at: Set(at.at),
        request: Set(at.request),
        http_status: Set(at.http_status),
        vendor_code: Set(at.vendor_code),
        vendor_message: Set(at.vendor_message),
        latency_ms: Set(at.latency_ms),
        error: Set(at.error),
        outcome: Set(at.outcome),
        next_attempt_at: Set(at.next_attempt_at),
    }
    .insert(c)
    .await
    .map_err(unknown)?;
    Ok(())
}

/// Sets a delivery's state (and its attempts count when given).
async fn set_state(
    c: &impl ConnectionTrait,
    id: DeliveryId,
    state: DeliveryState,
    next_attempt_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    attempts: Option<i32>,
) -> DomainResult<Delivery> {
    let mut q = d::Entity::update_many()
        .col_expr(d::Column::State, Expr::value(state.as_str()))
        .col_expr(d::Column::NextAttemptAt, Expr::value(next_attempt_at))
        .col_expr(d::Column::LastError, Expr::value(last_error))
        .col_expr(d::Column::UpdatedAt, Expr::value(Utc::now()));
    if let Some(n) = attempts {
        q = q.col_expr(d::Column::Attempts, Expr::value(n));
    }
    if state == DeliveryState::Pending {
        // Retried by hand: a new retry window.
        q = q.col_expr(d::Column::FirstAttemptAt, Expr::value(Option::<DateTime<Utc>>::None));
    }
    let rows = q.filter(d::Column::Id.eq(id.as_uuid())).exec_with_returning(c).await.map_err(unknown)?;
    rows.into_iter().next().map(to_domain).transpose()?.ok_or(DomainError::NotFound("delivery"))
}

fn scoped(tenant: TenantId) -> Select<d::Entity> {
    d::Entity::find().filter(d::Column::TenantId.eq(tenant.as_uuid()))
}

fn to_domain(m: d::Model) -> DomainResult<Delivery> {
    Ok(Delivery {
        id: DeliveryId::from_uuid(m.id),
        tenant_id: TenantId::from_uuid(m.tenant_id),
        integration_id: IntegrationId::from_uuid(m.integration_id),
        kind: DeliveryKind::parse(&m.kind)
            .map_err(|e| DomainError::Unknown(anyhow::anyhow!("stored delivery: {e}")))?,
        idempotency_key: m.idempotency_key,
        order_key: m.order_key,
        payload: m.payload,
        state: DeliveryState::parse(&m.state)
            .map_err(|e| DomainError::Unknown(anyhow::anyhow!("stored delivery: {e}")))?,
        attempts: m.attempts,
        next_attempt_at: m.next_attempt_at,
        last_error: m.last_error,
        created_at: m.created_at,
        updated_at: m.updated_at,
        subject: m.subject,
        result: m.result.as_deref().and_then(|r| serde_json::from_str(r).ok()),
        first_attempt_at: m.first_attempt_at,
    })
}

fn attempt(m: a::Model) -> Attempt {
    Attempt {
        id: EntryId::from_uuid(m.id),
        delivery_id: DeliveryId::from_uuid(m.delivery_id),
        number: m.number,
        at: m.at,
        request: m.request,
        http_status: m.http_status,
        vendor_code: m.vendor_code,
        vendor_message: m.vendor_message,
        latency_ms: m.latency_ms,
        error: m.error,
        outcome: m.outcome,
        next_attempt_at: m.next_attempt_at,
    }
}

impl SqlDeliveryRepo {
    /// A claimed delivery whose order key has unfinished predecessors is given back
    /// (`Waiting`); else it is the worker's.
    async fn in_turn(&self, delivery: Delivery) -> DomainResult<Claim> {
        if let Some(key) = &delivery.order_key {
            let earlier = d::Entity::find()
                .filter(d::Column::IntegrationId.eq(delivery.integration_id.as_uuid()))
                .filter(d::Column::OrderKey.eq(key.as_str()))
                .filter(d::Column::Id.lt(delivery.id.as_uuid()))
                .filter(d::Column::State.is_in(UNFINISHED))
                .count(&self.bookkeeping)
                .await
                .map_err(unknown)?;
            if earlier > 0 {
                // Not its turn: give the claim back as it was.
                let before = delivery.attempts - 1;
                let state = if before == 0 { DeliveryState::Pending } else { DeliveryState::Retrying };
                d::Entity::update_many()
                    .col_expr(d::Column::State, Expr::value(state.as_str()))
                    .col_expr(d::Column::Attempts, Expr::value(before))
                    .filter(d::Column::Id.eq(delivery.id.as_uuid()))
                    .filter(d::Column::State.eq(DeliveryState::InFlight.as_str()))
                    .exec(&self.bookkeeping)
                    .await
                    .map_err(unknown)?;
                return Ok(Claim::Waiting);
            }
        }
        Ok(Claim::Claimed(Box::new(delivery)))
    }
}

#[async_trait]
impl DeliveryRepo for SqlDeliveryRepo {
    async fn create(&self, tenant: TenantId, input: NewDelivery) -> DomainResult<Delivery> {
        if let Some(b) = &self.creates {
            return b.submit((tenant, input)).await;
        }
        insert_outbox(&self.db, tenant, vec![input])
            .await?
            .pop()
            .ok_or_else(|| DomainError::Unknown(anyhow::anyhow!("a delivery insert returned nothing")))
    }

    async fn get(&self, tenant: TenantId, id: DeliveryId) -> DomainResult<Option<Delivery>> {
        scoped(tenant)
            .filter(d::Column::Id.eq(id.as_uuid()))
            .one(&self.conn)
            .await
            .map_err(unknown)?
            .map(to_domain)
            .transpose()
    }

    async fn get_any(&self, id: DeliveryId) -> DomainResult<Option<Delivery>> {
        d::Entity::find_by_id(id.as_uuid()).one(&self.conn).await.map_err(unknown)?.map(to_domain).transpose()
    }

    async fn claim(
        &self,
        id: DeliveryId,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        stale: DateTime<Utc>,
    ) -> DomainResult<Claim> {
        if let Some(b) = &self.claims {
            let Some(row) = b.submit((id, now, lease_until, stale)).await? else { return Ok(Claim::Taken) };
            return self.in_turn(to_domain(row)?).await;
        }
        // One round trip: claimable (PENDING, RETRYING and due, or IN_FLIGHT whose worker
        // stopped beating) becomes IN_FLIGHT with the attempt counted and a fresh lease,
        // or nothing changes.
        let claimable = Condition::any()
            .add(d::Column::State.eq(DeliveryState::Pending.as_str()))
            .add(
                Condition::all().add(d::Column::State.eq(DeliveryState::Retrying.as_str())).add(
                    Condition::any()
                        .add(d::Column::NextAttemptAt.is_null())
                        .add(d::Column::NextAttemptAt.lte(now + DUE_SLACK)),
                ),
            )
            .add(abandoned(now, stale));
        let claimed = d::Entity::update_many()
            .col_expr(d::Column::State, Expr::value(DeliveryState::InFlight.as_str()))
            .col_expr(d::Column::Attempts, Expr::col(d::Column::Attempts).add(1))
            .col_expr(d::Column::UpdatedAt, Expr::value(now))
            .col_expr(d::Column::LeaseUntil, Expr::value(Some(lease_until)))
            .col_expr(
                d::Column::FirstAttemptAt,
                sea_orm::sea_query::Func::coalesce([Expr::col(d::Column::FirstAttemptAt), Expr::value(now)]).into(),
            )
            .filter(d::Column::Id.eq(id.as_uuid()))
            .filter(claimable)
            .exec_with_returning(&self.bookkeeping)
            .await
            .map_err(unknown)?;
        let Some(row) = claimed.into_iter().next() else { return Ok(Claim::Taken) };
        self.in_turn(to_domain(row)?).await
    }

    async fn release(&self, id: DeliveryId, at: DateTime<Utc>) -> DomainResult<()> {
        d::Entity::update_many()
            .col_expr(d::Column::State, Expr::value(DeliveryState::Retrying.as_str()))
            .col_expr(d::Column::Attempts, Expr::col(d::Column::Attempts).sub(1))
            .col_expr(d::Column::NextAttemptAt, Expr::value(Some(at)))
            .col_expr(d::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(d::Column::Id.eq(id.as_uuid()))
            .filter(d::Column::State.eq(DeliveryState::InFlight.as_str()))
            .exec(&self.bookkeeping)
            .await
            .map_err(unknown)?;
        Ok(())
    }

    async fn renew(&self, ids: &[DeliveryId], until: DateTime<Utc>) -> DomainResult<u64> {
        let mut renewed = 0;
        for chunk in ids.chunks(500) {
            let done = d::Entity::update_many()
                .col_expr(d::Column::LeaseUntil, Expr::value(Some(until)))
                .filter(d::Column::Id.is_in(chunk.iter().map(|id| id.as_uuid())))
                .filter(d::Column::State.eq(DeliveryState::InFlight.as_str()))
                .exec(&self.bookkeeping)
                .await
                .map_err(unknown)?;
            renewed += done.rows_affected;
        }
        Ok(renewed)
    }

    async fn requeue_abandoned(
        &self,
        now: DateTime<Utc>,
        stale: DateTime<Utc>,
        limit: u64,
    ) -> DomainResult<Vec<DeliveryId>> {
        // The candidates, then a compare-and-set on each batch: a delivery another
        // process took back (or whose worker beat) meanwhile no longer matches.
        let candidates: Vec<uuid::Uuid> = d::Entity::find()
            .select_only()
            .column(d::Column::Id)
            .filter(abandoned(now, stale))
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(unknown)?;
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let taken = d::Entity::update_many()
            .col_expr(d::Column::State, Expr::value(DeliveryState::Retrying.as_str()))
            .col_expr(d::Column::NextAttemptAt, Expr::value(Some(now)))
            .col_expr(d::Column::LeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
            .col_expr(d::Column::LastError, Expr::value("the attempt was interrupted: its worker stopped"))
            .col_expr(d::Column::UpdatedAt, Expr::value(now))
            .filter(d::Column::Id.is_in(candidates))
            .filter(abandoned(now, stale))
            .exec_with_returning(&self.bookkeeping)
            .await
            .map_err(unknown)?;
        Ok(taken.into_iter().map(|m| DeliveryId::from_uuid(m.id)).collect())
    }

    async fn next_in_order(&self, after: &Delivery) -> DomainResult<Option<DeliveryId>> {
        let Some(key) = &after.order_key else { return Ok(None) };
        let next: Option<uuid::Uuid> = d::Entity::find()
            .select_only()
            .column(d::Column::Id)
            .filter(d::Column::IntegrationId.eq(after.integration_id.as_uuid()))
            .filter(d::Column::OrderKey.eq(key.as_str()))
            .filter(d::Column::Id.gt(after.id.as_uuid()))
            .filter(d::Column::State.is_in(UNFINISHED))
            .order_by_asc(d::Column::Id)
            .into_tuple()
            .one(&self.conn)
            .await
            .map_err(unknown)?;
        Ok(next.map(DeliveryId::from_uuid))
    }

    async fn depth(&self) -> DomainResult<Vec<(DeliveryState, u64)>> {
        let rows: Vec<(String, i64)> = d::Entity::find()
            .select_only()
            .column(d::Column::State)
            .column_as(d::Column::Id.count(), "n")
            .filter(d::Column::State.is_in(UNFINISHED))
            .group_by(d::Column::State)
            .into_tuple()
            .all(&self.conn)
            .await
            .map_err(unknown)?;
        let mut out = Vec::new();
        for (state, n) in rows {
            let state = DeliveryState::parse(&state)
                .map_err(|e| DomainError::Unknown(anyhow::anyhow!("stored delivery: {e}")))?;
            out.push((state, u64::try_from(n).unwrap_or_default()));
        }
        Ok(out)
    }

    async fn record_attempt(&self, tenant: TenantId, at: Attempt) -> DomainResult<()> {
        insert_attempt(&self.bookkeeping, tenant, at).await
    }

    async fn complete(
        &self,
        tenant: TenantId,
        at: Attempt,
        state: DeliveryState,
        next_attempt_at: Option<DateTime<Utc>>,
        last_error: Option<String>,
    ) -> DomainResult<Delivery> {
        if let Some(b) = &self.completions {
            return to_domain(b.submit((tenant, at, state, next_attempt_at, last_error)).await?);
        }
        let (id, number) = (at.delivery_id, at.number);
        if self.bookkeeping.get_database_backend() != DbBackend::Postgres {
            // One transaction: an attempt is never stored without the state it led to (a
            // failed update, seen on a busy SQLite file, left SUCCEEDED attempts on
            // deliveries still IN_FLIGHT).
            let tx = self.bookkeeping.begin().await.map_err(unknown)?;
            insert_attempt(&tx, tenant, at).await?;
            let d = set_state(&tx, id, state, next_attempt_at, last_error, Some(number)).await?;
            tx.commit().await.map_err(unknown)?;
            return Ok(d);
        }
        // PostgreSQL: one statement, the attempt's insert as a data-modifying CTE.
        let sql = "WITH attempt AS (INSERT INTO delivery_attempts (id, tenant_id, delivery_id, number, at, \
                   request, http_status, vendor_code, vendor_message, latency_ms, error, outcome, next_attempt_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $17)) \
                   UPDATE deliveries SET state = $13, next_attempt_at = $14, last_error = $15, updated_at = $16, \
                   attempts = $4 WHERE id = $3 RETURNING *";
        let values: Vec<sea_orm::Value> = vec![
            at.id.as_uuid().into(),
            tenant.as_uuid().into(),
            id.as_uuid().into(),
            number.into(),
            at.at.into(),
            at.request.into(),
            at.http_status.into(),
            at.vendor_code.into(),
            at.vendor_message.into(),
            at.latency_ms.into(),
            at.error.into(),
            at.outcome.into(),
            state.as_str().into(),
            next_attempt_at.into(),
            last_error.into(),
            Utc::now().into(),
            at.next_attempt_at.into(),
        ];
        d::Model::find_by_statement(Statement::from_sql_and_values(DbBackend::Postgres, sql, values))
            .one(&self.bookkeeping)
            .await
            .map_err(unknown)?
            .map(to_domain)
            .transpose()?
            .ok_or(DomainError::NotFound("delivery"))
    }

    async fn finish(
        &self,
        id: DeliveryId,
        state: DeliveryState,
        next_attempt_at: Option<DateTime<Utc>>,
        last_error: Option<String>,
        attempts: Option<i32>,
    ) -> DomainResult<Delivery> {
        set_state(&self.bookkeeping, id, state, next_attempt_at, last_error, attempts).await
    }

    async fn list(&self, tenant: TenantId, f: &DeliveryFilter, page: PageRequest) -> DomainResult<Page<Delivery>> {
        let mut q = scoped(tenant);
        if let Some(s) = f.state {
            q = q.filter(d::Column::State.eq(s.as_str()));
        }
        if let Some(i) = f.integration_id {
            q = q.filter(d::Column::IntegrationId.eq(i.as_uuid()));
        }
        if let Some(k) = &f.kind {
            q = q.filter(d::Column::Kind.eq(k.as_str()));
        }
        if let Some(s) = &f.subject {
            q = q.filter(d::Column::Subject.eq(s.as_str()));
        }
        if let Some(from) = f.from {
            q = q.filter(d::Column::CreatedAt.gte(from));
        }
        if let Some(to) = f.to {
            q = q.filter(d::Column::CreatedAt.lt(to));
        }
        let page = fetch_page_ordered(&self.conn, q, d::Column::Id, page, Order::NewestFirst).await.map_err(unknown)?;
        try_map(page, to_domain)
    }

    async fn count_window(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> DomainResult<u64> {
        scoped(tenant)
            .filter(d::Column::IntegrationId.eq(integration.as_uuid()))
            .filter(d::Column::CreatedAt.gte(since))
            .filter(d::Column::CreatedAt.lt(until))
            .count(&self.db)
            .await
            .map_err(unknown)
    }

    async fn requeue_window(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> DomainResult<Vec<DeliveryId>> {
        let finished = [DeliveryState::Succeeded, DeliveryState::Retrying, DeliveryState::Dead].map(|s| s.as_str());
        let mut rows = d::Entity::update_many()
            .col_expr(d::Column::State, Expr::value(DeliveryState::Pending.as_str()))
            .col_expr(d::Column::NextAttemptAt, Expr::value(Option::<DateTime<Utc>>::None))
            .col_expr(d::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(d::Column::TenantId.eq(tenant.as_uuid()))
            .filter(d::Column::IntegrationId.eq(integration.as_uuid()))
            .filter(d::Column::CreatedAt.gte(since))
            .filter(d::Column::CreatedAt.lt(until))
            .filter(d::Column::State.is_in(finished))
            .exec_with_returning(&self.db)
            .await
            .map_err(unknown)?;
        rows.sort_by_key(|m| (m.created_at, m.id));
        Ok(rows.into_iter().map(|m| DeliveryId::from_uuid(m.id)).collect())
    }

    async fn set_result(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        idempotency_key: &str,
        result: &serde_json::Value,
    ) -> DomainResult<Option<Delivery>> {
        let found = scoped(tenant)
            .filter(d::Column::IntegrationId.eq(integration.as_uuid()))
            .filter(d::Column::IdempotencyKey.eq(idempotency_key))
            .one(&self.conn)
            .await
            .map_err(unknown)?;
        let Some(row) = found else { return Ok(None) };
        d::Entity::update_many()
            .col_expr(d::Column::Result, sea_orm::sea_query::Expr::value(result.to_string()))
            .col_expr(d::Column::UpdatedAt, sea_orm::sea_query::Expr::value(Utc::now()))
            .filter(d::Column::Id.eq(row.id))
            .exec(&self.conn)
            .await
            .map_err(unknown)?;
        let mut delivery = to_domain(row)?;
        delivery.result = Some(result.clone());
        Ok(Some(delivery))
    }

    async fn attempts(&self, tenant: TenantId, id: DeliveryId) -> DomainResult<Vec<Attempt>> {
        let rows = a::Entity::find()
            .filter(a::Column::TenantId.eq(tenant.as_uuid()))
            .filter(a::Column::DeliveryId.eq(id.as_uuid()))
            .order_by_asc(a::Column::Number)
            .order_by_asc(a::Column::Id)
            .all(&self.conn)
            .await
            .map_err(unknown)?;
        Ok(rows.into_iter().map(attempt).collect())
    }

    async fn attempts_of(&self, tenant: TenantId, ids: &[DeliveryId]) -> DomainResult<Vec<Attempt>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let rows = a::Entity::find()
            .filter(a::Column::TenantId.eq(tenant.as_uuid()))
            .filter(a::Column::DeliveryId.is_in(ids.iter().map(|i| i.as_uuid())))
            .order_by_asc(a::Column::Number)
            .order_by_asc(a::Column::Id)
            .all(&self.db)
            .await
            .map_err(unknown)?;
        Ok(rows.into_iter().map(attempt).collect())
    }

    async fn due(&self, now: DateTime<Utc>, stale: DateTime<Utc>, limit: u64) -> DomainResult<Vec<DeliveryId>> {
        let cond = Condition::any()
            .add(
                Condition::all()
                    .add(d::Column::State.eq(DeliveryState::Retrying.as_str()))
                    .add(d::Column::NextAttemptAt.lte(now)),
            )
            .add(
                Condition::all()
                    .add(d::Column::State.eq(DeliveryState::Pending.as_str()))
                    .add(d::Column::UpdatedAt.lt(stale)),
            )
            .add(abandoned(now, stale));
        let ids: Vec<uuid::Uuid> = d::Entity::find()
            .select_only()
            .column(d::Column::Id)
            .filter(cond)
            .limit(limit)
            .into_tuple()
            .all(&self.conn)
            .await
            .map_err(unknown)?;
        Ok(ids.into_iter().map(DeliveryId::from_uuid).collect())
    }
}
