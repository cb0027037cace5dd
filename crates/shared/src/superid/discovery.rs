//! SuperID's OpenID Connect discovery document (protocol §2.1): the authorize, token and JWKS endpoints
//! are taken from it, never hard-coded. The document is cached for a while (an hour by default) and
//! fetched again when it is older, or when the caller invalidates it (say, the JWKS at the advertised
//! URL could not be fetched).

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;

use crate::http::{self, Retryable, SuperOfficeHttp, TransportError, is_transient_status};
use crate::superid::environment::SuperIdEnvironment;

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
}

impl Retryable for DiscoveryError {
    fn is_retryable(&self) -> bool {
        match self {
            Self::Transport(e) => e.is_retryable(),
            Self::Status { status, .. } => is_transient_status(*status),
            Self::Invalid { .. } => false,
        }
    }
}

/// Fetches and caches one SuperID's discovery document. Share one per process.
#[derive(Debug)]
pub struct Discovery {
    http: SuperOfficeHttp,
    url: Url,
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

    /// Forgets the cached document, so the next `metadata` fetches it again.
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
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
