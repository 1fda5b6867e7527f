use crate::db::entities::{devices as d, readings as r};
use crate::db::page::{fetch_page, try_map};
use crate::db::{Conn, map_err, unknown};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::devices::{
    Device, DeviceFilter, DeviceKind, DeviceRepo, DeviceStatus, NewReading, Observed, Reading, UpsertDevice,
};
use domain::ids::{DeviceId, HomeId, IntegrationId, ReadingId, RoomId, TenantId};
use domain::{DomainError, DomainResult, Page, PageRequest};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect, Select, Set, Statement,
};
use serde_json::{Map, Value, json};

/// Devices and readings in SQL.
#[derive(Clone)]
pub struct SqlDeviceRepo {
    db: Conn,
}

impl SqlDeviceRepo {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db: Conn::Pool(db) }
    }

    /// The same repository writing through a unit of work's transaction.
    pub(crate) fn within(db: Conn) -> Self {
        Self { db }
    }

    /// `record_readings` on PostgreSQL in one statement: the readings' insert as a CTE
    /// (nothing inserted for a device outside the tenant), and `latest` merged from the row
    /// as it is when updated, so concurrent reports of one device cannot lose each other.
    async fn record_readings_pg(
        &self,
        tenant: TenantId,
        id: DeviceId,
        readings: Vec<NewReading>,
    ) -> DomainResult<Device> {
        let mut values: Vec<sea_orm::Value> = vec![tenant.as_uuid().into(), id.as_uuid().into(), Utc::now().into()];
        let newest = readings.iter().map(|r| r.ts).max();
        values.push(newest.into());
        let mut rows = Vec::with_capacity(readings.len());
        for nr in readings {
            let n = values.len();
            rows.push(format!(
                "(${}::uuid, ${}, ${}::jsonb, ${}::jsonb, ${}::timestamptz)",
                n + 1,
                n + 2,
                n + 3,
                n + 4,
                n + 5
            ));
            let latest = json!({"value": nr.value, "ts": nr.ts.to_rfc3339()});
            values.extend([
                ReadingId::new().as_uuid().into(),
                nr.metric.into(),
                nr.value.into(),
                latest.into(),
                nr.ts.into(),
            ]);
        }
        let base = "(CASE WHEN jsonb_typeof(devices.latest) = 'object' THEN devices.latest ELSE '{}'::jsonb END)";
        let sql = format!(
            "WITH r (id, metric, value, latest, ts) AS (VALUES {rows}), \
             ins AS (INSERT INTO readings (id, tenant_id, device_id, metric, value, ts) \
               SELECT r.id, $1, $2, r.metric, r.value, r.ts FROM r \
               WHERE EXISTS (SELECT 1 FROM devices WHERE tenant_id = $1 AND id = $2)) \
             UPDATE devices SET latest = {base} || COALESCE((SELECT jsonb_object_agg(r.metric, r.latest ORDER BY r.ts) \
               FROM r WHERE {base} -> r.metric ->> 'ts' IS NULL \
               OR ({base} -> r.metric ->> 'ts')::timestamptz <= r.ts), '{{}}'::jsonb), \
             last_seen_at = GREATEST(last_seen_at, $4), updated_at = $3 \
             WHERE tenant_id = $1 AND id = $2 RETURNING *",
            rows = rows.join(", ")
        );
        d::Model::find_by_statement(Statement::from_sql_and_values(DbBackend::Postgres, sql, values))
            .one(&self.db)
            .await
            .map_err(unknown)?
            .map(to_domain)
            .transpose()?
            .ok_or(DomainError::NotFound("device"))
    }
}

