//! The inbound backlog: where stored hook requests wait when a burst outruns applying them
//! before their answer (protocols whose requests carry a lane, such as Dingding's
//! callbacks). Requests of one lane are applied in arrival order; a request left RECEIVED by
//! a stopped process is claimed by the sweep (`stale_after`) and applied, once (the
//! protocols apply facts and finish the event in one unit of work).

use adapters::vendors::inbound::{InboundProtocol, Opened, Outcome, Work};
use domain::events::{EventState, InboundEvent, InboundEventService, Replay};
use domain::ids::InboundEventId;
use domain::integrations::IntegrationService;
use domain::{Actor, DomainError, DomainResult};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

/// Requests applied before their answer at once, at most.
const INLINE: usize = 4;
/// Lanes applying the backlog (each in order) on PostgreSQL: one per core, from 2 to 8.
/// A lane takes what waits in it as one batch, so fewer lanes write bigger batches: on
/// the 2-core bench machine 20,000 Dingding callbacks were accepted at 3,941/s and all
/// processed in 5.6 s with 8 lanes (11 callbacks a batch), 6,194-8,007/s and 3.1-3.7 s
/// with 2 (40 a batch; 4 lanes: 5,450-6,384/s). SQLite has one writer: 2 lanes.
const MIN_LANES: usize = 2;
const MAX_LANES: usize = 8;
const SQLITE_LANES: usize = 2;
/// Past this many waiting, requests wait for an inline slot again (the backlog is bounded
/// in memory; the vendor's sender slows down with our answers).
const MAX_BACKLOG: usize = 100_000;
/// Requests a lane takes from its backlog at once (written in as few units as their
/// protocol allows, `InboundProtocol::apply_batch`).
const BATCH: usize = 64;
/// Stale events claimed per sweep round.
const SWEEP_BATCH: u64 = 500;

/// A stored request to apply.
pub struct Pending {
    pub protocol: Arc<dyn InboundProtocol>,
    pub hook: Opened,
    pub event: InboundEvent,
    pub lane: String,
    pub work: Work,
}

/// Where a stored request is applied.
pub enum Route {
    /// In the backlog: answer now.
    Deferred,
    /// Here, before the answer, under its inline slot (none when the backlog is full).
    Inline(Box<Pending>, Option<OwnedSemaphorePermit>),
}

/// Applies a stored request and finishes its event unless the protocol did.
///
/// # Returns
/// The outcome and the protocol's answer.
pub async fn apply(
    events: &InboundEventService,
    p: Pending,
    duplicate: bool,
) -> (Outcome, adapters::vendors::inbound::HookAnswer) {
    let (outcome, answer) = p.protocol.apply(&p.hook, &p.event, duplicate, p.work).await;
    settle(events, &*p.protocol, &p.event, duplicate, &outcome, &answer).await;
    (outcome, answer)
}

/// What `apply` does after the protocol applied a request: its event's final state and
/// answer, unless the protocol wrote them with the facts.
async fn settle(
    events: &InboundEventService,
    protocol: &dyn InboundProtocol,
    event: &InboundEvent,
    duplicate: bool,
    outcome: &Outcome,
    answer: &adapters::vendors::inbound::HookAnswer,
) {
    let again = !duplicate || event.state == EventState::Failed;
    if !outcome.finished
        && again
        && let Err(e) = events.finish(event.tenant_id, event.id, outcome.state, outcome.note.clone()).await
    {
        tracing::error!(error = ?e, inbound_event_id = %event.id, "recording an inbound event's outcome");
    }
    if protocol.keeps_answer()
        && !outcome.answer_kept
        && outcome.state == EventState::Processed
        && event.answer.is_none()
        && let Err(e) = events.keep_answer(event.tenant_id, event.id, &answer.body).await
    {
        tracing::error!(error = ?e, inbound_event_id = %event.id, "keeping an inbound event's answer");
    }
    crate::metrics::inbound_applied(protocol.protocol(), outcome.state);
}

/// Applies a lane's batch in order: consecutive requests of one protocol and integration
/// go to the protocol together (`InboundProtocol::apply_batch`), a single one as `apply`.
async fn apply_all(events: &InboundEventService, batch: Vec<Pending>) {
    let mut rest = batch.into_iter().peekable();
    while let Some(first) = rest.next() {
        let (protocol, integration) = (first.protocol.clone(), first.event.integration_id);
        let same = |p: &Pending| Arc::ptr_eq(&p.protocol, &protocol) && p.event.integration_id == integration;
        let mut run = vec![first];
        while let Some(p) = rest.next_if(|p| same(p)) {
            run.push(p);
        }
        if run.len() == 1 {
            if let Some(p) = run.pop() {
                apply(events, p, false).await;
            }
            continue;
        }
        let Some(hook) = run.first().map(|p| p.hook.clone()) else { continue };
        let mut stored = Vec::with_capacity(run.len());
        let mut works = Vec::with_capacity(run.len());
        for p in run {
            let Pending { event, work, .. } = p;
            stored.push(event);
            works.push(work);
        }
        let items = stored.iter().zip(works).collect();
        let results = protocol.apply_batch(&hook, items).await;
        for (event, (outcome, answer)) in stored.iter().zip(results) {
            settle(events, &*protocol, event, false, &outcome, &answer).await;
        }
    }
}

