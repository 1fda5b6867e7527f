//! Periodic jobs. Each integration kind has its jobs, each job a cron schedule (defaults
//! below, overridable per integration with `settings.schedules: {JOB: "cron"}`) read in the
//! integration's time zone (`settings.timezone`, default `Asia/Shanghai`). Every worker
//! process ticks; a run is claimed by inserting its (job, scope, tick) row, so a tick runs
//! once however many processes see it.

mod heartbeat;
mod service;

pub use heartbeat::{HeartbeatCheck, offline_key};
pub use service::{PeriodicJob, SchedulerService};

use crate::enums::string_enum;
use crate::ids::{IntegrationId, TenantId};
use crate::integrations::{Integration, IntegrationKind};
use crate::{DomainError, DomainResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::str::FromStr;

string_enum!(
    /// The periodic jobs, by the name `runScheduledJob` and `settings.schedules` use.
    ScheduledJob, "job" {
        /// Re-queues deliveries that are due and held by nobody (the whole deployment).
        Sweep = "SWEEP",
        /// Each elevator's start count of the last 24 h, to its data center.
        LiftNotifyDaily = "LIFT_NOTIFY_DAILY",
        /// Each elevator's daily status, to its data center.
        ElevThingsDaily = "ELEV_THINGS_DAILY",
        /// Pull homes, rooms and devices from the vendor.
        Sync = "SYNC",
        /// Gas: the daily usage per meter.
        DailyUsage = "DAILY_USAGE",
        /// An offline alarm for a device silent for twice its reporting interval.
        HeartbeatCheck = "HEARTBEAT_CHECK",
    }
);

/// The default time zone of schedules.
pub const DEFAULT_TIMEZONE: &str = "Asia/Shanghai";

impl ScheduledJob {
    /// The jobs an integration of `kind` has.
    pub fn for_kind(kind: IntegrationKind) -> &'static [Self] {
        kind.scheduled_jobs()
    }

    /// The default schedule (seconds, minutes, hours, day of month, month, day of week).
    pub const fn default_cron(self) -> &'static str {
        match self {
            Self::Sweep => "*/30 * * * * *",
            Self::LiftNotifyDaily => "0 0 0 * * *", // 4.3: 每天的凌晨零点 (PROTOCOLS.md 1a: 00:00)
            Self::ElevThingsDaily => "0 30 1 * * *",
            Self::Sync => "0 0 3 * * *",
            Self::DailyUsage => "0 0 2 * * *",
            Self::HeartbeatCheck => "0 * * * * *",
        }
    }
}

/// One job of one integration with its schedule.
#[derive(Debug, Clone)]
pub struct JobSchedule {
    pub job: ScheduledJob,
    pub cron: cron::Schedule,
    pub tz: chrono_tz::Tz,
}

impl JobSchedule {
    /// The latest time the schedule fires in `(after, upto]`, if any.
    pub fn last_fire(&self, after: DateTime<Utc>, upto: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let start = after.with_timezone(&self.tz);
        self.cron.after(&start).map(|t| t.with_timezone(&Utc)).take_while(|t| *t <= upto).last()
    }
}

fn parse_cron(field: &str, text: &str) -> DomainResult<cron::Schedule> {
    cron::Schedule::from_str(text).map_err(|e| DomainError::invalid(field, format!("not a cron schedule: {e}")))
}

fn parse_tz(settings: &Value) -> DomainResult<chrono_tz::Tz> {
    match settings.get("timezone").filter(|v| !v.is_null()) {
        None => Ok(chrono_tz::Asia::Shanghai),
        Some(Value::String(s)) => {
            s.parse().map_err(|_| DomainError::invalid("settings.timezone", "not an IANA time zone name"))
        }
        Some(_) => Err(DomainError::invalid("settings.timezone", "must be a string")),
    }
}

