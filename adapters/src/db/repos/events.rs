use crate::db::batch::Batcher;
use crate::db::entities::inbound_events as ev;
use crate::db::page::{Order, fetch_page_ordered, try_map};
use crate::db::{Conn, inserted, unknown};
use async_trait::async_trait;
use domain::events::{EventFilter, EventState, InboundEvent, InboundEventRepo, NewInboundEvent, Recorded};
use domain::ids::{InboundEventId, IntegrationId, TenantId};
use domain::{DomainError, DomainResult, Page, PageRequest};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, Select, Set,
    Statement,
};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Raw inbound events in SQL. On PostgreSQL, concurrent `record`s and `finish`es are
/// written in batches (`crate::db::batch`): a callback burst costs a fraction of a round
/// trip and of a commit per event, and each call still returns once its row is committed.
#[derive(Clone)]
pub struct SqlInboundEventRepo {
    db: DatabaseConnection,
    /// `db` for statements a request runs (row-level security follows its tenant).
    conn: Conn,
    batched: Option<Arc<Batched>>,
}

type FinishItem = (TenantId, InboundEventId, EventState, Option<String>);

struct Batched {
    record: Batcher<(TenantId, NewInboundEvent), Recorded>,
    finish: Batcher<FinishItem, ()>,
}

/// Events per statement, and statements in flight at once, per kind of write.
const BATCH: usize = 64;
const PARALLEL: usize = 2;

impl SqlInboundEventRepo {
    pub fn new(db: DatabaseConnection) -> Self {
        let batched = (db.get_database_backend() == DbBackend::Postgres).then(|| {
            let (a, b) = (db.clone(), db.clone());
            Arc::new(Batched {
                record: Batcher::new(
                    BATCH,
                    PARALLEL,
                    Arc::new(move |items| {
                        let db = a.clone();
                        Box::pin(async move { record_many(&db, items).await })
                    }),
                ),
                finish: Batcher::new(
                    BATCH,
                    PARALLEL,
                    Arc::new(move |items| {
                        let db = b.clone();
                        Box::pin(async move { finish_many(&db, items).await })
                    }),
                ),
            })
        });
        Self { conn: db.clone().into(), db, batched }
    }
}

fn new_row(tenant: TenantId, input: NewInboundEvent) -> ev::ActiveModel {
    ev::ActiveModel {
        id: Set(InboundEventId::new().as_uuid()),
        tenant_id: Set(tenant.as_uuid()),
        integration_id: Set(input.integration_id.as_uuid()),
        protocol: Set(input.protocol),
        kind: Set(input.kind),
        dedup_key: Set(input.dedup_key),
        headers: Set(input.headers),
        body: Set(input.body),
        received_at: Set(input.received_at),
        state: Set(EventState::Received.as_str().to_owned()),
        error: Set(None),
        processed_at: Set(None),
        answer: Set(None),
    }
}

/// One insert for a batch; an event whose key is taken (stored before, or earlier in the
/// same batch) is answered with the stored one as a duplicate.
async fn record_many(
    db: &DatabaseConnection,
    items: Vec<(TenantId, NewInboundEvent)>,
) -> DomainResult<Vec<DomainResult<Recorded>>> {
    let keys: Vec<(TenantId, IntegrationId, String)> =
        items.iter().map(|(t, i)| (*t, i.integration_id, i.dedup_key.clone())).collect();
    let rows = items.into_iter().map(|(t, i)| new_row(t, i));
    let inserted = inserted(
        ev::Entity::insert_many(rows)
            .on_conflict_do_nothing_on([ev::Column::IntegrationId, ev::Column::DedupKey])
            .exec_with_returning_many(db)
            .await,
    )?;
    let mut fresh: HashMap<(uuid::Uuid, String), ev::Model> =
        inserted.into_iter().map(|m| ((m.integration_id, m.dedup_key.clone()), m)).collect();
    let missing: Vec<&(TenantId, IntegrationId, String)> =
        keys.iter().filter(|(_, i, k)| !fresh.contains_key(&(i.as_uuid(), k.clone()))).collect();
    let mut stored: HashMap<(uuid::Uuid, String), ev::Model> = HashMap::new();
    // The stored events of the keys taken: one query per integration among them (a batch
    // is mostly one), on the unique (integration, dedup key) index.
    let mut by_integration: HashMap<(TenantId, IntegrationId), Vec<String>> = HashMap::new();
    for (t, i, k) in missing {
        by_integration.entry((*t, *i)).or_default().push(k.clone());
    }
    for ((t, i), keys) in by_integration {
        let found = if db.get_database_backend() == DbBackend::Postgres {
            // One probe of the unique index per key, whatever the planner's statistics say:
            // on a table that grew faster than it was analysed (a fresh database's first
            // burst) `dedup_key = ANY(...)` beside the tenant and integration was planned as
            // a scan of the integration's every row (30-90 ms a lookup in the callback bench).
            ev::Entity::find()
                .from_raw_sql(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT e.* FROM unnest($3::text[]) AS k (dedup_key) CROSS JOIN LATERAL \
                     (SELECT * FROM inbound_events WHERE integration_id = $2 AND dedup_key = k.dedup_key \
                     AND tenant_id = $1 LIMIT 1) AS e",
                    [t.as_uuid().into(), i.as_uuid().into(), crate::db::text_array_literal(keys).into()],
                ))
                .all(db)
                .await
        } else {
            ev::Entity::find()
                .filter(ev::Column::TenantId.eq(t.as_uuid()))
                .filter(ev::Column::IntegrationId.eq(i.as_uuid()))
                .filter(ev::Column::DedupKey.is_in(keys))
                .all(db)
                .await
        }
        .map_err(unknown)?;
        for m in found {
            stored.insert((m.integration_id, m.dedup_key.clone()), m);
        }
    }
    Ok(keys
        .into_iter()
        .map(|(_, i, k)| {
            let key = (i.as_uuid(), k);
            if let Some(m) = fresh.remove(&key) {
                // The first of the batch with this key inserted it; later ones are repeats.
                stored.insert(key, m.clone());
                return Ok(Recorded { event: to_domain(m)?, duplicate: false });
            }
            let m = stored.get(&key).cloned().ok_or(DomainError::NotFound("inbound event"))?;
            Ok(Recorded { event: to_domain(m)?, duplicate: true })
        })
        .collect())
}

