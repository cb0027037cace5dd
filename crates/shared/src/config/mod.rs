//! The one layered configuration of partner-web and partner-service.
//!
//! Layers: `config/default.toml` (compiled in), then the file named by `--config FILE` or `PARTNER_CONFIG`,
//! then `PARTNER_<SECTION>__<KEY>` environment variables; `DATABASE_URL` is honoured too. Unknown keys,
//! malformed values and missing secrets are reported with the key's name and never with a secret's value.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

pub use crate::crypto::at_rest::KeyMaterial;
pub use crate::crypto::partner_key::PrivateKeySource;
use crate::environment::Environment;
pub use crate::superid::exchange::ExchangeKind;

mod load;
mod validate;

/// The compiled-in defaults: the same text as `config/default.toml`.
pub const DEFAULT_TOML: &str = include_str!("../../../../config/default.toml");

/// The most clock leeway `superoffice.jwt_leeway_secs` may allow.
pub const MAX_JWT_LEEWAY_SECS: u64 = 300;

/// Environment variables with this prefix override configuration keys.
pub const ENV_PREFIX: &str = "PARTNER_";
/// Names the configuration file when `--config` is not given.
pub const CONFIG_FILE_VAR: &str = "PARTNER_CONFIG";

/// What went wrong with the configuration. Every variant names the key or file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("unknown configuration key `{key}` (from {origin})")]
    UnknownKey { key: String, origin: String },
    #[error("configuration key `{key}`: {reason}")]
    Invalid { key: String, reason: String },
    #[error("configuration key `{key}` is required but not set ({hint})")]
    Missing { key: String, hint: &'static str },
}

impl ConfigError {
    fn invalid(key: &str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.to_owned(),
            reason: reason.into(),
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    url: SecretString,
    pub pool_size: usize,
    pub connect_timeout_secs: u64,
}

impl DatabaseSettings {
    /// The connection URL. It may carry a password: do not log it.
    pub fn url(&self) -> &str {
        self.url.expose_secret()
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &redact_url(self.url()))
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

/// The database URL without its password, for logs.
pub fn redact_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("REDACTED"));
            }
            url.to_string()
        }
        Err(_) => "(unparsable URL)".to_owned(),
    }
}

/// `[superoffice]`: which SuperID, the application registered there, how SuperOffice's answers are
/// trusted and how it is called.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "SuperOfficeKeys")]
pub struct SuperOfficeSettings {
    pub superid: SuperIdSettings,
    pub application: ApplicationSettings,
    pub exchange: ExchangeKind,
    pub trust: TrustSettings,
    pub http: HttpSettings,
}

/// The `[superoffice]` keys as written: one table, as `config/default.toml` documents it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SuperOfficeKeys {
    environment: Environment,
    superid_url: Option<Url>,
    issuer: Option<String>,
    client_id: String,
    client_secret: Option<SecretString>,
    private_key_file: Option<PathBuf>,
    private_key: Option<SecretString>,
    exchange: ExchangeKind,
    jwt_leeway_secs: u64,
    http_timeout_secs: u64,
    tenant_rate_limit_per_sec: u32,
    jwks_refresh_secs: u64,
    pkce: bool,
    state_change_audience_required: bool,
    allowed_tenant_hosts: Vec<String>,
}

impl From<SuperOfficeKeys> for SuperOfficeSettings {
    fn from(keys: SuperOfficeKeys) -> Self {
        let SuperOfficeKeys {
            environment,
            superid_url,
            issuer,
            client_id,
            client_secret,
            private_key_file,
            private_key,
            exchange,
            jwt_leeway_secs,
            http_timeout_secs,
            tenant_rate_limit_per_sec,
            jwks_refresh_secs,
            pkce,
            state_change_audience_required,
            allowed_tenant_hosts,
        } = keys;
        Self {
            superid: SuperIdSettings {
                environment,
                superid_url,
                issuer,
                allowed_tenant_hosts,
            },
            application: ApplicationSettings {
                client_id,
                client_secret,
                private_key_file,
                private_key,
            },
            exchange,
            trust: TrustSettings {
                jwt_leeway_secs,
                jwks_refresh_secs,
                pkce,
                state_change_audience_required,
            },
            http: HttpSettings {
                timeout_secs: http_timeout_secs,
                tenant_rate_limit_per_sec,
            },
        }
    }
}

