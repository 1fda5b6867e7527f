//! The tenant's own webhook endpoint (`WEBHOOK` integrations): each delivery's payload is
//! posted as JSON with
//! - `X-Linkyard-Delivery`: the delivery id; `X-Linkyard-Idempotency-Key`: the same on
//!   every attempt, for the receiver to drop repeats;
//! - `X-Linkyard-Timestamp`: Unix seconds; `X-Linkyard-Signature`:
//!   `v1=hex(HMAC-SHA256(signingSecret, "{timestamp}.{body}"))`.
//!
//! A 2xx answer delivers; 408, 429, 5xx and transport errors are retried; any other
//! status is permanent (the endpoint refuses the message).

use super::{redact_url, retryable_status};
use async_trait::async_trait;
use domain::DomainError;
use domain::deliveries::{Delivery, DeliverySender, SendReport, Verdict};
use domain::ids::IntegrationId;
use domain::integrations::IntegrationService;
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

/// A webhook's URL and signing secret.
#[derive(Clone)]
struct Endpoint {
    url: String,
    secret: SecretString,
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
        let e = Endpoint { url, secret: SecretString::from(secret.to_owned()) };
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
        let Endpoint { url, secret } = match self.endpoint(d).await {
            Ok(e) => e,
            Err(verdict) => return report(d.kind.to_string(), None, verdict),
        };
        let body = match serde_json::to_vec(&d.payload) {
            Ok(b) => b,
            Err(e) => return report(d.kind.to_string(), None, Verdict::Permanent(format!("payload: {e}"))),
        };
        let ts = chrono::Utc::now().timestamp();
        let request = format!("POST {} {}", redact_url(&url), d.kind);
        let sent = self
            .http
            .send(
                self.http
                    .post(&url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header("X-Linkyard-Delivery", d.id.to_string())
                    .header("X-Linkyard-Idempotency-Key", &d.idempotency_key)
                    .header("X-Linkyard-Timestamp", ts.to_string())
                    .header("X-Linkyard-Signature", signature(secret.expose_secret(), ts, &body))
                    .body(body),
            )
            .await;
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
}
