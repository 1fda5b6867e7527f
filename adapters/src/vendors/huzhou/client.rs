//! Pushes to the Huzhou data center (seed 000 3.2, 4.x, 7.5, 7.7, 7.8): a token from
//! `api_lift?action=token` (cached for `token_valid_time` across workers, refreshed
//! early), then `POST {host}?action=...` with `Authorization: Bearer {token}`,
//! `Request-Id: {32 hex}` (the delivery's idempotency key, the same on every retry) and
//! the signed body. `ret_code` 200 delivers; 300/301 ask for a new token and one retry;
//! 310-360 are permanent; anything else is retried.
// Parsers of tenant and vendor input (issue 17): no indexing that can panic.
#![cfg_attr(not(test), warn(clippy::indexing_slicing))]

use super::VENDOR;
use super::map::{self, Action};
use super::sign::{push_signature, timestamp, token_sign};
use super::wire::{PushAnswer, ReqContext, TokenAnswer};
use crate::vendors::{redact_url, retryable_status};
use async_trait::async_trait;
use domain::deliveries::{Delivery, DeliverySender, SendReport, Verdict};
use domain::ids::IntegrationId;
use domain::integrations::IntegrationService;
use domain::tokens::{CachedToken, TokenProvider};
use domain::ttl::{CONFIG_TTL, TtlCache};
use domain::{Clock, DomainError, DomainResult};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;

/// The data center's hosts and the platform's credentials there.
#[derive(Clone)]
struct Endpoint {
    base: String,
    dc_base: String,
    app_key: String,
    app_secret: SecretString,
}

/// Sends `huzhou.*` deliveries.
#[derive(Clone)]
pub struct HuzhouSender {
    http: crate::vendors::Http,
    integrations: IntegrationService,
    tokens: Arc<TokenProvider>,
    endpoints: Arc<TtlCache<IntegrationId, Endpoint>>,
    /// The token each integration's sends used last, for a few seconds: the shared cache
    /// (Redis) is then asked once per integration every few seconds, not once per push
    /// (issue 6: at hundreds of live pushes a second that round trip was a send's
    /// largest cost). Well inside the provider's refresh margin, so never near expiry.
    recent: Arc<TtlCache<IntegrationId, String>>,
    /// Request timestamps and token expiry.
    clock: Arc<dyn Clock>,
}

fn report(
    request: String,
    status: Option<u16>,
    code: Option<String>,
    msg: Option<String>,
    verdict: Verdict,
) -> SendReport {
    SendReport { request, http_status: status.map(i32::from), vendor_code: code, vendor_message: msg, verdict }
}

/// `{"req_context": ..., "req_info": ...}` with the `req_info` already in JSON text.
fn body(ctx: &ReqContext, req_info: &str) -> Result<String, String> {
    let ctx = serde_json::to_string(ctx).map_err(|e| e.to_string())?;
    Ok(format!("{{\"req_context\":{ctx},\"req_info\":{req_info}}}"))
}

/// How a push's `ret_code` is treated.
fn classify(code: &str, msg: &str) -> Verdict {
    match code {
        "200" => Verdict::Delivered,
        "300" | "301" => Verdict::TokenExpired(format!("ret_code {code}: {msg}")),
        c if c.parse::<u16>().is_ok_and(|n| (310..=360).contains(&n)) => {
            Verdict::Permanent(format!("ret_code {code}: {msg}"))
        }
        c => Verdict::Retry(format!("ret_code {c}: {msg}")),
    }
}

impl HuzhouSender {
    pub fn new(http: crate::vendors::Http, integrations: IntegrationService, tokens: Arc<TokenProvider>) -> Self {
        Self {
            http,
            integrations,
            tokens,
            endpoints: Arc::new(TtlCache::new(CONFIG_TTL, 10_000)),
            recent: Arc::new(TtlCache::new(CONFIG_TTL, 10_000)),
            clock: domain::clock::system(),
        }
    }