impl SqlDeviceRepo {
    /// `observe_many` on PostgreSQL in two round trips whatever the count: the readings
    /// inserted in one statement and the rows updated in one, their new state computed
    /// from the devices as the caller read them (under the unit's lock: `find_by_externals`).
    async fn observe_many_pg(&self, tenant: TenantId, observed: Vec<Observed>) -> DomainResult<Vec<Device>> {
        let now = Utc::now();
        let mut written = Vec::with_capacity(observed.len());
        let mut readings = Vec::new();
        for o in observed {
            written.push(o.written(now));
            readings.extend(o.readings.into_iter().map(|nr| r::ActiveModel {
                id: Set(ReadingId::new().as_uuid()),
                tenant_id: Set(tenant.as_uuid()),
                device_id: Set(o.device.id.as_uuid()),
                metric: Set(nr.metric),
                value: Set(nr.value),
                ts: Set(nr.ts),
            }));
        }
        if !readings.is_empty() {
            r::Entity::insert_many(readings).exec(&self.db).await.map_err(unknown)?;
        }
        let mut values: Vec<sea_orm::Value> = vec![tenant.as_uuid().into()];
        let mut rows = Vec::with_capacity(written.len());
        for w in &written {
            let n = values.len();
            rows.push(format!(
                "(${}::uuid, ${}::jsonb, ${}::timestamptz, ${}::bool, ${}::timestamptz, ${}::int4, ${}::int4, ${}::timestamptz)",
                n + 1,
                n + 2,
                n + 3,
                n + 4,
                n + 5,
                n + 6,
                n + 7,
                n + 8
            ));
            values.extend([
                w.id.as_uuid().into(),
                w.latest.clone().into(),
                w.last_seen_at.into(),
                w.online.into(),
                w.online_changed_at.into(),
                w.battery.into(),
                w.signal.into(),
                w.updated_at.into(),
            ]);
        }
        let sql = format!(
            "UPDATE devices AS d SET latest = v.latest, last_seen_at = v.seen, online = v.online, \
             online_changed_at = v.changed, battery = v.battery, signal = v.signal, updated_at = v.updated \
             FROM (VALUES {}) AS v (id, latest, seen, online, changed, battery, signal, updated) \
             WHERE d.tenant_id = $1 AND d.id = v.id",
            rows.join(", ")
        );
        self.db.execute_raw(Statement::from_sql_and_values(DbBackend::Postgres, sql, values)).await.map_err(unknown)?;
        Ok(written)
    }
}

fn scoped(tenant: TenantId) -> Select<d::Entity> {
    d::Entity::find().filter(d::Column::TenantId.eq(tenant.as_uuid()))
}

fn search_text(name: &str, external_id: &str) -> String {
    let mut s = format!("{} {}", name.to_lowercase(), external_id.to_lowercase());
    s.truncate(s.char_indices().nth(400).map_or(s.len(), |(i, _)| i));
    s
}

