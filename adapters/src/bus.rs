//! The change bus behind subscriptions: an in-process broadcast, fed through Redis pub/sub
//! when Redis is configured so that every server process sees every change.

use domain::bus::{BusEvent, EventBus};
use futures::StreamExt;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

const CHANNEL: &str = "linkyard:bus";
const CAPACITY: usize = 4096;

/// In-process broadcast, optionally relayed through Redis.
#[derive(Clone)]
pub struct Bus {
    tx: broadcast::Sender<BusEvent>,
    redis: Option<redis::aio::ConnectionManager>,
}

impl Bus {
    /// A bus local to this process.
    pub fn local() -> Self {
        let (tx, _) = broadcast::channel(CAPACITY);
        Self { tx, redis: None }
    }

    /// A bus relayed through Redis: publishes go to Redis, and a listener task (stopped by
    /// `shutdown`) feeds every message from Redis — ours included — into the local broadcast.
    ///
    /// # Errors
    /// When the URL is invalid.
    pub fn redis(url: &str, conn: redis::aio::ConnectionManager, shutdown: CancellationToken) -> anyhow::Result<Self> {
        let (tx, _) = broadcast::channel(CAPACITY);
        let client = redis::Client::open(url)?;
        let local = tx.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    r = listen(&client, &local) => {
                        if let Err(e) = r {
                            tracing::warn!(error = %e, "bus: redis subscription lost, reconnecting");
                        }
                    }
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        });
        Ok(Self { tx, redis: Some(conn) })
    }

    /// A receiver of every change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<BusEvent> {
        self.tx.subscribe()
    }
}

async fn listen(client: &redis::Client, local: &broadcast::Sender<BusEvent>) -> anyhow::Result<()> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(CHANNEL).await?;
    let mut stream = pubsub.on_message();
    while let Some(msg) = stream.next().await {
        match serde_json::from_slice::<BusEvent>(msg.get_payload_bytes()) {
            Ok(ev) => {
                let _ = local.send(ev);
            }
            Err(e) => tracing::warn!(error = %e, "bus: unreadable message"),
        }
    }
    anyhow::bail!("subscription stream ended")
}

impl EventBus for Bus {
    fn publish(&self, event: BusEvent) {
        match &self.redis {
            None => {
                let _ = self.tx.send(event);
            }
            Some(conn) => {
                let mut conn = conn.clone();
                let local = self.tx.clone();
                tokio::spawn(async move {
                    let sent = match serde_json::to_vec(&event) {
                        Ok(payload) => redis::cmd("PUBLISH")
                            .arg(CHANNEL)
                            .arg(payload)
                            .query_async::<i64>(&mut conn)
                            .await
                            .map_err(anyhow::Error::from),
                        Err(e) => Err(e.into()),
                    };
                    if let Err(e) = sent {
                        // Redis is down: at least this process's subscribers hear of it.
                        tracing::warn!(error = %e, "bus: redis publish failed, delivering locally");
                        let _ = local.send(event);
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::bus::Change;
    use domain::ids::{DeviceId, TenantId};

    #[tokio::test]
    async fn local_bus_delivers_to_subscribers() {
        let bus = Bus::local();
        let mut rx = bus.subscribe();
        let ev = BusEvent { tenant_id: TenantId::new(), change: Change::DeviceChanged { device_id: DeviceId::new() } };
        bus.publish(ev);
        assert_eq!(rx.recv().await.ok(), Some(ev));
    }
}
