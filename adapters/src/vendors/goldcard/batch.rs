//! 2001 readings applied in batches: a DAS reports many meters at once, and each report
//! costs the same dozen round trips to the database whatever else is in flight. Reports
//! stored by the pipeline queue here; a worker takes every report queued (up to
//! [`MAX_BATCH`]) and applies them with `IngestService::apply_meter_reports`, one unit per
//! integration, in a fixed number of round trips. A batch that fails is applied again
//! report by report, so one bad report fails alone. Under light load a batch is one report.

use super::wire::{Reading, shanghai_to_utc};
use super::{ReadingAnswer, map, reading_answer};
use domain::devices::Device;
use domain::ids::{InboundEventId, IntegrationId, TenantId};
use domain::ingest::{IngestService, MeterOutcome, MeterReport};
use domain::{DomainError, DomainResult};
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// The most reports applied in one unit.
pub const MAX_BATCH: usize = 128;
/// Workers applying batches side by side, each on its own database connection; a meter's
/// reports all go to the same worker (in their order), so the workers' batches share no
/// meter. One is enough on two cores: its batches grow with the load (measured with
/// `benches/gas_reports.rs`: two workers made smaller batches and no more reports).
const WORKERS: usize = 1;

/// Builds a report's answer from its meter and what billing came to.
pub(crate) type Body = Arc<dyn Fn(&Device, ReadingAnswer) -> Value + Send + Sync>;

/// One stored 2001 waiting to be applied.
pub(crate) struct Queued {
    pub tenant: TenantId,
    pub integration: IntegrationId,
    pub event: InboundEventId,
    pub reading: Box<Reading>,
    pub body: Body,
    pub reply: oneshot::Sender<DomainResult<MeterOutcome>>,
}

/// The queues of 2001 readings, one per worker; the workers stop when the last handle is
/// dropped.
#[derive(Clone)]
pub(crate) struct Batcher {
    queues: Arc<Vec<mpsc::UnboundedSender<Queued>>>,
}

impl Batcher {
    pub fn start(ingest: IngestService) -> Self {
        let mut queues = Vec::with_capacity(WORKERS);
        for _ in 0..WORKERS {
            let (tx, mut rx) = mpsc::unbounded_channel::<Queued>();
            queues.push(tx);
            let ingest = ingest.clone();
            tokio::spawn(async move {
                while let Some(first) = rx.recv().await {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH
                        && let Ok(q) = rx.try_recv()
                    {
                        batch.push(q);
                    }
                    apply(&ingest, batch).await;
                }
            });
        }
        Self { queues: Arc::new(queues) }
    }

    /// Queues a stored 2001 and waits for it to be applied.
    ///
    /// # Errors
    /// What applying it returned; `Unknown` when the workers are gone (shutting down).
    pub async fn submit(
        &self,
        q: impl FnOnce(oneshot::Sender<DomainResult<MeterOutcome>>) -> Queued,
    ) -> DomainResult<MeterOutcome> {
        use std::hash::{Hash, Hasher};
        let (reply, answer) = oneshot::channel();
        let gone = || DomainError::Unknown(anyhow::anyhow!("the gas reading workers stopped"));
        let q = q(reply);
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (q.integration, &q.reading.head.meter_no).hash(&mut h);
        let worker = usize::try_from(h.finish() % (self.queues.len() as u64)).unwrap_or(0);
        self.queues[worker].send(q).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// A 2001 as a meter report: status, readings, then the registers to bill (days the
/// meter could not report first, each at its own date, then the reading).
fn report(q: &Queued) -> MeterReport {
    let r = &q.reading;
    let (status, readings) = map::observed(r);
    let reference = format!("2001:{}", r.head.serial_no);
    let mut totals = Vec::new();
    for (day, total) in &r.add_gas {
        if let Some(at) = day.and_hms_opt(0, 0, 0).and_then(shanghai_to_utc) {
            totals.push((*total, at, format!("{reference}:{day}")));
        }
    }
    totals.push((r.read_num, r.read_at, reference));
    MeterReport { event: q.event, external_id: r.head.meter_no.clone(), status, readings, totals }
}

async fn apply(ingest: &IngestService, batch: Vec<Queued>) {
    // One unit per integration.
    let mut groups: Vec<Vec<Queued>> = Vec::new();
    for q in batch {
        match groups.iter_mut().find(|g| g[0].integration == q.integration && g[0].tenant == q.tenant) {
            Some(g) => g.push(q),
            None => groups.push(vec![q]),
        }
    }
    for group in groups {
        let reports: Vec<MeterReport> = group.iter().map(report).collect();
        let bodies: Vec<Body> = group.iter().map(|q| q.body.clone()).collect();
        let answer = |i: usize, d: &Device, bills: &[domain::tariffs::MeterBill]| bodies[i](d, reading_answer(bills));
        let (tenant, integration) = (group[0].tenant, group[0].integration);
        match ingest.apply_meter_reports(tenant, integration, &reports, &answer).await {
            Ok(outcomes) => {
                for (q, o) in group.into_iter().zip(outcomes) {
                    let _ = q.reply.send(Ok(o));
                }
            }
            Err(e) if group.len() > 1 => {
                tracing::warn!(error = ?e, reports = group.len(), "a batch of gas readings failed; applying them one by one");
                for (q, r) in group.into_iter().zip(reports) {
                    let body = q.body.clone();
                    let one =
                        |_: usize, d: &Device, bills: &[domain::tariffs::MeterBill]| body(d, reading_answer(bills));
                    let out = ingest.apply_meter_reports(tenant, integration, std::slice::from_ref(&r), &one).await;
                    let _ = q.reply.send(out.map(|mut o| o.remove(0)));
                }
            }
            Err(e) => {
                if let Some(q) = group.into_iter().next() {
                    let _ = q.reply.send(Err(e));
                }
            }
        }
    }
}