/// Which SuperID and tenants: `environment`, `superid_url`, `issuer` and `allowed_tenant_hosts`.
#[derive(Debug, Clone)]
pub struct SuperIdSettings {
    pub environment: Environment,
    /// Read through `base_url`, which derives it for the named environments.
    superid_url: Option<Url>,
    /// Read through `expected_issuer`, which derives it when not set.
    issuer: Option<String>,
    /// For `custom` only: the tenant API hosts (as `host` or `host:port`) the state API may name. The
    /// named environments allow only https hosts under `superoffice.com`.
    pub allowed_tenant_hosts: Vec<String>,
}

impl SuperIdSettings {
    /// SuperID's base URL: the configured one for `custom`, the environment's otherwise.
    pub fn base_url(&self) -> Result<Url, ConfigError> {
        match (self.environment, &self.superid_url) {
            (Environment::Custom, Some(url)) => Ok(url.clone()),
            (Environment::Custom, None) => Err(ConfigError::Missing {
                key: "superoffice.superid_url".into(),
                hint: "environment `custom` needs SuperID's base URL",
            }),
            (env, _) => env
                .superid_base_url()
                .ok_or_else(|| ConfigError::invalid("superoffice.environment", "has no base URL")),
        }
    }

    /// The expected id_token issuer.
    pub fn expected_issuer(&self) -> Result<String, ConfigError> {
        if let Some(issuer) = &self.issuer {
            return Ok(issuer.clone());
        }
        match self.environment.issuer() {
            Some(issuer) => Ok(issuer),
            None => Ok(self.base_url()?.as_str().trim_end_matches('/').to_owned()),
        }
    }
}

/// The application registered with SuperOffice: `client_id`, `client_secret` and the partner key
/// (`private_key_file` or `private_key`).
#[derive(Debug, Clone)]
pub struct ApplicationSettings {
    pub client_id: String,
    /// The secrets are read through `client_secret` and `private_key_source`, which name a missing key.
    client_secret: Option<SecretString>,
    private_key_file: Option<PathBuf>,
    private_key: Option<SecretString>,
}

impl ApplicationSettings {
    pub fn client_secret(&self) -> Result<&SecretString, ConfigError> {
        self.client_secret.as_ref().ok_or(ConfigError::Missing {
            key: "superoffice.client_secret".into(),
            hint: "the application token from the Developer Portal",
        })
    }

    pub fn private_key_source(&self) -> Result<PrivateKeySource, ConfigError> {
        match (&self.private_key_file, &self.private_key) {
            (Some(_), Some(_)) => Err(ConfigError::invalid(
                "superoffice.private_key",
                "set either private_key or private_key_file, not both",
            )),
            (Some(path), None) => Ok(PrivateKeySource::File(path.clone())),
            (None, Some(key)) => Ok(PrivateKeySource::Inline(key.clone())),
            (None, None) => Err(ConfigError::Missing {
                key: "superoffice.private_key_file".into(),
                hint: "the partner private key that signs system user tokens",
            }),
        }
    }
}

/// How SuperOffice's tokens are checked and the sign-in is made: `jwt_leeway_secs`,
/// `jwks_refresh_secs`, `pkce` and `state_change_audience_required`.
#[derive(Debug, Clone)]
pub struct TrustSettings {
    pub jwt_leeway_secs: u64,
    pub jwks_refresh_secs: u64,
    pub pkce: bool,
    /// As configured; `SuperOfficeSettings::state_change_audience_required` says what applies.
    state_change_audience_required: bool,
}

impl TrustSettings {
    pub fn jwt_leeway(&self) -> Duration {
        Duration::from_secs(self.jwt_leeway_secs)
    }

    /// How often SuperID's key set is fetched even when every token names a known key.
    pub fn jwks_refresh(&self) -> Duration {
        Duration::from_secs(self.jwks_refresh_secs)
    }
}

/// The calls to SuperOffice: `http_timeout_secs` and `tenant_rate_limit_per_sec`.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub timeout_secs: u64,
    pub tenant_rate_limit_per_sec: u32,
}

impl HttpSettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }
}

impl SuperOfficeSettings {
    /// Whether a state-change notification must carry the audience `spn:{client_id}`: always in the named
    /// environments, as `state_change_audience_required` says for `custom`.
    pub fn state_change_audience_required(&self) -> bool {
        self.superid.environment != Environment::Custom || self.trust.state_change_audience_required
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionSettings {
    key: Option<SecretString>,
    pub key_version: i16,
    previous_key: Option<SecretString>,
    pub previous_key_version: Option<i16>,
}

impl fmt::Debug for EncryptionSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptionSettings")
            .field("key", &self.key.as_ref().map(|_| "[REDACTED]"))
            .field("key_version", &self.key_version)
            .field(
                "previous_key",
                &self.previous_key.as_ref().map(|_| "[REDACTED]"),
            )
            .field("previous_key_version", &self.previous_key_version)
            .finish()
    }
}

