//! Linkyard background jobs: the delivery queue and workers (apalis), the sender registry,
//! delivery metrics and the periodic-job scheduler (apalis-cron). Job payloads are ids
//! only; workers reload the delivery. The retry policy is data plus one pure function, in
//! `domain::deliveries::RetryPolicy`.
#![forbid(unsafe_code)]

pub mod inbound;
mod live;
pub mod metrics;
mod scheduler;
mod senders;
mod store;

pub use live::run_live_ticker;
pub use scheduler::run_scheduler;
pub use senders::SenderRegistry;
pub use store::{ApalisQueue, DeliverJob, FINISHED_JOB_RETENTION, JobStore, WorkerSettings};
