//! `POST /hooks/{integration_id}/dingding`: Dingding event and service callbacks (seed 002
//! sections 8, 9, 12, 13, 16). The sign is checked as pinned in `PROTOCOLS.md` 3b against
//! the integration's hook URL; a bad sign answers 401 and stores nothing. Then the raw body
//! is stored under its dedup key (event: uuid+event+time; service: serviceid+service),
//! processed once, and answered `{"ErrNo":0,"ErrMsg":"ok"}`, undocumented callbacks
//! included.
//!
//! A callback is processed before it is answered while processing keeps up. In a burst
//! that outruns it (more than `INLINE` at once), callbacks are answered once stored and
//! processed from a backlog, in arrival order per device; a callback left RECEIVED by a
//! stopped process is picked up by the backlog's sweep (`STALE_AFTER`).

use super::{HookRefusal, integration, record};
use crate::app::AppState;
use adapters::vendors::dingding::{Callback, DingdingService, Handled};
use adapters::vendors::dingding::{map, sign, wire};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use domain::DomainResult;
use domain::events::{EventState, InboundEventService};
use domain::ids::{InboundEventId, IntegrationId, TenantId};
use domain::integrations::{Integration, IntegrationKind};
use domain::ttl::{CONFIG_TTL, TtlCache};
use serde_json::{Value, json};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

pub fn router() -> Router<AppState> {
    Router::new().route("/hooks/{integration_id}/dingding", post(callback))
}

/// Dingding's own envelope.
fn answer(status: StatusCode, err_no: i64, msg: &str) -> Response {
    (status, axum::Json(wire::CallbackAnswer { err_no, err_msg: msg })).into_response()
}

/// The callback URL as registered: the one `hookUrl` shows.
pub fn hook_url(public_url: &str, integration: &domain::ids::IntegrationId) -> String {
    format!("{}/hooks/{integration}/dingding", public_url.trim_end_matches('/'))
}

/// Integrations seen recently: a burst of callbacks resolves its integration once (a
/// reconfiguration applies within `CONFIG_TTL`). The sign needs no credential.
fn seen() -> &'static TtlCache<String, Integration> {
    static SEEN: OnceLock<TtlCache<String, Integration>> = OnceLock::new();
    SEEN.get_or_init(|| TtlCache::new(CONFIG_TTL, 10_000))
}

async fn known(st: &AppState, id: &str) -> Result<Integration, HookRefusal> {
    if let Some(i) = seen().get(&id.to_owned()) {
        return Ok(i);
    }
    let (i, _) = integration(st, id, IntegrationKind::Dingding).await?;
    seen().put(id.to_owned(), i.clone());
    Ok(i)
}

