//! Integration tests of the running app: one binary, one module per area.

mod e2e_auth;
mod e2e_cli;
mod e2e_deliveries;
mod e2e_dingding;
mod e2e_dingding_callbacks;
mod e2e_domain;
mod e2e_escalation;
mod e2e_etc;
mod e2e_goldcard;
mod e2e_hazchem;
mod e2e_huzhou;
mod e2e_inbound;
mod e2e_integrations;
mod e2e_ops;
mod e2e_outbound;
mod e2e_outbox;
mod e2e_schedules;
mod e2e_subscriptions;
mod e2e_tariffs;
mod e2e_tenancy;
mod e2e_tickets;
mod utils;
