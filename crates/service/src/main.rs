use std::process::ExitCode;

use clap::Parser;
use service::cli::{Cli, Command};
use service::{commands, daemon};
use shared::config::Settings;

fn main() -> ExitCode {
    let cli = Cli::parse();
    shared::telemetry::init("info");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("partner-service: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("partner-service: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run { once } => {
            let settings = Settings::load(cli.config.as_deref())?;
            let cancel = shared::shutdown::on_signal();
            daemon::run(settings, once, cancel).await?;
            tracing::info!("partner-service stopped");
        }
        Command::Migrate => {
            let settings = Settings::load(cli.config.as_deref())?;
            commands::migrate::run(&settings).await?;
        }
        Command::Tenants { action } => {
            let settings = Settings::load(cli.config.as_deref())?;
            commands::tenants::run(&settings, action).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
