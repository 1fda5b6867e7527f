//! `GET or POST /hooks/{integration_id}/huzhou/elev_api?action=...`: the Huzhou data
//! center's pull and subscribe API (seed 000 section 7: 7.1 `get_token`, 7.2
//! `get_dev_info`, 7.3 `get_rt_info`, 7.4 `put_rt_notice`, 7.6 `get_stream_url`).
//!
//! Every answer is the seed's flat envelope `{"ret_code", "ret_msg", ...}`; a refusal has
//! a non-200 `ret_code` (300 key/secret, 301 token, 320 missing parameter, 330 invalid,
//! 360 unknown elevator, 500 internal) and never an HTTP 5xx. Every request is stored raw
//! (with `app_secret` and `token` masked) before it is processed; a resent `put_rt_notice`
//! (the same request within 2 s) is not applied twice. A subscribing `put_rt_notice` is
//! answered once stored and applied from the inbound backlog, in the order notices came.
// Parsers of tenant and vendor input (issue 17): no indexing that can panic.
#![cfg_attr(not(test), warn(clippy::indexing_slicing))]

use super::service::{notice_ids, notice_subscribe};
use super::{ApiRefusal, HuzhouService, state};
use crate::vendors::inbound::{
    Accepted, HookAnswer, HookRequest, InboundProtocol, Opened, Outcome, Refusal, Rejected, Work,
};
use async_trait::async_trait;
use domain::events::{EventState, InboundEvent};
use domain::integrations::IntegrationKind;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// Resends inside this many seconds count as the same request.
const DEDUP_WINDOW_SECS: i64 = 2;

fn ok(extra: Value) -> HookAnswer {
    let mut body = json!({"ret_code": "200", "ret_msg": "访问成功"});
    if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
        b.extend(e);
    }
    HookAnswer::new(200, body)
}

fn refusal(r: &ApiRefusal) -> HookAnswer {
    HookAnswer::new(200, json!({"ret_code": r.code(), "ret_msg": r.message()}))
}

