//! The Huzhou live-subscription ticker (seed 000 7.4/7.5, issue 6): the schedule is cut
//! into slots of `every` (100 ms by default); one loop per worker process takes each slot
//! `LEAD` before it starts and hands it to a task that claims it (one process sends a
//! slot), reads its pushes and sends them, batched per integration, when they are due.
//! Slots do not wait for each other's sends, and the loop takes every slot in turn, so a
//! slow slot neither delays nor skips the next one; at most `SLOTS_IN_FLIGHT` run at once.

use adapters::vendors::huzhou::HuzhouService;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// How long before its start a slot's pushes are read, so that they leave on time. Below
/// the shortest interval (1 s), so a slot read early never misses a subscription's next push.
const LEAD: Duration = Duration::from_millis(500);
/// Slots whose pushes may be read or sent at once (30 s of 100-ms slots).
const SLOTS_IN_FLIGHT: usize = 300;
/// Behind by more than this (a stalled process), the loop goes on from now; the other
/// workers, or the elevators' next rhythm, cover the gap.
const MAX_BEHIND: Duration = Duration::from_secs(3);
/// How often lapsed subscriptions, old slot claims and expired inbound tokens are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Ticks until `shutdown`; `every` is the length of a slot (10 ms to 1 s).
pub async fn run_live_ticker(service: HuzhouService, every: Duration, shutdown: CancellationToken) {
    let slot = ms(every.clamp(Duration::from_millis(10), Duration::from_secs(1)));
    let in_flight = Arc::new(Semaphore::new(SLOTS_IN_FLIGHT));
    let mut next = now_ms().div_euclid(slot) * slot;
    let mut pruned = tokio::time::Instant::now();
    tracing::debug!(slot_ms = slot, "huzhou live ticker started");
    loop {
        let wait = next - ms(LEAD) - now_ms();
        if wait > 0 {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(wait.unsigned_abs())) => {}
            }
        }
        let now = now_ms();
        if now - next > ms(MAX_BEHIND) {
            tracing::warn!(behind_ms = now - next, "huzhou live ticker fell behind; going on from now");
            next = now.div_euclid(slot) * slot;
        }
        let permit = tokio::select! {
            () = shutdown.cancelled() => return,
            p = in_flight.clone().acquire_owned() => p.ok(),
        };
        let (svc, at) = (service.clone(), next);
        tokio::spawn(async move {
            let _permit = permit;
            match svc.live_slot(at, slot).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::debug!(slot_ms = at, requests = n, "huzhou live slot sent");
                    metrics::counter!("linkyard_huzhou_live_pushes_total").increment(n as u64);
                }
                Err(e) => tracing::warn!(error = %e, slot_ms = at, "huzhou live slot failed"),
            }
        });
        next += slot;
        if pruned.elapsed() >= PRUNE_EVERY {
            pruned = tokio::time::Instant::now();
            let svc = service.clone();
            tokio::spawn(async move {
                if let Err(e) = svc.prune(chrono::Utc::now()).await {
                    tracing::debug!(error = %e, "pruning huzhou subscriptions");
                }
            });
        }
    }
}
