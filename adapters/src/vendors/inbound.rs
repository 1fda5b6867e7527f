//! What a vendor's inbound protocol implements for the one inbound pipeline
//! (`api/src/hooks.rs`): which hook path it serves, how it authenticates and parses a
//! request (into what is stored raw, its dedup key, and the work to do), how it applies a
//! stored request, and how it answers in its own envelope.

use async_trait::async_trait;
use domain::events::{EventState, InboundEvent};
use domain::integrations::{Integration, IntegrationKind};
use serde_json::{Map, Value};
use std::any::Any;
use std::collections::HashMap;

/// A hook request as received.
#[derive(Debug, Clone)]
pub struct HookRequest {
    pub method: String,
    /// `None` when the query string is malformed.
    pub query: Option<HashMap<String, String>>,
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// The sender's address (the TCP peer), when known.
    pub peer: Option<std::net::SocketAddr>,
    /// The hook token the path ended in, for a protocol whose path takes one
    /// (`InboundProtocol::path_token`); the pipeline has checked it already.
    pub hook_token: Option<String>,
}

impl HookRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// An answer in the protocol's own envelope (every protocol here answers JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct HookAnswer {
    pub status: u16,
    pub body: Value,
}

impl HookAnswer {
    pub fn new(status: u16, body: Value) -> Self {
        Self { status, body }
    }

    /// This answer, to a caller that could not be authenticated.
    pub fn unauthenticated(self) -> Rejected {
        Rejected { answer: self, unauthenticated: true }
    }
}

/// Why `accept` refused a request: the answer, and whether the caller failed to
/// authenticate (those failures count against the client's address, see `hooks.rs`).
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub answer: HookAnswer,
    pub unauthenticated: bool,
}

/// A refusal of an authenticated caller (a malformed request, a report too soon ...).
impl From<HookAnswer> for Rejected {
    fn from(answer: HookAnswer) -> Self {
        Self { answer, unauthenticated: false }
    }
}

/// The integration a hook path names, with its credentials opened.
#[derive(Clone)]
pub struct Opened {
    pub integration: Integration,
    pub credentials: Map<String, Value>,
}

/// Why the pipeline answers before the protocol parses anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No integration this path serves has that id (a malformed id included).
    UnknownIntegration,
    /// The path's hook token is missing or not the integration's.
    BadHookToken,
    /// The integration is disabled (`disableIntegration`): nothing is accepted.
    Disabled,
    /// The client's address failed to authenticate too often lately: refused before any
    /// look-up (HTTP 429 where the protocol allows).
    TooManyFailures,
    /// Something of ours failed (logged); the vendor should send it again.
    Internal,
}

/// Protocol-specific work carried from `accept` to `apply`.
pub type Work = Box<dyn Any + Send + Sync>;

/// An authenticated, parsed request, ready to be stored.
pub struct Accepted {
    /// The vendor's event or action name, as stored.
    pub kind: String,
    /// Same key, same message: a resend is stored once.
    pub dedup_key: String,
    /// What is stored of the headers (never credentials).
    pub headers: Value,
    /// What is stored of the body (secrets masked).
    pub body: String,
    /// Requests of one lane are applied in order when a burst is applied from the backlog;
    /// `None`: always applied before the answer.
    pub lane: Option<String>,
    /// Answered (`InboundProtocol::deferred`) as soon as it is stored, and applied from the
    /// backlog in its lane (it needs one): for a request whose work is long and whose
    /// answer does not wait for it. A stopped process leaves it to the sweep
    /// (`InboundProtocol::reparse`).
    pub answer_first: bool,
    pub work: Work,
}

/// How applying a stored request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub state: EventState,
    pub note: Option<String>,
    /// The event's state was written with the facts (one unit of work): nothing left to do.
    pub finished: bool,
    /// The answer was kept with the event in that unit too.
    pub answer_kept: bool,
}

