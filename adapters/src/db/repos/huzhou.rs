//! Huzhou live subscriptions and inbound tokens (`m20261201_000006_huzhou`). Plain SQL that
//! runs on SQLite and PostgreSQL alike: times are Unix milliseconds, so one `UPDATE ...
//! RETURNING` claims every push due at a tick and moves it on.

use crate::db::entities::devices as d;
use crate::db::unknown;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::DomainResult;
use domain::huzhou::{DuePush, HuzhouRepo, LiveSnapshot};
use domain::ids::{IntegrationId, TenantId};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect, Statement, Value,
};
use sha2::{Digest, Sha256};

/// Elevators per statement (bound parameters stay well under SQLite's limit).
const CHUNK: usize = 900;

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
        let mut n = 0;
        for chunk in unique_ids.chunks(CHUNK) {
            let rows: Vec<String> = (0..chunk.len()).map(|i| format!("($1,${},$2,$3,$4,$5)", i + 6)).collect();
            // A lapsed subscription starts again; a running one keeps its rhythm.
            let sql = format!(
                "INSERT INTO huzhou_subscriptions (integration_id, unique_id, tenant_id, next_due_ms, interval_ms, until_ms) \
                 VALUES {} ON CONFLICT (integration_id, unique_id) DO UPDATE SET \
                 next_due_ms = CASE WHEN huzhou_subscriptions.next_due_ms >= huzhou_subscriptions.until_ms \
                 THEN excluded.next_due_ms ELSE huzhou_subscriptions.next_due_ms END, \
                 interval_ms = excluded.interval_ms, until_ms = excluded.until_ms",
                rows.join(",")
            );
            let mut values: Vec<Value> = vec![
                integration.as_uuid().into(),
                tenant.as_uuid().into(),
                first_due_ms.into(),
                interval_ms.into(),
                until_ms.into(),
            ];
            values.extend(chunk.iter().map(|u| Value::from(u.as_str())));
            n += self.db.execute_raw(self.stmt(sql, values)).await.map_err(unknown)?.rows_affected();
        }
        Ok(n)
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

    async fn claim_due(&self, now_ms: i64) -> DomainResult<Vec<DuePush>> {
        // Behind by more than an interval (the workers were down): skip to now, once.
        let sql = "UPDATE huzhou_subscriptions SET next_due_ms = CASE WHEN next_due_ms + interval_ms <= $1 \
                   THEN $1 + interval_ms ELSE next_due_ms + interval_ms END \
                   WHERE next_due_ms <= $1 AND next_due_ms < until_ms \
                   RETURNING tenant_id, integration_id, unique_id, next_due_ms, interval_ms"
            .to_owned();
        let rows = self.db.query_all_raw(self.stmt(sql, vec![now_ms.into()])).await.map_err(unknown)?;
        rows.into_iter()
            .map(|r| {
                let next: i64 = r.try_get("", "next_due_ms").map_err(unknown)?;
                let every: i64 = r.try_get("", "interval_ms").map_err(unknown)?;
                Ok(DuePush {
                    tenant_id: TenantId::from_uuid(r.try_get("", "tenant_id").map_err(unknown)?),
                    integration_id: IntegrationId::from_uuid(r.try_get("", "integration_id").map_err(unknown)?),
                    unique_id: r.try_get("", "unique_id").map_err(unknown)?,
                    due_ms: next - every,
                })
            })
            .collect()
    }

    async fn prune(&self, now_ms: i64) -> DomainResult<u64> {
        let subs = "DELETE FROM huzhou_subscriptions WHERE next_due_ms >= until_ms AND until_ms <= $1".to_owned();
        let a = self.db.execute_raw(self.stmt(subs, vec![now_ms.into()])).await.map_err(unknown)?.rows_affected();
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
            let rows: Vec<(String, serde_json::Value)> = d::Entity::find()
                .filter(d::Column::TenantId.eq(tenant.as_uuid()))
                .filter(d::Column::IntegrationId.eq(integration.as_uuid()))
                .filter(d::Column::ExternalId.is_in(chunk.iter().map(String::as_str)))
                .select_only()
                .column(d::Column::ExternalId)
                .column(d::Column::Latest)
                .into_tuple()
                .all(&self.db)
                .await
                .map_err(unknown)?;
            out.extend(rows.into_iter().map(|(unique_id, latest)| LiveSnapshot { unique_id, latest }));
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
