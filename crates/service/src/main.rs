use std::process::ExitCode;

use std::path::Path;

use clap::Parser;
use secrecy::SecretString;
use service::cli::{Cli, Command, EXCHANGE_SERIAL_VAR, EXCHANGE_TOKEN_VAR};
use service::{commands, daemon};
use shared::config::{Settings, Sources};

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
            let settings = load_settings(cli.config.as_deref())?;
            let cancel = shared::shutdown::on_signal();
            daemon::run(settings, once, cancel).await?;
            tracing::info!("partner-service stopped");
        }
        Command::Migrate => {
            let settings = load_settings(cli.config.as_deref())?;
            commands::migrate::run(&settings).await?;
        }
        Command::TenantStatus { ctx } => {
            let settings = load_settings(cli.config.as_deref())?;
            commands::superoffice::tenant_status(&settings, &ctx).await?;
        }
        Command::Exchange { ctx, token, serial } => {
            let settings = load_settings(cli.config.as_deref())?;
            commands::superoffice::exchange(&settings, &ctx, &SecretString::from(token), &serial)
                .await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The layered configuration; the `exchange` command's own variables are not configuration keys.
fn load_settings(file: Option<&Path>) -> anyhow::Result<Settings> {
    let mut sources = Sources::from_process(file);
    sources.env.remove(EXCHANGE_TOKEN_VAR);
    sources.env.remove(EXCHANGE_SERIAL_VAR);
    Ok(Settings::from_sources(&sources)?)
}
