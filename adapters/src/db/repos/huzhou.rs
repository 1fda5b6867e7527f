//! Huzhou live subscriptions and inbound tokens (`m20261201_000006_huzhou`,
//! `m20261201_000008_huzhou_slots`). Plain SQL that runs on SQLite and PostgreSQL alike:
//! times are Unix milliseconds; a subscription keeps its phase (`first_due_ms %
//! interval_ms`), so the pushes due in a slot are a range of `(interval_ms, phase_ms)`,
//! and nothing is written per push: one row of `huzhou_live_slots` claims a whole slot.

use crate::db::entities::devices as d;
use crate::db::unknown;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::huzhou::{DuePush, HuzhouRepo, LiveSnapshot};
use domain::ids::{IntegrationId, TenantId};
use domain::{DomainError, DomainResult};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, QuerySelect, Statement,
    Value,
};
use sha2::{Digest, Sha256};

/// Elevators per statement (bound parameters stay well under SQLite's limit).
const CHUNK: usize = 900;

/// Elevators per subscribing statement (one JSON parameter).
const SUBSCRIBE_CHUNK: usize = 10_000;

/// How long slot claims are kept: far longer than any worker lags behind the clock.
const SLOT_KEEP_MS: i64 = 10 * 60 * 1000;

/// Subscriptions and tokens in SQL.
#[derive(Clone)]
pub struct SqlHuzhouRepo {
    db: DatabaseConnection,
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// `$n` placeholders from `first` on, one per item.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(",")
}

impl SqlHuzhouRepo {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    fn stmt(&self, sql: String, values: Vec<Value>) -> Statement {
        Statement::from_sql_and_values(self.db.get_database_backend(), sql, values)
    }
}

#[async_trait]
impl HuzhouRepo for SqlHuzhouRepo {
    async fn subscribe(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        unique_ids: &[String],
        first_due_ms: i64,
        interval_ms: i64,
        until_ms: i64,
    ) -> DomainResult<u64> {
        // The ids travel as one JSON array per statement: one commit per 10,000
        // elevators instead of one per 900 (issue 6: 50,000 at once).
        let from = match self.db.get_database_backend() {
            DbBackend::Postgres => "json_array_elements_text($7::json) AS j(value)",
            _ => "json_each($7) AS j",
        };
        // A lapsed subscription starts again; a running one keeps its rhythm (its first
        // due time, and its phase under the interval now set). `WHERE true` lets SQLite
        // parse the upsert after a SELECT.
        let sql = format!(
            "INSERT INTO huzhou_subscriptions (integration_id, unique_id, tenant_id, first_due_ms, interval_ms, phase_ms, until_ms) \
             SELECT $1, j.value, $2, $3, $4, $5, $6 FROM {from} WHERE true \
             ON CONFLICT (integration_id, unique_id) DO UPDATE SET \
             first_due_ms = CASE WHEN huzhou_subscriptions.until_ms <= excluded.first_due_ms \
             THEN excluded.first_due_ms ELSE huzhou_subscriptions.first_due_ms END, \
             phase_ms = CASE WHEN huzhou_subscriptions.until_ms <= excluded.first_due_ms \
             THEN excluded.phase_ms ELSE huzhou_subscriptions.first_due_ms % excluded.interval_ms END, \
             interval_ms = excluded.interval_ms, until_ms = excluded.until_ms"
        );
        let interval_ms = interval_ms.max(1);
        let mut n = 0;
        for chunk in unique_ids.chunks(SUBSCRIBE_CHUNK) {
            let ids = serde_json::to_string(chunk).map_err(|e| DomainError::Unknown(e.into()))?;
            let values: Vec<Value> = vec![
                integration.as_uuid().into(),
                tenant.as_uuid().into(),
                first_due_ms.into(),
                interval_ms.into(),
                first_due_ms.rem_euclid(interval_ms).into(),
                until_ms.into(),
                ids.into(),
            ];
            n += self.db.execute_raw(self.stmt(sql.clone(), values)).await.map_err(unknown)?.rows_affected();
        }
        Ok(n)
    }

    async fn running(&self, tenant: TenantId, integration: IntegrationId, now_ms: i64) -> DomainResult<Vec<String>> {
        let sql = "SELECT unique_id FROM huzhou_subscriptions WHERE tenant_id = $1 AND integration_id = $2 \
                   AND until_ms > $3"
            .to_owned();
        let values = vec![tenant.as_uuid().into(), integration.as_uuid().into(), now_ms.into()];
        let rows = self.db.query_all_raw(self.stmt(sql, values)).await.map_err(unknown)?;
        rows.into_iter().map(|r| r.try_get("", "unique_id").map_err(unknown)).collect()
    }

    async fn unsubscribe(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        unique_ids: &[String],
    ) -> DomainResult<u64> {
        let mut n = 0;
        for chunk in unique_ids.chunks(CHUNK) {
            let sql = format!(
                "DELETE FROM huzhou_subscriptions WHERE tenant_id = $1 AND integration_id = $2 AND unique_id IN ({})",
                placeholders(3, chunk.len())
            );
            let mut values: Vec<Value> = vec![tenant.as_uuid().into(), integration.as_uuid().into()];
            values.extend(chunk.iter().map(|u| Value::from(u.as_str())));
            n += self.db.execute_raw(self.stmt(sql, values)).await.map_err(unknown)?.rows_affected();
        }
        Ok(n)
    }

    async fn claim_slot(&self, slot_ms: i64) -> DomainResult<bool> {
        let sql = "INSERT INTO huzhou_live_slots (slot_ms) VALUES ($1) ON CONFLICT (slot_ms) DO NOTHING".to_owned();
        let done = self.db.execute_raw(self.stmt(sql, vec![slot_ms.into()])).await.map_err(unknown)?;
        Ok(done.rows_affected() == 1)
    }

