//! One fake vendor for every vendor's tests: an axum server on `127.0.0.1:0` that records
//! every request (method, path, query, headers, body) with the answer it got.
//!
//! An answer is chosen in three steps, as a vendor would: the vendor's own checks (token,
//! signature, request shape) may refuse the request; an accepted one gets the next scripted
//! answer of a matching script (`answer_next`, `answer_when`: failures a test provokes),
//! else the vendor's own answer, else the default answer. Vendor fakes (`dingding`,
//! `huzhou`, `webhook`) are the checks and answers of one vendor over this.

pub mod dingding;
pub mod etc;
pub mod goldcard;
pub mod hazchem;
pub mod huzhou;
pub mod notify;
pub mod webhook;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long `wait_for` waits unless told.
pub const WAIT: Duration = Duration::from_secs(30);

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub path: String,
    /// The query string's parameters, decoded.
    pub query: HashMap<String, String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When it arrived.
    pub at: Instant,
}

impl Request {
    /// A header's value ("" when absent or not text).
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    /// A query parameter ("" when absent).
    pub fn param(&self, name: &str) -> &str {
        self.query.get(name).map(String::as_str).unwrap_or_default()
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// Whether the body is declared JSON.
    pub fn is_json(&self) -> bool {
        self.header("content-type").starts_with("application/json")
    }
}

/// What the fake answers: a status and a JSON body, after an optional delay.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub delay: Duration,
}

impl Answer {
    /// 200 with `body`.
    pub fn ok(body: Value) -> Self {
        Self::status(StatusCode::OK, body)
    }

    pub fn status(status: StatusCode, body: Value) -> Self {
        Self { status, body, delay: Duration::ZERO }
    }

    /// The same answer, sent only after `delay`.
    #[must_use]
    pub fn after(self, delay: Duration) -> Self {
        Self { delay, ..self }
    }
}

/// A request with the answer it got.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub request: Request,
    pub answer: Answer,
    /// False when the vendor's checks refused the request.
    pub accepted: bool,
}

/// A vendor's judgement of one request.
pub enum Judgement {
    /// Refused by the vendor's checks, with this answer (no script applies).
    Refuse(Answer),
    /// Accepted; the vendor's own answer, if it has one (a script may still override it).
    Accept(Option<Answer>),
}

type Vendor = Box<dyn Fn(&Request) -> Judgement + Send + Sync>;
type Matcher = Box<dyn Fn(&Request) -> bool + Send + Sync>;

struct Script {
    matches: Matcher,
    answer: Answer,
    /// How many more requests it answers (`None`: all).
    left: Option<u32>,
}

struct Shared {
    vendor: Vendor,
    log: Mutex<Vec<Exchange>>,
    scripts: Mutex<Vec<Script>>,
    default: Mutex<Answer>,
}

/// A running fake vendor; clones share it.
#[derive(Clone)]
pub struct FakeVendor {
    base: String,
    shared: Arc<Shared>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl FakeVendor {
    /// A fake whose requests `vendor` judges first.
    pub async fn start_with(vendor: impl Fn(&Request) -> Judgement + Send + Sync + 'static) -> Self {
        let shared = Arc::new(Shared {
            vendor: Box::new(vendor),
            log: Mutex::default(),
            scripts: Mutex::default(),
            default: Mutex::new(Answer::ok(json!({}))),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake vendor");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base, shared }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The answer to accepted requests that nothing else answers.
    pub fn answer_default(&self, answer: Answer) {
        *lock(&self.shared.default) = answer;
    }

    /// Answers the next `times` accepted requests to `path` with `answer`.
    pub fn answer_next(&self, path: &str, times: u32, answer: Answer) {
        let path = path.to_owned();
        self.script(Box::new(move |r| r.path == path), answer, Some(times));
    }

    /// Answers accepted requests that `matches` with `answer`: the next `times` of them, or
    /// all (`None`).
    pub fn answer_when(
        &self,
        matches: impl Fn(&Request) -> bool + Send + Sync + 'static,
        times: Option<u32>,
        answer: Answer,
    ) {
        self.script(Box::new(matches), answer, times);
    }

    fn script(&self, matches: Matcher, answer: Answer, left: Option<u32>) {
        lock(&self.shared.scripts).push(Script { matches, answer, left });
    }

    /// Every exchange so far, in arrival order.
    pub fn exchanges(&self) -> Vec<Exchange> {
        lock(&self.shared.log).clone()
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared.log).iter().map(|e| e.request.clone()).collect()
    }

    /// The requests the vendor's checks refused.
    pub fn refused(&self) -> Vec<Exchange> {
        lock(&self.shared.log).iter().filter(|e| !e.accepted).cloned().collect()
    }

    /// Waits (at most `within`) until `done` holds for the exchanges so far; answers them.
    pub async fn wait_for(&self, what: &str, within: Duration, done: impl Fn(&[Exchange]) -> bool) -> Vec<Exchange> {
        until(what, within, || done(&lock(&self.shared.log))).await;
        self.exchanges()
    }
}

/// Polls `done` until it holds; panics naming `what` after `within`.
pub async fn until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = Request { method, path: uri.path().to_owned(), query, headers, body, at: Instant::now() };
    let (answer, accepted) = match (shared.vendor)(&request) {
        Judgement::Refuse(answer) => (answer, false),
        Judgement::Accept(own) => {
            let scripted = {
                let mut scripts = lock(&shared.scripts);
                scripts.iter_mut().find(|s| s.left != Some(0) && (s.matches)(&request)).map(|s| {
                    s.left = s.left.map(|n| n - 1);
                    s.answer.clone()
                })
            };
            (scripted.or(own).unwrap_or_else(|| lock(&shared.default).clone()), true)
        }
    };
    lock(&shared.log).push(Exchange { request, answer: answer.clone(), accepted });
    if !answer.delay.is_zero() {
        tokio::time::sleep(answer.delay).await;
    }
    (answer.status, Json(answer.body)).into_response()
}
