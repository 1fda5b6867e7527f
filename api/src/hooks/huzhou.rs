//! `GET or POST /hooks/{integration_id}/huzhou/elev_api?action=...`: the Huzhou data
//! center's pull and subscribe API (seed 000 section 7: 7.1 `get_token`, 7.2
//! `get_dev_info`, 7.3 `get_rt_info`, 7.4 `put_rt_notice`, 7.6 `get_stream_url`).
//!
//! Every answer is the seed's flat envelope `{"ret_code", "ret_msg", ...}`; a refusal has
//! a non-200 `ret_code` (300 key/secret, 301 token, 320 missing parameter, 330 invalid,
//! 360 unknown elevator, 500 internal) and never an HTTP 5xx. Every request is stored raw
//! (with `app_secret` and `token` masked) before it is processed; a resent `put_rt_notice`
//! (the same request within 2 s) is not applied twice.

use super::{HookRefusal, integration, record};
use crate::app::AppState;
use adapters::vendors::huzhou::{ApiRefusal, state};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::events::EventState;
use domain::integrations::{Integration, IntegrationKind};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// Resends inside this many seconds count as the same request.
const DEDUP_WINDOW_SECS: i64 = 2;

fn ok(extra: Value) -> Response {
    let mut body = json!({"ret_code": "200", "ret_msg": "访问成功"});
    if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
        b.extend(e);
    }
    (StatusCode::OK, Json(body)).into_response()
}

fn refused(r: &ApiRefusal) -> Response {
    (StatusCode::OK, Json(json!({"ret_code": r.code(), "ret_msg": r.message()}))).into_response()
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

/// The data center's call.
pub async fn elev_api(
    State(st): State<AppState>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let (integration, credentials) = match integration(&st, &id, IntegrationKind::HuzhouElevator).await {
        Ok(found) => found,
        Err(HookRefusal::UnknownIntegration) => {
            return (StatusCode::NOT_FOUND, Json(json!({"ret_code": "404", "ret_msg": "unknown integration"})))
                .into_response();
        }
        Err(HookRefusal::Internal) => return refused(&ApiRefusal::Internal),
    };
    let Ok(Query(q)) = query else { return refused(&ApiRefusal::Invalid("malformed query string".into())) };
    let Ok(body) = body else { return refused(&ApiRefusal::Invalid("unreadable body".into())) };
    let action = q.get("action").cloned().unwrap_or_default();
    let text = String::from_utf8_lossy(&body).into_owned();
    let bucket = chrono::Utc::now().timestamp() / DEDUP_WINDOW_SECS;
    let raw_key = format!("{method}\n{}\n{text}\n{bucket}", masked_query(&q));
    let dedup =
        format!("elev_api:{}", adapters::crypto::sha256_hex(format!("{raw_key}\n{:?}", q.get("token")).as_bytes()));
    let stored_headers = json!({
        "method": method.as_str(),
        "query": masked_query(&q),
        "content-type": headers.get("content-type").and_then(|v| v.to_str().ok()),
    });
    let recorded = match record(&st, &integration, &action, dedup, stored_headers, &text).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = ?e, "recording an elev_api call");
            return refused(&ApiRefusal::Internal);
        }
    };
    let answer = handle(&st, &integration, &credentials, &method, &q, &text, recorded.duplicate).await;
    let (state, error) = match &answer {
        Ok(_) => (EventState::Processed, None),
        Err(r) => (EventState::Failed, Some(format!("ret_code {}: {}", r.code(), r.message()))),
    };
    if !recorded.duplicate
        && let Err(e) = st.events.finish(integration.tenant_id, recorded.event.id, state, error).await
    {
        tracing::warn!(error = %e, "marking an elev_api call processed");
    }
    match answer {
        Ok(v) => ok(v),
        Err(r) => refused(&r),
    }
}

/// The answer's fields beyond `ret_code` and `ret_msg`, or the refusal.
async fn handle(
    st: &AppState,
    integration: &Integration,
    credentials: &Map<String, Value>,
    method: &Method,
    q: &HashMap<String, String>,
    text: &str,
    duplicate: bool,
) -> Result<Value, ApiRefusal> {
    let param = |k: &str| q.get(k).map(String::as_str);
    let hz = &st.huzhou;
    let action = param("action").unwrap_or_default();
    if action == "get_token" {
        let token = hz.issue_token(integration, credentials, param("app_key"), param("app_secret")).await?;
        return Ok(json!({"ret_token": token}));
    }
    if !matches!(action, "get_dev_info" | "get_rt_info" | "put_rt_notice" | "get_stream_url") {
        let shown: String = action.chars().take(32).collect();
        return Err(ApiRefusal::Invalid(format!("unknown action {shown:?}")));
    }
    hz.check_token(integration, param("token")).await?;
    match action {
        "get_dev_info" => Ok(state::dev_info(&hz.elevator(integration, param("elev_id")).await?)),
        "get_rt_info" => Ok(state::rt_info(&hz.elevator(integration, param("elev_id")).await?)),
        "get_stream_url" => {
            let d = hz.elevator(integration, param("elev_id")).await?;
            Ok(json!({"ret_data": {"stream_url": state::attr(&d, "streamUrl").unwrap_or_default()}}))
        }
        _ => {
            // 7.4: JSON body on POST; the same two as query parameters on GET.
            let from_body = if *method == Method::POST && !text.trim().is_empty() {
                let m = serde_json::from_str::<Map<String, Value>>(text)
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
