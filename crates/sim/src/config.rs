//! The simulator's configuration: one TOML file, unknown keys rejected.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Client id of the application registered by [`SimConfig::for_tests`].
pub const TEST_CLIENT_ID: &str = "0123456789abcdef0123456789abcdef";
/// Client secret (application token) of the application registered by [`SimConfig::for_tests`].
pub const TEST_CLIENT_SECRET: &str = "test-application-token";
/// Redirect URI registered by [`SimConfig::for_tests`].
pub const TEST_REDIRECT_URI: &str = "http://127.0.0.1:8080/callback";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("could not read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid simulator configuration: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("invalid simulator configuration: {0}")]
    Invalid(String),
}

/// The whole simulator configuration (`config/sim.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    pub superid: SuperIdConfig,
    pub api_hosts: Vec<ApiHostConfig>,
    #[serde(default)]
    pub applications: Vec<ApplicationConfig>,
    #[serde(default)]
    pub tenants: Vec<TenantConfig>,
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// Unfaithful modes (see `modes`): none by default.
    #[serde(default)]
    pub modes: crate::modes::Modes,
    /// Directory that relative paths in the file are resolved against.
    #[serde(skip)]
    pub base_dir: Option<PathBuf>,
}

/// The SuperID side (like `https://sod.superoffice.com`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuperIdConfig {
    /// Listen address, e.g. `127.0.0.1:9100`; port 0 picks a free port.
    pub bind: String,
    /// Browser-facing base URL: the id_token issuer and the authorize endpoint's host.
    /// Defaults to `http://{bound address}`.
    pub public_url: Option<String>,
    /// Accepted distance in seconds between a signed system user token's timestamp and the sim clock.
    #[serde(default = "default_timestamp_window")]
    pub timestamp_window_secs: u64,
    /// Seconds added to now for the state API's `ValidUntil`.
    #[serde(default = "default_state_valid_for")]
    pub state_valid_for_secs: u64,
    /// PEM (PKCS#1 or PKCS#8) RSA private key that signs SuperID tokens; generated at start when absent.
    pub signing_key_file: Option<PathBuf>,
}

/// One tenant API host (like `https://sod2.superoffice.com`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiHostConfig {
    pub name: String,
    pub bind: String,
    /// Defaults to `http://{bound address}`.
    pub public_url: Option<String>,
}

/// An application registered in the (simulated) Developer Portal.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationConfig {
    pub client_id: String,
    pub client_secret: String,
    /// Prefix of the system user tokens issued to this application.
    #[serde(default = "default_app_name")]
    pub name: String,
    pub redirect_uris: Vec<String>,
    /// File with the partner's public key (PEM SPKI or PKCS#1), relative to the config file.
    pub partner_public_key_file: Option<PathBuf>,
    /// The partner's public key itself (PEM), instead of a file.
    pub partner_public_key: Option<String>,
    /// Where tenant state-change notifications are POSTed.
    pub state_change_url: Option<String>,
}

/// A tenant (a customer database, `CustNNNNN`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    pub context_id: String,
    pub company_name: String,
    pub serial: String,
    /// Name of the API host the tenant lives on.
    pub host: String,
    #[serde(default)]
    pub state: TenantState,
    /// Client ids of the applications installed (approved) on this tenant.
    #[serde(default)]
    pub installed_apps: Vec<String>,
    #[serde(flatten)]
    pub version: TenantVersion,
}

/// The version a tenant runs, as the state API (`Version`) and notifications (`VersionName`,
/// `FileVersion`) report it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct TenantVersion {
    pub version_name: String,
    pub file_version: String,
}

impl Default for TenantVersion {
    fn default() -> Self {
        Self {
            version_name: "Release_11.10_2026.02.24-02".to_owned(),
            file_version: "11.10.9143.1".to_owned(),
        }
    }
}

/// A SuperID user who can sign in.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// SuperID username (the `sub` claim); usually an email address.
    pub username: String,
    /// Defaults to the username.
    pub email: Option<String>,
    /// Display name, e.g. `Ada Admin`.
    pub name: String,
    /// Context id of the user's tenant.
    pub tenant: String,
    #[serde(default)]
    pub is_administrator: bool,
    pub associate_id: i64,
}

