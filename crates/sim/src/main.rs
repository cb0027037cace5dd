//! `superoffice-sim --config FILE [--superid-bind ADDR] [--api-bind ADDR]`

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use superoffice_sim::{SimConfig, Simulator};
use tracing_subscriber::EnvFilter;

/// A local simulator of SuperOffice SuperID and tenant web services.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// The simulator's TOML configuration (e.g. config/sim.toml).
    #[arg(long)]
    config: PathBuf,
    /// Overrides [superid] bind.
    #[arg(long)]
    superid_bind: Option<String>,
    /// Overrides the bind address of the first [[api_hosts]].
    #[arg(long)]
    api_bind: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let mut config = SimConfig::from_file(&cli.config)
        .with_context(|| format!("loading {}", cli.config.display()))?;
    if let Some(bind) = cli.superid_bind {
        config.superid.bind = bind;
    }
    if let (Some(bind), Some(host)) = (cli.api_bind, config.api_hosts.first_mut()) {
        host.bind = bind;
    }
    let sim = Simulator::start(config)
        .await
        .context("starting the simulator")?;
    shutdown_signal().await;
    tracing::info!("shutting down");
    sim.stop().await;
    Ok(())
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; waiting for Ctrl-C only");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
