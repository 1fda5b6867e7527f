//! Calls to the DAS (seed 003 2.4.1-2.4.10, `PROTOCOLS.md` 4a): `POST {baseUrl}{path}` with
//! the JSON body of the code, `AccessToken` and `Authorization` computed for the moment
//! of each attempt, and the delivery's idempotency key as `serialNo` (32 hex, the same on
//! every retry). `companyCode` and `factorNo` come from the integration's settings.
//!
//! `echoCode` 0000 (or 0) delivers; 9999 and the header refusals (0101/0103/0105) and a
//! wrong `factorNo` (0404) are permanent; 9995 (service not started) and HTTP 408/429/5xx
//! are retried. A new price answered 2004 ("price exists") is sent once more as an
//! adjustment of that code, in the same attempt.
// Parsers of tenant and vendor input (issue 17): no indexing that can panic.
#![cfg_attr(not(test), warn(clippy::indexing_slicing))]

use super::sign;
use crate::vendors::{redact_url, retryable_status};
use async_trait::async_trait;
use domain::deliveries::{Delivery, DeliverySender, SendReport, Verdict};
use domain::ids::IntegrationId;
use domain::integrations::IntegrationService;
use domain::ttl::{CONFIG_TTL, TtlCache};
use domain::{Clock, DomainError};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use std::sync::Arc;

/// The DAS's address and the platform's credentials there.
#[derive(Clone)]
struct Endpoint {
    base: String,
    company_code: String,
    factor_no: String,
    app_code: String,
    app_secret: SecretString,
}

/// The path of each code the platform sends (`PROTOCOLS.md` 4a).
pub(crate) fn path(code: &str) -> Option<&'static str> {
    Some(match code {
        "1001" => "/api/v1/collect/meter/1001",
        "1002" => "/api/collect/meter/1002",
        "1004" => "/api/collect/meter/1004",
        "1005" => "/api/collect/meter/1005",
        "1007" => "/api/collect/meter/1007",
        "1008" => "/api/collect/meter/1008",
        "1009" => "/api/collect/meter/1009",
        "1013" => "/api/v2/collect/meter/1013",
        "1014" => "/api/v2/collect/meter/1014",
        "1015" => "/api/v1/collect/meter/1015",
        _ => return None,
    })
}

/// How an `echoCode` is treated.
pub(crate) fn classify(code: &str, msg: &str) -> Verdict {
    let reason = format!("echoCode {code}: {msg}");
    match code {
        "0000" | "0" => Verdict::Delivered,
        "9995" => Verdict::Retry(reason),
        "9999" | "0101" | "0103" | "0105" | "0404" | "2004" => Verdict::Permanent(reason),
        _ => Verdict::Retry(reason),
    }
}

/// `echoCode` and `echoMsg` as text.
fn echo(v: &Value) -> (String, String) {
    let text = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    (text(v.get("echoCode")), text(v.get("echoMsg")))
}

/// A 32-hex `serialNo` derived from another (the adjustment sent after a 2004).
fn derived_serial(serial: &str, purpose: &str) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(format!("{serial}:{purpose}").as_bytes()))
}

fn report(request: String, status: Option<u16>, code: Option<String>, msg: Option<String>, v: Verdict) -> SendReport {
    SendReport { request, http_status: status.map(i32::from), vendor_code: code, vendor_message: msg, verdict: v }
}

/// Sends `goldcard.*` deliveries.
#[derive(Clone)]
pub struct GoldcardSender {
    http: crate::vendors::Http,
    integrations: IntegrationService,
    endpoints: Arc<TtlCache<IntegrationId, Endpoint>>,
    clock: Arc<dyn Clock>,
}

impl GoldcardSender {
    pub fn new(http: crate::vendors::Http, integrations: IntegrationService, clock: Arc<dyn Clock>) -> Self {
        Self { http, integrations, endpoints: Arc::new(TtlCache::new(CONFIG_TTL, 10_000)), clock }
    }

