//! SuperOffice Online environments and where one SuperID lives: the named environments (`sod`, `qaonline`,
//! `online`) or a `custom` one (the simulator), and every SuperID URL derived from its base exactly as
//! SuperOffice publishes them (protocol §1, §2.1, §5, §7.1). A protocol-level table: `jwt` and `superid`
//! import it, it imports neither.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::domain::ContextId;

/// One of SuperOffice's environments, or a custom SuperID (the simulator, a proxy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Development: `https://sod.superoffice.com`.
    Sod,
    /// Stage: `https://qaonline.superoffice.com`.
    #[serde(rename = "qaonline")]
    QaOnline,
    /// Production: `https://online.superoffice.com`.
    Online,
    /// Any other SuperID, configured by `superoffice.superid_url`.
    Custom,
}

impl Environment {
    pub const ALL: [Environment; 4] = [Self::Sod, Self::QaOnline, Self::Online, Self::Custom];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sod => "sod",
            Self::QaOnline => "qaonline",
            Self::Online => "online",
            Self::Custom => "custom",
        }
    }

    /// The SuperID base URL of a named environment; `None` for `custom`.
    pub fn superid_base_url(self) -> Option<Url> {
        let host = match self {
            Self::Sod => "https://sod.superoffice.com",
            Self::QaOnline => "https://qaonline.superoffice.com",
            Self::Online => "https://online.superoffice.com",
            Self::Custom => return None,
        };
        Url::parse(host).ok()
    }

    /// The id_token issuer of a named environment (the SuperID host root); `None` for `custom`.
    pub fn issuer(self) -> Option<String> {
        self.superid_base_url()
            .map(|u| u.as_str().trim_end_matches('/').to_owned())
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An environment name that is not one of `sod`, `qaonline`, `online`, `custom`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown SuperOffice environment {0:?}: expected sod, qaonline, online or custom")]
pub struct UnknownEnvironment(pub String);

impl FromStr for Environment {
    type Err = UnknownEnvironment;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sod" => Ok(Self::Sod),
            "qaonline" | "stage" => Ok(Self::QaOnline),
            "online" => Ok(Self::Online),
            "custom" => Ok(Self::Custom),
            _ => Err(UnknownEnvironment(s.chars().take(40).collect())),
        }
    }
}

/// One SuperID: its environment, base URL (always ending in `/`) and expected id_token issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuperIdEnvironment {
    environment: Environment,
    base_url: Url,
    issuer: String,
}

impl SuperIdEnvironment {
    /// A SuperID at `base_url`; a base with or without a trailing slash means the same.
    pub fn new(environment: Environment, mut base_url: Url, issuer: impl Into<String>) -> Self {
        if !base_url.path().ends_with('/') {
            let path = format!("{}/", base_url.path());
            base_url.set_path(&path);
        }
        Self {
            environment,
            base_url,
            issuer: issuer.into(),
        }
    }

    /// A `custom` SuperID at `base_url`, its issuer the base URL without a trailing slash (as
    /// `superoffice.issuer` defaults to for `custom`).
    pub fn custom(base_url: Url) -> Self {
        let issuer = base_url.as_str().trim_end_matches('/').to_owned();
        Self::new(Environment::Custom, base_url, issuer)
    }

    pub fn environment(&self) -> Environment {
        self.environment
    }

    /// The base URL, ending in `/`.
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// The `iss` of id_tokens from this SuperID.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `{base}/login/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> Url {
        self.join("login/.well-known/openid-configuration")
    }

    /// `{base}/Login/api/PartnerSystemUser/Authenticate`: the REST ticket exchange.
    pub fn system_user_rest_url(&self) -> Url {
        self.join("Login/api/PartnerSystemUser/Authenticate")
    }

    /// `{base}/Login/Services/PartnerSystemUserService.svc`: the SOAP ticket exchange.
    pub fn system_user_soap_url(&self) -> Url {
        self.join("Login/Services/PartnerSystemUserService.svc")
    }

    /// `{base}/api/state/{ctx}`: the tenant status API (no authentication).
    pub fn tenant_state_url(&self, tenant: &ContextId) -> Url {
        self.join(&format!("api/state/{tenant}"))
    }

    fn join(&self, relative: &str) -> Url {
        let mut url = self.base_url.clone();
        let path = format!("{}{relative}", self.base_url.path());
        url.set_path(&path);
        url
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn named_environments_have_host_root_issuers() {
        assert_eq!(
            Environment::Sod.issuer().as_deref(),
            Some("https://sod.superoffice.com")
        );
        assert_eq!(
            Environment::QaOnline.issuer().as_deref(),
            Some("https://qaonline.superoffice.com")
        );
        assert_eq!(
            Environment::Online.issuer().as_deref(),
            Some("https://online.superoffice.com")
        );
        assert_eq!(Environment::Custom.issuer(), None);
    }

    #[test]
    fn parses_names_and_the_old_stage_alias() {
        assert_eq!("SOD".parse::<Environment>(), Ok(Environment::Sod));
        assert_eq!("stage".parse::<Environment>(), Ok(Environment::QaOnline));
        assert!("prod".parse::<Environment>().is_err());
    }

    #[test]
    fn urls_are_derived_with_or_without_a_trailing_slash() {
        for base in ["http://127.0.0.1:9100", "http://127.0.0.1:9100/"] {
            let env = SuperIdEnvironment::custom(Url::parse(base).unwrap());
            assert_eq!(env.issuer(), "http://127.0.0.1:9100", "{base}");
            let tenant = ContextId::parse("Cust42").unwrap();
            let urls = [
                env.discovery_url(),
                env.system_user_rest_url(),
                env.system_user_soap_url(),
                env.tenant_state_url(&tenant),
            ];
            assert_eq!(
                urls.map(String::from),
                [
                    "http://127.0.0.1:9100/login/.well-known/openid-configuration",
                    "http://127.0.0.1:9100/Login/api/PartnerSystemUser/Authenticate",
                    "http://127.0.0.1:9100/Login/Services/PartnerSystemUserService.svc",
                    "http://127.0.0.1:9100/api/state/Cust42",
                ],
                "{base}"
            );
        }
    }

    #[test]
    fn a_base_with_a_path_keeps_it() {
        let env = SuperIdEnvironment::custom(Url::parse("https://proxy.example/superid").unwrap());
        assert_eq!(env.issuer(), "https://proxy.example/superid");
        assert_eq!(
            env.discovery_url().as_str(),
            "https://proxy.example/superid/login/.well-known/openid-configuration"
        );
    }
}
