//! Outbound clients, one module per vendor; each implements `DeliverySender` for the
//! deliveries of its kind prefix.

pub mod dingding;
pub mod etc;
pub mod goldcard;
pub mod guard;
pub mod hazchem;
pub mod huzhou;
pub mod inbound;
pub mod telemetry;
pub mod webhook;

#[cfg(test)]
mod ticket_tables;

use std::time::Duration;

pub use guard::{Http, OutboundGuard};

/// The HTTP client every vendor module starts from: bounded connect and request times,
/// so a hung vendor costs one attempt, not a worker; every call through `guard`.
///
/// # Errors
/// When the TLS backend cannot initialise.
pub fn http_client(timeout: Duration, guard: &std::sync::Arc<OutboundGuard>) -> anyhow::Result<Http> {
    guard.client(timeout)
}

/// A URL for attempt records: scheme, host and path; the query (which can carry
/// secrets) is dropped.
pub(crate) fn redact_url(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or_default().to_owned()
}

/// What went wrong on the wire, without the URL (its query can carry secrets).
pub(crate) fn transport_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        "transport error".into()
    }
}

/// How a send that got no answer is treated: the guard's refusal is permanent (a
/// configuration no retry fixes; replay it once allowed), anything else is retried.
pub(crate) fn send_failure(e: String) -> domain::deliveries::Verdict {
    if e.starts_with("refused: ") {
        domain::deliveries::Verdict::Permanent(e)
    } else {
        domain::deliveries::Verdict::Retry(e)
    }
}

/// How an HTTP status is retried: 408, 429 and 5xx are worth another attempt.
pub(crate) fn retryable_status(status: u16) -> bool {
    status == 408 || status == 429 || status >= 500
}
