//! Linkyard background jobs: the delivery queue and workers, the sender registry and the
//! periodic sweep. Job payloads are ids only; workers reload the delivery. The retry policy
//! is data plus one pure function, in `domain::deliveries::RetryPolicy`.
#![forbid(unsafe_code)]

mod local;
mod senders;

pub use local::{LocalQueue, run_sweeper, run_worker};
pub use senders::SenderRegistry;