async fn callback(State(st): State<AppState>, Path(id): Path<String>, body: Bytes) -> Response {
    let Ok(raw) = std::str::from_utf8(&body) else {
        return answer(StatusCode::BAD_REQUEST, 14001, "the body is not UTF-8");
    };
    let integration = match known(&st, &id).await {
        Ok(found) => found,
        Err(HookRefusal::UnknownIntegration) => return answer(StatusCode::NOT_FOUND, 15006, "unknown integration"),
        Err(HookRefusal::Internal) => return answer(StatusCode::INTERNAL_SERVER_ERROR, 15000, "internal error"),
    };
    let fields: Value = match serde_json::from_str(raw) {
        Ok(v @ Value::Object(_)) => v,
        _ => return answer(StatusCode::BAD_REQUEST, 14001, "the body must be a JSON object"),
    };
    let given = fields.get("sign").and_then(Value::as_str).unwrap_or_default();
    if !sign::verify(&hook_url(&st.config.public_url, &integration.id), raw, given) {
        return answer(StatusCode::UNAUTHORIZED, 15014, "missing or wrong sign");
    }
    let parsed: wire::CallbackBody = match serde_json::from_value(fields) {
        Ok(b) => b,
        Err(e) => return answer(StatusCode::BAD_REQUEST, 14001, &format!("malformed callback: {e}")),
    };
    let backlog = &st.dingding_backlog;
    let writer = backlog.writer().await;
    let name = map::callback_name(&parsed);
    let kind = if name.is_empty() { "unknown".to_owned() } else { name.clone() };
    let dedup = map::dedup_key(&parsed, raw);
    let stored = map::redacted(raw, &parsed);
    let recorded = record(&st, &integration, &kind, dedup, json!({}), &stored).await;
    drop(writer);
    let recorded = match recorded {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = ?e, integration_id = %integration.id, "storing a Dingding callback");
            // Not stored: Dingding sends it again.
            return answer(StatusCode::INTERNAL_SERVER_ERROR, 15000, "internal error");
        }
    };
    // A repeat is answered without processing it again, unless processing it failed
    // before (then Dingding's retry is the second chance).
    if recorded.duplicate && recorded.event.state != EventState::Failed {
        return answer(StatusCode::OK, 0, "ok");
    }
    let work = Box::new(Work {
        tenant: integration.tenant_id,
        integration: integration.id,
        event: recorded.event.id,
        lane: parsed.uuid.clone().unwrap_or_default(),
        name,
        callback: map::callback(&parsed),
    });
    let state = match backlog.inline_or_defer(work) {
        Route::Deferred => return answer(StatusCode::OK, 0, "ok"),
        Route::Inline(work, slot) => {
            let writer = backlog.writer().await;
            let state = process(&st.dingding, &st.events, *work).await;
            drop((slot, writer));
            state
        }
    };
    if state == EventState::Failed {
        // Stored, but not applied: a non-2xx answer makes Dingding send it again.
        return answer(StatusCode::INTERNAL_SERVER_ERROR, 15000, "internal error");
    }
    answer(StatusCode::OK, 0, "ok")
}

/// Where a stored callback is processed.
enum Route {
    /// In the backlog: answer now.
    Deferred,
    /// Here, before the answer, under its inline slot (none when the backlog is full).
    Inline(Box<Work>, Option<OwnedSemaphorePermit>),
}

/// A stored callback to process.
pub struct Work {
    tenant: TenantId,
    integration: IntegrationId,
    event: InboundEventId,
    /// Callbacks of one device are processed in order: its uuid picks their lane.
    lane: String,
    name: String,
    callback: Callback,
}

/// Applies a stored callback and records the outcome on its event.
async fn process(dingding: &DingdingService, events: &InboundEventService, w: Work) -> EventState {
    let (state, error) = match dingding.handle(w.tenant, w.integration, w.event, &w.name, w.callback).await {
        Ok(Handled::Processed) => (EventState::Processed, None),
        Ok(Handled::Ignored(why)) => (EventState::Ignored, Some(why)),
        Err(e) => {
            tracing::error!(error = ?e, inbound_event_id = %w.event, "processing a Dingding callback");
            (EventState::Failed, Some("processing failed".to_owned()))
        }
    };
    if let Err(e) = events.finish(w.tenant, w.event, state, error).await {
        tracing::error!(error = ?e, inbound_event_id = %w.event, "recording a Dingding callback's outcome");
    }
    state
}

/// Callbacks processed before their answer at once, at most.
const INLINE: usize = 4;
/// Lanes processing the backlog (each in order).
const LANES: usize = 2;
/// Past this many waiting, callbacks wait for an inline slot again (the backlog is bounded
/// in memory; Dingding's sender slows down with our answers).
const MAX_BACKLOG: usize = 100_000;
/// A callback still RECEIVED this long after it was stored was lost by a stopped process.
pub const STALE_AFTER: Duration = Duration::from_secs(600);
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Where callbacks wait when a burst outruns processing; see the module doc.
pub struct Backlog {
    /// SQLite has one writer: callbacks write one after the other (in arrival order)
    /// instead of failing on a busy database. `None` on PostgreSQL.
    writer: Option<Arc<Semaphore>>,
    inline: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    lanes: Vec<mpsc::UnboundedSender<Box<Work>>>,
}

