//! Tickets: hazardous work permits, elevator maintenance and rescue records, lock
//! installation and repair work orders.

pub mod rules;
