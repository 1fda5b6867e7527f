//! Linkyard schema migrations: one timestamped, reversible file per change. The same
//! migrations run on SQLite and PostgreSQL.
#![forbid(unsafe_code)]

pub use sea_orm_migration::prelude::*;

mod m20261125_000001_core;
mod m20261125_000002_domain;
mod m20261125_000003_prices;
mod m20261125_000004_deliveries;
mod m20261125_000005_schedules;
mod m20261201_000006_huzhou;
mod m20261201_000007_dingding;
mod m20261201_000008_huzhou_slots;
mod m20261201_000009_huzhou_changes;
mod m20261206_000010_billing;
mod m20261206_000011_delivery_subjects;
mod m20261206_000012_daily_usage;
mod m20261206_000013_device_files;
mod m20261206_000014_ticket_syncs;
mod m20261207_000020_row_security;
mod m20261207_000030_escalation;
mod m20261207_000031_audit_changes;
mod m20261207_000032_integration_disable;
mod m20261210_000015_auth_lifecycle;
mod m20261210_000015_delivery_leases;
mod m20261212_000015_hook_tokens;
mod m20261213_000040_delivery_partial_indexes;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_core::Migration),
            Box::new(m20261125_000002_domain::Migration),
            Box::new(m20261125_000003_prices::Migration),
            Box::new(m20261125_000004_deliveries::Migration),
            Box::new(m20261125_000005_schedules::Migration),
            Box::new(m20261201_000006_huzhou::Migration),
            Box::new(m20261201_000007_dingding::Migration),
            Box::new(m20261201_000008_huzhou_slots::Migration),
            Box::new(m20261201_000009_huzhou_changes::Migration),
            Box::new(m20261206_000010_billing::Migration),
            Box::new(m20261206_000011_delivery_subjects::Migration),
            Box::new(m20261206_000012_daily_usage::Migration),
            Box::new(m20261206_000013_device_files::Migration),
            Box::new(m20261206_000014_ticket_syncs::Migration),
            Box::new(m20261210_000015_auth_lifecycle::Migration),
            Box::new(m20261212_000015_hook_tokens::Migration),
            Box::new(m20261207_000031_audit_changes::Migration),
            Box::new(m20261210_000015_delivery_leases::Migration),
            Box::new(m20261207_000030_escalation::Migration),
            Box::new(m20261207_000032_integration_disable::Migration),
            Box::new(m20261207_000020_row_security::Migration),
            Box::new(m20261213_000040_delivery_partial_indexes::Migration),
        ]
    }
}
