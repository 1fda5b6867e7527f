//! `linkyard`: the CLI of `CONTRACT.md` (see `api::cli`).
#![forbid(unsafe_code)]

fn main() -> anyhow::Result<()> {
    api::cli::main()
}