impl Outcome {
    pub fn finished(state: EventState) -> Self {
        Self { state, note: None, finished: true, answer_kept: false }
    }
    /// Finished, its answer kept in the same unit.
    pub fn answered(state: EventState) -> Self {
        Self { answer_kept: true, ..Self::finished(state) }
    }
    pub fn to_finish(state: EventState, note: Option<String>) -> Self {
        Self { state, note, finished: false, answer_kept: false }
    }
}

/// The error kept with an event whose processing failed (shown in `inboundEvents`, the
/// dead letters an operator replays): the business outcome, which never holds a secret; a
/// storage failure's cause goes to the log only, under the event's id.
pub fn failure_note(e: &domain::DomainError) -> String {
    match e {
        domain::DomainError::Unknown(_) => "processing failed: internal error (logged with the event's id)".to_owned(),
        other => format!("processing failed: {other}"),
    }
}

/// One vendor's inbound protocol.
#[async_trait]
pub trait InboundProtocol: Send + Sync {
    /// The path after `/hooks/{integration_id}/`.
    fn path(&self) -> &'static str;
    /// Whether the path continues with the integration's hook token (`{path}/{hook_token}`,
    /// `IntegrationKind::takes_hook_token`): the pipeline checks it before `accept`.
    fn path_token(&self) -> bool {
        false
    }
    /// The `protocol` its events are stored under (`DINGDING`, `TELEMETRY` ...).
    fn protocol(&self) -> &'static str;
    /// Whether a stored event is this protocol's to process again (the sweep, a replay):
    /// by default every event of its `protocol`; a vendor serving several paths under one
    /// `protocol` tells its own apart.
    fn owns(&self, event: &InboundEvent) -> bool {
        event.protocol == self.protocol()
    }
    /// Whether integrations of `kind` take requests on this path.
    fn serves(&self, kind: IntegrationKind) -> bool;
    /// Whether its integration may be resolved from a recent lookup (within
    /// `domain::ttl::CONFIG_TTL`): for protocols that come in bursts and whose
    /// authentication reads no rotated credential.
    fn cached(&self) -> bool {
        false
    }
    /// The answer to a request refused before parsing.
    fn refused(&self, why: Refusal) -> HookAnswer;
    /// Authenticates and parses. `Err`: answered at once, nothing stored.
    async fn accept(&self, hook: &Opened, req: HookRequest) -> Result<Accepted, Rejected>;
    /// Whether a resend of an applied event is answered with the answer it was given then
    /// (kept with the event), before `repeat` is asked.
    fn keeps_answer(&self) -> bool {
        false
    }
    /// The answer to a resend of an event stored before, when it is not applied again.
    fn repeat(&self, _stored: &InboundEvent) -> Option<HookAnswer> {
        None
    }
    /// The answer to a request stored and left to the backlog.
    fn deferred(&self) -> HookAnswer {
        self.refused(Refusal::Internal)
    }
    /// Applies a stored request; `duplicate` when it was stored before (a resend).
    async fn apply(&self, hook: &Opened, event: &InboundEvent, duplicate: bool, work: Work) -> (Outcome, HookAnswer);
    /// Applies stored requests of one integration in their order (a lane's backlog): by
    /// default one by one with `apply`; a protocol that can writes runs of them in one unit
    /// of work each, with the same outcomes `apply` would give.
    async fn apply_batch(&self, hook: &Opened, items: Vec<(&InboundEvent, Work)>) -> Vec<(Outcome, HookAnswer)> {
        let mut out = Vec::with_capacity(items.len());
        for (event, work) in items {
            out.push(self.apply(hook, event, false, work).await);
        }
        out
    }
    /// The work of a stored event, for the sweep of events a stopped process left; `None`
    /// when its body no longer parses (then it is IGNORED).
    fn reparse(&self, _event: &InboundEvent) -> Option<(Option<String>, Work)> {
        None
    }
    /// Whether `reparse` reads stored events (then the sweep applies events a stopped
    /// process left RECEIVED).
    fn reparse_supported(&self) -> bool {
        false
    }
}
