use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use secrecy::SecretString;
use service::cli::{Cli, Command, EXCHANGE_SERIAL_VAR, EXCHANGE_TOKEN_VAR};
use service::commands::{self, credentials};
use service::daemon;
use shared::config::{Settings, Sources};

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
    let settings = || load_settings(cli.config.as_deref());
    match cli.command {
        Command::Run { once } => {
            let cancel = shared::shutdown::on_signal();
            daemon::run(settings()?, once, cancel).await?;
            tracing::info!("partner-service stopped");
        }
        Command::Migrate => commands::migrate::run(&settings()?).await?,
        Command::Tenants { action } => commands::tenants::run(&settings()?, action).await?,
        Command::TenantStatus { ctx } => {
            commands::superoffice::tenant_status(&settings()?, &ctx).await?;
        }
        Command::Exchange { ctx, token, serial } => {
            let token = SecretString::from(token);
            commands::superoffice::exchange(&settings()?, &ctx, &token, &serial).await?;
        }
        Command::SignToken(_) | Command::ConvertKey(_) | Command::VerifyJwt(_) => {}
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
