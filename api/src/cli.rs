//! `linkyard`: the CLI of `CONTRACT.md` — serve (default), worker, migrate, schema, admin.
//! The binary's `main` is this module's, so tests can build the same CLI as a binary of
//! their own package.

use crate::config::{Config, Settings};
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;
use std::io::Write;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "linkyard", version, about = "Multi-tenant IoT vendor gateway behind one GraphQL API")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    settings: Settings,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default): applies migrations first.
    Serve,
    /// Run the job workers alone (no HTTP), so API and workers scale apart.
    Worker,
    /// Apply migrations and exit.
    Migrate,
    /// Print the GraphQL SDL.
    Schema,
    /// Administrative tasks.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create the first platform administrator (idempotent).
    CreatePlatformAdmin {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
    },
    /// Seal every stored credential again under `LINKYARD_SECRET_KEY`; values sealed under
    /// `LINKYARD_SECRET_KEY_PREVIOUS` are moved, so the previous key can then be dropped.
    Reencrypt,
}

/// Runs the CLI with the process's arguments.
///
/// # Errors
/// When the command fails; the error is printed by the caller's `main`.
pub fn main() -> anyhow::Result<()> {
    allocator_settings();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run())
}

/// mimalloc's option for how long memory freed stays with the process before it is
/// returned to the system, and our value, in milliseconds.
const PURGE_DELAY: &str = "MIMALLOC_PURGE_DELAY";
const PURGE_DELAY_MS: &str = "10";

/// The allocator reads its settings from the environment as the process starts, before
/// `main`. Its default keeps freed memory for a second and returns it only when a thread
/// next allocates a fresh page, which an idle server seldom does: what a burst or the
/// start (password hashing, migrations) freed stayed resident (bench `memory`: 50 MB idle,
/// 43 MB with 10 ms). Unless the environment sets it already, the process starts itself
/// again, in place (same pid, same arguments), with ours. Should that fail, it runs on
/// with the allocator's defaults.
fn allocator_settings() {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        if std::env::var_os(PURGE_DELAY).is_some() {
            return;
        }
        let Ok(exe) = std::env::current_exe() else { return };
        let mut args = std::env::args_os();
        let mut again = std::process::Command::new(exe);
        if let Some(arg0) = args.next() {
            again.arg0(arg0);
        }
        // `exec` returns only when it failed.
        let _ = again.args(args).env(PURGE_DELAY, PURGE_DELAY_MS).exec();
    }
}

async fn run() -> anyhow::Result<()> {
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Schema = command {
        let mut out = std::io::stdout().lock();
        out.write_all(crate::graphql::sdl().as_bytes())?;
        return Ok(());
    }
    crate::telemetry::init();
    let config = Config::resolve(cli.settings)?;
    match command {
        Command::Serve => serve(config).await,
        Command::Worker => {
            let shutdown = CancellationToken::new();
            let state = crate::app::AppState::build(Config { run_workers: false, ..config }, shutdown.clone()).await?;
            let workers = state.spawn_workers();
            tracing::info!("delivery workers running");
            crate::app::shutdown_signal().await;
            shutdown.cancel();
            let _ = workers.await;
            Ok(())
        }
        Command::Migrate => {
            let db = adapters::db::connect(&config.database_url).await?;
            adapters::db::migrate(&db).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Admin { command: AdminCommand::CreatePlatformAdmin { email, password } } => {
            let config = Config { admin: Some((email, password.into())), ..config };
            let admin = config.admin.clone();
            let state = crate::app::AppState::build(
                Config { admin: None, run_workers: false, ..config },
                CancellationToken::new(),
            )
            .await?;
            if let Some((email, password)) = admin {
                let (user, created) = state
                    .users
                    .ensure_platform_admin(&email, password.expose_secret())
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let word = if created { "created" } else { "already exists" };
                writeln!(std::io::stdout(), "platform admin {} {word} (id {})", user.email, user.id)?;
            }
            Ok(())
        }
        Command::Admin { command: AdminCommand::Reencrypt } => {
            let db = adapters::db::connect(&config.database_url).await?;
            adapters::db::migrate(&db).await?;
            let done = adapters::db::reencrypt::reencrypt(&db, &config.secret_box()?).await?;
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "re-encrypted under the current key: {} integrations, {} lock passwords, {} deliveries",
                done.integrations, done.lock_passwords, done.deliveries
            )?;
            if done.unopened > 0 {
                writeln!(
                    out,
                    "{} delivery payload strings look sealed but open under neither key (left as they are)",
                    done.unopened
                )?;
            }
            Ok(())
        }
        Command::Schema => Ok(()),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let running = crate::app::start(config, shutdown.clone()).await?;
    crate::app::shutdown_signal().await;
    tracing::info!("shutdown requested: finishing in-flight requests");
    shutdown.cancel();
    running.task.await??;
    if let Some(workers) = running.workers {
        tracing::info!("letting delivery attempts in flight finish");
        let _ = workers.await;
    }
    tracing::info!("stopped");
    Ok(())
}
