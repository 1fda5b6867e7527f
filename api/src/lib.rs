//! Linkyard server: configuration, the GraphQL API, inbound hooks and operations endpoints.
//! `main.rs` is the CLI; tests boot the same `app::start` on an ephemeral port.
#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod error;
pub mod graphql;
pub mod hooks;
pub mod ops;
pub mod telemetry;
