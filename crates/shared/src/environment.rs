//! SuperOffice Online environments: where SuperID lives and which issuer it uses.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use url::Url;

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
}