impl Backlog {
    /// Starts the lanes and the sweep; they stop with `shutdown`.
    pub fn start(
        dingding: DingdingService,
        events: InboundEventService,
        sqlite: bool,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let writer = sqlite.then(|| Arc::new(Semaphore::new(1)));
        let waiting = Arc::new(AtomicUsize::new(0));
        let mut lanes = Vec::with_capacity(LANES);
        for _ in 0..LANES {
            let (tx, mut rx) = mpsc::unbounded_channel::<Box<Work>>();
            let (dingding, events, waiting, shutdown) =
                (dingding.clone(), events.clone(), waiting.clone(), shutdown.clone());
            let writer = writer.clone();
            tokio::spawn(async move {
                loop {
                    let work = tokio::select! {
                        () = shutdown.cancelled() => return,
                        w = rx.recv() => match w { Some(w) => w, None => return },
                    };
                    let turn = match &writer {
                        Some(w) => w.clone().acquire_owned().await.ok(),
                        None => None,
                    };
                    process(&dingding, &events, *work).await;
                    drop(turn);
                    waiting.fetch_sub(1, Ordering::AcqRel);
                }
            });
            lanes.push(tx);
        }
        let backlog = Arc::new(Self { writer, inline: Arc::new(Semaphore::new(INLINE)), waiting, lanes });
        let sweeper = backlog.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(SWEEP_EVERY);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                if let Err(e) = sweeper.sweep(&events, chrono::Utc::now()).await {
                    tracing::warn!(error = %e, "sweeping stale Dingding callbacks");
                }
            }
        });
        backlog
    }

    /// Inline while nothing waits and a slot is free (or the backlog is full); else the
    /// backlog.
    fn inline_or_defer(&self, work: Box<Work>) -> Route {
        let waiting = self.waiting.load(Ordering::Acquire);
        if waiting == 0 || waiting >= MAX_BACKLOG {
            if let Ok(slot) = self.inline.clone().try_acquire_owned() {
                return Route::Inline(work, Some(slot));
            }
            if waiting >= MAX_BACKLOG {
                return Route::Inline(work, None);
            }
        }
        match self.defer(work) {
            Ok(()) => Route::Deferred,
            Err(work) => Route::Inline(work, None),
        }
    }

    fn defer(&self, work: Box<Work>) -> Result<(), Box<Work>> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        work.lane.hash(&mut h);
        let lane = usize::try_from(h.finish() % self.lanes.len() as u64).unwrap_or(0);
        self.waiting.fetch_add(1, Ordering::AcqRel);
        self.lanes[lane].send(work).map_err(|e| {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            e.0
        })
    }

    /// The SQLite writer's turn (nothing to wait for on PostgreSQL).
    async fn writer(&self) -> Option<OwnedSemaphorePermit> {
        match &self.writer {
            Some(w) => w.clone().acquire_owned().await.ok(),
            None => None,
        }
    }

    /// Callbacks waiting in the backlog.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Puts callbacks stored before `now - STALE_AFTER` and still RECEIVED into the backlog.
    ///
    /// # Errors
    /// When they cannot be claimed.
    pub async fn sweep(&self, events: &InboundEventService, now: chrono::DateTime<chrono::Utc>) -> DomainResult<usize> {
        let before = now - chrono::Duration::from_std(STALE_AFTER).unwrap_or(chrono::Duration::minutes(10));
        let stale = events.claim_stale(IntegrationKind::Dingding.as_str(), before, 500).await?;
        let n = stale.len();
        for e in stale {
            let Ok(parsed) = serde_json::from_str::<wire::CallbackBody>(&e.body) else {
                let why = Some("the stored body is not a callback".to_owned());
                events.finish(e.tenant_id, e.id, EventState::Ignored, why).await?;
                continue;
            };
            let work = Box::new(Work {
                tenant: e.tenant_id,
                integration: e.integration_id,
                event: e.id,
                lane: parsed.uuid.clone().unwrap_or_default(),
                name: map::callback_name(&parsed),
                callback: map::callback(&parsed),
            });
            if self.defer(work).is_err() {
                tracing::warn!(inbound_event_id = %e.id, "the Dingding backlog stopped; left for the next sweep");
            }
        }
        Ok(n)
    }
}
