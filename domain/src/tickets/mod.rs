//! Tickets: hazardous work permits, elevator maintenance and rescue records, lock
//! installation and repair work orders. The per-kind fields, statuses and workflows are in
//! `rules`; this module stores them, checks who may touch them and keeps their files.

mod models;
mod ports;
pub mod rules;
mod service;
mod sync;

pub use models::*;
pub use ports::*;
pub use rules::*;
pub use service::*;
pub use sync::*;