    /// Reads the time (request timestamps, token expiry) from `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    async fn endpoint(&self, d: &Delivery) -> Result<Endpoint, Verdict> {
        if let Some(e) = self.endpoints.get(&d.integration_id) {
            return Ok(e);
        }
        let (integration, credentials) = match self.integrations.open_credentials(d.tenant_id, d.integration_id).await {
            Ok(found) => found,
            Err(DomainError::NotFound(_)) => return Err(Verdict::Permanent("the integration is gone".into())),
            Err(e) => return Err(Verdict::Retry(format!("loading the integration: {e}"))),
        };
        let setting = |k: &str| {
            integration.settings.get(k).and_then(|v| v.as_str()).unwrap_or_default().trim_end_matches('/').to_owned()
        };
        let cred = |k: &str| credentials.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let (Some(app_key), Some(app_secret)) = (cred("appKey"), cred("appSecret")) else {
            return Err(Verdict::Permanent("credentials.appKey and appSecret are required".into()));
        };
        let e = Endpoint {
            base: setting("baseUrl"),
            dc_base: setting("dcBaseUrl"),
            app_key,
            app_secret: SecretString::from(app_secret),
        };
        self.endpoints.put(d.integration_id, e.clone());
        Ok(e)
    }

    /// 3.2: a new token.
    async fn fetch_token(&self, e: &Endpoint) -> DomainResult<CachedToken> {
        let ts = timestamp(self.clock.now());
        let secret = e.app_secret.expose_secret();
        let sign = token_sign(&e.app_key, secret, &ts);
        let url = format!("{}/api_lift", e.base);
        let query =
            [("action", "token"), ("appKey", &e.app_key), ("appSecret", secret), ("timestamp", &ts), ("sign", &sign)];
        let resp = self
            .http
            .send(self.http.get(&url).query(&query))
            .await
            .map_err(|err| DomainError::upstream(VENDOR, format!("token request: {err}")))?;
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        token_outcome(status.as_u16(), &body, self.clock.now())
    }

    async fn token(&self, e: &Endpoint, integration: IntegrationId, fresh: bool) -> DomainResult<String> {
        let key = format!("huzhou:{integration}");
        if !fresh && let Some(t) = self.recent.get(&integration) {
            return Ok(t);
        }
        let value = if fresh {
            // The token just rejected: the one these sends used, else the cached one.
            let used = match self.recent.get(&integration) {
                Some(t) => t,
                None => self.tokens.token(&key, None, || self.fetch_token(e)).await?.value,
            };
            self.recent.remove(&integration);
            self.tokens.token(&key, Some(&used), || self.fetch_token(e)).await?.value
        } else {
            self.tokens.token(&key, None, || self.fetch_token(e)).await?.value
        };
        self.recent.put(integration, value.clone());
        Ok(value)
    }

    async fn push(&self, d: &Delivery, action: Action, fresh_token: bool) -> SendReport {
        let host =
            |e: &Endpoint| if action.dc { format!("{}/api_dc", e.dc_base) } else { format!("{}/api_lift", e.base) };
        let request = format!("POST ?action={} Request-Id={}", action.name, d.idempotency_key);
        let req_info = match map::req_info(action, &d.payload) {
            Ok(v) => v,
            Err(e) => return report(request, None, None, None, Verdict::Permanent(e)),
        };
        let e = match self.endpoint(d).await {
            Ok(e) => e,
            Err(v) => return report(request, None, None, None, v),
        };
        let url = host(&e);
        let request = format!("POST {}?action={} Request-Id={}", redact_url(&url), action.name, d.idempotency_key);
        let token = match self.token(&e, d.integration_id, fresh_token).await {
            Ok(t) => t,
            Err(DomainError::Invalid { message, .. }) => {
                return report(request, None, None, None, Verdict::Permanent(message));
            }
            Err(DomainError::Upstream { message, .. }) => {
                return report(request, None, None, None, Verdict::Retry(message));
            }
            Err(err) => return report(request, None, None, None, Verdict::Retry(err.to_string())),
        };
        let ts = timestamp(self.clock.now());
        let ctx =
            ReqContext { version: action.version, signature: push_signature(action.name, &ts, &token), timestamp: ts };
        let body = match body(&ctx, &req_info) {
            Ok(b) => b,
            Err(e) => return report(request, None, None, None, Verdict::Permanent(e)),
        };
        let sent = self
            .http
            .send(
                self.http
                    .post(&url)
                    .query(&[("action", action.name)])
                    .bearer_auth(&token)
                    .header("Request-Id", &d.idempotency_key)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body),
            )
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(err) => return report(request, None, None, None, crate::vendors::send_failure(err)),
        };
        let status = resp.status().as_u16();
        if !resp.status().is_success() {
            let v = if retryable_status(status) {
                Verdict::Retry(format!("HTTP {status}"))
            } else {
                Verdict::Permanent(format!("HTTP {status}"))
            };
            return report(request, Some(status), None, None, v);
        }
        match resp.bytes().await.ok().and_then(|b| push_outcome(&b)) {
            Some((code, msg, v)) => report(request, Some(status), Some(code), Some(msg), v),
            None => report(request, Some(status), None, None, Verdict::Retry("unreadable answer".into())),
        }
    }
}

/// A push answer's `ret_code`, `ret_msg` and what they mean; `None` when the bytes are
/// no answer.
pub(crate) fn push_outcome(body: &[u8]) -> Option<(String, String, Verdict)> {
    let a: PushAnswer = serde_json::from_slice(body).ok()?;
    let code = map::code_text(&a.ret_status.ret_code);
    let msg = a.ret_status.ret_msg.unwrap_or_default();
    let v = classify(&code, &msg);
    Some((code, msg, v))
}

