//! The Huzhou live-subscription ticker (seed 000 7.4/7.5): one loop per worker process
//! ticks every `every` (100 ms by default) and sends every push due at that tick, batched
//! per integration; the claim in storage makes each push go out from one process only.

use domain::huzhou::HuzhouService;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often lapsed subscriptions and expired inbound tokens are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Ticks until `shutdown`.
pub async fn run_live_ticker(service: HuzhouService, every: Duration, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(every.max(Duration::from_millis(10)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut pruned = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let now = chrono::Utc::now();
        match service.live_tick(now).await {
            Ok(0) => {}
            Ok(n) => metrics::counter!("linkyard_huzhou_live_pushes_total").increment(n as u64),
            Err(e) => tracing::warn!(error = %e, "huzhou live tick failed"),
        }
        if pruned.elapsed() >= PRUNE_EVERY {
            pruned = tokio::time::Instant::now();
            if let Err(e) = service.prune(now).await {
                tracing::debug!(error = %e, "pruning huzhou subscriptions");
            }
        }
    }
}