/// The query as stored: secrets masked.
fn masked_query(q: &HashMap<String, String>) -> String {
    let mut keys: Vec<&String> = q.keys().collect();
    keys.sort();
    keys.iter()
        .map(|k| {
            let v =
                if matches!(k.as_str(), "app_secret" | "token") { "***" } else { q.get(*k).map_or("", String::as_str) };
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A parsed call.
pub(crate) struct Call {
    method: String,
    query: HashMap<String, String>,
    text: String,
}

impl Call {
    /// 7.4 `unique_ids` and `subscribe`: from the JSON body on POST, else from the query.
    ///
    /// # Errors
    /// `Invalid` for a POST body that is not a JSON object.
    pub(crate) fn notice_params(&self) -> Result<(Option<String>, Option<String>), ApiRefusal> {
        let from_body = if self.method == "POST" && !self.text.trim().is_empty() {
            let m = serde_json::from_str::<Map<String, Value>>(&self.text)
                .map_err(|_| ApiRefusal::Invalid("body must be a JSON object".into()))?;
            Some(m)
        } else {
            None
        };
        let get = |k: &str| match &from_body {
            Some(m) => m.get(k).and_then(state::text),
            None => self.query.get(k).cloned(),
        };
        Ok((get("unique_ids"), get("subscribe")))
    }
}

/// An authenticated call as stored: the body as text, the query with its secrets masked,
/// keyed by a digest of all of it (and the `DEDUP_WINDOW_SECS` bucket of `now`, Unix
/// seconds).
pub(crate) fn recorded(
    method: String,
    query: HashMap<String, String>,
    body: &[u8],
    content_type: Option<&str>,
    now: i64,
) -> Accepted {
    let action = query.get("action").cloned().unwrap_or_default();
    let text = String::from_utf8_lossy(body).into_owned();
    let bucket = now / DEDUP_WINDOW_SECS;
    let raw_key = format!("{method}\n{}\n{text}\n{bucket}", masked_query(&query));
    let digest = crate::crypto::sha256_hex(format!("{raw_key}\n{:?}", query.get("token")).as_bytes());
    let headers = json!({
        "method": method,
        "query": masked_query(&query),
        "content-type": content_type,
    });
    let call = Call { method, query, text: text.clone() };
    // Notices are applied in the order they came; a subscription (a write per elevator,
    // and the first pushes) is answered once stored (answered in 0.8 s for 50,000
    // elevators before it was). An unsubscription is answered once written unless
    // requests are waiting in the backlog (then it waits behind them, in order).
    let (lane, answer_first) =
        if action == NOTICE { (Some(NOTICE.to_owned()), call.subscribes()) } else { (None, false) };
    Accepted {
        kind: action,
        dedup_key: format!("elev_api:{digest}"),
        headers,
        body: text,
        lane,
        answer_first,
        work: Box::new(call),
    }
}

/// 7.4's action, also the lane its calls are applied in.
const NOTICE: &str = "put_rt_notice";

impl Call {
    /// A valid `put_rt_notice` that subscribes (an invalid one is answered with its
    /// refusal, after it is stored).
    fn subscribes(&self) -> bool {
        self.notice_params().is_ok_and(|(ids, subscribe)| {
            notice_ids(ids.as_deref()).is_ok() && matches!(notice_subscribe(subscribe.as_deref()), Ok(true))
        })
    }

    /// A stored `put_rt_notice` again (its query as stored: the token masked, which was
    /// checked before it was stored).
    fn stored(event: &InboundEvent) -> Option<Self> {
        let field = |k: &str| event.headers.get(k).and_then(Value::as_str);
        let query = field("query")?
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Some(Self { method: field("method")?.to_owned(), query, text: event.body.clone() })
    }
}

/// The data center's side of `elev_api`.
pub struct HuzhouInbound {
    service: HuzhouService,
}

impl HuzhouInbound {
    pub fn new(service: HuzhouService) -> Self {
        Self { service }
    }

    /// The answer's fields beyond `ret_code` and `ret_msg`, or the refusal.
    async fn handle(&self, hook: &Opened, call: &Call, duplicate: bool) -> Result<Value, ApiRefusal> {
        let (integration, q) = (&hook.integration, &call.query);
        let param = |k: &str| q.get(k).map(String::as_str);
        let hz = &self.service;
        let action = param("action").unwrap_or_default();
        if action == "get_token" {
            let token = hz.issue_token(integration, &hook.credentials, param("app_key"), param("app_secret")).await?;
            return Ok(json!({"ret_token": token}));
        }
        // The action and the token were checked before the call was stored (`accept`).
        match action {
            "get_dev_info" => Ok(state::dev_info(&hz.elevator(integration, param("elev_id")).await?)),
            "get_rt_info" => Ok(state::rt_info(&hz.elevator(integration, param("elev_id")).await?)),
            "get_stream_url" => {
                let d = hz.elevator(integration, param("elev_id")).await?;
                Ok(json!({"ret_data": {"stream_url": state::attr(&d, "streamUrl").unwrap_or_default()}}))
            }
            _ => {
                let (unique_ids, subscribe) = call.notice_params()?;
                if !duplicate {
                    hz.notice(integration, unique_ids.as_deref(), subscribe.as_deref()).await?;
                }
                Ok(json!({}))
            }
        }
    }
}

#[async_trait]
impl InboundProtocol for HuzhouInbound {
    fn path(&self) -> &'static str {
        "huzhou/elev_api"
    }

    fn protocol(&self) -> &'static str {
        IntegrationKind::HuzhouElevator.as_str()
    }

    fn serves(&self, kind: IntegrationKind) -> bool {
        kind == IntegrationKind::HuzhouElevator
    }

    fn refused(&self, why: Refusal) -> HookAnswer {
        match why {
            Refusal::UnknownIntegration => {
                HookAnswer::new(404, json!({"ret_code": "404", "ret_msg": "unknown integration"}))
            }
            Refusal::Disabled => HookAnswer::new(403, json!({"ret_code": "403", "ret_msg": "integration disabled"})),
            Refusal::BadHookToken => refusal(&ApiRefusal::BadToken),
            Refusal::TooManyFailures => HookAnswer::new(
                429,
                json!({"ret_code": "429", "ret_msg": "too many failed requests from this address"}),
            ),
            Refusal::Internal => refusal(&ApiRefusal::Internal),
        }
    }

    async fn accept(&self, hook: &Opened, req: HookRequest) -> Result<Accepted, Rejected> {
        let Some(query) = req.query.clone() else {
            return Err(refusal(&ApiRefusal::Invalid("malformed query string".into())).into());
        };
        let action = query.get("action").cloned().unwrap_or_default();
        // Authenticated before anything is stored: a caller without the credentials or a
        // token costs no row.
        let param = |k: &str| query.get(k).map(String::as_str);
        let authenticated = match action.as_str() {
            "get_token" => HuzhouService::check_credentials(&hook.credentials, param("app_key"), param("app_secret")),
            "get_dev_info" | "get_rt_info" | NOTICE | "get_stream_url" => {
                self.service.check_token(&hook.integration, param("token")).await
            }
            other => {
                let shown: String = other.chars().take(32).collect();
                Err(ApiRefusal::Invalid(format!("unknown action {shown:?}")))
            }
        };
        authenticated.map_err(|r| match r {
            ApiRefusal::BadCredentials | ApiRefusal::BadToken => refusal(&r).unauthenticated(),
            _ => refusal(&r).into(),
        })?;
        let now = chrono::Utc::now().timestamp();
        Ok(recorded(req.method.clone(), query, &req.body, req.header("content-type"), now))
    }

    fn deferred(&self) -> HookAnswer {
        ok(json!({}))
    }

    fn reparse_supported(&self) -> bool {
        true
    }

    /// Only notices are applied from the backlog; another call left RECEIVED by a stopped
    /// process was never answered (the data center asks again) and is IGNORED.
    fn reparse(&self, event: &InboundEvent) -> Option<(Option<String>, Work)> {
        if event.kind != NOTICE {
            return None;
        }
        Call::stored(event).map(|c| -> (Option<String>, Work) { (Some(NOTICE.to_owned()), Box::new(c)) })
    }

    async fn apply(&self, hook: &Opened, _event: &InboundEvent, duplicate: bool, work: Work) -> (Outcome, HookAnswer) {
        let Ok(call) = work.downcast::<Call>() else {
            return (Outcome::to_finish(EventState::Failed, None), refusal(&ApiRefusal::Internal));
        };
        match self.handle(hook, &call, duplicate).await {
            Ok(v) => (Outcome::to_finish(EventState::Processed, None), ok(v)),
            Err(r) => {
                let note = Some(format!("ret_code {}: {}", r.code(), r.message()));
                (Outcome::to_finish(EventState::Failed, note), refusal(&r))
            }
        }
    }
}
