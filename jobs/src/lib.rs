//! Linkyard background jobs: the delivery queue and workers, the sender registry and the
//! periodic sweep. Job payloads are ids only; workers reload the delivery. The retry policy
//! is data plus one pure function, in `domain::deliveries::RetryPolicy`.
#![forbid(unsafe_code)]

mod senders;
mod store;
mod sweep;

pub use senders::SenderRegistry;
pub use store::{ApalisQueue, DeliverJob, JobStore, WorkerSettings};
pub use sweep::run_sweeper;