/// One update for a batch of outcomes.
async fn finish_many(db: &DatabaseConnection, items: Vec<FinishItem>) -> DomainResult<Vec<DomainResult<()>>> {
    let now = chrono::Utc::now();
    let mut values: Vec<sea_orm::Value> = vec![now.into()];
    let mut rows = Vec::with_capacity(items.len());
    for (t, id, state, error) in &items {
        let n = values.len();
        rows.push(format!("(${}::uuid, ${}::uuid, ${}::text, ${}::text)", n + 1, n + 2, n + 3, n + 4));
        values.extend([t.as_uuid().into(), id.as_uuid().into(), state.as_str().into(), error.clone().into()]);
    }
    let sql = format!(
        "UPDATE inbound_events AS e SET state = v.state, error = v.error, processed_at = $1 \
         FROM (VALUES {}) AS v (tenant_id, id, state, error) \
         WHERE e.id = v.id AND e.tenant_id = v.tenant_id RETURNING e.id",
        rows.join(", ")
    );
    let done: HashSet<uuid::Uuid> = db
        .query_all_raw(Statement::from_sql_and_values(DbBackend::Postgres, sql, values))
        .await
        .map_err(unknown)?
        .into_iter()
        .filter_map(|r| r.try_get::<uuid::Uuid>("", "id").ok())
        .collect();
    Ok(items
        .iter()
        .map(
            |(_, id, _, _)| {
                if done.contains(&id.as_uuid()) { Ok(()) } else { Err(DomainError::NotFound("inbound event")) }
            },
        )
        .collect())
}

fn scoped(tenant: TenantId) -> Select<ev::Entity> {
    ev::Entity::find().filter(ev::Column::TenantId.eq(tenant.as_uuid()))
}

fn to_domain(m: ev::Model) -> DomainResult<InboundEvent> {
    Ok(InboundEvent {
        id: InboundEventId::from_uuid(m.id),
        tenant_id: TenantId::from_uuid(m.tenant_id),
        integration_id: IntegrationId::from_uuid(m.integration_id),
        protocol: m.protocol,
        kind: m.kind,
        dedup_key: m.dedup_key,
        headers: m.headers,
        body: m.body,
        received_at: m.received_at,
        state: EventState::parse(&m.state).map_err(|e| DomainError::Unknown(anyhow::anyhow!("stored state: {e}")))?,
        error: m.error,
        processed_at: m.processed_at,
        answer: m.answer.as_deref().and_then(|a| serde_json::from_str(a).ok()),
    })
}

#[async_trait]
impl InboundEventRepo for SqlInboundEventRepo {
    async fn record(&self, tenant: TenantId, input: NewInboundEvent) -> DomainResult<Recorded> {
        if let Some(b) = &self.batched {
            return b.record.submit((tenant, input)).await;
        }
        // One round trip for a new event: the unique (integration, dedup key) index decides,
        // also when the vendor's retry races its first delivery.
        record_many(&self.db, vec![(tenant, input)])
            .await?
            .pop()
            .unwrap_or_else(|| Err(DomainError::Unknown(anyhow::anyhow!("an event insert answered nothing"))))
    }