impl EncryptionSettings {
    /// The current key, required by both services.
    pub fn current_key(&self) -> Result<KeyMaterial, ConfigError> {
        let key = self.key.as_ref().ok_or(ConfigError::Missing {
            key: "encryption.key".into(),
            hint: "64 hex characters; generate one with `openssl rand -hex 32`",
        })?;
        Ok(KeyMaterial {
            version: self.key_version,
            bytes: parse_hex_key::<32>("encryption.key", key)?,
        })
    }

    /// The previous key during a rotation, if configured.
    pub fn previous_key(&self) -> Result<Option<KeyMaterial>, ConfigError> {
        let Some(key) = &self.previous_key else {
            return Ok(None);
        };
        let version = self.previous_key_version.ok_or(ConfigError::Missing {
            key: "encryption.previous_key_version".into(),
            hint: "the version the previous key was stored under",
        })?;
        if version == self.key_version {
            return Err(ConfigError::invalid(
                "encryption.previous_key_version",
                "must differ from encryption.key_version",
            ));
        }
        Ok(Some(KeyMaterial {
            version,
            bytes: parse_hex_key::<32>("encryption.previous_key", key)?,
        }))
    }
}

fn parse_hex_key<const N: usize>(
    key: &str,
    value: &SecretString,
) -> Result<secrecy::SecretBox<[u8; N]>, ConfigError> {
    let text = value.expose_secret().trim();
    if text.len() != N * 2 {
        return Err(ConfigError::invalid(
            key,
            format!("must be {} hex characters, found {}", N * 2, text.len()),
        ));
    }
    let mut bytes = Box::new([0u8; N]);
    hex::decode_to_slice(text, bytes.as_mut_slice())
        .map_err(|_| ConfigError::invalid(key, "must contain only hex characters 0-9 a-f"))?;
    Ok(secrecy::SecretBox::new(bytes))
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSettings {
    pub bind: String,
    pub public_url: Url,
    session_key: Option<SecretString>,
    pub secure_cookies: bool,
    pub session_minutes: u64,
    pub session_max_hours: u64,
    pub system_user_actions: SystemUserActions,
    pub work_per_user_per_minute: u32,
    pub work_per_tenant_per_minute: u32,
    pub open_work_per_tenant: u32,
    pub metrics_bind: String,
    #[serde(deserialize_with = "deserialize_networks")]
    pub trusted_proxies: Vec<IpNet>,
    pub legacy_sign_in: bool,
    pub state_change_limit_per_tenant: u32,
    pub state_change_limit_per_address: u32,
    /// `web.operators`: who may open the operator console (`/operator`). Empty: the console is off.
    #[serde(deserialize_with = "deserialize_operators")]
    pub operators: Vec<Operator>,
}

/// One entry of `web.operators`: a signed-in user of one tenant, named by SuperID subject or e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// The tenant the user signs in through, e.g. `Cust12345`.
    pub context_id: String,
    /// The user's SuperID subject or e-mail address, compared without regard to case.
    pub user: String,
}

impl Operator {
    /// Parses `"Cust12345:ops@partner.example"`.
    pub fn parse(entry: &str) -> Result<Self, String> {
        let entry = entry.trim();
        let Some((context_id, user)) = entry.split_once(':') else {
            return Err(format!(
                "{entry:?} must be a context id and a user, e.g. \"Cust12345:ops@partner.example\""
            ));
        };
        let user = user.trim();
        let context_id = crate::domain::ContextId::parse(context_id)
            .map_err(|_| {
                format!(
                    "{entry:?}: {:?} is not a context id such as Cust12345",
                    context_id.trim()
                )
            })?
            .as_str()
            .to_owned();
        if user.is_empty() || user.chars().any(char::is_whitespace) {
            return Err(format!(
                "{entry:?}: the part after ':' must be the user's SuperID subject or e-mail"
            ));
        }
        Ok(Self {
            context_id,
            user: user.to_owned(),
        })
    }

    /// Whether a signed-in user (tenant, subject and e-mail from their id_token) is this operator.
    pub fn matches(&self, context_id: &str, subject: &str, email: Option<&str>) -> bool {
        self.context_id == context_id
            && (self.user.eq_ignore_ascii_case(subject)
                || email.is_some_and(|email| self.user.eq_ignore_ascii_case(email)))
    }
}

