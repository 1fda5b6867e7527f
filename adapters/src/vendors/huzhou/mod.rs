//! Huzhou special-equipment data center, elevator IoT (seed `000_ae166c3c5efeb465.txt`,
//! `PROTOCOLS.md` section 1). The platform is the elevator IoT vendor:
//! - out (deliveries of kind `huzhou.<action>`): 4.1 `lift_alarm`, 4.2 `lift_maintain`,
//!   4.3 `lift_notify`, 7.5 `put_ie_elev_things`, 7.7 `put_ie_elev_paras`, 7.8
//!   `put_ie_trap_fault`;
//! - in (`elev_api`): 7.1 `get_token`, 7.2 `get_dev_info`, 7.3 `get_rt_info`, 7.4
//!   `put_rt_notice` (live subscriptions), 7.6 `get_stream_url`.
//!
//! Delivery payloads carry the seed's `req_info` field names with string values; times the
//! platform generates (`use_starttime`, `use_endtime`, `recv_time`) are RFC 3339 in the
//! payload and become the seed's 15-character form in the vendor adapter, which alone
//! formats them.

pub(crate) mod client;
pub(crate) mod inbound;
pub use inbound::HuzhouInbound;
mod jobs;
mod map;
mod ports;
pub(crate) mod service;
pub mod sign;
pub mod state;
pub mod tickets;
mod wire;

pub use jobs::{ElevThingsDaily, LiftNotifyDaily};
pub use ports::*;
pub use service::{ApiRefusal, HuzhouPorts, HuzhouService, LiveSettings};

pub use client::HuzhouSender;

/// The ticket kinds this module gives field tables for (registered with the ticket service).
pub const TICKET_RULES: &[(domain::tickets::TicketKind, &domain::tickets::FieldRules)] = &[
    (domain::tickets::TicketKind::Maintenance, &tickets::MAINTENANCE),
    (domain::tickets::TicketKind::Rescue, &tickets::RESCUE),
];