    async fn endpoint(&self, d: &Delivery) -> Result<Endpoint, Verdict> {
        self.endpoint_of(d.tenant_id, d.integration_id).await
    }

    async fn endpoint_of(&self, tenant: domain::ids::TenantId, id: IntegrationId) -> Result<Endpoint, Verdict> {
        if let Some(e) = self.endpoints.get(&id) {
            return Ok(e);
        }
        let (integration, credentials) = match self.integrations.open_credentials(tenant, id).await {
            Ok(found) => found,
            Err(DomainError::NotFound(_)) => return Err(Verdict::Permanent("the integration is gone".into())),
            Err(e) => return Err(Verdict::Retry(format!("loading the integration: {e}"))),
        };
        let setting =
            |k: &str| integration.settings.get(k).and_then(Value::as_str).unwrap_or_default().trim().to_owned();
        let cred = |k: &str| credentials.get(k).and_then(Value::as_str).map(str::to_owned).filter(|s| !s.is_empty());
        let (Some(app_code), Some(app_secret)) = (cred("appCode"), cred("appSecret")) else {
            return Err(Verdict::Permanent("credentials.appCode and appSecret are required".into()));
        };
        let e = Endpoint {
            base: setting("baseUrl").trim_end_matches('/').to_owned(),
            company_code: setting("companyCode"),
            factor_no: setting("factorNo"),
            app_code,
            app_secret: SecretString::from(app_secret),
        };
        self.endpoints.put(id, e.clone());
        Ok(e)
    }

