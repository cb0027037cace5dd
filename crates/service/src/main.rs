use std::process::ExitCode;

use clap::Parser;
use service::cli::{Cli, Command};
use service::commands::credentials;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Command::SignToken(args) => credentials::sign_token(args),
        Command::ConvertKey(args) => credentials::convert_key(args),
        Command::VerifyJwt(args) => credentials::verify_jwt(args),
        Command::Run { .. } | Command::Migrate => Ok(()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("partner-service: {e:#}");
            ExitCode::FAILURE
        }
    }
}
