use crate::db::Conn;
use crate::db::entities::scheduled_runs as r;
use crate::db::unknown;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::ids::{IntegrationId, TenantId};
use domain::schedules::{ScheduledJob, ScheduledRun, ScheduledRunRepo};
use domain::{DomainError, DomainResult};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

/// Runs of periodic jobs in SQL; the unique (job, scope, tick) index makes a tick's run
/// belong to exactly one process.
#[derive(Clone)]
pub struct SqlScheduledRunRepo {
    db: Conn,
}

impl SqlScheduledRunRepo {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db: db.into() }
    }
}

fn to_domain(m: r::Model) -> DomainResult<ScheduledRun> {
    Ok(ScheduledRun {
        job: ScheduledJob::parse(&m.job).map_err(|e| DomainError::Unknown(anyhow::anyhow!("stored run: {e}")))?,
        scope: m.scope,
        tenant_id: m.tenant_id.map(TenantId::from_uuid),
        tick: m.tick,
        trigger: m.trigger,
        worker: m.worker,
        started_at: m.started_at,
        finished_at: m.finished_at,
        outcome: m.outcome,
        detail: m.detail,
    })
}

fn the_run(run: &ScheduledRun) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(r::Column::Job.eq(run.job.as_str()))
        .add(r::Column::Scope.eq(run.scope.as_str()))
        .add(r::Column::Tick.eq(run.tick))
}

#[async_trait]
impl ScheduledRunRepo for SqlScheduledRunRepo {
    async fn claim(&self, run: &ScheduledRun) -> DomainResult<bool> {
        let inserted = r::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            job: Set(run.job.as_str().to_owned()),
            scope: Set(run.scope.clone()),
            tenant_id: Set(run.tenant_id.map(|t| t.as_uuid())),
            tick: Set(run.tick),
            trigger: Set(run.trigger.clone()),
            worker: Set(run.worker.chars().take(128).collect()),
            started_at: Set(run.started_at),
            finished_at: Set(None),
            outcome: Set(None),
            detail: Set(None),
        }
        .insert(&self.db)
        .await;
        match inserted {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) => Ok(false),
            Err(e) => Err(unknown(e)),
        }
    }

    async fn finish(&self, run: &ScheduledRun) -> DomainResult<()> {
        let detail: Option<String> = run.detail.as_ref().map(|d| d.chars().take(2000).collect());
        r::Entity::update_many()
            .col_expr(r::Column::FinishedAt, Expr::value(run.finished_at))
            .col_expr(r::Column::Outcome, Expr::value(run.outcome.clone()))
            .col_expr(r::Column::Detail, Expr::value(detail))
            .filter(the_run(run))
            .exec(&self.db)
            .await
            .map_err(unknown)?;
        Ok(())
    }

    async fn list(&self, tenant: TenantId, integration: IntegrationId, limit: u64) -> DomainResult<Vec<ScheduledRun>> {
        r::Entity::find()
            .filter(r::Column::TenantId.eq(tenant.as_uuid()))
            .filter(r::Column::Scope.eq(integration.to_string()))
            .order_by_desc(r::Column::StartedAt)
            .order_by_desc(r::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(unknown)?
            .into_iter()
            .map(to_domain)
            .collect()
    }

    async fn count(&self, job: ScheduledJob, scope: &str) -> DomainResult<u64> {
        r::Entity::find()
            .filter(r::Column::Job.eq(job.as_str()))
            .filter(r::Column::Scope.eq(scope))
            .count(&self.db)
            .await
            .map_err(unknown)
    }

    async fn prune(&self, before: DateTime<Utc>) -> DomainResult<u64> {
        let res =
            r::Entity::delete_many().filter(r::Column::StartedAt.lt(before)).exec(&self.db).await.map_err(unknown)?;
        Ok(res.rows_affected)
    }
}