    /// A read (1013, 1014, 1015) answered at once: the `echoMsg` of a 0000 answer.
    ///
    /// # Errors
    /// Why it failed, as text (transport, HTTP status, a non-0000 `echoCode`).
    pub(crate) async fn read(
        &self,
        tenant: domain::ids::TenantId,
        integration: IntegrationId,
        code: &str,
        fields: Value,
    ) -> Result<Value, String> {
        let why = |v: Verdict| match v {
            Verdict::Retry(m) | Verdict::Permanent(m) | Verdict::TokenExpired(m) => m,
            Verdict::Delivered => String::new(),
        };
        let p = path(code).ok_or_else(|| format!("unknown code {code}"))?;
        let e = self.endpoint_of(tenant, integration).await.map_err(why)?;
        let mut b = match fields {
            Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        b.insert("serialNo".into(), json!(super::plan::serial()));
        b.insert("companyCode".into(), json!(e.company_code));
        b.insert("factorNo".into(), json!(e.factor_no));
        let (_, c, m, answer) = self.post(&e, &format!("{}{p}", e.base), &Value::Object(b)).await.map_err(why)?;
        match classify(&c, &m) {
            Verdict::Delivered => Ok(answer.get("echoMsg").cloned().unwrap_or(Value::Null)),
            v => Err(why(v)),
        }
    }

    /// One POST; the answer's status, `echoCode`, `echoMsg` and body.
    async fn post(&self, e: &Endpoint, url: &str, body: &Value) -> Result<(u16, String, String, Value), Verdict> {
        let time = sign::time(self.clock.now());
        let sent = self
            .http
            .send(
                self.http
                    .post(url)
                    .header(reqwest::header::ACCEPT, "application/json")
                    .header(reqwest::header::CONTENT_TYPE, "application/json;charset=utf-8")
                    .header("AccessToken", sign::access_token(&e.app_code, e.app_secret.expose_secret(), &time))
                    .header("Authorization", sign::authorization(&e.app_code, &time))
                    .body(body.to_string()),
            )
            .await;
        let resp = sent.map_err(crate::vendors::send_failure)?;
        let status = resp.status().as_u16();
        if !resp.status().is_success() {
            return Err(if retryable_status(status) {
                Verdict::Retry(format!("HTTP {status}"))
            } else {
                Verdict::Permanent(format!("HTTP {status}"))
            });
        }
        let answer: Value =
            resp.json().await.map_err(|_| Verdict::Retry(format!("HTTP {status}, unreadable answer")))?;
        let (code, msg) = echo(&answer);
        Ok((status, code, msg, answer))
    }
}

/// The request body: the payload's fields with the integration's codes and the serial.
fn body(d: &Delivery, e: &Endpoint, code: &str, serial: &str, time: &str) -> Value {
    let mut b = match &d.payload {
        Value::Object(m) => m.clone(),
        _ => serde_json::Map::new(),
    };
    b.insert("serialNo".into(), json!(serial));
    b.insert("companyCode".into(), json!(e.company_code));
    b.insert("factorNo".into(), json!(e.factor_no));
    // 1005, 1007 and the reads carry no submission date in the seed.
    if matches!(code, "1001" | "1002" | "1004" | "1008" | "1009") {
        b.insert("sdateTime".into(), json!(time));
    }
    Value::Object(b)
}

#[async_trait]
impl DeliverySender for GoldcardSender {
    async fn send(&self, d: &Delivery, _fresh_token: bool) -> SendReport {
        let code = d.kind.message();
        let Some(p) = path(code) else {
            return report(
                d.kind.to_string(),
                None,
                None,
                None,
                Verdict::Permanent(format!("unknown kind {}", d.kind)),
            );
        };
        let e = match self.endpoint(d).await {
            Ok(e) => e,
            Err(v) => return report(format!("POST {p} serialNo={}", d.idempotency_key), None, None, None, v),
        };
        let url = format!("{}{p}", e.base);
        let request = format!("POST {} serialNo={}", redact_url(&url), d.idempotency_key);
        let time = sign::time(self.clock.now());
        let first = body(d, &e, code, &d.idempotency_key, &time);
        let (status, mut c, mut m, _) = match self.post(&e, &url, &first).await {
            Ok(a) => a,
            Err(v) => return report(request, None, None, None, v),
        };
        // A new price the DAS already has: adjust it instead (same attempt).
        if code == "1007" && c == "2004" && first.get("priceProperty") == Some(&json!("1")) {
            let mut adjust = first.clone();
            let serial = derived_serial(&d.idempotency_key, "adjust");
            if let Some(m) = adjust.as_object_mut() {
                m.insert("serialNo".into(), json!(serial));
                m.insert("priceProperty".into(), json!("2"));
                m.entry("clearFlag").or_insert_with(|| json!("1"));
            }
            match self.post(&e, &url, &adjust).await {
                Ok((_, c2, m2, _)) => {
                    c = c2;
                    m = format!("price existed, sent as an adjustment: {m2}");
                }
                Err(v) => return report(request, Some(status), Some(c), Some(m), v),
            }
        }
        let v = classify(&c, &m);
        report(request, Some(status), Some(c), Some(m), v)
    }

    async fn prepare(&self, like: &Delivery) {
        let _ = self.endpoint(like).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_codes_are_classified() {
        assert_eq!(classify("0000", ""), Verdict::Delivered);
        assert_eq!(classify("0", ""), Verdict::Delivered);
        for c in ["9999", "0101", "0404", "2004"] {
            assert!(matches!(classify(c, "x"), Verdict::Permanent(r) if r.contains(c)), "{c}");
        }
        assert!(matches!(classify("9995", "not started"), Verdict::Retry(_)));
    }

    #[test]
    fn every_code_has_its_path() {
        assert_eq!(path("1001"), Some("/api/v1/collect/meter/1001"));
        assert_eq!(path("1013"), Some("/api/v2/collect/meter/1013"));
        assert_eq!(path("1015"), Some("/api/v1/collect/meter/1015"));
        assert_eq!(path("2001"), None);
        assert_eq!(derived_serial("a", "adjust").len(), 32);
    }
}
