//! `chronik-server`: the broker daemon.

mod alloc;

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use chronik::config::{CliOverrides, Config};
use chronik_actors::cli::ClusterCommand;
use clap::{Parser, Subcommand};
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

#[global_allocator]
static GLOBAL: alloc::GuardedAlloc = alloc::GuardedAlloc;

/// Chronik: a Kafka-compatible message broker.
#[derive(Debug, Parser)]
#[command(name = "chronik-server", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a broker. Without --config: a standalone broker on embedded defaults
    /// (Kafka 0.0.0.0:9092, admin 0.0.0.0:10001, data ./data).
    Start {
        /// TOML configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data directory (overrides the file and CHRONIK_DATA_DIR).
        #[arg(long)]
        data_dir: Option<String>,
        /// Node id (overrides the file and CHRONIK_NODE_ID).
        #[arg(long)]
        node_id: Option<u64>,
    },
    /// Operate on a running cluster through its nodes' admin APIs.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
}

fn main() -> std::process::ExitCode {
    init_logging();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            error!(error = %e, "cannot start the async runtime");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            error!("{e:#}");
            eprintln!("chronik-server: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    let env: HashMap<String, String> = std::env::vars().filter(|(k, _)| k.starts_with("CHRONIK_")).collect();
    match cli.command {
        Command::Start { config, data_dir, node_id } => {
            start(Config::load(config.as_deref(), env, &CliOverrides { data_dir, node_id })?).await?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Cluster { command } => Ok(chronik_actors::cli::run(command, env).await?),
    }
}

async fn start(config: Config) -> anyhow::Result<()> {
    info!(config = %serde_json::to_string(&config)?, "effective configuration");
    if config.debug.fail_points {
        // Before any partition log opens, so every file is tracked from its first sight.
        chronik::log::durability::enable();
        info!("fail points on: tracking durable file lengths for the power_cut fail point");
    }
    let (node, handle, ctx) = chronik_actors::start_node(config).await.context("the node failed to start")?;
    tokio::pin!(handle);
    tokio::select! {
        _ = shutdown_signal() => {
            info!("shutting down: stopping clients, flushing partitions");
            node.stop(Some("signal".into()));
            handle.await?;
            if ctx.stopped_cleanly.load(std::sync::atomic::Ordering::Acquire) {
                chronik_actors::clean_shutdown::write_marker(&ctx.config.data_dir)?;
                info!("stopped cleanly");
            }
            Ok(())
        }
        _ = &mut handle => anyhow::bail!("the node's supervisor stopped: a component exceeded its restart budget"),
    }
}

/// Logs to stderr, filtered by `RUST_LOG`; the filter sits behind a reload handle so the
/// BROKER_LOGGER configs can change it at run time (`chronik_actors::log_levels`).
fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    // openraft narrates every vote and replication step at info; keep its warnings.
    let base = std::env::var("RUST_LOG").ok().filter(|d| EnvFilter::try_new(d).is_ok());
    let base = base.unwrap_or_else(|| "info,openraft=warn".to_string());
    let (filter, handle) = tracing_subscriber::reload::Layer::new(EnvFilter::new(&base));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    tracing_subscriber::registry().with(filter).with(fmt).init();
    chronik_actors::log_levels::install(base, Box::new(move |f| handle.reload(f).map_err(|e| e.to_string())));
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
