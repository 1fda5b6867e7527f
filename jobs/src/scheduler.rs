//! Periodic jobs on apalis-cron: every worker process runs one cron worker that ticks on
//! the same wall-clock seconds; each tick asks the scheduler what is due, and the
//! scheduler's run table lets exactly one process run each (job, integration, tick).

use apalis::prelude::*;
use apalis_cron::{CronScheduler, Tick};
use domain::schedules::SchedulerService;
use std::str::FromStr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How far back each tick looks for schedule fire times: longer than a tick, so a tick
/// that ran late (a busy process) or a process restart inside it misses nothing.
#[derive(Debug, Clone, Copy)]
struct Lookback(Duration);

/// A cron text that fires every `every` seconds (1..=59, a divisor of 60 for even ticks).
fn every_seconds(every: Duration) -> String {
    let s = every.as_secs().clamp(1, 59);
    format!("*/{s} * * * * *")
}

/// The scheduler reads the time from its clock; the cron tick only wakes it.
async fn on_tick(_tick: Tick, scheduler: Data<SchedulerService>, lookback: Data<Lookback>) -> Result<(), BoxDynError> {
    let Lookback(window) = *lookback;
    match scheduler.tick(window).await {
        Ok(won) => tracing::debug!(won, "scheduler ticked"),
        // The next tick looks back over this one; nothing is lost by waiting.
        Err(e) => tracing::warn!(error = %e, "scheduler tick failed"),
    }
    match scheduler.queue_depth().await {
        Ok(depth) => crate::metrics::record_depth(&depth),
        Err(e) => tracing::debug!(error = %e, "reading the queue depth"),
    }
    Ok(())
}

/// Ticks every `every` until `shutdown`.
///
/// # Errors
/// When the cron worker cannot start.
pub async fn run_scheduler(
    scheduler: SchedulerService,
    every: Duration,
    name: String,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let schedule = cron::Schedule::from_str(&every_seconds(every))?;
    // Three ticks of lookback, at least a minute: covers a late tick and a quick restart.
    let lookback = Lookback((every * 3).max(Duration::from_secs(60)));
    WorkerBuilder::new(name)
        .backend(CronScheduler::new(schedule))
        .data(scheduler)
        .data(lookback)
        .build(on_tick)
        .run_until(async move {
            shutdown.cancelled().await;
            Ok::<(), std::io::Error>(())
        })
        .await
        .map_err(|e| anyhow::anyhow!("scheduler: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_schedules_parse() {
        for s in [1, 5, 15, 30, 120] {
            assert!(cron::Schedule::from_str(&every_seconds(Duration::from_secs(s))).is_ok(), "{s}");
        }
    }
}
