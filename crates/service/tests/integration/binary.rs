//! The built `partner-service`, run with no `PARTNER_*` variable of the test's own environment.

use std::process::{Command, Output};

/// A command for the built binary; the caller adds arguments and configuration.
pub fn partner_service() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_partner-service"));
    for (key, _) in std::env::vars() {
        if key.starts_with("PARTNER_") {
            command.env_remove(key);
        }
    }
    command
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}
