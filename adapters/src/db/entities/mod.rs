//! sea-orm entities, one per table; private to the db module.

pub mod api_keys;
pub mod integrations;
pub mod tenants;
pub mod users;
pub mod homes;
pub mod rooms;
pub mod devices;
pub mod readings;
pub mod alarms;
pub mod alarm_entries;
pub mod inbound_events;
pub mod audit_log;
pub mod tickets;
pub mod ticket_files;
pub mod tariffs;
pub mod meter_accounts;
pub mod ledger_entries;
