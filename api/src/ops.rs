//! Operations endpoints: `/healthz`, `/readyz`, `/metrics` (Prometheus text), and the
//! request metrics middleware.

use crate::app::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

/// Latency buckets (seconds) for every `*_duration_seconds` histogram.
const BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus recorder (installed once, shared by every server in the process).
///
/// # Errors
/// When the recorder cannot be built.
pub fn metrics_handle() -> anyhow::Result<PrometheusHandle> {
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("duration_seconds".into()), BUCKETS)?
        .build_recorder();
    let handle = recorder.handle();
    match HANDLE.set(handle.clone()) {
        Ok(()) => {
            // Another recorder may be installed already (e.g. by an embedding program).
            let _ = metrics::set_global_recorder(recorder);
            Ok(handle)
        }
        Err(_) => HANDLE.get().cloned().ok_or_else(|| anyhow::anyhow!("metrics recorder race")),
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).route("/metrics", get(metrics_text))
}

async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({"status": "ok"}))
}

/// Ready when the database answers, and Redis too when configured.
async fn readyz(State(st): State<AppState>) -> Response {
    let db = adapters::db::ping(&st.db).await;
    let redis = match &st.redis {
        Some(conn) => Some(adapters::redis_store::ping(conn).await),
        None => None,
    };
    if let Err(e) = &db {
        tracing::warn!(error = %e, "readiness: database unreachable");
    }
    if let Some(Err(e)) = &redis {
        tracing::warn!(error = %e, "readiness: redis unreachable");
    }
    let ok = db.is_ok() && redis.as_ref().is_none_or(Result::is_ok);
    let word = |r: bool| if r { "ok" } else { "unreachable" };
    let body = serde_json::json!({
        "status": word(ok),
        "database": word(db.is_ok()),
        "redis": redis.as_ref().map_or("not configured", |r| word(r.is_ok())),
    });
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

async fn metrics_text(State(st): State<AppState>, headers: axum::http::HeaderMap) -> axum::response::Response {
    // With `LINKYARD_METRICS_TOKEN` set, only a scraper presenting it reads the metrics.
    if let Some(want) = &st.config.metrics_token {
        use secrecy::ExposeSecret;
        let given =
            headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        let ok =
            given.is_some_and(|g| adapters::crypto::constant_time_eq(g.as_bytes(), want.expose_secret().as_bytes()));
        if !ok {
            return (
                axum::http::StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "metrics need the token",
            )
                .into_response();
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], st.metrics.render()).into_response()
}

/// Counts requests and records their latency by method, route template and status.
pub async fn track_metrics(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().to_string();
    let resp = next.run(req).await;
    let labels = [("method", method), ("route", route), ("status", resp.status().as_u16().to_string())];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(start.elapsed().as_secs_f64());
    resp
}