/// See the module doc.
pub struct Backlog {
    /// SQLite has one writer: requests write one after the other (in arrival order)
    /// instead of failing on a busy database. `None` on PostgreSQL.
    writer: Option<Arc<Semaphore>>,
    inline: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    lanes: Vec<mpsc::UnboundedSender<Box<Pending>>>,
    events: InboundEventService,
    integrations: IntegrationService,
    protocols: Vec<Arc<dyn InboundProtocol>>,
    stale_after: Duration,
}

impl Backlog {
    /// Starts the lanes and the sweep (every `sweep_every`); they stop with `shutdown`.
    pub fn start(
        events: InboundEventService,
        integrations: IntegrationService,
        protocols: Vec<Arc<dyn InboundProtocol>>,
        sqlite: bool,
        stale_after: Duration,
        sweep_every: Duration,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let writer = sqlite.then(|| Arc::new(Semaphore::new(1)));
        let waiting = Arc::new(AtomicUsize::new(0));
        let cores = std::thread::available_parallelism().map_or(MIN_LANES, std::num::NonZeroUsize::get);
        let count = if sqlite { SQLITE_LANES } else { cores.clamp(MIN_LANES, MAX_LANES) };
        let mut lanes = Vec::with_capacity(count);
        for _ in 0..count {
            let (tx, mut rx) = mpsc::unbounded_channel::<Box<Pending>>();
            let (events, waiting, shutdown, writer) =
                (events.clone(), waiting.clone(), shutdown.clone(), writer.clone());
            tokio::spawn(async move {
                loop {
                    let pending = tokio::select! {
                        () = shutdown.cancelled() => return,
                        p = rx.recv() => match p { Some(p) => p, None => return },
                    };
                    let mut batch = vec![*pending];
                    while batch.len() < BATCH {
                        match rx.try_recv() {
                            Ok(p) => batch.push(*p),
                            Err(_) => break,
                        }
                    }
                    let n = batch.len();
                    let turn = match &writer {
                        Some(w) => w.clone().acquire_owned().await.ok(),
                        None => None,
                    };
                    apply_all(&events, batch).await;
                    drop(turn);
                    waiting.fetch_sub(n, Ordering::AcqRel);
                }
            });
            lanes.push(tx);
        }
        let backlog = Arc::new(Self {
            writer,
            inline: Arc::new(Semaphore::new(INLINE)),
            waiting,
            lanes,
            events,
            integrations,
            protocols,
            stale_after,
        });
        let sweeper = backlog.clone();
        tokio::spawn(async move {
            let sweeper = &sweeper;
            adapters::ticks::every(sweep_every, &shutdown, || async move {
                if let Err(e) = sweeper.sweep(chrono::Utc::now()).await {
                    tracing::warn!(error = %e, "sweeping stale inbound events");
                }
            })
            .await;
        });
        backlog
    }

    /// Inline while nothing waits and a slot is free (or the backlog is full); else the
    /// backlog.
    pub fn inline_or_defer(&self, p: Box<Pending>) -> Route {
        let waiting = self.waiting.load(Ordering::Acquire);
        if waiting == 0 || waiting >= MAX_BACKLOG {
            if let Ok(slot) = self.inline.clone().try_acquire_owned() {
                return Route::Inline(p, Some(slot));
            }
            if waiting >= MAX_BACKLOG {
                return Route::Inline(p, None);
            }
        }
        match self.defer(p) {
            Ok(()) => Route::Deferred,
            Err(p) => Route::Inline(p, None),
        }
    }

