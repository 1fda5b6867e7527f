//! The sweep: the database is the source of truth, so deliveries that are due but held by
//! nobody (a lost queue message, a worker killed mid-attempt) are queued again.

use chrono::Utc;
use domain::deliveries::DeliveryService;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Every `every`, re-queues deliveries that are due and held by nobody.
pub async fn run_sweeper(service: DeliveryService, every: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {
                match service.sweep(Utc::now()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(requeued = n, "delivery sweep"),
                    Err(e) => tracing::warn!(error = ?e, "delivery sweep failed"),
                }
            }
        }
    }
}
