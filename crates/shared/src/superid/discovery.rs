//! SuperID's OpenID Connect discovery document (protocol §2.1): the authorize, token and JWKS endpoints
//! are taken from it, never hard-coded. The document is cached for a while (an hour by default) and
//! fetched again when it is older, or when the caller refreshes it (say, a token names a key the JWKS at the
//! advertised URL does not hold; `SuperIdValidator` does that at most once per cooldown). In the named
//! environments the document must name the environment's issuer and a `jwks_uri` on the environment's host:
//! keys from anywhere else are never trusted.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;

use crate::environment::{Environment, SuperIdEnvironment};
use crate::http::{self, Retryable, SuperOfficeHttp, TransportError, is_transient_status};

/// How long a fetched discovery document is used.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

const WHAT: &str = "SuperID discovery";

/// The parts of the discovery document this application uses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OidcMetadata {
    pub issuer: String,
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    pub jwks_uri: Url,
    #[serde(default)]
    pub end_session_endpoint: Option<Url>,
}

/// Why the discovery document could not be had.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(
        "SuperID discovery at {url} answered HTTP {status}; check superoffice.superid_url, try again later"
    )]
    Status { url: Url, status: u16 },
    #[error("SuperID discovery at {url} is not a usable OpenID configuration: {reason}")]
    Invalid { url: Url, reason: String },
    #[error("SuperID discovery at {url} does not belong to the configured environment: {reason}")]
    WrongEnvironment { url: Url, reason: String },
}

impl Retryable for DiscoveryError {
    fn is_retryable(&self) -> bool {
        match self {
            Self::Transport(e) => e.is_retryable(),
            Self::Status { status, .. } => is_transient_status(*status),
            Self::Invalid { .. } | Self::WrongEnvironment { .. } => false,
        }
    }
}

/// Fetches and caches one SuperID's discovery document. Share one per process.
#[derive(Debug)]
pub struct Discovery {
    http: SuperOfficeHttp,
    url: Url,
    environment: SuperIdEnvironment,
    ttl: Duration,
    cached: Mutex<Option<(Instant, Arc<OidcMetadata>)>>,
}

impl Discovery {
    pub fn new(http: SuperOfficeHttp, environment: &SuperIdEnvironment) -> Self {
        Self::with_ttl(http, environment, DEFAULT_TTL)
    }

    pub fn with_ttl(
        http: SuperOfficeHttp,
        environment: &SuperIdEnvironment,
        ttl: Duration,
    ) -> Self {
        Self {
            http,
            url: environment.discovery_url(),
            environment: environment.clone(),
            ttl,
            cached: Mutex::new(None),
        }
    }

    /// The document's URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The cached document, fetched first if there is none or it is older than the TTL. Concurrent
    /// callers wait for one fetch.
    #[tracing::instrument(skip_all, fields(url = %self.url), err)]
    pub async fn metadata(&self) -> Result<Arc<OidcMetadata>, DiscoveryError> {
        let mut cached = self.cached.lock().await;
        if let Some((fetched_at, metadata)) = cached.as_ref()
            && fetched_at.elapsed() < self.ttl
        {
            return Ok(Arc::clone(metadata));
        }
        let metadata = Arc::new(self.http.retry_policy().run(WHAT, || self.fetch()).await?);
        *cached = Some((Instant::now(), Arc::clone(&metadata)));
        Ok(metadata)
    }

    /// Fetches the document now (once, no retries) and caches it. The fetch runs without holding the cache,
    /// so callers of `metadata` keep the cached document meanwhile; on failure the cached one stays.
    #[tracing::instrument(skip_all, fields(url = %self.url), err)]
    pub async fn refresh(&self) -> Result<Arc<OidcMetadata>, DiscoveryError> {
        let metadata = Arc::new(self.fetch().await?);
        *self.cached.lock().await = Some((Instant::now(), Arc::clone(&metadata)));
        Ok(metadata)
    }

