//! sea-orm entities, one per table; private to the db module.

pub mod alarm_entries;
pub mod alarms;
pub mod api_keys;
pub mod audit_log;
pub mod daily_usage;
pub mod deliveries;
pub mod delivery_attempts;
pub mod device_files;
pub mod devices;
pub mod dingding_lock_passwords;
pub mod dingding_operations;
pub mod homes;
pub mod inbound_events;
pub mod integrations;
pub mod ledger_entries;
pub mod meter_accounts;
pub mod price_assignments;
pub mod readings;
pub mod rooms;
pub mod scheduled_runs;
pub mod tariffs;
pub mod tenants;
pub mod ticket_files;
pub mod ticket_syncs;
pub mod tickets;
pub mod users;
