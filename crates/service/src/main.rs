use std::process::ExitCode;

use clap::Parser;
use service::cli::{Cli, Command};
use service::commands::{self, credentials};
use service::daemon;
use shared::config::Settings;

fn main() -> ExitCode {
    let cli = Cli::parse();
    shared::telemetry::init("info");
    let outcome = match &cli.command {
        // Offline commands: no configuration, no database, no runtime.
        Command::SignToken(args) => credentials::sign_token(args).map(|()| ExitCode::SUCCESS),
        Command::ConvertKey(args) => credentials::convert_key(args).map(|()| ExitCode::SUCCESS),
        Command::VerifyJwt(args) => credentials::verify_jwt(args).map(|()| ExitCode::SUCCESS),
        _ => match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(dispatch(cli)),
            Err(e) => Err(anyhow::anyhow!("cannot start the async runtime: {e}")),
        },
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("partner-service: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = || Settings::load(cli.config.as_deref());
    match cli.command {
        Command::Run { once } => {
            let cancel = shared::shutdown::on_signal();
            daemon::run(settings()?, once, cancel).await?;
            tracing::info!("partner-service stopped");
        }
        Command::Migrate => commands::migrate::run(&settings()?).await?,
        Command::Tenants { action } => commands::tenants::run(&settings()?, action).await?,
        Command::RotateEncryptionKey => {
            commands::tenants::rotate_encryption_key(&settings()?).await?
        }
        Command::TenantStatus { ctx } => {
            commands::superoffice::tenant_status(&settings()?, &ctx).await?;
        }
        Command::Exchange { ctx } => commands::superoffice::exchange(&settings()?, &ctx).await?,
        Command::SignToken(_) | Command::ConvertKey(_) | Command::VerifyJwt(_) => {}
    }
    Ok(ExitCode::SUCCESS)
}
