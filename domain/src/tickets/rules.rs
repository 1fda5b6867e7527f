//! Tickets rules (being written).
