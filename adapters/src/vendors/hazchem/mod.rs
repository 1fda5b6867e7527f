//! The hazardous-chemical safety regulator (PROTOCOLS.md §5, seed 004): work permits.
//! So far the `WORK_PERMIT` field table; the uploads come with the hazchem issue.

pub mod tickets;

use domain::tickets::{FieldRules, TicketKind};

/// The ticket kinds this module gives field tables for (registered with the ticket service).
pub const TICKET_RULES: &[(TicketKind, &FieldRules)] = &[(TicketKind::WorkPermit, &tickets::WORK_PERMIT)];
