//! Group commit: concurrent calls that each write one small row are written together, one
//! statement per batch, instead of one round trip (and one commit) each. A call waits for
//! its own batch's statement, so it sees the same result and durability as a lone write.
//! At low load a batch holds one item and nothing waits longer than before; under load,
//! what queues while the statements in flight run goes into the next one.
//!
//! A batch that fails as a whole (one bad row fails the statement on PostgreSQL) is written
//! again item by item, so one caller's bad row fails that caller only, never the others
//! (other tenants') that happened to share its statement.

use domain::{DomainError, DomainResult};
use futures::future::BoxFuture;
use std::sync::{Arc, OnceLock};
use tokio::sync::{Semaphore, mpsc, oneshot};

/// A batch's write: one result per item, in the items' order.
pub type Flush<I, O> = Arc<dyn Fn(Vec<I>) -> BoxFuture<'static, DomainResult<Vec<DomainResult<O>>>> + Send + Sync>;

struct Job<I, O> {
    item: I,
    reply: oneshot::Sender<DomainResult<O>>,
}

/// Batches items for `flush`, which answers one result per item, in order.
pub struct Batcher<I, O> {
    tx: OnceLock<mpsc::Sender<Job<I, O>>>,
    flush: Flush<I, O>,
    max: usize,
    parallel: usize,
}

impl<I: Clone + Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// At most `max` items per statement and `parallel` statements at once.
    pub fn new(max: usize, parallel: usize, flush: Flush<I, O>) -> Self {
        Self { tx: OnceLock::new(), flush, max: max.max(1), parallel: parallel.max(1) }
    }

    /// Writes `item` with whatever else is waiting; its own result.
    ///
    /// # Errors
    /// The item's error from `flush`, or `Unknown` when its batch failed as a whole.
    pub async fn submit(&self, item: I) -> DomainResult<O> {
        // Started on first use, inside the runtime that serves the calls.
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::channel(self.max * self.parallel * 4);
            tokio::spawn(run(rx, self.flush.clone(), self.max, self.parallel));
            tx
        });
        let (reply, answer) = oneshot::channel();
        tx.send(Job { item, reply }).await.map_err(|_| lost())?;
        answer.await.map_err(|_| lost())?
    }
}

fn lost() -> DomainError {
    DomainError::Unknown(anyhow::anyhow!("the batch writer stopped"))
}

async fn run<I: Clone + Send + 'static, O: Send + 'static>(
    mut rx: mpsc::Receiver<Job<I, O>>,
    flush: Flush<I, O>,
    max: usize,
    parallel: usize,
) {
    let slots = Arc::new(Semaphore::new(parallel));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let Some(first) = rx.recv().await else { return };
        let mut jobs = vec![first];
        while jobs.len() < max {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let flush = flush.clone();
        tokio::spawn(async move {
            let (items, replies): (Vec<I>, Vec<_>) = jobs.into_iter().map(|j| (j.item, j.reply)).unzip();
            let n = items.len();
            // Kept to write them one by one should the batch fail as a whole.
            let copies = (n > 1).then(|| items.clone());
            match flush(items).await {
                Ok(results) if results.len() == n => {
                    for (reply, r) in replies.into_iter().zip(results) {
                        let _ = reply.send(r);
                    }
                }
                Ok(results) => {
                    let e = format!("a batch of {n} answered {} results", results.len());
                    for reply in replies {
                        let _ = reply.send(Err(DomainError::Unknown(anyhow::anyhow!("{e}"))));
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, items = n, "a batched write failed");
                    if let Some(copies) = copies {
                        for (item, reply) in copies.into_iter().zip(replies) {
                            let alone = match flush(vec![item]).await {
                                Ok(mut r) if r.len() == 1 => r.pop().unwrap_or_else(|| Err(lost())),
                                Ok(_) => Err(DomainError::Unknown(anyhow::anyhow!("a lone write answered no result"))),
                                Err(e) => Err(DomainError::Unknown(anyhow::anyhow!("write: {e}"))),
                            };
                            let _ = reply.send(alone);
                        }
                    } else {
                        let e = e.to_string();
                        for reply in replies {
                            let _ = reply.send(Err(DomainError::Unknown(anyhow::anyhow!("batched write: {e}"))));
                        }
                    }
                }
            }
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_items_share_statements_and_get_their_own_results() {
        let statements = Arc::new(AtomicUsize::new(0));
        let counted = statements.clone();
        let b: Arc<Batcher<u32, u32>> = Arc::new(Batcher::new(
            16,
            1,
            Arc::new(move |items: Vec<u32>| {
                counted.fetch_add(1, Ordering::SeqCst);
                Box::pin(async move {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    Ok(items
                        .into_iter()
                        .map(|i| if i == 7 { Err(DomainError::NotFound("seven")) } else { Ok(i * 10) })
                        .collect())
                })
            }),
        ));
        let calls = (0..64u32).map(|i| {
            let b = b.clone();
            tokio::spawn(async move { (i, b.submit(i).await) })
        });
        for c in futures::future::join_all(calls).await {
            let (i, r) = c.expect("task");
            match r {
                Ok(v) => assert_eq!(v, i * 10),
                Err(e) => assert!(i == 7 && matches!(e, DomainError::NotFound("seven")), "{i}: {e:?}"),
            }
        }
        let n = statements.load(Ordering::SeqCst);
        assert!((4..64).contains(&n), "64 items in {n} statements");
    }

    #[tokio::test]
    async fn a_failed_batch_fails_each_of_its_items() {
        let b: Batcher<u32, u32> = Batcher::new(
            8,
            2,
            Arc::new(|_items: Vec<u32>| Box::pin(async { Err(DomainError::Unknown(anyhow::anyhow!("down"))) })),
        );
        assert!(matches!(b.submit(1).await, Err(DomainError::Unknown(_))));
    }

    #[tokio::test]
    async fn one_bad_item_fails_itself_only_not_the_batch_it_shared() {
        // A store that refuses any statement holding item 7, as PostgreSQL refuses a whole
        // multi-row insert for one bad row.
        let b: Arc<Batcher<u32, u32>> = Arc::new(Batcher::new(
            16,
            1,
            Arc::new(|items: Vec<u32>| {
                Box::pin(async move {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    if items.contains(&7) {
                        return Err(DomainError::Unknown(anyhow::anyhow!("value too long")));
                    }
                    Ok(items.into_iter().map(|i| Ok(i * 10)).collect())
                })
            }),
        ));
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..32u32 {
            let b = b.clone();
            calls.spawn(async move { (i, b.submit(i).await) });
        }
        let mut failed = Vec::new();
        while let Some(Ok((i, r))) = calls.join_next().await {
            match r {
                Ok(v) => assert_eq!(v, i * 10),
                Err(_) => failed.push(i),
            }
        }
        assert_eq!(failed, vec![7]);
    }
}
