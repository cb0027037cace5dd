//! Offline credential tools for operators: sign a system user token, convert the partner key, verify a JWT.
//! None of them reads the configuration or touches the database.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDateTime, Utc};
use clap::{Args, ValueEnum};
use secrecy::{ExposeSecret, SecretString};
use shared::clock::{Clock, FixedClock, SystemClock};
use shared::crypto::partner_key::{KeyError, PartnerKey};
use shared::crypto::system_user_token::{TIMESTAMP_FORMAT, sign_system_user_token};
use shared::domain::{ContextId, SystemUserToken};
use shared::environment::Environment;
use shared::jwt::pinned::pinned_certificate;
use shared::jwt::{Certificate, Expectation, JwtValidator, KeySet, VerificationKey};

#[derive(Debug, Args)]
pub struct SignTokenArgs {
    /// The partner private key: RSA XML (<RSAKeyValue>), PKCS#1 PEM or PKCS#8 PEM.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The tenant's system user token, as received in the id_token's system_token claim.
    #[arg(long, value_name = "TOKEN", value_parser = parse_system_user_token)]
    pub token: SystemUserToken,
    /// Sign as of this UTC minute instead of now.
    #[arg(long, value_name = "yyyyMMddHHmm", value_parser = parse_timestamp)]
    pub timestamp: Option<DateTime<Utc>>,
}

#[derive(Debug, Args)]
pub struct ConvertKeyArgs {
    /// The partner private key: RSA XML (<RSAKeyValue>), PKCS#1 PEM or PKCS#8 PEM.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
}

/// Which SuperOffice token `verify-jwt` checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TokenKind {
    /// An OpenID Connect id_token: issuer https://{env}.superoffice.com, audience the client_id.
    IdToken,
    /// The JWT PartnerSystemUserService returns: issuer "SuperOffice AS", audience spn:{serial}.
    SystemUser,
}

#[derive(Debug, Args)]
pub struct VerifyJwtArgs {
    #[arg(long, value_enum)]
    pub kind: TokenKind,
    /// sod, qaonline (stage), online or custom: chooses the pinned certificate and the id_token issuer.
    #[arg(long, value_name = "ENV")]
    pub env: Environment,
    /// id-token: the application's client_id. system-user: the tenant's serial, or spn:{serial}.
    #[arg(long, value_name = "A")]
    pub audience: Option<String>,
    /// id-token: the nonce sent with the authorization request.
    #[arg(long, value_name = "N")]
    pub nonce: Option<String>,
    /// system-user: the tenant the ticket must be for (otherwise the tenant is reported, not checked).
    #[arg(long, value_name = "CustNNNNN", value_parser = parse_context_id)]
    pub ctx: Option<ContextId>,
    /// Check the lifetime as of this Unix time instead of now.
    #[arg(long, value_name = "UNIX")]
    pub now: Option<i64>,
    /// A certificate PEM to verify with instead of the environment's pinned one (required for custom).
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// id-token: the expected issuer (required for custom; defaults to https://{env}.superoffice.com).
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,
    /// Clock leeway in seconds for exp and nbf.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub leeway_secs: u64,
    /// The JWT.
    #[arg(value_name = "TOKEN", value_parser = parse_secret)]
    pub token: SecretString,
}

/// Prints `token.yyyyMMddHHmm.signature`.
pub fn sign_token(args: &SignTokenArgs) -> anyhow::Result<()> {
    let key = read_key(&args.key)?;
    let at = args.timestamp.unwrap_or_else(|| SystemClock.now());
    println!("{}", sign_system_user_token(&key, &args.token, at).expose());
    Ok(())
}

/// Prints the key as PKCS#8 PEM (`BEGIN PRIVATE KEY`).
pub fn convert_key(args: &ConvertKeyArgs) -> anyhow::Result<()> {
    let key = read_key(&args.key)?;
    print!("{}", key.to_pkcs8_pem()?.expose_secret());
    Ok(())
}

/// Prints the claims as JSON, the system user token and ticket shown as "[REDACTED]"; or fails with the
/// reason the token was refused.
pub fn verify_jwt(args: &VerifyJwtArgs) -> anyhow::Result<()> {
    let certificate = match &args.cert {
        Some(path) => {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read certificate {}", path.display()))?;
            Certificate::from_pem(&pem)
                .with_context(|| format!("certificate {}", path.display()))?
        }
        None => match pinned_certificate(args.env)? {
            Some(certificate) => certificate,
            None => bail!(
                "environment {} has no pinned certificate; pass --cert FILE",
                args.env
            ),
        },
    };
    let clock: Arc<dyn Clock> = match args.now {
        Some(seconds) => Arc::new(FixedClock(
            DateTime::from_timestamp(seconds, 0).context("--now is out of range")?,
        )),
        None => Arc::new(SystemClock),
    };
    let validator = JwtValidator::new(
        KeySet::from_keys(vec![VerificationKey::from_certificate(&certificate)]),
        Duration::from_secs(args.leeway_secs),
    )
    .with_clock(clock);
    let token = args.token.expose_secret().trim();
    let expectation = expectation(args, &validator, token)?;
    let claims = validator
        .validate_offline(token, &expectation)
        .context("token rejected")?;
    println!("{}", serde_json::to_string_pretty(&claims.redacted_json())?);
    Ok(())
}

fn expectation(
    args: &VerifyJwtArgs,
    validator: &JwtValidator,
    token: &str,
) -> anyhow::Result<Expectation> {
    let audience = args.audience.clone();
    match args.kind {
        TokenKind::IdToken => {
            let Some(issuer) = args.issuer.clone().or_else(|| args.env.issuer()) else {
                bail!("--issuer is required with --env custom");
            };
            Ok(Expectation::IdToken {
                issuer,
                client_id: audience
                    .context("--audience is required for id-token: the application's client_id")?,
                nonce: args.nonce.clone(),
            })
        }
        TokenKind::SystemUser => {
            let serial = audience.context(
                "--audience is required for system-user: the tenant's serial, or spn:{serial}",
            )?;
            let context_id = match &args.ctx {
                Some(ctx) => ctx.clone(),
                // Without --ctx the tenant is taken from the token only once its signature and issuer hold.
                None => {
                    validator
                        .validate_offline(token, &Expectation::Legacy)
                        .context("token rejected")?
                        .tenant
                        .context_id
                }
            };
            Ok(Expectation::SystemUser { serial, context_id })
        }
    }
}

fn read_key(path: &Path) -> anyhow::Result<PartnerKey> {
    match PartnerKey::from_file(path) {
        Ok(key) => Ok(key),
        Err(e @ KeyError::Read { .. }) => Err(e.into()),
        Err(e) => Err(e).with_context(|| format!("partner key {}", path.display())),
    }
}

fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, String> {
    if text.len() != 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected 12 digits: yyyyMMddHHmm (UTC)".into());
    }
    NaiveDateTime::parse_from_str(text, TIMESTAMP_FORMAT)
        .map(|t| t.and_utc())
        .map_err(|_| "not a valid UTC date and time (yyyyMMddHHmm)".into())
}

fn parse_system_user_token(text: &str) -> Result<SystemUserToken, String> {
    SystemUserToken::parse(text).map_err(|e| e.to_string())
}

fn parse_context_id(text: &str) -> Result<ContextId, String> {
    ContextId::parse(text).map_err(|e| e.to_string())
}

fn parse_secret(text: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(text))
}