/// Checks `settings.schedules` and `settings.timezone` for an integration of `kind`.
///
/// # Errors
/// `Invalid { field: "settings.schedules.<JOB>" }` for an unknown job or a bad cron text;
/// `Invalid { field: "settings.timezone" }`.
pub fn validate_settings(kind: IntegrationKind, settings: &Value) -> DomainResult<()> {
    parse_tz(settings)?;
    match settings.get("schedules").filter(|v| !v.is_null()) {
        None => Ok(()),
        Some(Value::Object(m)) => {
            for (name, cron) in m {
                let field = format!("settings.schedules.{name}");
                let job = ScheduledJob::parse(name).map_err(|_| DomainError::invalid(&field, "unknown job"))?;
                if !ScheduledJob::for_kind(kind).contains(&job) {
                    return Err(DomainError::invalid(field, format!("not a job of {}", kind.as_str())));
                }
                let text = cron.as_str().ok_or_else(|| DomainError::invalid(&field, "must be a cron string"))?;
                parse_cron(&field, text)?;
            }
            Ok(())
        }
        Some(_) => Err(DomainError::invalid("settings.schedules", "must be an object of job -> cron")),
    }
}

/// The schedules of an integration's jobs.
///
/// # Errors
/// `Invalid` when stored settings no longer parse (they are validated on save).
pub fn schedules_of(integration: &Integration) -> DomainResult<Vec<JobSchedule>> {
    let tz = parse_tz(&integration.settings)?;
    let custom = integration.settings.get("schedules");
    ScheduledJob::for_kind(integration.kind)
        .iter()
        .map(|job| {
            let text = custom.and_then(|c| c.get(job.as_str())).and_then(Value::as_str).unwrap_or(job.default_cron());
            Ok(JobSchedule { job: *job, cron: parse_cron("settings.schedules", text)?, tz })
        })
        .collect()
}

/// The scope of a run: an integration, or the whole deployment.
pub const GLOBAL: &str = "global";

/// One run of a periodic job.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledRun {
    pub job: ScheduledJob,
    /// The integration's id, or `global`.
    pub scope: String,
    pub tenant_id: Option<TenantId>,
    pub tick: DateTime<Utc>,
    /// `SCHEDULE` or `MANUAL` (`runScheduledJob`).
    pub trigger: String,
    pub worker: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `SUCCEEDED` or `FAILED` once finished.
    pub outcome: Option<String>,
    pub detail: Option<String>,
}

/// Runs of periodic jobs.
#[async_trait]
pub trait ScheduledRunRepo: Send + Sync {
    /// Inserts the run unless its (job, scope, tick) exists: `true` when this caller won
    /// the tick and must run it.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn claim(&self, run: &ScheduledRun) -> DomainResult<bool>;
    /// # Errors
    /// `Unknown` on storage failure.
    async fn finish(&self, run: &ScheduledRun) -> DomainResult<()>;
    /// An integration's runs, newest first.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn list(&self, tenant: TenantId, integration: IntegrationId, limit: u64) -> DomainResult<Vec<ScheduledRun>>;
    /// Runs of `job` in `scope` (tests and operators check once-per-tick with it).
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn count(&self, job: ScheduledJob, scope: &str) -> DomainResult<u64>;
    /// Deletes runs started before `before`.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn prune(&self, before: DateTime<Utc>) -> DomainResult<u64>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn schedule(cron: &str, tz: chrono_tz::Tz) -> JobSchedule {
        JobSchedule { job: ScheduledJob::LiftNotifyDaily, cron: parse_cron("c", cron).expect("cron"), tz }
    }

    #[test]
    fn a_daily_job_fires_at_local_time() {
        // 01:00 in Shanghai is 17:00 UTC the day before.
        let s = schedule("0 0 1 * * *", chrono_tz::Asia::Shanghai);
        let after = Utc.with_ymd_and_hms(2026, 11, 24, 16, 59, 0).single().expect("t");
        let upto = Utc.with_ymd_and_hms(2026, 11, 24, 17, 1, 0).single().expect("t");
        assert_eq!(s.last_fire(after, upto), Utc.with_ymd_and_hms(2026, 11, 24, 17, 0, 0).single());
        let s = schedule("0 0 1 * * *", chrono_tz::UTC);
        assert_eq!(s.last_fire(after, upto), None);
    }

    #[test]
    fn the_latest_fire_in_the_window_is_taken_and_the_window_is_half_open() {
        let s = schedule("0 * * * * *", chrono_tz::UTC);
        let t = |m, sec| Utc.with_ymd_and_hms(2026, 1, 1, 0, m, sec).single().expect("t");
        assert_eq!(s.last_fire(t(0, 30), t(3, 10)), Some(t(3, 0)));
        assert_eq!(s.last_fire(t(3, 0), t(3, 59)), None, "a tick at the window's start belongs to the window before");
        assert_eq!(s.last_fire(t(2, 59), t(3, 0)), Some(t(3, 0)));
    }
}