    async fn fetch(&self) -> Result<OidcMetadata, DiscoveryError> {
        let request = self
            .http
            .client()
            .get(self.url.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        let response = http::send(WHAT, request).await?;
        let status = response.status();
        if !status.is_success() {
            return Err(DiscoveryError::Status {
                url: self.url.clone(),
                status: status.as_u16(),
            });
        }
        let body = http::read_body(WHAT, response, http::MAX_BODY_BYTES).await?;
        let metadata: OidcMetadata =
            serde_json::from_slice(&body).map_err(|e| DiscoveryError::Invalid {
                url: self.url.clone(),
                reason: e.to_string(),
            })?;
        check_environment(&self.environment, &metadata).map_err(|reason| {
            DiscoveryError::WrongEnvironment {
                url: self.url.clone(),
                reason: format!("{reason} ({})", self.environment.environment()),
            }
        })?;
        tracing::debug!(
            issuer = %metadata.issuer,
            authorize = %metadata.authorization_endpoint,
            token = %metadata.token_endpoint,
            jwks = %metadata.jwks_uri,
            "discovered SuperID endpoints"
        );
        Ok(metadata)
    }
}

/// In a named environment (sod, qaonline, online) the document must be that environment's: its `issuer` the
/// environment's issuer and its `jwks_uri` an https URL on the environment's SuperID host, so a tampered or
/// misdirected document cannot bring in keys from elsewhere. `custom` (a simulator, a proxy) is not checked.
pub fn check_environment(
    environment: &SuperIdEnvironment,
    metadata: &OidcMetadata,
) -> Result<(), String> {
    if environment.environment() == Environment::Custom {
        return Ok(());
    }
    let expected_issuer = environment.issuer().trim_end_matches('/');
    if metadata.issuer.trim_end_matches('/') != expected_issuer {
        return Err(format!(
            "its issuer is {:?}, not {expected_issuer:?}",
            metadata.issuer.chars().take(100).collect::<String>()
        ));
    }
    let expected_host = environment.base_url().host_str().unwrap_or_default();
    let jwks = &metadata.jwks_uri;
    let host_matches = jwks
        .host_str()
        .is_some_and(|host| host.eq_ignore_ascii_case(expected_host));
    if jwks.scheme() != "https" || !host_matches {
        return Err(format!(
            "its jwks_uri is not on https://{expected_host} (found {}://{})",
            jwks.scheme(),
            jwks.host_str().unwrap_or_default()
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn sod() -> SuperIdEnvironment {
        SuperIdEnvironment::new(
            Environment::Sod,
            Url::parse("https://sod.superoffice.com").unwrap(),
            "https://sod.superoffice.com",
        )
    }

    fn metadata(issuer: &str, jwks_uri: &str) -> OidcMetadata {
        OidcMetadata {
            issuer: issuer.to_owned(),
            authorization_endpoint: Url::parse(
                "https://sod.superoffice.com/login/common/oauth/authorize",
            )
            .unwrap(),
            token_endpoint: Url::parse("https://sod.superoffice.com/login/common/oauth/tokens")
                .unwrap(),
            jwks_uri: Url::parse(jwks_uri).unwrap(),
            end_session_endpoint: None,
        }
    }

    const JWKS: &str = "https://sod.superoffice.com/login/.well-known/jwks";

    #[test]
    fn a_named_environment_accepts_only_its_own_issuer_and_key_host() {
        let env = sod();
        assert!(check_environment(&env, &metadata("https://sod.superoffice.com", JWKS)).is_ok());
        assert!(check_environment(&env, &metadata("https://sod.superoffice.com/", JWKS)).is_ok());
        assert!(
            check_environment(
                &env,
                &metadata(
                    "https://sod.superoffice.com",
                    "https://SOD.superoffice.com/login/.well-known/jwks"
                )
            )
            .is_ok()
        );
        for (issuer, jwks, named) in [
            ("https://online.superoffice.com", JWKS, "issuer"),
            ("https://evil.example", JWKS, "issuer"),
            (
                "https://sod.superoffice.com",
                "https://evil.example/login/.well-known/jwks",
                "jwks_uri",
            ),
            (
                "https://sod.superoffice.com",
                "https://online.superoffice.com/login/.well-known/jwks",
                "jwks_uri",
            ),
            (
                "https://sod.superoffice.com",
                "http://sod.superoffice.com/login/.well-known/jwks",
                "jwks_uri",
            ),
            (
                "https://sod.superoffice.com",
                "https://sod.superoffice.com.evil.example/jwks",
                "jwks_uri",
            ),
        ] {
            let err = check_environment(&env, &metadata(issuer, jwks)).unwrap_err();
            assert!(err.contains(named), "{issuer} {jwks}: {err}");
        }
    }

    #[test]
    fn custom_is_not_checked() {
        let env = SuperIdEnvironment::custom(Url::parse("http://127.0.0.1:9100").unwrap());
        assert!(
            check_environment(
                &env,
                &metadata(
                    "http://localhost:9100",
                    "http://sim:9100/login/.well-known/jwks"
                )
            )
            .is_ok()
        );
    }
}
