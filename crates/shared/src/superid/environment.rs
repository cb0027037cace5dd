//! Where one SuperID lives and what it is called: the base URL, issuer and pinned certificate of a named
//! environment (`sod`, `qaonline`, `online`) or of a `custom` one (the simulator), and every SuperID URL
//! derived from the base exactly as SuperOffice publishes them (protocol §1, §2.1, §5, §7.1).

use url::Url;

use crate::domain::ContextId;
use crate::environment::Environment;
use crate::jwt::pinned::pinned_certificate;
use crate::jwt::{Certificate, CertificateError};

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

    /// The environment's federated-login certificate, shipped in the binary; `None` for `custom`, whose
    /// keys come from its JWKS only.
    pub fn pinned_certificate(&self) -> Result<Option<Certificate>, CertificateError> {
        pinned_certificate(self.environment)
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
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn urls_are_derived_with_or_without_a_trailing_slash() {
        for base in ["http://127.0.0.1:9100", "http://127.0.0.1:9100/"] {
            let env = SuperIdEnvironment::new(
                Environment::Custom,
                Url::parse(base).unwrap(),
                "http://127.0.0.1:9100",
            );
            assert_eq!(
                env.discovery_url().as_str(),
                "http://127.0.0.1:9100/login/.well-known/openid-configuration"
            );
            assert_eq!(
                env.system_user_rest_url().as_str(),
                "http://127.0.0.1:9100/Login/api/PartnerSystemUser/Authenticate"
            );
            assert_eq!(
                env.system_user_soap_url().as_str(),
                "http://127.0.0.1:9100/Login/Services/PartnerSystemUserService.svc"
            );
            assert_eq!(
                env.tenant_state_url(&ContextId::parse("Cust42").unwrap())
                    .as_str(),
                "http://127.0.0.1:9100/api/state/Cust42"
            );
        }
    }

    #[test]
    fn a_base_with_a_path_keeps_it() {
        let env = SuperIdEnvironment::new(
            Environment::Custom,
            Url::parse("https://proxy.example/superid").unwrap(),
            "https://proxy.example/superid",
        );
        assert_eq!(
            env.discovery_url().as_str(),
            "https://proxy.example/superid/login/.well-known/openid-configuration"
        );
    }
}