/// `web.operators` (see `list_entries`).
fn deserialize_operators<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<Operator>, D::Error> {
    list_entries(deserializer)?
        .iter()
        .map(|entry| Operator::parse(entry).map_err(serde::de::Error::custom))
        .collect()
}

/// The entries of a list setting, trimmed, empty ones left out: a TOML array, or one string with
/// comma-separated entries (as an environment variable gives it).
fn list_entries<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Entries {
        List(Vec<String>),
        Text(String),
    }
    let entries = match Entries::deserialize(deserializer)? {
        Entries::List(list) => list,
        Entries::Text(text) => text.split(',').map(str::to_owned).collect(),
    };
    Ok(entries
        .iter()
        .map(|entry| entry.trim())
        .filter(|entry| !entry.is_empty())
        .map(str::to_owned)
        .collect())
}

/// Who may ask for work with the tenant's system user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SystemUserActions {
    /// Only users SuperID names as administrators of their tenant.
    Administrators,
    /// Every signed-in user of the tenant.
    AllUsers,
}

/// A list of networks (see `list_entries`). A bare address is a network of that one address.
fn deserialize_networks<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<IpNet>, D::Error> {
    list_entries(deserializer)?
        .iter()
        .map(|entry| {
            entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "{entry:?} is neither an IP address nor a network such as 10.0.0.0/8"
                    ))
                })
        })
        .collect()
}

impl fmt::Debug for WebSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSettings")
            .field("bind", &self.bind)
            .field("public_url", &self.public_url.as_str())
            .field(
                "session_key",
                &self.session_key.as_ref().map(|_| "[REDACTED]"),
            )
            .field("secure_cookies", &self.secure_cookies)
            .field("session_minutes", &self.session_minutes)
            .field("session_max_hours", &self.session_max_hours)
            .field("system_user_actions", &self.system_user_actions)
            .field("metrics_bind", &self.metrics_bind)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("operators", &self.operators)
            .finish_non_exhaustive()
    }
}

impl WebSettings {
    /// The 64-byte cookie key, required by partner-web.
    pub fn session_key(&self) -> Result<secrecy::SecretBox<[u8; 64]>, ConfigError> {
        let key = self.session_key.as_ref().ok_or(ConfigError::Missing {
            key: "web.session_key".into(),
            hint: "128 hex characters; generate one with `openssl rand -hex 64`",
        })?;
        parse_hex_key::<64>("web.session_key", key)
    }

    /// Idle time after which a session ends.
    pub fn session_idle(&self) -> Duration {
        Duration::from_secs(self.session_minutes.saturating_mul(60))
    }

    /// Time after sign-in at which a session ends however active it is.
    pub fn session_max_age(&self) -> Duration {
        Duration::from_secs(self.session_max_hours.saturating_mul(3600))
    }

    /// Whether a request from `peer` may name the client in `X-Forwarded-For`.
    pub fn is_trusted_proxy(&self, peer: std::net::IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }

