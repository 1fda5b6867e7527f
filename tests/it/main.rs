//! Integration tests of the running app: one binary, one module per area.

mod e2e_auth;
mod e2e_cli;
mod e2e_integrations;
mod e2e_ops;
mod e2e_tenancy;
mod utils;
