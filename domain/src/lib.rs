//! Linkyard domain: the models, rules and ports every adapter and controller maps into.
//!
//! This crate depends on no web, ORM or HTTP-client crate (`.ci/run` checks it with
//! `cargo tree`). Ports are `Send + Sync` traits used as `Arc<dyn Port>`.
#![forbid(unsafe_code)]

pub mod actor;
pub mod alarms;
pub mod audit;
pub mod bus;
pub mod clock;
pub mod deliveries;
pub mod devices;
mod enums;
pub mod error;
pub mod events;
pub mod homes;
pub mod ids;
pub mod ingest;
pub mod integrations;
pub mod limits;
pub mod outbound;
pub mod page;
pub mod retention;
pub mod schedules;
pub mod security;
pub mod tariffs;
pub mod tenants;
pub mod tickets;
pub mod tokens;
pub mod ttl;
pub mod users;

pub use actor::{Actor, Role};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{DomainError, DomainResult};
pub use page::{Page, PageRequest, TotalCount};