fn to_domain(m: d::Model) -> DomainResult<Device> {
    Ok(Device {
        id: DeviceId::from_uuid(m.id),
        tenant_id: TenantId::from_uuid(m.tenant_id),
        integration_id: IntegrationId::from_uuid(m.integration_id),
        external_id: m.external_id,
        kind: DeviceKind::parse(&m.kind).map_err(|e| DomainError::Unknown(anyhow::anyhow!("stored kind: {e}")))?,
        name: m.name,
        home_id: m.home_id.map(HomeId::from_uuid),
        room_id: m.room_id.map(RoomId::from_uuid),
        online: m.online,
        online_changed_at: m.online_changed_at,
        battery: m.battery,
        signal: m.signal,
        last_seen_at: m.last_seen_at,
        attributes: m.attributes,
        latest: m.latest,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

fn is_unique_violation(e: &sea_orm::DbErr) -> bool {
    matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
}

#[async_trait]
impl DeviceRepo for SqlDeviceRepo {
    async fn upsert(&self, tenant: TenantId, input: UpsertDevice) -> DomainResult<(Device, bool)> {
        let now = Utc::now();
        let existing = scoped(tenant)
            .filter(d::Column::IntegrationId.eq(input.integration_id.as_uuid()))
            .filter(d::Column::ExternalId.eq(input.external_id.as_str()))
            .one(&self.db)
            .await
            .map_err(unknown)?;
        if let Some(row) = existing {
            let mut am: d::ActiveModel = row.into();
            am.kind = Set(input.kind.as_str().to_owned());
            am.search_text = Set(search_text(&input.name, input.external_id.as_str()));
            am.name = Set(input.name);
            am.home_id = Set(input.home_id.map(|h| h.as_uuid()));
            am.room_id = Set(input.room_id.map(|r| r.as_uuid()));
            am.attributes = Set(input.attributes);
            am.updated_at = Set(now);
            return Ok((to_domain(am.update(&self.db).await.map_err(unknown)?)?, false));
        }
        let row = d::ActiveModel {
            id: Set(DeviceId::new().as_uuid()),
            tenant_id: Set(tenant.as_uuid()),
            integration_id: Set(input.integration_id.as_uuid()),
            external_id: Set(input.external_id.as_str().to_owned()),
            kind: Set(input.kind.as_str().to_owned()),
            search_text: Set(search_text(&input.name, input.external_id.as_str())),
            name: Set(input.name.clone()),
            home_id: Set(input.home_id.map(|h| h.as_uuid())),
            room_id: Set(input.room_id.map(|r| r.as_uuid())),
            online: Set(None),
            online_changed_at: Set(None),
            battery: Set(None),
            signal: Set(None),
            last_seen_at: Set(None),
            attributes: Set(input.attributes.clone()),
            latest: Set(json!({})),
            created_at: Set(now),
            updated_at: Set(now),
        };
        // Inside a unit of work the insert gets a savepoint: a conflict must not abort the unit.
        let inserted = if self.db.in_unit() {
            let sp = self.db.begin_write().await.map_err(unknown)?;
            let r = row.insert(&sp).await;
            if r.is_ok() {
                sp.commit().await.map_err(unknown)?
            } else {
                sp.rollback().await.map_err(unknown)?
            }
            r
        } else {
            row.insert(&self.db).await
        };
        match inserted {
            Ok(m) => Ok((to_domain(m)?, true)),
            // Created concurrently by another request: update that one instead.
            Err(e) if is_unique_violation(&e) => Box::pin(self.upsert(tenant, input)).await,
            Err(e) => Err(map_err("device")(e)),
        }
    }

    async fn delete(&self, tenant: TenantId, id: DeviceId) -> DomainResult<()> {
        // Readings, the meter account (and its ledger), lock passwords and commands go by
        // their foreign keys' cascade (SQLite runs with foreign_keys on).
        let done = d::Entity::delete_many()
            .filter(d::Column::TenantId.eq(tenant.as_uuid()))
            .filter(d::Column::Id.eq(id.as_uuid()))
            .exec(&self.db)
            .await
            .map_err(unknown)?;
        if done.rows_affected == 0 { Err(DomainError::NotFound("device")) } else { Ok(()) }
    }

    async fn get(&self, tenant: TenantId, id: DeviceId) -> DomainResult<Option<Device>> {
        scoped(tenant)
            .filter(d::Column::Id.eq(id.as_uuid()))
            .one(&self.db)
            .await
            .map_err(unknown)?
            .map(to_domain)
            .transpose()
    }

    async fn get_many(&self, tenant: TenantId, ids: &[DeviceId]) -> DomainResult<Vec<Device>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let rows = scoped(tenant)
            .filter(d::Column::Id.is_in(ids.iter().map(|i| i.as_uuid())))
            .all(&self.db)
            .await
            .map_err(unknown)?;
        rows.into_iter().map(to_domain).collect()
    }

    async fn rename(
        &self,
        tenant: TenantId,
        id: DeviceId,
        external_id: &domain::devices::ExternalId,
        attributes: serde_json::Value,
    ) -> DomainResult<Device> {
        let res = d::Entity::update_many()
            .col_expr(d::Column::ExternalId, sea_orm::sea_query::Expr::value(external_id.as_str()))
            .col_expr(d::Column::Attributes, sea_orm::sea_query::Expr::value(attributes))
            .col_expr(d::Column::UpdatedAt, sea_orm::sea_query::Expr::value(chrono::Utc::now()))
            .filter(d::Column::TenantId.eq(tenant.as_uuid()))
            .filter(d::Column::Id.eq(id.as_uuid()))
            .exec(&self.db)
            .await
            .map_err(crate::db::map_err("a device with that external id"))?;
        if res.rows_affected == 0 {
            return Err(DomainError::NotFound("device"));
        }
        self.get(tenant, id).await?.ok_or(DomainError::NotFound("device"))
    }

    async fn find_by_externals(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        external_ids: &[String],
    ) -> DomainResult<Vec<Device>> {
        if external_ids.is_empty() {
            return Ok(Vec::new());
        }
        let q = scoped(tenant)
            .filter(d::Column::IntegrationId.eq(integration.as_uuid()))
            .filter(crate::db::in_texts(
                self.db.get_database_backend(),
                d::Column::ExternalId,
                external_ids.iter().cloned(),
            ))
            .order_by_asc(d::Column::Id);
        // In a unit on PostgreSQL the rows are locked (in id order) until it ends.
        let q = if self.db.in_unit() && self.db.get_database_backend() == DbBackend::Postgres {
            q.lock_exclusive()
        } else {
            q
        };
        q.all(&self.db).await.map_err(unknown)?.into_iter().map(to_domain).collect()
    }

    async fn lock_many(&self, tenant: TenantId, ids: &[DeviceId]) -> DomainResult<Vec<Device>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let q = scoped(tenant)
            .filter(crate::db::in_uuids(self.db.get_database_backend(), d::Column::Id, ids.iter().map(|i| i.as_uuid())))
            .order_by_asc(d::Column::Id);
        // In a unit on PostgreSQL the rows are locked (in id order) until it ends.
        let q = if self.db.in_unit() && self.db.get_database_backend() == DbBackend::Postgres {
            q.lock_exclusive()
        } else {
            q
        };
        q.all(&self.db).await.map_err(unknown)?.into_iter().map(to_domain).collect()
    }

    async fn observe_many(&self, tenant: TenantId, observed: Vec<Observed>) -> DomainResult<Vec<Device>> {
        if self.db.get_database_backend() != DbBackend::Postgres || observed.is_empty() {
            let mut out = Vec::with_capacity(observed.len());
            for o in observed {
                self.set_status(tenant, o.device.id, o.status).await?;
                out.push(self.record_readings(tenant, o.device.id, o.readings).await?);
            }
            return Ok(out);
        }
        self.observe_many_pg(tenant, observed).await
    }

    async fn find_by_external(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        external_id: &str,
    ) -> DomainResult<Option<Device>> {
        scoped(tenant)
            .filter(d::Column::IntegrationId.eq(integration.as_uuid()))
            .filter(d::Column::ExternalId.eq(external_id))
            .one(&self.db)
            .await
            .map_err(unknown)?
            .map(to_domain)
            .transpose()
    }

    async fn list(&self, tenant: TenantId, f: &DeviceFilter, page: PageRequest) -> DomainResult<Page<Device>> {
        let mut q = scoped(tenant);
        if let Some(k) = f.kind {
            q = q.filter(d::Column::Kind.eq(k.as_str()));
        }
        if let Some(i) = f.integration_id {
            q = q.filter(d::Column::IntegrationId.eq(i.as_uuid()));
        }
        if let Some(h) = f.home_id {
            q = q.filter(d::Column::HomeId.eq(h.as_uuid()));
        }
        if let Some(o) = f.online {
            q = q.filter(d::Column::Online.eq(o));
        }
        if let Some(s) = f.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            // `%` and `_` are searched for, not wildcards.
            let escaped = s.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            q = q.filter(
                d::Column::SearchText.like(sea_orm::sea_query::LikeExpr::new(format!("%{escaped}%")).escape('\\')),
            );
        }
        try_map(fetch_page(&self.db, q, d::Column::Id, page).await.map_err(unknown)?, to_domain)
    }

    async fn set_status(&self, tenant: TenantId, id: DeviceId, s: DeviceStatus) -> DomainResult<Device> {
        // One round trip: the online flip is decided by the row as it is when updated.
        let now = Utc::now();
        let seen = s.seen_at.unwrap_or(now);
        let mut q = d::Entity::update_many().col_expr(d::Column::UpdatedAt, Expr::value(now));
        if let Some(o) = s.online {
            q = q
                .col_expr(
                    d::Column::OnlineChangedAt,
                    Expr::case(
                        Expr::col(d::Column::Online).is_null().or(Expr::col(d::Column::Online).ne(o)),
                        Expr::value(Some(seen)),
                    )
                    .finally(Expr::col(d::Column::OnlineChangedAt))
                    .into(),
                )
                .col_expr(d::Column::Online, Expr::value(Some(o)));
        }
        if let Some(b) = s.battery {
            q = q.col_expr(d::Column::Battery, Expr::value(Some(b)));
        }
        if let Some(sig) = s.signal {
            q = q.col_expr(d::Column::Signal, Expr::value(Some(sig)));
        }
        // Only a report from the device moves `last_seen_at`; a status the system sets
        // (offline after silence) does not.
        if s.seen_at.is_some() {
            q = q.col_expr(d::Column::LastSeenAt, Expr::value(Some(seen)));
        }
        let rows = q
            .filter(d::Column::TenantId.eq(tenant.as_uuid()))
            .filter(d::Column::Id.eq(id.as_uuid()))
            .exec_with_returning(&self.db)
            .await
            .map_err(unknown)?;
        rows.into_iter().next().map(to_domain).transpose()?.ok_or(DomainError::NotFound("device"))
    }

    async fn record_readings(&self, tenant: TenantId, id: DeviceId, readings: Vec<NewReading>) -> DomainResult<Device> {
        if self.db.get_database_backend() == DbBackend::Postgres && !readings.is_empty() {
            return self.record_readings_pg(tenant, id, readings).await;
        }
        let txn = self.db.begin_write().await.map_err(unknown)?;
        let row = scoped(tenant)
            .filter(d::Column::Id.eq(id.as_uuid()))
            .one(&txn)
            .await
            .map_err(unknown)?
            .ok_or(DomainError::NotFound("device"))?;
        let mut latest: Map<String, Value> = match &row.latest {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        let mut last_seen = row.last_seen_at;
        if !readings.is_empty() {
            let rows = readings.iter().map(|nr| r::ActiveModel {
                id: Set(ReadingId::new().as_uuid()),
                tenant_id: Set(tenant.as_uuid()),
                device_id: Set(id.as_uuid()),
                metric: Set(nr.metric.clone()),
                value: Set(nr.value.clone()),
                ts: Set(nr.ts),
            });
            r::Entity::insert_many(rows).exec(&txn).await.map_err(unknown)?;
        }
        for nr in &readings {
            let newer = latest
                .get(&nr.metric)
                .and_then(|v| v.get("ts"))
                .and_then(Value::as_str)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .is_none_or(|t| t <= nr.ts);
            if newer {
                latest.insert(nr.metric.clone(), json!({"value": nr.value, "ts": nr.ts.to_rfc3339()}));
            }
            last_seen = Some(last_seen.map_or(nr.ts, |l| Ord::max(l, nr.ts)));
        }
        let mut am: d::ActiveModel = row.into();
        am.latest = Set(Value::Object(latest));
        am.last_seen_at = Set(last_seen);
        am.updated_at = Set(Utc::now());
        let updated = am.update(&txn).await.map_err(unknown)?;
        txn.commit().await.map_err(unknown)?;
        to_domain(updated)
    }

    async fn readings(
        &self,
        tenant: TenantId,
        id: DeviceId,
        metric: Option<&str>,
        last: u64,
    ) -> DomainResult<Vec<Reading>> {
        let mut q = r::Entity::find()
            .filter(r::Column::TenantId.eq(tenant.as_uuid()))
            .filter(r::Column::DeviceId.eq(id.as_uuid()));
        if let Some(m) = metric {
            q = q.filter(r::Column::Metric.eq(m));
        }
        let rows = q.order_by_desc(r::Column::Ts).limit(last).all(&self.db).await.map_err(unknown)?;
        Ok(rows
            .into_iter()
            .map(|m| Reading {
                id: ReadingId::from_uuid(m.id),
                device_id: DeviceId::from_uuid(m.device_id),
                metric: m.metric,
                value: m.value,
                ts: m.ts,
            })
            .collect())
    }
}
