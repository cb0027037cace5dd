//! Command-line interface of `partner-service`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::commands::credentials::{ConvertKeyArgs, SignTokenArgs, VerifyJwtArgs};

#[derive(Debug, Parser)]
#[command(
    name = "partner-service",
    version,
    about = "Turns SuperOffice system user tokens into tickets and does the tenants' work; operator commands"
)]
pub struct Cli {
    /// Configuration file layered over config/default.toml (also PARTNER_CONFIG).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the daemon until SIGTERM or SIGINT.
    Run {
        /// Process everything that is due, then exit 0.
        #[arg(long)]
        once: bool,
    },
    /// Applies pending database migrations (safe to run twice, and concurrently).
    Migrate,
    /// Prints the tenant's state from SuperOffice's state API.
    TenantStatus {
        /// The tenant's context identifier, e.g. Cust12345.
        #[arg(value_name = "CTX")]
        ctx: String,
    },
    /// Signs the tenant's stored system user token, exchanges it for a ticket, validates and stores it
    /// now; prints the ticket's metadata, never the ticket.
    Exchange {
        /// The tenant's context identifier, e.g. Cust12345.
        #[arg(value_name = "CTX")]
        ctx: String,
    },
    /// Signs a system user token with the partner key and prints it (token.yyyyMMddHHmm.signature).
    SignToken(SignTokenArgs),
    /// Prints the partner key as PKCS#8 PEM.
    ConvertKey(ConvertKeyArgs),
    /// Validates a SuperOffice JWT offline and prints its claims as JSON (secrets as "[REDACTED]"),
    /// or one line saying why it was refused (exit status 1).
    VerifyJwt(VerifyJwtArgs),
    /// Re-encrypts every stored token and ticket under `encryption.key` (set the old key as
    /// `encryption.previous_key` while this runs).
    RotateEncryptionKey,
    /// Operator view of the tenants and actions on one of them.
    Tenants {
        #[command(subcommand)]
        action: TenantsAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum TenantsAction {
    /// A table: context id, state, ticket valid until, last success, last error.
    List,
    /// Makes the tenant due now; a tenant stopped by a failure or by an operator gets another chance.
    Retry { ctx: String },
    /// Stops all work for the tenant until an operator enables (or retries) it.
    Disable { ctx: String },
    /// Undoes `disable`: the tenant is pending again and the service obtains a ticket for it.
    Enable { ctx: String },
    /// Removes the tenant's token, ticket and work; an audit event records the purge.
    Purge { ctx: String },
    /// Ends every partner-web session signed in to the tenant; its users must sign in again.
    EndSessions { ctx: String },
}
