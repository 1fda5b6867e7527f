//! Delivery metrics, exported on `/metrics`:
//! - `linkyard_delivery_attempts_total{vendor, outcome}`: attempts by outcome
//!   (`SUCCEEDED`, `RETRY`, `DEAD`, `TOKEN_EXPIRED`);
//! - `linkyard_delivery_attempt_seconds{vendor}`: how long the vendor took per attempt;
//! - `linkyard_delivery_latency_seconds{vendor}`: creation to success, retries included;
//! - `linkyard_deliveries_held_total{vendor}`: runs held back by a rate limit or order;
//! - `linkyard_delivery_queue_depth{state}`: deliveries waiting (PENDING, RETRYING,
//!   IN_FLIGHT), refreshed by the sweep.
//!
//! Inbound metrics, the same for every protocol of the inbound pipeline:
//! - `linkyard_inbound_requests_total{protocol, outcome}`: hook requests by what the
//!   pipeline did (`REFUSED`, `STORED`, `DUPLICATE`, `STORE_FAILED`);
//! - `linkyard_inbound_applied_total{protocol, state}`: stored requests applied, by the
//!   state they ended in.

use domain::deliveries::{DeliveryState, RunOutcome};

/// Counts a hook request by what the pipeline did with it.
pub fn inbound_request(protocol: &'static str, outcome: &'static str) {
    metrics::counter!("linkyard_inbound_requests_total", "protocol" => protocol, "outcome" => outcome).increment(1);
}

/// Counts a stored request applied, by the state it ended in.
pub fn inbound_applied(protocol: &'static str, state: domain::events::EventState) {
    metrics::counter!("linkyard_inbound_applied_total", "protocol" => protocol, "state" => state.as_str()).increment(1);
}

fn vendor(kind: &str) -> String {
    kind.split('.').next().unwrap_or_default().to_owned()
}

/// Records what one run of a delivery did.
pub fn record_run(outcome: &RunOutcome) {
    match outcome {
        RunOutcome::Skipped => {}
        RunOutcome::Held { .. } => metrics::counter!("linkyard_deliveries_held_total").increment(1),
        RunOutcome::Finished { delivery, attempts } => {
            let v = vendor(&delivery.kind);
            for a in attempts {
                metrics::counter!("linkyard_delivery_attempts_total", "vendor" => v.clone(), "outcome" => a.outcome)
                    .increment(1);
                metrics::histogram!("linkyard_delivery_attempt_seconds", "vendor" => v.clone())
                    .record(a.latency.as_secs_f64());
            }
            if delivery.state == DeliveryState::Succeeded {
                let latency = (chrono::Utc::now() - delivery.created_at).to_std().unwrap_or_default();
                metrics::histogram!("linkyard_delivery_latency_seconds", "vendor" => v).record(latency.as_secs_f64());
            }
        }
    }
}

/// Publishes the queue depth by state (states with none are set to zero).
pub fn record_depth(depth: &[(DeliveryState, u64)]) {
    for state in [DeliveryState::Pending, DeliveryState::Retrying, DeliveryState::InFlight] {
        let n = depth.iter().find(|(s, _)| *s == state).map_or(0, |(_, n)| *n);
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!("linkyard_delivery_queue_depth", "state" => state.as_str()).set(n as f64);
    }
}
