//! The tenant's own webhook endpoint (`WEBHOOK` integrations): each delivery's payload is
//! posted as JSON with
//! - `X-Linkyard-Delivery`: the delivery id; `X-Linkyard-Idempotency-Key`: the same on
//!   every attempt, for the receiver to drop repeats;
//! - `X-Linkyard-Timestamp`: Unix seconds; `X-Linkyard-Signature`:
//!   `v1=hex(HMAC-SHA256(signingSecret, "{timestamp}.{body}"))`.
//!
//! Notification channels (`NOTIFICATION_WEBHOOK` integrations: escalation notices) are
//! signed the Standard Webhooks way instead (standardwebhooks.com, "Signature scheme"):
//! - `webhook-id`: the delivery id, the same on every attempt;
//! - `webhook-timestamp`: Unix seconds;
//! - `webhook-signature`: `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")),
//!   the key being the base64 after the `whsec_` prefix of the channel's secret.
//!
//! A 2xx answer delivers; 408, 429, 5xx and transport errors are retried; any other
//! status is permanent (the endpoint refuses the message).

use super::{redact_url, retryable_status};
use async_trait::async_trait;
use domain::DomainError;
use domain::deliveries::{Delivery, DeliverySender, SendReport, Verdict};
use domain::ids::IntegrationId;
use domain::integrations::{IntegrationKind, IntegrationService};
use domain::ttl::{CONFIG_TTL, TtlCache};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use std::sync::Arc;

/// Kind prefix of webhook deliveries (`webhook.alarm`).
pub const PREFIX: &str = "webhook";

/// Signs a body the way receivers verify it.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Signs a body the Standard Webhooks way: `v1,` + base64 of the HMAC-SHA256 of
/// `{id}.{timestamp}.{body}` under the key that `whsec_` + base64 `secret` holds.
///
/// # Errors
/// When the secret is not `whsec_` followed by base64.
pub fn standard_signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, String> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = secret
        .strip_prefix("whsec_")
        .and_then(|k| b64.decode(k).ok())
        .ok_or_else(|| "the channel's signing secret is not whsec_ + base64".to_owned())?;
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap_or_else(|_| unreachable!());
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!("v1,{}", b64.encode(mac.finalize().into_bytes())))
}

/// A webhook's URL and signing secret, and how it signs.
#[derive(Clone)]
struct Endpoint {
    url: String,
    secret: SecretString,
    /// Standard Webhooks headers (a notification channel) instead of Linkyard's own.
    standard: bool,
}

/// Posts webhook deliveries.
#[derive(Clone)]
pub struct WebhookSender {
    http: crate::vendors::Http,
    integrations: IntegrationService,
    /// Endpoints by integration, reused for a few seconds (a reconfiguration applies
    /// within `CONFIG_TTL`).
    endpoints: Arc<TtlCache<IntegrationId, Endpoint>>,
}

impl WebhookSender {
    pub fn new(http: crate::vendors::Http, integrations: IntegrationService) -> Self {
        Self { http, integrations, endpoints: Arc::new(TtlCache::new(CONFIG_TTL, 10_000)) }
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
        let url = integration.settings.get("url").and_then(|u| u.as_str()).unwrap_or_default().to_owned();
        let Some(secret) = credentials.get("signingSecret").and_then(|s| s.as_str()) else {
            return Err(Verdict::Permanent("credentials.signingSecret is not set".into()));
        };
        let standard = integration.kind == IntegrationKind::NotificationWebhook;
        let e = Endpoint { url, secret: SecretString::from(secret.to_owned()), standard };
        self.endpoints.put(d.integration_id, e.clone());
        Ok(e)
    }
}

fn report(request: String, status: Option<u16>, verdict: Verdict) -> SendReport {
    SendReport { request, http_status: status.map(i32::from), vendor_code: None, vendor_message: None, verdict }
}

#[async_trait]
impl DeliverySender for WebhookSender {
    async fn send(&self, d: &Delivery, _fresh_token: bool) -> SendReport {
        let Endpoint { url, secret, standard } = match self.endpoint(d).await {
            Ok(e) => e,
            Err(verdict) => return report(d.kind.to_string(), None, verdict),
        };
        let body = match serde_json::to_vec(&d.payload) {
            Ok(b) => b,
            Err(e) => return report(d.kind.to_string(), None, Verdict::Permanent(format!("payload: {e}"))),
        };
        let ts = chrono::Utc::now().timestamp();
        let request = format!("POST {} {}", redact_url(&url), d.kind);
        let post = self.http.post(&url).header(reqwest::header::CONTENT_TYPE, "application/json");
        let post = if standard {
            let id = d.id.to_string();
            let signed = match standard_signature(secret.expose_secret(), &id, ts, &body) {
                Ok(s) => s,
                Err(e) => return report(request, None, Verdict::Permanent(e)),
            };
            post.header("webhook-id", id)
                .header("webhook-timestamp", ts.to_string())
                .header("webhook-signature", signed)
        } else {
            post.header("X-Linkyard-Delivery", d.id.to_string())
                .header("X-Linkyard-Idempotency-Key", &d.idempotency_key)
                .header("X-Linkyard-Timestamp", ts.to_string())
                .header("X-Linkyard-Signature", signature(secret.expose_secret(), ts, &body))
        };
        let sent = self.http.send(post.body(body)).await;
        match sent {
            // The error names the kind of failure (or the guard's refusal), never the URL.
            Err(e) => report(request, None, crate::vendors::send_failure(e)),
            Ok(resp) => {
                let status = resp.status().as_u16();
                let verdict = if resp.status().is_success() {
                    Verdict::Delivered
                } else if retryable_status(status) {
                    Verdict::Retry(format!("the endpoint answered {status}"))
                } else {
                    Verdict::Permanent(format!("the endpoint refused the message with {status}"))
                };
                report(request, Some(status), verdict)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently: python3 hmac.new(b"key", b"1700000000.{}", hashlib.sha256).
        assert_eq!(
            signature("key", 1_700_000_000, b"{}"),
            "v1=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
    }

    #[test]
    fn standard_signature_follows_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            standard_signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body).as_deref(),
            Ok("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert!(standard_signature("not-whsec", "id", 1, b"{}").is_err());
    }
}