    async fn keep_answer(&self, tenant: TenantId, id: InboundEventId, answer: &serde_json::Value) -> DomainResult<()> {
        ev::Entity::update_many()
            .col_expr(ev::Column::Answer, sea_orm::sea_query::Expr::value(answer.to_string()))
            .filter(ev::Column::TenantId.eq(tenant.as_uuid()))
            .filter(ev::Column::Id.eq(id.as_uuid()))
            .exec(&self.conn)
            .await
            .map_err(unknown)?;
        Ok(())
    }

    async fn finish(
        &self,
        tenant: TenantId,
        id: InboundEventId,
        state: EventState,
        error: Option<String>,
    ) -> DomainResult<()> {
        if let Some(b) = &self.batched {
            return b.finish.submit((tenant, id, state, error)).await;
        }
        let res = finish_update(tenant, id, state, error).exec(&self.conn).await.map_err(unknown)?;
        if res.rows_affected == 0 {
            return Err(DomainError::NotFound("inbound event"));
        }
        Ok(())
    }

    async fn claim_stale(
        &self,
        protocol: &str,
        before: chrono::DateTime<chrono::Utc>,
        limit: u64,
    ) -> DomainResult<Vec<InboundEvent>> {
        let unclaimed = || {
            Condition::all()
                .add(ev::Column::State.eq(EventState::Received.as_str()))
                .add(ev::Column::Protocol.eq(protocol))
                .add(ev::Column::ReceivedAt.lt(before))
                .add(Condition::any().add(ev::Column::ProcessedAt.is_null()).add(ev::Column::ProcessedAt.lt(before)))
        };
        let ids = sea_orm::sea_query::Query::select()
            .column(ev::Column::Id)
            .from(ev::Entity)
            .cond_where(unclaimed())
            .limit(limit)
            .to_owned();
        // The condition again in the update: a concurrent claimer's commit is seen there.
        let rows = ev::Entity::update_many()
            .col_expr(ev::Column::ProcessedAt, Expr::value(Some(chrono::Utc::now())))
            .filter(ev::Column::Id.in_subquery(ids))
            .filter(unclaimed())
            .exec_with_returning(&self.db)
            .await
            .map_err(unknown)?;
        rows.into_iter().map(to_domain).collect()
    }

    async fn get(&self, tenant: TenantId, id: InboundEventId) -> DomainResult<Option<InboundEvent>> {
        let row = scoped(tenant).filter(ev::Column::Id.eq(id.as_uuid())).one(&self.db).await.map_err(unknown)?;
        row.map(to_domain).transpose()
    }

    async fn reopen(&self, tenant: TenantId, id: InboundEventId, from: EventState) -> DomainResult<bool> {
        // The state in the condition: of two concurrent replays one reopens it.
        let res = ev::Entity::update_many()
            .col_expr(ev::Column::State, Expr::value(EventState::Received.as_str()))
            .col_expr(ev::Column::Error, Expr::value(Option::<String>::None))
            .col_expr(ev::Column::ProcessedAt, Expr::value(Some(chrono::Utc::now())))
            .filter(ev::Column::TenantId.eq(tenant.as_uuid()))
            .filter(ev::Column::Id.eq(id.as_uuid()))
            .filter(ev::Column::State.eq(from.as_str()))
            .exec(&self.db)
            .await
            .map_err(unknown)?;
        Ok(res.rows_affected == 1)
    }

    async fn list(&self, tenant: TenantId, f: &EventFilter, page: PageRequest) -> DomainResult<Page<InboundEvent>> {
        let mut q = scoped(tenant);
        if let Some(i) = f.integration_id {
            q = q.filter(ev::Column::IntegrationId.eq(i.as_uuid()));
        }
        if let Some(s) = f.state {
            q = q.filter(ev::Column::State.eq(s.as_str()));
        }
        if let Some(k) = &f.kind {
            q = q.filter(ev::Column::Kind.eq(k.as_str()));
        }
        if let Some(from) = f.from {
            q = q.filter(ev::Column::ReceivedAt.gte(from));
        }
        if let Some(to) = f.to {
            q = q.filter(ev::Column::ReceivedAt.lt(to));
        }
        let page =
            fetch_page_ordered(&self.conn, q, ev::Column::Id, page, Order::NewestFirst).await.map_err(unknown)?;
        try_map(page, to_domain)
    }
}

/// The update that moves one tenant's event to its final `state` with its note and the
/// time; the caller adds its own conditions and runs it on its connection.
pub(super) fn finish_update(
    tenant: TenantId,
    id: InboundEventId,
    state: EventState,
    note: Option<String>,
) -> sea_orm::UpdateMany<ev::Entity> {
    ev::Entity::update_many()
        .col_expr(ev::Column::State, Expr::value(state.as_str()))
        .col_expr(ev::Column::Error, Expr::value(note))
        .col_expr(ev::Column::ProcessedAt, Expr::value(Some(chrono::Utc::now())))
        .filter(ev::Column::TenantId.eq(tenant.as_uuid()))
        .filter(ev::Column::Id.eq(id.as_uuid()))
}
