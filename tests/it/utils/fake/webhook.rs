//! A tenant's webhook endpoint as a fake: it verifies Linkyard's signature the way a
//! receiver would (HMAC-SHA256 of `timestamp.body` under the signing secret, a timestamp
//! within five minutes) and refuses a request that fails it with 401.

use super::{Answer, FakeVendor, Judgement};
use axum::http::StatusCode;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use std::time::Duration;

/// One request the receiver accepted (signature checked).
#[derive(Debug, Clone)]
pub struct Received {
    pub key: String,
    pub event: String,
    pub alarm_id: String,
}

/// The fake receiver; its URL carries a query secret that must not show in attempts.
#[derive(Clone)]
pub struct FakeWebhook {
    pub server: FakeVendor,
}

/// The signature a receiver expects of `body` sent at `ts` under `secret`.
pub fn signature(secret: &str, ts: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

impl FakeWebhook {
    /// A receiver of webhooks signed with `secret`, answering 200 `{"ok": true}`.
    pub async fn start(secret: &str) -> Self {
        let secret = secret.to_owned();
        let server = FakeVendor::start_with(move |r| {
            let ts = r.header("x-linkyard-timestamp");
            let fresh = ts.parse::<i64>().is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() < 300);
            if r.path != "/hook" {
                return Judgement::Refuse(Answer::status(StatusCode::NOT_FOUND, json!({})));
            }
            if !fresh || r.header("x-linkyard-signature") != signature(&secret, ts, &r.body) {
                return Judgement::Refuse(Answer::status(StatusCode::UNAUTHORIZED, json!({"error": "bad signature"})));
            }
            Judgement::Accept(None)
        })
        .await;
        server.answer_default(Answer::ok(json!({"ok": true})));
        Self { server }
    }

    /// The URL to configure.
    pub fn url(&self) -> String {
        format!("{}/hook?token=query-secret-1", self.server.base())
    }

    /// What arrived with a good signature, in order.
    pub fn got(&self) -> Vec<Received> {
        let accepted = self.server.exchanges().into_iter().filter(|e| e.accepted);
        accepted
            .map(|e| {
                let v: Value = e.request.json();
                Received {
                    key: e.request.header("x-linkyard-idempotency-key").to_owned(),
                    event: v["event"].as_str().unwrap_or_default().to_owned(),
                    alarm_id: v["alarm"]["id"].as_str().unwrap_or_default().to_owned(),
                }
            })
            .collect()
    }

    /// Requests refused for their signature.
    pub fn bad_signatures(&self) -> usize {
        self.server.refused().len()
    }

    /// Answers the first request only after `delay` (an hour: never, for the test).
    pub fn delay_first(&self, delay: Duration) {
        self.server.answer_when(|_| true, Some(1), Answer::ok(json!({"ok": true})).after(delay));
    }

    /// Waits until a request has arrived (bound it with `tokio::time::timeout`).
    pub async fn first_arrived(&self) {
        while !self.server.exchanges().iter().any(|e| e.accepted) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