    async fn due_in(&self, from_ms: i64, to_ms: i64) -> DomainResult<Vec<DuePush>> {
        let sql = "SELECT DISTINCT interval_ms FROM huzhou_subscriptions".to_owned();
        let rows = self.db.query_all_raw(self.stmt(sql, Vec::new())).await.map_err(unknown)?;
        let intervals: Vec<i64> =
            rows.iter().map(|r| r.try_get("", "interval_ms")).collect::<Result<_, _>>().map_err(unknown)?;
        let mut out = Vec::new();
        for every in intervals.into_iter().filter(|i| *i > 0) {
            // The phases due in the slot, as one or two ranges (when the slot wraps around
            // the interval), each with the time its phase 0 stands for.
            let len = (to_ms - from_ms).clamp(0, every);
            let start = from_ms.rem_euclid(every);
            let base = from_ms - start;
            let mut ranges = vec![(start, (start + len).min(every), base)];
            if start + len > every {
                ranges.push((0, start + len - every, base + every));
            }
            for (lo, hi, base) in ranges {
                // Due at `base + phase_ms`: after the first push (the notice sends it) and
                // before the end.
                let sql = "SELECT tenant_id, integration_id, unique_id, phase_ms FROM huzhou_subscriptions \
                           WHERE interval_ms = $1 AND phase_ms >= $2 AND phase_ms < $3 \
                           AND first_due_ms < $4 + phase_ms AND until_ms > $4 + phase_ms"
                    .to_owned();
                let values = vec![every.into(), lo.into(), hi.into(), base.into()];
                for r in self.db.query_all_raw(self.stmt(sql, values)).await.map_err(unknown)? {
                    let phase: i64 = r.try_get("", "phase_ms").map_err(unknown)?;
                    out.push(DuePush {
                        tenant_id: TenantId::from_uuid(r.try_get("", "tenant_id").map_err(unknown)?),
                        integration_id: IntegrationId::from_uuid(r.try_get("", "integration_id").map_err(unknown)?),
                        unique_id: r.try_get("", "unique_id").map_err(unknown)?,
                        due_ms: base + phase,
                    });
                }
            }
        }
        Ok(out)
    }

    async fn prune(&self, now_ms: i64) -> DomainResult<u64> {
        let subs = "DELETE FROM huzhou_subscriptions WHERE until_ms <= $1".to_owned();
        let a = self.db.execute_raw(self.stmt(subs, vec![now_ms.into()])).await.map_err(unknown)?.rows_affected();
        let slots = "DELETE FROM huzhou_live_slots WHERE slot_ms < $1".to_owned();
        let old = now_ms - SLOT_KEEP_MS;
        self.db.execute_raw(self.stmt(slots, vec![old.into()])).await.map_err(unknown)?;
        let tokens = "DELETE FROM huzhou_inbound_tokens WHERE expires_ms <= $1".to_owned();
        let b = self.db.execute_raw(self.stmt(tokens, vec![now_ms.into()])).await.map_err(unknown)?.rows_affected();
        Ok(a + b)
    }

    async fn snapshots(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        unique_ids: &[String],
    ) -> DomainResult<Vec<LiveSnapshot>> {
        let mut out = Vec::with_capacity(unique_ids.len());
        for chunk in unique_ids.chunks(CHUNK) {
            // Found through the unique (integration_id, external_id) index; the tenant is
            // checked on the rows. With `tenant_id` in the filter, PostgreSQL without fresh
            // statistics picks ix_devices_integration and reads the whole integration for
            // every slice (issue 6: 50,000 elevators, 100 slices, all CPU in the database).
            let rows: Vec<(uuid::Uuid, String, serde_json::Value)> = d::Entity::find()
                .filter(d::Column::IntegrationId.eq(integration.as_uuid()))
                .filter(d::Column::ExternalId.is_in(chunk.iter().map(String::as_str)))
                .select_only()
                .column(d::Column::TenantId)
                .column(d::Column::ExternalId)
                .column(d::Column::Latest)
                .into_tuple()
                .all(&self.db)
                .await
                .map_err(unknown)?;
            out.extend(
                rows.into_iter()
                    .filter(|(t, _, _)| *t == tenant.as_uuid())
                    .map(|(_, unique_id, latest)| LiveSnapshot { unique_id, latest }),
            );
        }
        Ok(out)
    }

    async fn put_token(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        token: &str,
        expires: DateTime<Utc>,
    ) -> DomainResult<()> {
        let sql =
            "INSERT INTO huzhou_inbound_tokens (digest, tenant_id, integration_id, expires_ms) VALUES ($1, $2, $3, $4)"
                .to_owned();
        let values = vec![
            digest(token).into(),
            tenant.as_uuid().into(),
            integration.as_uuid().into(),
            expires.timestamp_millis().into(),
        ];
        self.db.execute_raw(self.stmt(sql, values)).await.map_err(unknown)?;
        Ok(())
    }

    async fn token_valid(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        token: &str,
        now: DateTime<Utc>,
    ) -> DomainResult<bool> {
        let sql = "SELECT digest FROM huzhou_inbound_tokens WHERE digest = $1 AND tenant_id = $2 \
                   AND integration_id = $3 AND expires_ms > $4"
            .to_owned();
        let values = vec![
            digest(token).into(),
            tenant.as_uuid().into(),
            integration.as_uuid().into(),
            now.timestamp_millis().into(),
        ];
        Ok(self.db.query_one_raw(self.stmt(sql, values)).await.map_err(unknown)?.is_some())
    }
}
