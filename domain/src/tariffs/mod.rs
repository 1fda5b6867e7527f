//! Tariffs and meter accounts.

pub mod rules;
