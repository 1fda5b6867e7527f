//! Huzhou special-equipment data center (seed 000, `PROTOCOLS.md` section 1): the pushes
//! the platform makes as the elevator IoT vendor.

mod client;
mod map;
pub mod sign;
mod wire;

pub use client::HuzhouSender;

/// Kind prefix of Huzhou deliveries (`huzhou.lift_alarm`).
pub const PREFIX: &str = domain::huzhou::PREFIX;