    /// The redirect URI registered with SuperOffice: `{public_url}/callback`.
    pub fn redirect_uri(&self) -> String {
        format!(
            "{}/callback",
            self.public_url.as_str().trim_end_matches('/')
        )
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSettings {
    pub poll_interval_secs: u64,
    pub metrics_bind: String,
    pub concurrency: usize,
    pub lease_secs: u64,
    pub shutdown_grace_secs: u64,
    pub ticket_refresh_after_secs: u64,
    pub tenant_timeout_secs: u64,
    pub backoff_base_secs: u64,
    pub backoff_max_secs: u64,
    /// A ticket is replaced this long after it was issued, however recently it was used.
    pub ticket_max_age_secs: u64,
    /// Retry delay after an answer that flags the tenant for an operator (not recognised, ambiguous).
    pub attention_backoff_secs: u64,
    /// Distinct tenants refused the same way within `circuit_window_secs` that open the circuit.
    pub circuit_tenants: usize,
    pub circuit_window_secs: u64,
    /// First and longest interval between probes while the circuit is open.
    pub circuit_probe_base_secs: u64,
    pub circuit_probe_max_secs: u64,
    /// The company field that carries a work request's idempotency key.
    pub idempotency_field: String,
}

/// The whole configuration, validated.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub superoffice: SuperOfficeSettings,
    pub encryption: EncryptionSettings,
    pub web: WebSettings,
    pub service: ServiceSettings,
}

/// Where the layers come from; `Settings::load` reads the process's own.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// `--config FILE`, or else `PARTNER_CONFIG`.
    pub file: Option<PathBuf>,
    /// Environment variables (all of them; only `PARTNER_*` and `DATABASE_URL` are read).
    pub env: BTreeMap<String, String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::path::Path;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Sources {
        Sources {
            file: None,
            env: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// The settings from the defaults and `pairs` as environment variables; they must load.
    fn settings(pairs: &[(&str, &str)]) -> Settings {
        Settings::from_sources(&env(pairs)).unwrap()
    }

    /// The error the defaults and `pairs` as environment variables load with; they must not load.
    fn error_for(pairs: &[(&str, &str)]) -> String {
        Settings::from_sources(&env(pairs)).unwrap_err().to_string()
    }

    /// The error of `error_for(pairs)`, which must name `key`.
    fn error_naming(pairs: &[(&str, &str)], key: &str) -> String {
        let err = error_for(pairs);
        assert_names(&err, &[key]);
        err
    }

    /// Asserts that the error text `err` has every one of `words` in it.
    fn assert_names(err: &str, words: &[&str]) {
        for word in words {
            assert!(err.contains(word), "{word:?} is not in: {err}");
        }
    }

    /// The defaults, a configuration file with `toml` in it, and `pairs` as environment variables.
    fn with_file(toml: &str, pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, toml).unwrap();
        let mut sources = env(pairs);
        sources.file = Some(path);
        Settings::from_sources(&sources)
    }

    /// `contents` written to a file named `name` in `dir`, its path as text.
    fn write(dir: &tempfile::TempDir, name: &str, contents: &str) -> String {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path.to_str().unwrap().to_owned()
    }

    const KEY64: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    /// What both services need, but for partner-web's session key and the daemon's private key.
    const COMMON: [(&str, &str); 3] = [
        ("PARTNER_SUPEROFFICE__CLIENT_ID", "id"),
        ("PARTNER_SUPEROFFICE__CLIENT_SECRET", "secret"),
        ("PARTNER_ENCRYPTION__KEY", KEY64),
    ];

    #[test]
    fn defaults_load_and_name_missing_secrets() {
        let settings = settings(&[]);
        assert_eq!(settings.superoffice.superid.environment, Environment::Sod);
        assert_eq!(settings.superoffice.exchange, ExchangeKind::Rest);
        let err = settings.require_web().unwrap_err().to_string();
        assert!(err.contains("superoffice.client_id"), "{err}");
    }

    #[test]
    fn environment_variables_override_and_database_url_is_honoured() {
        let settings = settings(&[
            ("PARTNER_SUPEROFFICE__CLIENT_ID", "abc"),
            ("PARTNER_SERVICE__CONCURRENCY", "3"),
            ("DATABASE_URL", "postgres://u:pw@db:5432/x"),
            ("PARTNER_CONFIG", ""),
            ("UNRELATED", "1"),
        ]);
        assert_eq!(settings.superoffice.application.client_id, "abc");
        assert_eq!(settings.service.concurrency, 3);
        assert_eq!(settings.database.url(), "postgres://u:pw@db:5432/x");
        assert!(!format!("{settings:?}").contains("pw@"));
    }

    #[test]
    fn unknown_environment_key_is_named() {
        let err = error_naming(&[("PARTNER_WEB__BINDD", "x")], "web.bindd");
        assert!(err.contains("PARTNER_WEB__BINDD"), "{err}");
    }

    #[test]
    fn unknown_file_key_is_named() {
        let err = with_file("[web]\nbind = \"127.0.0.1:1\"\ncolour = \"blue\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("web.colour"), "{err}");
    }

    #[test]
    fn unknown_section_is_named() {
        error_naming(&[("PARTNER_CACHE__SIZE", "1")], "cache.size");
    }

    #[test]
    fn malformed_values_are_named() {
        for (var, value, key) in [
            (
                "PARTNER_SERVICE__POLL_INTERVAL_SECS",
                "soon",
                "service.poll_interval_secs",
            ),
            (
                "PARTNER_SUPEROFFICE__ENVIRONMENT",
                "prod",
                "superoffice.environment",
            ),
            ("PARTNER_WEB__BIND", "nowhere", "web.bind"),
        ] {
            error_naming(&[(var, value)], key);
        }
    }

    #[test]
    fn malformed_secret_is_named_without_its_value() {
        let err = error_naming(
            &[("PARTNER_ENCRYPTION__KEY", "zz-secret-zz")],
            "encryption.key",
        );
        assert!(!err.contains("zz-secret-zz"), "{err}");
    }

    #[test]
    fn custom_environment_needs_superid_url() {
        error_naming(
            &[("PARTNER_SUPEROFFICE__ENVIRONMENT", "custom")],
            "superoffice.superid_url",
        );
        let settings = settings(&[
            ("PARTNER_SUPEROFFICE__ENVIRONMENT", "custom"),
            ("PARTNER_SUPEROFFICE__SUPERID_URL", "http://127.0.0.1:9100/"),
        ]);
        assert_eq!(
            settings.superoffice.superid.expected_issuer().unwrap(),
            "http://127.0.0.1:9100"
        );
    }

    #[test]
    fn secrets_are_read_from_files_named_by_file_variables() {
        let dir = tempfile::tempdir().unwrap();
        let key_file = write(&dir, "encryption-key", &format!("{KEY64}\n"));
        let secret_file = write(&dir, "client-secret", "file-secret");
        let settings = settings(&[
            ("PARTNER_ENCRYPTION__KEY_FILE", &key_file),
            ("PARTNER_SUPEROFFICE__CLIENT_SECRET_FILE", &secret_file),
            // A real key that ends in _file keeps its meaning: a path, not a file to read.
            (
                "PARTNER_SUPEROFFICE__PRIVATE_KEY_FILE",
                "/run/secrets/key.xml",
            ),
        ]);
        assert_eq!(settings.encryption.current_key().unwrap().version, 1);
        assert_eq!(
            settings
                .superoffice
                .application
                .client_secret()
                .unwrap()
                .expose_secret(),
            "file-secret"
        );
        assert_eq!(
            settings.superoffice.application.private_key_file.as_deref(),
            Some(Path::new("/run/secrets/key.xml"))
        );
    }

    #[test]
    fn file_variables_name_their_problem_without_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent");
        let err = error_naming(
            &[("PARTNER_ENCRYPTION__KEY_FILE", missing.to_str().unwrap())],
            "encryption.key",
        );
        assert!(err.contains("PARTNER_ENCRYPTION__KEY_FILE"), "{err}");

        let empty = write(&dir, "empty", "");
        error_naming(&[("PARTNER_WEB__SESSION_KEY_FILE", &empty)], "is empty");

        let bad = write(&dir, "bad", "zz-secret-zz");
        let err = error_naming(&[("PARTNER_ENCRYPTION__KEY_FILE", &bad)], "encryption.key");
        assert!(!err.contains("zz-secret-zz"), "{err}");

        let err = error_naming(
            &[
                ("PARTNER_SUPEROFFICE__CLIENT_SECRET", "inline"),
                ("PARTNER_SUPEROFFICE__CLIENT_SECRET_FILE", &bad),
            ],
            "set only one",
        );
        assert!(!err.contains("inline"), "{err}");

        // A _FILE variable for a key that does not exist is still an unknown key.
        error_naming(
            &[("PARTNER_WEB__COLOUR_FILE", "/x")],
            "unknown configuration key",
        );
    }

    #[test]
    fn complete_configuration_passes_every_requirement() {
        let session_key = format!("{KEY64}{KEY64}");
        let settings = settings(
            &[
                &COMMON[..],
                &[
                    ("PARTNER_SUPEROFFICE__PRIVATE_KEY_FILE", "/k.xml"),
                    ("PARTNER_WEB__SESSION_KEY", &session_key),
                ],
            ]
            .concat(),
        );
        settings.require_web().unwrap();
        settings.require_service().unwrap();
        assert_eq!(settings.encryption.current_key().unwrap().version, 1);
        let shown = format!("{settings:?}");
        assert!(!shown.contains("secret\""), "{shown}");
        assert!(!shown.contains(KEY64), "{shown}");
    }

    #[test]
    fn empty_secrets_count_as_missing() {
        let settings = with_file(
            "[superoffice]\nclient_id = \"id\"\nclient_secret = \"\"\n",
            &[("PARTNER_WEB__SESSION_KEY", "")],
        )
        .unwrap();
        let err = settings.require_web().unwrap_err().to_string();
        assert_names(&err, &["superoffice.client_secret", "required"]);
    }

    #[test]
    fn a_leeway_over_five_minutes_is_refused() {
        let settings = settings(&[("PARTNER_SUPEROFFICE__JWT_LEEWAY_SECS", "300")]);
        assert_eq!(
            settings.superoffice.trust.jwt_leeway(),
            Duration::from_secs(300)
        );
        let err = error_for(&[("PARTNER_SUPEROFFICE__JWT_LEEWAY_SECS", "301")]);
        assert_names(&err, &["superoffice.jwt_leeway_secs", "at most 300"]);
    }

    #[test]
    fn trust_defaults_are_strict() {
        let defaults = settings(&[]);
        assert!(!defaults.web.legacy_sign_in);
        assert!(defaults.superoffice.trust.pkce);
        assert_eq!(
            defaults.superoffice.trust.jwks_refresh(),
            Duration::from_secs(86_400)
        );
        assert!(defaults.superoffice.state_change_audience_required());
        let lax_audience = (
            "PARTNER_SUPEROFFICE__STATE_CHANGE_AUDIENCE_REQUIRED",
            "false",
        );
        error_naming(&[lax_audience], "state_change_audience_required");
        let custom = settings(&[
            ("PARTNER_SUPEROFFICE__ENVIRONMENT", "custom"),
            ("PARTNER_SUPEROFFICE__SUPERID_URL", "http://127.0.0.1:9100"),
            lax_audience,
        ]);
        assert!(!custom.superoffice.state_change_audience_required());
        error_naming(
            &[("PARTNER_WEB__STATE_CHANGE_LIMIT_PER_TENANT", "0")],
            "web.state_change_limit_per_tenant",
        );
    }

    #[test]
    fn missing_service_key_is_named() {
        let settings = settings(&COMMON);
        let err = settings.require_service().unwrap_err().to_string();
        assert!(err.contains("superoffice.private_key_file"), "{err}");
    }

    #[test]
    fn web_defaults_keep_sessions_short_and_the_system_user_for_administrators() {
        let settings = settings(&[]);
        assert_eq!(settings.web.session_max_hours, 12);
        assert_eq!(
            settings.web.system_user_actions,
            SystemUserActions::Administrators
        );
        assert_eq!(settings.web.work_per_user_per_minute, 30);
        assert_eq!(settings.web.work_per_tenant_per_minute, 300);
        assert_eq!(settings.web.metrics_bind, "127.0.0.1:9301");
        assert!(settings.web.trusted_proxies.is_empty());
        assert!(!settings.web.is_trusted_proxy("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn trusted_proxies_come_as_a_list_or_comma_separated() {
        let settings = settings(&[(
            "PARTNER_WEB__TRUSTED_PROXIES",
            "10.0.0.0/8, 192.0.2.7,2001:db8::/32",
        )]);
        assert_eq!(settings.web.trusted_proxies.len(), 3);
        assert!(settings.web.is_trusted_proxy("10.9.8.7".parse().unwrap()));
        assert!(settings.web.is_trusted_proxy("192.0.2.7".parse().unwrap()));
        assert!(!settings.web.is_trusted_proxy("192.0.2.8".parse().unwrap()));
        let settings = with_file("[web]\ntrusted_proxies = [\"172.16.0.0/12\"]\n", &[]).unwrap();
        assert!(settings.web.is_trusted_proxy("172.20.0.1".parse().unwrap()));
    }

    #[test]
    fn operators_are_parsed_and_bad_entries_named() {
        assert!(settings(&[]).web.operators.is_empty());
        assert!(
            settings(&[("PARTNER_WEB__OPERATORS", "")])
                .web
                .operators
                .is_empty(),
            "an empty variable is an empty list"
        );
        let settings = settings(&[(
            "PARTNER_WEB__OPERATORS",
            "Cust12345:ops@partner.example, Cust7:subject-1",
        )]);
        assert_eq!(settings.web.operators.len(), 2);
        let ops = &settings.web.operators[0];
        assert!(ops.matches("Cust12345", "someone", Some("OPS@partner.example")));
        assert!(!ops.matches("Cust12346", "someone", Some("ops@partner.example")));
        assert!(settings.web.operators[1].matches("Cust7", "subject-1", None));
        for bad in ["ops@partner.example", "Tenant1:ops", "Cust12:", "Cust:ops"] {
            let error = Settings::from_sources(&env(&[("PARTNER_WEB__OPERATORS", bad)]))
                .err()
                .unwrap_or_else(|| panic!("{bad} was accepted"))
                .to_string();
            assert!(error.contains("web.operators"), "{bad}: {error}");
        }
    }

    #[test]
    fn malformed_web_keys_are_named() {
        for (var, key) in [
            ("PARTNER_WEB__TRUSTED_PROXIES", "web.trusted_proxies"),
            (
                "PARTNER_WEB__SYSTEM_USER_ACTIONS",
                "web.system_user_actions",
            ),
            ("PARTNER_WEB__METRICS_BIND", "web.metrics_bind"),
        ] {
            error_naming(&[(var, "somewhere")], key);
        }
        for key in [
            "SESSION_MAX_HOURS",
            "WORK_PER_USER_PER_MINUTE",
            "WORK_PER_TENANT_PER_MINUTE",
            "OPEN_WORK_PER_TENANT",
        ] {
            let var = format!("PARTNER_WEB__{key}");
            let named = format!("web.{}", key.to_ascii_lowercase());
            error_naming(&[(var.as_str(), "0")], &named);
        }
    }
}

// The protocol modules (crypto, http, superid) take what they need as plain values; the
// constructors from settings live here, with the configuration.

impl crate::crypto::at_rest::Cipher {
    /// The keys from `[encryption]`: `key` is required, `previous_key` is optional.
    pub fn from_settings(settings: &EncryptionSettings) -> Result<Self, ConfigError> {
        let current = settings.current_key()?;
        let previous = settings.previous_key()?;
        Ok(Self::new(&current, previous.as_ref()))
    }
}

impl crate::http::SuperOfficeHttp {
    /// The client configured by `superoffice.http_timeout_secs` and `superoffice.tenant_rate_limit_per_sec`.
    pub fn from_settings(settings: &HttpSettings) -> Result<Self, crate::http::ClientBuildError> {
        Ok(Self::new(
            crate::http::build_client(settings.timeout())?,
            crate::http::TenantRateLimiter::new(settings.tenant_rate_limit_per_sec),
            crate::http::RetryPolicy::default(),
        ))
    }
}

impl crate::environment::SuperIdEnvironment {
    /// The configured SuperID (`superoffice.environment`, `superid_url`, `issuer`).
    pub fn from_settings(settings: &SuperIdSettings) -> Result<Self, ConfigError> {
        Ok(Self::new(
            settings.environment,
            settings.base_url()?,
            settings.expected_issuer()?,
        ))
    }
}

/// The constructors of the protocol's types from settings.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod protocol_settings_tests {
    use secrecy::ExposeSecret;

    use super::*;
    use crate::crypto::at_rest::{Cipher, SecretKind};
    use crate::environment::SuperIdEnvironment;

    const TOKEN: &[u8] = b"SuperOffice DevNet Node OIDC-8k8Q7DmBgo";

    #[test]
    fn settings_supply_the_keys() {
        let settings: EncryptionSettings = toml::from_str(&format!(
            "key = \"{}\"\nkey_version = 5\nprevious_key = \"{}\"\nprevious_key_version = 4\n",
            "11".repeat(32),
            "22".repeat(32)
        ))
        .unwrap();
        let cipher = Cipher::from_settings(&settings).unwrap();
        assert_eq!(cipher.current_version(), 5);
        let ctx = crate::domain::ContextId::parse("Cust1").unwrap();
        let old = Cipher::new(
            &KeyMaterial {
                version: 4,
                bytes: secrecy::SecretBox::new(Box::new([0x22; 32])),
            },
            None,
        )
        .encrypt(&ctx, SecretKind::SystemUserToken, TOKEN)
        .unwrap();
        assert_eq!(
            cipher
                .decrypt(&ctx, SecretKind::SystemUserToken, &old)
                .unwrap()
                .expose_secret(),
            TOKEN
        );
        assert!(!format!("{cipher:?}").contains("1111"));
    }

    #[test]
    fn named_environments_come_from_settings() {
        let settings = Settings::from_sources(&Sources::default())
            .unwrap()
            .superoffice
            .superid;
        let env = SuperIdEnvironment::from_settings(&settings).unwrap();
        assert_eq!(env.environment(), Environment::Sod);
        assert_eq!(env.issuer(), "https://sod.superoffice.com");
        let pinned = crate::jwt::pinned::pinned_certificate(env.environment())
            .unwrap()
            .unwrap();
        assert_eq!(
            pinned.thumbprint().hex(),
            "16B7FB8C3F9AB06885A800C64E64C97C4AB5E98C"
        );
        assert_eq!(
            env.system_user_rest_url().as_str(),
            "https://sod.superoffice.com/Login/api/PartnerSystemUser/Authenticate"
        );
    }
}