impl UserConfig {
    pub fn email(&self) -> &str {
        self.email.as_deref().unwrap_or(&self.username)
    }

    /// Upper-case first letters of the name's words, e.g. `AA` for `Ada Admin`.
    pub fn initials(&self) -> String {
        self.name
            .split_whitespace()
            .filter_map(|w| w.chars().next())
            .flat_map(char::to_uppercase)
            .collect()
    }
}

/// A tenant's state as the state API names it.
///
/// Open on purpose: SuperOffice documents its state names only in part, so any name is accepted (in
/// `[[tenants]] state` and by the admin API) and the state API answers it as given, and a test can
/// show a client a state it has never seen. The simulator acts on the four names below; any other
/// (`OfflineMaintenance`, `Provisioning`, `Hibernating`, …) is a tenant that is not running. The names
/// are written out here rather than taken from `shared::tenant::status`: the simulator stands in for
/// SuperOffice independently of the client it tests, so a state renamed on the client side shows up
/// as a failing test instead of changing both sides at once.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub enum TenantState {
    /// Serves its APIs; resuming to it notifies ChangeType 3.
    #[default]
    Running,
    /// Serves its APIs during maintenance (`IsRunning` true).
    OnlineMaintenance,
    /// Suspending notifies ChangeType 2.
    Suspended,
    /// Exchanges, sign-ins and refreshes are refused; deleting notifies ChangeType 4.
    Deleted,
    /// Any other name, as given; never one of the names above (`TenantState::try_from` sorts them).
    Other(String),
}

impl TenantState {
    /// The states the simulator acts on.
    const NAMED: [Self; 4] = [
        Self::Running,
        Self::OnlineMaintenance,
        Self::Suspended,
        Self::Deleted,
    ];

    /// The state API's `State`.
    pub fn name(&self) -> &str {
        match self {
            Self::Running => "Running",
            Self::OnlineMaintenance => "OnlineMaintenance",
            Self::Suspended => "Suspended",
            Self::Deleted => "Deleted",
            Self::Other(name) => name,
        }
    }

    /// The state API's `IsRunning`: true for Running and OnlineMaintenance.
    pub fn is_running(&self) -> bool {
        matches!(self, Self::Running | Self::OnlineMaintenance)
    }
}

impl TryFrom<String> for TenantState {
    type Error = &'static str;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        if name.trim().is_empty() {
            return Err("a tenant state needs a name");
        }
        Ok(Self::NAMED
            .into_iter()
            .find(|state| state.name() == name)
            .unwrap_or(Self::Other(name)))
    }
}

impl From<TenantState> for String {
    fn from(state: TenantState) -> Self {
        match state {
            TenantState::Other(name) => name,
            named => named.name().to_owned(),
        }
    }
}

impl fmt::Display for TenantState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn default_timestamp_window() -> u64 {
    300
}

fn default_state_valid_for() -> u64 {
    300
}

fn default_app_name() -> String {
    "Partner Application".to_owned()
}

