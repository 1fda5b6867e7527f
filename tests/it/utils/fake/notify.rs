//! A notification channel's endpoint as a fake: it verifies the Standard Webhooks
//! signature the way a receiver's library does (`webhook-signature` holds `v1,` + base64
//! HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}` under the key the `whsec_`
//! secret encodes; a timestamp within five minutes) and refuses a request that fails it
//! with 401. The secret is learnt after the channel is saved (`set_secret`).

use super::{Answer, FakeVendor, Judgement};
use axum::http::StatusCode;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// One notice the receiver accepted (signature checked).
#[derive(Debug, Clone)]
pub struct Notice {
    pub id: String,
    /// `alarm.notified`, `alarm.escalated` or `alarm.renotified`.
    pub kind: String,
    pub alarm_id: String,
    pub severity: String,
    /// The step: `NOTIFY`, `ESCALATE` or `RENOTIFY`, and its number.
    pub step: (String, i64),
}

/// Whether `signatures` (space-separated `v1,...`) holds the signature of the message.
pub fn verify(secret: &str, id: &str, ts: &str, body: &[u8], signatures: &str) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let Some(key) = secret.strip_prefix("whsec_").and_then(|k| b64.decode(k).ok()) else { return false };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("key");
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", b64.encode(mac.finalize().into_bytes()));
    signatures.split(' ').any(|s| s == expected)
}

/// The fake endpoint.
#[derive(Clone)]
pub struct FakeChannel {
    pub server: FakeVendor,
    secret: Arc<Mutex<String>>,
}

impl FakeChannel {
    /// An endpoint answering 204 to well-signed notices once `set_secret` was called.
    pub async fn start() -> Self {
        let secret = Arc::new(Mutex::new(String::new()));
        let key = secret.clone();
        let server = FakeVendor::start_with(move |r| {
            let secret = key.lock().expect("secret").clone();
            let ts = r.header("webhook-timestamp");
            let fresh = ts.parse::<i64>().is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() < 300);
            let signed = verify(&secret, r.header("webhook-id"), ts, &r.body, r.header("webhook-signature"));
            if r.path != "/notify" {
                return Judgement::Refuse(Answer::status(StatusCode::NOT_FOUND, json!({})));
            }
            if !fresh || !signed {
                return Judgement::Refuse(Answer::status(StatusCode::UNAUTHORIZED, json!({"error": "bad signature"})));
            }
            Judgement::Accept(None)
        })
        .await;
        server.answer_default(Answer::status(StatusCode::NO_CONTENT, json!({})));
        Self { server, secret }
    }

    /// The URL to save as the channel's.
    pub fn url(&self) -> String {
        format!("{}/notify", self.server.base())
    }

    /// The channel's secret, as `saveNotificationChannel` answered it.
    pub fn set_secret(&self, secret: &str) {
        *self.secret.lock().expect("secret") = secret.to_owned();
    }

    /// What arrived with a good signature, in order.
    pub fn got(&self) -> Vec<Notice> {
        let accepted = self.server.exchanges().into_iter().filter(|e| e.accepted);
        accepted
            .map(|e| {
                let v: Value = e.request.json();
                let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
                Notice {
                    id: e.request.header("webhook-id").to_owned(),
                    kind: text(&v["type"]),
                    alarm_id: text(&v["data"]["alarm"]["id"]),
                    severity: text(&v["data"]["alarm"]["severity"]),
                    step: (text(&v["data"]["step"]["kind"]), v["data"]["step"]["number"].as_i64().unwrap_or(-1)),
                }
            })
            .collect()
    }

    /// Requests refused for their signature.
    pub fn bad_signatures(&self) -> usize {
        self.server.refused().len()
    }
}
