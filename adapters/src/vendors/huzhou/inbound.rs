//! `GET or POST /hooks/{integration_id}/huzhou/elev_api?action=...`: the Huzhou data
//! center's pull and subscribe API (seed 000 section 7: 7.1 `get_token`, 7.2
//! `get_dev_info`, 7.3 `get_rt_info`, 7.4 `put_rt_notice`, 7.6 `get_stream_url`).
//!
//! Every answer is the seed's flat envelope `{"ret_code", "ret_msg", ...}`; a refusal has
//! a non-200 `ret_code` (300 key/secret, 301 token, 320 missing parameter, 330 invalid,
//! 360 unknown elevator, 500 internal) and never an HTTP 5xx. Every request is stored raw
//! (with `app_secret` and `token` masked) before it is processed; a resent `put_rt_notice`
//! (the same request within 2 s) is not applied twice.

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
            let v = if matches!(k.as_str(), "app_secret" | "token") { "***" } else { q[*k].as_str() };
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A parsed call.
struct Call {
    method: String,
    query: HashMap<String, String>,
    text: String,
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
                // 7.4: JSON body on POST; the same two as query parameters on GET.
                let from_body = if call.method == "POST" && !call.text.trim().is_empty() {
                    let m = serde_json::from_str::<Map<String, Value>>(&call.text)
                        .map_err(|_| ApiRefusal::Invalid("body must be a JSON object".into()))?;
                    Some(m)
                } else {
                    None
                };
                let get = |k: &str| match &from_body {
                    Some(m) => m.get(k).and_then(state::text),
                    None => q.get(k).cloned(),
                };
                if !duplicate {
                    hz.notice(integration, get("unique_ids").as_deref(), get("subscribe").as_deref()).await?;
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
            "get_dev_info" | "get_rt_info" | "put_rt_notice" | "get_stream_url" => {
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
        let text = String::from_utf8_lossy(&req.body).into_owned();
        let bucket = chrono::Utc::now().timestamp() / DEDUP_WINDOW_SECS;
        let raw_key = format!("{}\n{}\n{text}\n{bucket}", req.method, masked_query(&query));
        let digest = crate::crypto::sha256_hex(format!("{raw_key}\n{:?}", query.get("token")).as_bytes());
        let headers = json!({
            "method": req.method,
            "query": masked_query(&query),
            "content-type": req.header("content-type"),
        });
        let call = Call { method: req.method, query, text: text.clone() };
        Ok(Accepted {
            kind: action,
            dedup_key: format!("elev_api:{digest}"),
            headers,
            body: text,
            lane: None,
            work: Box::new(call),
        })
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
