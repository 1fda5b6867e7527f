//! The hazardous-chemical safety regulator (PROTOCOLS.md §5, seed 004 数字危化特殊作业接口文档),
//! all out: a bearer token from `/auth/login` (30 minutes, shared through the token cache);
//! every create or change of a `WORK_PERMIT` uploaded to `workTicket` (one lane per
//! integration, so a permit's versions arrive in order, and what piles up while the
//! regulator is down goes in one batch); attachments to `ticketFile` while the permit is
//! issued or accepted, at least a minute apart per permit; gas-analysis and personnel
//! alarms to `gasAlarm` / `departureAlarm` on raise and on clear.
//!
//! - `wire`: the seed's messages; `client`: the sender; `plan`: what a change owes;
//! - `tickets`: the `WORK_PERMIT` field table and its attachment rules.

pub mod client;
pub mod plan;
pub mod tickets;
pub mod wire;

pub use client::HazchemSender;
pub use plan::{HazchemAlarms, HazchemPlanner};

use domain::tickets::{FieldRules, FileRules, TicketKind};

/// Vendor name in errors and logs.
pub const VENDOR: &str = "hazchem";
/// Delivery kind prefix of this module's sender.
pub const PREFIX: &str = "hazchem";
/// Seed 004 二.2: a batch of permits.
pub const WORK_TICKET: &str = "hazchem.work_ticket";
/// Seed 004 二.3: one attachment of one permit.
pub const TICKET_FILE: &str = "hazchem.ticket_file";
/// Seed 004 二.4: a gas-analysis alarm, raised or cleared.
pub const GAS_ALARM: &str = "hazchem.gas_alarm";
/// Seed 004 二.5: a personnel (departure) alarm, raised or cleared.
pub const DEPARTURE_ALARM: &str = "hazchem.departure_alarm";

/// The alarm kind of a work permit's gas-analysis alarm (`attributes.alarm_type` 1-3).
pub const GAS_ANALYSIS: &str = "GAS_ANALYSIS";
/// The alarm kind of a work permit's personnel alarm (`attributes.alarm_type` 1-2, the
/// person and where the alarm went off).
pub const PERSONNEL_DEPARTURE: &str = "PERSONNEL_DEPARTURE";

/// The ticket kinds this module gives field tables for (registered with the ticket service).
pub const TICKET_RULES: &[(TicketKind, &FieldRules)] = &[(TicketKind::WorkPermit, &tickets::WORK_PERMIT)];

/// The ticket kinds whose attachments this module constrains.
pub const FILE_RULES: &[(TicketKind, &FileRules)] = &[(TicketKind::WorkPermit, &tickets::PERMIT_FILES)];

/// The ticket kinds this module uploads.
pub const UPLOADS: &[TicketKind] = &[TicketKind::WorkPermit];
