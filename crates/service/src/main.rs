use clap::Parser;
use service::cli::Cli;

fn main() -> std::process::ExitCode {
    let _cli = Cli::parse();
    std::process::ExitCode::SUCCESS
}
