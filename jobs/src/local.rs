//! The in-process queue: timers hold scheduled ids until their time, a bounded pool of
//! workers runs them. What a crash loses (timers, queued ids) the sweep finds again in the
//! database, so nothing waits forever.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::DomainResult;
use domain::deliveries::{DeliveryQueue, DeliveryService};
use domain::ids::DeliveryId;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

/// A `DeliveryQueue` in this process.
#[derive(Clone)]
pub struct LocalQueue {
    tx: mpsc::UnboundedSender<DeliveryId>,
    shutdown: CancellationToken,
}

impl LocalQueue {
    /// The queue and the receiving end its worker reads.
    pub fn new(shutdown: CancellationToken) -> (Self, mpsc::UnboundedReceiver<DeliveryId>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx, shutdown }, rx)
    }
}

#[async_trait]
impl DeliveryQueue for LocalQueue {
    async fn schedule(&self, id: DeliveryId, at: DateTime<Utc>) -> DomainResult<()> {
        let wait = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        if wait.is_zero() {
            return self
                .tx
                .send(id)
                .map_err(|_| domain::DomainError::Unknown(anyhow::anyhow!("the delivery queue is closed")));
        }
        let tx = self.tx.clone();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(wait) => { let _ = tx.send(id); }
            }
        });
        Ok(())
    }
}

/// Runs queued deliveries, at most `concurrency` at once, until `shutdown`; then lets the
/// attempts in flight finish.
pub async fn run_worker(
    mut rx: mpsc::UnboundedReceiver<DeliveryId>,
    service: DeliveryService,
    concurrency: usize,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    loop {
        let id = tokio::select! {
            () = shutdown.cancelled() => break,
            id = rx.recv() => match id { Some(id) => id, None => break },
        };
        let Ok(permit) = permits.clone().acquire_owned().await else { break };
        let service = service.clone();
        tokio::spawn(async move {
            if let Err(e) = service.run(id).await {
                tracing::error!(error = ?e, delivery_id = %id, "delivery attempt failed to run");
            }
            drop(permit);
        });
    }
    // Wait for the attempts in flight.
    let _ = permits.acquire_many(u32::try_from(concurrency.max(1)).unwrap_or(u32::MAX)).await;
}

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
