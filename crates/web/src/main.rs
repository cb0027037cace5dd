use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use shared::config::Settings;
use web::Application;

/// partner-web: sign-in through SuperID and capture of the tenant's system user token.
#[derive(Debug, Parser)]
#[command(name = "partner-web", version)]
struct Cli {
    /// Configuration file layered over config/default.toml (also PARTNER_CONFIG).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    shared::telemetry::init("info,partner_web=info");
    let result = async {
        let settings = Settings::load(cli.config.as_deref())?;
        let app = Application::build(settings).await?;
        app.run_until_stopped().await?;
        anyhow::Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            tracing::info!("partner-web stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("partner-web: {e:#}");
            ExitCode::FAILURE
        }
    }
}
