use super::{GLOBAL, ScheduledJob, ScheduledRun, ScheduledRunRepo, schedules_of};
use crate::clock::{self, Clock};
use crate::deliveries::DeliveryService;
use crate::ids::IntegrationId;
use crate::integrations::{Integration, IntegrationKind, IntegrationRepo};
use crate::{Actor, DomainError, DomainResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// One periodic job's work for one integration.
#[async_trait]
pub trait PeriodicJob: Send + Sync {
    /// Runs the job for `integration` as of `tick`; the answer summarises what it did.
    ///
    /// # Errors
    /// Whatever the job's work fails with; the run is recorded as `FAILED` with it.
    async fn run(&self, integration: &Integration, tick: DateTime<Utc>) -> DomainResult<String>;
}

/// Ticks the schedules and runs what is due, once per tick across processes.
#[derive(Clone)]
pub struct SchedulerService {
    runs: Arc<dyn ScheduledRunRepo>,
    integrations: Arc<dyn IntegrationRepo>,
    deliveries: DeliveryService,
    jobs: HashMap<ScheduledJob, Arc<dyn PeriodicJob>>,
    worker: String,
    sweep_every: Duration,
    /// Where old traffic records go, and how long they are kept.
    retention: Option<(Arc<dyn crate::retention::RetentionRepo>, chrono::Duration)>,
    /// The alarm escalation check, run on every tick (its steps are keyed: a step taken
    /// by another process is not taken again).
    escalation: Option<crate::alarms::escalation::EscalationService>,
    /// Where the time comes from.
    clock: Arc<dyn Clock>,
}

/// How long run records are kept.
const KEEP_RUNS: chrono::Duration = chrono::Duration::days(14);

fn floor_to(now: DateTime<Utc>, every: Duration) -> DateTime<Utc> {
    let step = i64::try_from(every.as_millis().max(1)).unwrap_or(i64::MAX);
    let ms = now.timestamp_millis();
    DateTime::from_timestamp_millis(ms - ms.rem_euclid(step)).unwrap_or(now)
}

impl SchedulerService {
    /// `worker` names this process in run records.
    pub fn new(
        runs: Arc<dyn ScheduledRunRepo>,
        integrations: Arc<dyn IntegrationRepo>,
        deliveries: DeliveryService,
        worker: String,
        sweep_every: Duration,
    ) -> Self {
        Self {
            runs,
            integrations,
            deliveries,
            jobs: HashMap::new(),
            worker,
            sweep_every,
            retention: None,
            escalation: None,
            clock: clock::system(),
        }
    }

    /// Deletes traffic records older than `keep` every hour (`apply_retention`).
    #[must_use]
    pub fn with_retention(mut self, repo: Arc<dyn crate::retention::RetentionRepo>, keep: chrono::Duration) -> Self {
        self.retention = Some((repo, keep));
        self
    }

    /// Runs the alarm escalation check on every tick, as of the tick's time.
    #[must_use]
    pub fn with_escalation(mut self, escalation: crate::alarms::escalation::EscalationService) -> Self {
        self.escalation = Some(escalation);
        self
    }

    /// Deletes traffic records older than the retention period as of `now`; `None` when
    /// no retention is configured.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    pub async fn apply_retention(&self, now: DateTime<Utc>) -> DomainResult<Option<crate::retention::Pruned>> {
        let Some((repo, keep)) = &self.retention else { return Ok(None) };
        let pruned = repo.prune(now - *keep).await?;
        tracing::info!(?pruned, "old traffic records pruned");
        Ok(Some(pruned))
    }

    /// Reads the time from `clock` instead of the system clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Registers the implementation of a job; jobs without one are neither scheduled nor
    /// run on demand.
    #[must_use]
    pub fn with_job(mut self, job: ScheduledJob, work: Arc<dyn PeriodicJob>) -> Self {
        self.jobs.insert(job, work);
        self
    }

    /// One scheduler tick at the clock's now: the sweep when its interval has come round,
    /// and every integration job whose schedule fired in `(now - lookback, now]`. Returns
    /// how many runs this process won.
    ///
    /// # Errors
    /// `Unknown` when the integrations cannot be listed.
    pub async fn tick(&self, lookback: Duration) -> DomainResult<usize> {
        let now = self.clock.now();
        let mut won = 0;
        let sweep_tick = floor_to(now, self.sweep_every);
        if self.claim(ScheduledJob::Sweep, GLOBAL.to_owned(), None, sweep_tick, "SCHEDULE").await?.is_some() {
            won += 1;
            let res = self.deliveries.sweep(now).await.map(|n| format!("re-queued {n} deliveries"));
            if sweep_tick.timestamp() % 3600 == 0 {
                let _ = self.runs.prune(now - KEEP_RUNS).await;
                if let Err(e) = self.apply_retention(now).await {
                    tracing::warn!(error = %e, "pruning old traffic records");
                }
            }
            self.finish(ScheduledJob::Sweep, GLOBAL.to_owned(), None, sweep_tick, "SCHEDULE", res).await;
        }
        if let Some(escalation) = &self.escalation {
            match escalation.check(now).await {
                Ok(n) => tracing::debug!(steps = n, "escalation check"),
                // The next tick takes what this one left.
                Err(e) => tracing::warn!(error = %e, "escalation check failed"),
            }
        }
        let kinds: Vec<IntegrationKind> =
            IntegrationKind::ALL.into_iter().filter(|k| !ScheduledJob::for_kind(*k).is_empty()).collect();
        let after = now - chrono::Duration::from_std(lookback).unwrap_or(chrono::Duration::minutes(1));
        for integration in self.integrations.all_of_kinds(&kinds).await? {
            let schedules = match schedules_of(&integration) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(integration_id = %integration.id, error = %e, "unreadable schedules");
                    continue;
                }
            };
            for s in schedules.into_iter().filter(|s| self.jobs.contains_key(&s.job)) {
                if let Some(fire) = s.last_fire(after, now)
                    && self.run_once(&integration, s.job, fire, "SCHEDULE").await?.is_some()
                {
                    won += 1;
                }
            }
        }
        Ok(won)
    }

    /// `runScheduledJob`: runs one of the integration's jobs now, as its schedule would.
    ///
    /// # Errors
    /// `Forbidden` unless tenant admin; `NotFound` for an integration outside the tenant;
    /// `Invalid { field: "job" }` for a job its kind does not have or this deployment
    /// does not run; `Duplicate` when the same run was claimed in the same millisecond;
    /// `Conflict` while the integration is disabled.
    pub async fn run_now(&self, actor: &Actor, id: IntegrationId, job: ScheduledJob) -> DomainResult<ScheduledRun> {
        let tenant = actor.require_tenant_admin()?;
        let integration = self.integrations.get(tenant, id).await?.ok_or(DomainError::NotFound("integration"))?;
        if integration.disabled_at.is_some() {
            return Err(DomainError::Conflict("the integration is disabled: enableIntegration first".into()));
        }
        if !ScheduledJob::for_kind(integration.kind).contains(&job) {
            return Err(DomainError::invalid(
                "job",
                format!("{} is not a job of {} integrations", job.as_str(), integration.kind.as_str()),
            ));
        }
        if !self.jobs.contains_key(&job) {
            return Err(DomainError::invalid(
                "job",
                format!("{} is not available in this deployment yet", job.as_str()),
            ));
        }
        self.run_once(&integration, job, self.clock.now(), "MANUAL")
            .await?
            .ok_or_else(|| DomainError::Duplicate("this run was just started".into()))
    }

    /// Deliveries waiting for a worker, by state (the queue-depth metric).
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    pub async fn queue_depth(&self) -> DomainResult<Vec<(crate::deliveries::DeliveryState, u64)>> {
        self.deliveries.depth().await
    }

    /// An integration's recent runs, newest first.
    ///
    /// # Errors
    /// `NotFound` for an integration outside the tenant.
    pub async fn runs(&self, actor: &Actor, id: IntegrationId, limit: u64) -> DomainResult<Vec<ScheduledRun>> {
        let tenant = actor.require_reader()?;
        self.integrations.get(tenant, id).await?.ok_or(DomainError::NotFound("integration"))?;
        self.runs.list(tenant, id, limit.clamp(1, 500)).await
    }

    /// Claims the tick and, when won, runs the job and records how it went.
    async fn run_once(
        &self,
        integration: &Integration,
        job: ScheduledJob,
        tick: DateTime<Utc>,
        trigger: &str,
    ) -> DomainResult<Option<ScheduledRun>> {
        let Some(work) = self.jobs.get(&job) else { return Ok(None) };
        let scope = integration.id.to_string();
        let tenant = Some(integration.tenant_id);
        if self.claim(job, scope.clone(), tenant, tick, trigger).await?.is_none() {
            return Ok(None);
        }
        let res = work.run(integration, tick).await;
        Ok(Some(self.finish(job, scope, tenant, tick, trigger, res).await))
    }

    fn run_record(
        &self,
        job: ScheduledJob,
        scope: String,
        tenant_id: Option<crate::ids::TenantId>,
        tick: DateTime<Utc>,
        trigger: &str,
    ) -> ScheduledRun {
        ScheduledRun {
            job,
            scope,
            tenant_id,
            tick,
            trigger: trigger.to_owned(),
            worker: self.worker.clone(),
            started_at: self.clock.now(),
            finished_at: None,
            outcome: None,
            detail: None,
        }
    }

    async fn claim(
        &self,
        job: ScheduledJob,
        scope: String,
        tenant: Option<crate::ids::TenantId>,
        tick: DateTime<Utc>,
        trigger: &str,
    ) -> DomainResult<Option<ScheduledRun>> {
        let run = self.run_record(job, scope, tenant, tick, trigger);
        Ok(self.runs.claim(&run).await?.then_some(run))
    }

    async fn finish(
        &self,
        job: ScheduledJob,
        scope: String,
        tenant: Option<crate::ids::TenantId>,
        tick: DateTime<Utc>,
        trigger: &str,
        res: DomainResult<String>,
    ) -> ScheduledRun {
        let mut run = self.run_record(job, scope, tenant, tick, trigger);
        run.finished_at = Some(self.clock.now());
        match res {
            Ok(detail) => {
                run.outcome = Some("SUCCEEDED".into());
                run.detail = Some(detail);
            }
            Err(e) => {
                tracing::warn!(job = job.as_str(), scope = %run.scope, error = %e, "periodic job failed");
                run.outcome = Some("FAILED".into());
                run.detail = Some(e.to_string());
            }
        }
        if let Err(e) = self.runs.finish(&run).await {
            tracing::warn!(error = %e, "recording a periodic run");
        }
        run
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn sweep_ticks_are_aligned_to_the_interval() {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 47).single().expect("t");
        assert_eq!(
            floor_to(t, Duration::from_secs(30)),
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 30).single().expect("t")
        );
    }
}
