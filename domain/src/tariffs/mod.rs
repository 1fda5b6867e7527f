//! Tariffs and meter accounts. The pure charging and ledger rules are in `rules`; this
//! module versions tariffs, binds them to meters and keeps each account's ledger.

pub mod billing;
mod models;
mod ports;
pub mod rules;
mod service;

pub use billing::{ChargeDetail, MeterState, ReadingBill, SupplyChange, centre_billed};
pub use models::*;
pub use ports::*;
pub use rules::*;
pub use service::*;
