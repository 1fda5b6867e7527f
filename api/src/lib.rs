//! Linkyard server: configuration, the GraphQL API, inbound hooks and operations endpoints.
//! `main.rs` is the CLI; tests boot the same `app::start` on an ephemeral port.
#![forbid(unsafe_code)]

/// The server's allocator, for every binary that embeds it (the CLI, the tests, the
/// benches): glibc's malloc spent half the CPU of a 50,000-elevator live push burst in
/// allocation and freeing across the runtime's threads; mimalloc keeps per-thread heaps.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod error;
pub mod graphql;
pub mod hooks;
pub mod ops;
pub mod state;
pub mod telemetry;
