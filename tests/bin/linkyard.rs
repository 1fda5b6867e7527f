//! The `linkyard` CLI, built as a binary of the test package so that `cargo test` always
//! builds it before the tests that start it as a child process (`CARGO_BIN_EXE_linkyard-it`).
#![forbid(unsafe_code)]

fn main() -> anyhow::Result<()> {
    api::cli::main()
}