impl SimConfig {
    /// Parses a configuration; relative paths resolve against the current directory.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let config: SimConfig = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Reads a configuration file; relative paths resolve against the file's directory.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Self::from_toml_str(&text)?;
        config.base_dir = path.parent().map(Path::to_owned);
        Ok(config)
    }

    /// One application ([`TEST_CLIENT_ID`], [`TEST_CLIENT_SECRET`], [`TEST_REDIRECT_URI`]) with the given
    /// partner public key (PEM), API hosts `sod2` and `sod3`, everything on random local ports, and tenants
    /// Cust10001 (installed, sod2), Cust10002 (installed, sod2) and Cust10003 (not installed, sod3), each with
    /// an administrator `admin@custNNNNN.example` and a user `user@custNNNNN.example`.
    pub fn for_tests(partner_public_key_pem: &str) -> Self {
        let host = |name: &str| ApiHostConfig {
            name: name.to_owned(),
            bind: "127.0.0.1:0".to_owned(),
            public_url: None,
        };
        let tenant = |n: u32, company: &str, host: &str, installed: bool| TenantConfig {
            context_id: format!("Cust{n}"),
            company_name: company.to_owned(),
            serial: format!("18015{n}"),
            host: host.to_owned(),
            state: TenantState::Running,
            installed_apps: if installed {
                vec![TEST_CLIENT_ID.to_owned()]
            } else {
                Vec::new()
            },
            version: TenantVersion::default(),
        };
        let mut users = Vec::new();
        for (n, (admin, user)) in [
            (10001, ("Ada Admin", "Ulf User")),
            (10002, ("Frida Admin", "Finn User")),
            (10003, ("Per Admin", "Pia User")),
        ] {
            for (i, (kind, name)) in [("admin", admin), ("user", user)].into_iter().enumerate() {
                users.push(UserConfig {
                    username: format!("{kind}@cust{n}.example"),
                    email: None,
                    name: name.to_owned(),
                    tenant: format!("Cust{n}"),
                    is_administrator: i == 0,
                    associate_id: 5 + i as i64,
                });
            }
        }
        SimConfig {
            superid: SuperIdConfig {
                bind: "127.0.0.1:0".to_owned(),
                public_url: None,
                timestamp_window_secs: default_timestamp_window(),
                state_valid_for_secs: default_state_valid_for(),
                signing_key_file: None,
            },
            modes: crate::modes::Modes::default(),
            api_hosts: vec![host("sod2"), host("sod3")],
            applications: vec![ApplicationConfig {
                client_id: TEST_CLIENT_ID.to_owned(),
                client_secret: TEST_CLIENT_SECRET.to_owned(),
                name: "Test Partner App".to_owned(),
                redirect_uris: vec![TEST_REDIRECT_URI.to_owned()],
                partner_public_key_file: None,
                partner_public_key: Some(partner_public_key_pem.to_owned()),
                state_change_url: None,
            }],
            tenants: vec![
                tenant(10001, "Northwind Traders AS", "sod2", true),
                tenant(10002, "Fjord Fisheries AS", "sod2", true),
                tenant(10003, "Polar Bakery AS", "sod3", false),
            ],
            users,
            base_dir: None,
        }
    }

    /// Resolves a path from the file against the config file's directory.
    pub fn resolve_path(&self, path: &Path) -> PathBuf {
        match &self.base_dir {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.to_owned(),
        }
    }

    /// Cross-checks references between sections.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: String| Err(ConfigError::Invalid(msg));
        if self.api_hosts.is_empty() {
            return invalid("at least one [[api_hosts]] is required".into());
        }
        let hosts = unique(
            self.api_hosts.iter().map(|h| h.name.as_str()),
            "api host name",
        )?;
        let apps = unique(
            self.applications.iter().map(|a| a.client_id.as_str()),
            "application client_id",
        )?;
        unique(
            self.applications.iter().map(|a| a.client_secret.as_str()),
            "application client_secret",
        )?;
        for app in &self.applications {
            if app.partner_public_key_file.is_some() == app.partner_public_key.is_some() {
                return invalid(format!(
                    "application {} needs exactly one of partner_public_key_file and partner_public_key",
                    app.client_id
                ));
            }
            if app.redirect_uris.is_empty() {
                return invalid(format!(
                    "application {} has no redirect_uris",
                    app.client_id
                ));
            }
        }
        let tenants = unique(
            self.tenants.iter().map(|t| t.context_id.as_str()),
            "tenant context_id",
        )?;
        for tenant in &self.tenants {
            let ctx = &tenant.context_id;
            let digits = ctx.strip_prefix("Cust").unwrap_or_default();
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return invalid(format!(
                    "tenant context_id {ctx:?} is not of the form CustNNNNN"
                ));
            }
            if !hosts.contains(tenant.host.as_str()) {
                return invalid(format!(
                    "tenant {ctx} lives on unknown api host {:?}",
                    tenant.host
                ));
            }
            for app in &tenant.installed_apps {
                if !apps.contains(app.as_str()) {
                    return invalid(format!("tenant {ctx} installs unknown application {app:?}"));
                }
            }
        }
        unique(
            self.users.iter().map(|u| u.username.as_str()),
            "user username",
        )?;
        for user in &self.users {
            if !tenants.contains(user.tenant.as_str()) {
                return invalid(format!(
                    "user {} belongs to unknown tenant {:?}",
                    user.username, user.tenant
                ));
            }
        }
        Ok(())
    }
}

