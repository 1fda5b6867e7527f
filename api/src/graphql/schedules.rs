//! Periodic jobs: run one now (`runScheduledJob`), and see an integration's runs.

use super::{actor, parse_id, state};
use crate::error::GqlResultExt;
use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use domain::ids::IntegrationId;
use domain::schedules::{ScheduledJob, ScheduledRun};

/// The periodic jobs of integrations (`settings.schedules` uses the same names).
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "ScheduledJob")]
pub enum ScheduledJobGql {
    /// Huzhou: each elevator's start count of the last 24 h (`lift_notify`).
    LiftNotifyDaily,
    /// Huzhou: each elevator's daily status (`put_ie_elev_things`).
    ElevThingsDaily,
    /// Dingding: pull homes, rooms and devices.
    Sync,
    /// Gas: the daily usage per meter.
    DailyUsage,
    /// ETC: offline alarms for gantry devices silent for twice their reporting interval.
    HeartbeatCheck,
    /// The delivery sweep of the whole deployment (listed in runs, not run on demand).
    Sweep,
}

impl From<ScheduledJobGql> for ScheduledJob {
    fn from(j: ScheduledJobGql) -> Self {
        match j {
            ScheduledJobGql::LiftNotifyDaily => Self::LiftNotifyDaily,
            ScheduledJobGql::ElevThingsDaily => Self::ElevThingsDaily,
            ScheduledJobGql::Sync => Self::Sync,
            ScheduledJobGql::DailyUsage => Self::DailyUsage,
            ScheduledJobGql::HeartbeatCheck => Self::HeartbeatCheck,
            ScheduledJobGql::Sweep => Self::Sweep,
        }
    }
}

impl From<ScheduledJob> for ScheduledJobGql {
    fn from(j: ScheduledJob) -> Self {
        match j {
            ScheduledJob::LiftNotifyDaily => Self::LiftNotifyDaily,
            ScheduledJob::ElevThingsDaily => Self::ElevThingsDaily,
            ScheduledJob::Sync => Self::Sync,
            ScheduledJob::DailyUsage => Self::DailyUsage,
            ScheduledJob::HeartbeatCheck => Self::HeartbeatCheck,
            ScheduledJob::Sweep => Self::Sweep,
        }
    }
}

/// One run of a periodic job.
#[derive(SimpleObject)]
#[graphql(name = "ScheduledRun")]
pub struct ScheduledRunGql {
    pub job: ScheduledJobGql,
    pub integration_id: Option<ID>,
    /// The schedule's fire time this run is for (the request time for a manual run).
    pub tick: DateTime<Utc>,
    /// `SCHEDULE` or `MANUAL`.
    pub trigger: String,
    /// The worker process that ran it.
    pub worker: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `SUCCEEDED` or `FAILED` once finished.
    pub outcome: Option<String>,
    pub detail: Option<String>,
}

impl From<ScheduledRun> for ScheduledRunGql {
    fn from(r: ScheduledRun) -> Self {
        Self {
            job: r.job.into(),
            integration_id: r.scope.parse::<IntegrationId>().ok().map(|i| ID(i.to_string())),
            tick: r.tick,
            trigger: r.trigger,
            worker: r.worker,
            started_at: r.started_at,
            finished_at: r.finished_at,
            outcome: r.outcome,
            detail: r.detail,
        }
    }
}

#[derive(Default)]
pub struct ScheduleQuery;

#[Object]
impl ScheduleQuery {
    /// An integration's periodic-job runs, newest first (at most `last`, default 50).
    async fn scheduled_runs(
        &self,
        ctx: &Context<'_>,
        integration_id: ID,
        last: Option<i32>,
    ) -> async_graphql::Result<Vec<ScheduledRunGql>> {
        let id: IntegrationId = parse_id("integrationId", &integration_id)?;
        let limit = u64::try_from(last.unwrap_or(50)).unwrap_or(1);
        let runs = state(ctx).scheduler.runs(&actor(ctx)?, id, limit).await.gql()?;
        Ok(runs.into_iter().map(Into::into).collect())
    }
}

#[derive(Default)]
pub struct ScheduleMutation;

#[Object]
impl ScheduleMutation {
    /// Runs one of the integration's periodic jobs now, as its schedule would (tenant
    /// admins; for backfills after an outage).
    async fn run_scheduled_job(
        &self,
        ctx: &Context<'_>,
        integration_id: ID,
        job: ScheduledJobGql,
    ) -> async_graphql::Result<ScheduledRunGql> {
        let id: IntegrationId = parse_id("integrationId", &integration_id)?;
        let run = state(ctx).scheduler.run_now(&actor(ctx)?, id, job.into()).await.gql()?;
        Ok(run.into())
    }
}