#[async_trait]
impl DeliverySender for HuzhouSender {
    async fn send(&self, d: &Delivery, fresh_token: bool) -> SendReport {
        match map::action(d.kind.as_str()) {
            Some(action) => self.push(d, action, fresh_token).await,
            None => {
                report(d.kind.to_string(), None, None, None, Verdict::Permanent(format!("unknown kind {}", d.kind)))
            }
        }
    }

    /// The endpoint and a token, loaded once before a burst of live pushes.
    async fn prepare(&self, like: &Delivery) {
        if let Ok(e) = self.endpoint(like).await
            && let Err(err) = self.token(&e, like.integration_id, false).await
        {
            tracing::debug!(error = %err, integration_id = %like.integration_id, "preparing huzhou pushes");
        }
    }
}

/// The longest a data-center token is kept, whatever it claims.
const MAX_TOKEN_SECS: i64 = 86_400;

/// What a token answer (3.2) means: the token and its expiry; `Invalid("credentials")` for
/// the refusals no retry fixes (300 application or keys invalid, 310 bad sign), whatever
/// `ret_data` holds (the data center sends `{}` with them); `Upstream` (retried) otherwise.
pub(crate) fn token_outcome(status: u16, body: &str, now: chrono::DateTime<chrono::Utc>) -> DomainResult<CachedToken> {
    let answer: TokenAnswer = serde_json::from_str(body)
        .map_err(|_| DomainError::upstream(VENDOR, format!("token request: HTTP {status}, unreadable answer")))?;
    let code = map::code_text(&answer.ret_status.ret_code);
    let msg = answer.ret_status.ret_msg.unwrap_or_default();
    match answer.ret_data {
        Some(data) if code == "200" && !data.app_token.is_empty() => {
            let secs = data.token_valid_time.as_ref().map(map::code_text).and_then(|s| s.parse::<i64>().ok());
            // Whatever the data center claims, a token is kept a day at most (and no claim
            // can overflow the clock).
            let secs = secs.filter(|s| *s > 0).unwrap_or(7200).min(MAX_TOKEN_SECS);
            Ok(CachedToken::new(data.app_token, now + chrono::Duration::seconds(secs)))
        }
        _ if code == "300" || code == "310" => {
            Err(DomainError::invalid("credentials", format!("token refused: ret_code {code}: {msg}")))
        }
        _ => Err(DomainError::upstream(VENDOR, format!("token refused: ret_code {code}: {msg}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::{classify, token_outcome};
    use domain::DomainError;
    use domain::deliveries::Verdict;

    #[test]
    fn token_refusals_with_empty_ret_data_are_read_and_permanent() {
        let now = chrono::Utc::now();
        for code in ["300", "310"] {
            let body = format!(r#"{{"ret_status":{{"ret_code":"{code}","ret_msg":"refused"}},"ret_data":{{}}}}"#);
            match token_outcome(200, &body, now) {
                Err(DomainError::Invalid { field, message }) => {
                    assert_eq!(field, "credentials");
                    assert!(message.contains(code) && message.contains("refused"), "{message}");
                }
                other => panic!("{code}: {other:?}"),
            }
        }
        let busy = r#"{"ret_status":{"ret_code":"500","ret_msg":"busy"},"ret_data":{}}"#;
        assert!(
            matches!(token_outcome(200, busy, now), Err(DomainError::Upstream { .. })),
            "a temporary refusal is retried"
        );
        assert!(matches!(token_outcome(502, "<html>", now), Err(DomainError::Upstream { .. })));
        let ok = r#"{"ret_status":{"ret_code":"200"},"ret_data":{"app_token":"t-1","token_valid_time":"60"}}"#;
        let t = token_outcome(200, ok, now).expect("token");
        assert_eq!(t.expires_at, now + chrono::Duration::seconds(60));
        // A huge lifetime neither panics nor keeps the token for ever.
        let huge = r#"{"ret_status":{"ret_code":"200"},"ret_data":{"app_token":"t-2","token_valid_time":"9223372036854775807"}}"#;
        let t = token_outcome(200, huge, now).expect("token");
        assert_eq!(t.expires_at, now + chrono::Duration::seconds(86_400));
    }

    #[test]
    fn return_codes_are_classified_as_the_seed_says() {
        assert_eq!(classify("200", ""), Verdict::Delivered);
        assert!(matches!(classify("301", "token"), Verdict::TokenExpired(_)));
        assert!(matches!(classify("300", ""), Verdict::TokenExpired(_)));
        for c in ["310", "320", "330", "340", "350", "360"] {
            assert!(matches!(classify(c, ""), Verdict::Permanent(_)), "{c}");
        }
        assert!(matches!(classify("500", "busy"), Verdict::Retry(_)));
    }
}