fn unique<'a>(
    items: impl Iterator<Item = &'a str>,
    what: &str,
) -> Result<HashSet<&'a str>, ConfigError> {
    let mut seen = HashSet::new();
    for item in items {
        if !seen.insert(item) {
            return Err(ConfigError::Invalid(format!("duplicate {what} {item:?}")));
        }
    }
    Ok(seen)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_sim_toml_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/sim.toml");
        let config = SimConfig::from_file(&path).unwrap();
        assert_eq!(config.superid.bind, "127.0.0.1:9100");
        assert_eq!(config.api_hosts.len(), 2);
        assert_eq!(config.tenants.len(), 3);
        let key = config.resolve_path(
            config.applications[0]
                .partner_public_key_file
                .as_deref()
                .unwrap(),
        );
        assert!(key.exists(), "{key:?}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let text = "[superid]\nbind = \"127.0.0.1:0\"\ncolour = \"blue\"\n[[api_hosts]]\nname = \"a\"\nbind = \"127.0.0.1:0\"\n";
        let err = SimConfig::from_toml_str(text).unwrap_err().to_string();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn tenants_must_reference_known_hosts_and_apps() {
        let text = "[superid]\nbind = \"127.0.0.1:0\"\n[[api_hosts]]\nname = \"sod2\"\nbind = \"127.0.0.1:0\"\n\
                    [[tenants]]\ncontext_id = \"Cust1\"\ncompany_name = \"A\"\nserial = \"1\"\nhost = \"sod9\"\n";
        let err = SimConfig::from_toml_str(text).unwrap_err().to_string();
        assert!(err.contains("unknown api host"), "{err}");
    }

    #[test]
    fn for_tests_is_valid() {
        let config = SimConfig::for_tests("pem");
        config.validate().unwrap();
        assert_eq!(config.users.len(), 6);
        assert_eq!(config.users[0].initials(), "AA");
    }

    #[test]
    fn a_tenants_version_sits_among_its_keys_and_unknown_keys_are_still_errors() {
        let tenants = |extra: &str| {
            format!(
                "[superid]\nbind = \"127.0.0.1:0\"\n[[api_hosts]]\nname = \"sod2\"\nbind = \"127.0.0.1:0\"\n\
                 [[tenants]]\ncontext_id = \"Cust1\"\ncompany_name = \"A\"\nserial = \"1\"\nhost = \"sod2\"\n{extra}"
            )
        };
        let config = SimConfig::from_toml_str(&tenants("version_name = \"Release 12\"\n")).unwrap();
        let version = &config.tenants[0].version;
        assert_eq!(version.version_name, "Release 12");
        assert_eq!(version.file_version, TenantVersion::default().file_version);
        let err = SimConfig::from_toml_str(&tenants("colour = \"blue\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn tenant_states_are_open_and_named_ones_are_recognised() {
        let text = "[superid]\nbind = \"127.0.0.1:0\"\n[[api_hosts]]\nname = \"sod2\"\nbind = \"127.0.0.1:0\"\n\
                    [[tenants]]\ncontext_id = \"Cust1\"\ncompany_name = \"A\"\nserial = \"1\"\nhost = \"sod2\"\n\
                    state = \"Hibernating\"\n\
                    [[tenants]]\ncontext_id = \"Cust2\"\ncompany_name = \"B\"\nserial = \"2\"\nhost = \"sod2\"\n\
                    state = \"OnlineMaintenance\"\n";
        let config = SimConfig::from_toml_str(text).unwrap();
        let hibernating = &config.tenants[0].state;
        assert_eq!(hibernating, &TenantState::Other("Hibernating".into()));
        assert_eq!(hibernating.to_string(), "Hibernating");
        assert!(!hibernating.is_running());
        assert_eq!(config.tenants[1].state, TenantState::OnlineMaintenance);
        assert!(config.tenants[1].state.is_running());
        for state in TenantState::NAMED {
            assert_eq!(TenantState::try_from(state.to_string()), Ok(state));
        }
        assert!(TenantState::try_from(" ".to_owned()).is_err());
    }
}