    /// Into the backlog, behind what waits in its lane. `Err`: the backlog has stopped
    /// (shutdown); apply it here.
    pub fn defer(&self, p: Box<Pending>) -> Result<(), Box<Pending>> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        p.lane.hash(&mut h);
        let lane = usize::try_from(h.finish() % self.lanes.len() as u64).unwrap_or(0);
        self.waiting.fetch_add(1, Ordering::AcqRel);
        self.lanes[lane].send(p).map_err(|e| {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            e.0
        })
    }

    /// The SQLite writer's turn (nothing to wait for on PostgreSQL).
    pub async fn writer(&self) -> Option<OwnedSemaphorePermit> {
        match &self.writer {
            Some(w) => w.clone().acquire_owned().await.ok(),
            None => None,
        }
    }

    /// Requests waiting in the backlog.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// `replayInboundEvent`: processes a stored event again from its stored body, through
    /// its protocol and the same apply path as a hook request, before answering; returns
    /// the event as it is then. What a replay does depends on the event's state
    /// ([`Replay`]): an applied event (PROCESSED) is answered as it is and nothing is
    /// written, so replaying it twice changes nothing; a FAILED or IGNORED one is reopened
    /// (of two concurrent replays, one) and applied.
    ///
    /// # Errors
    /// `Forbidden` unless operator or tenant admin; `NotFound` outside the tenant;
    /// `Invalid { field: "id" }` when its protocol cannot read stored events or its body no
    /// longer parses, or its integration is gone; `InvalidTransition` while it is RECEIVED.
    pub async fn replay(&self, actor: &Actor, id: InboundEventId) -> DomainResult<InboundEvent> {
        let event = self.events.get(actor, id).await?;
        let protocol = self
            .protocols
            .iter()
            .find(|p| p.reparse_supported() && p.owns(&event))
            .cloned()
            .ok_or_else(|| DomainError::invalid("id", format!("{} events cannot be replayed", event.protocol)))?;
        match event.state.replay() {
            Replay::AppliedBefore => return Ok(event),
            Replay::InProgress => {
                return Err(DomainError::InvalidTransition("RECEIVED: the event is still being processed".into()));
            }
            Replay::Again => {}
        }
        let (lane, work) =
            protocol.reparse(&event).ok_or_else(|| DomainError::invalid("id", "the stored body no longer parses"))?;
        let hook = match self.integrations.open_hook(event.integration_id).await? {
            Some((integration, credentials)) if integration.tenant_id == event.tenant_id => {
                Opened { integration, credentials }
            }
            _ => return Err(DomainError::invalid("id", "the event's integration is gone")),
        };
        let reopened = self.events.reopen(&event).await?;
        let pending = Pending { protocol, hook, event: reopened, lane: lane.unwrap_or_default(), work };
        // SQLite has one writer: applying waits its turn, as a hook request's does.
        let turn = self.writer().await;
        let (outcome, _) = apply(&self.events, pending, false).await;
        drop(turn);
        tracing::info!(inbound_event_id = %id, state = outcome.state.as_str(), "inbound event replayed");
        self.events.get(actor, id).await
    }

    /// Puts events stored before `now - stale_after` and still RECEIVED (their process
    /// stopped before applying them) into the backlog, for every protocol that can read its
    /// stored events again.
    ///
    /// # Errors
    /// When they cannot be claimed.
    pub async fn sweep(&self, now: chrono::DateTime<chrono::Utc>) -> DomainResult<usize> {
        let before = now - chrono::Duration::from_std(self.stale_after).unwrap_or(chrono::Duration::minutes(10));
        let mut n = 0;
        for protocol in &self.protocols {
            if protocol.reparse_supported() {
                n += self.sweep_protocol(protocol, before).await?;
            }
        }
        Ok(n)
    }

    async fn sweep_protocol(
        &self,
        protocol: &Arc<dyn InboundProtocol>,
        before: chrono::DateTime<chrono::Utc>,
    ) -> DomainResult<usize> {
        let mut stale = self.events.claim_stale(protocol.protocol(), before, SWEEP_BATCH).await?;
        // In the order they came: a lane applies them in this order.
        stale.sort_by_key(|e| (e.received_at, e.id.as_uuid()));
        let n = stale.len();
        for event in stale {
            // Claimed by `protocol` name; applied by the protocol whose event it is.
            let protocol = self.protocols.iter().find(|p| p.owns(&event)).unwrap_or(protocol);
            let Some((lane, work)) = protocol.reparse(&event) else {
                let why = Some("the stored body no longer parses".to_owned());
                self.events.finish(event.tenant_id, event.id, EventState::Ignored, why).await?;
                continue;
            };
            let hook = match self.integrations.open_hook(event.integration_id).await? {
                Some((integration, credentials)) => Opened { integration, credentials },
                None => {
                    let why = Some("its integration is gone".to_owned());
                    self.events.finish(event.tenant_id, event.id, EventState::Ignored, why).await?;
                    continue;
                }
            };
            let id = event.id;
            let pending =
                Box::new(Pending { protocol: protocol.clone(), hook, event, lane: lane.unwrap_or_default(), work });
            if self.defer(pending).is_err() {
                tracing::warn!(inbound_event_id = %id, "the inbound backlog stopped; left for the next sweep");
            }
        }
        Ok(n)
    }
}
