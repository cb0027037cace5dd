//! Validation of the tokens SuperID returns to the clients here (id_tokens, system-user JWTs), with the
//! keys the credentials core checks against: the environment's pinned certificate and the JWKS at the
//! URL discovery advertises. When no key fits or the JWKS cannot be fetched, the discovery document is
//! fetched again and, if it now names another JWKS, the check is repeated once with that.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::RwLock;
use url::Url;

use crate::clock::Clock;
use crate::jwt::{
    Certificate, DEFAULT_REFETCH_COOLDOWN, Expectation, JwksEndpoint, JwtError, JwtValidator,
    KeySet, SuperOfficeClaims,
};
use crate::superid::discovery::{Discovery, DiscoveryError};

/// Why a token SuperID returned was not accepted.
/// The inner error is part of the message, not a `source`, so a report does not repeat it.
#[derive(Debug, thiserror::Error)]
pub enum ValidationError {
    #[error("the token SuperID returned was refused: {0}")]
    Jwt(JwtError),
    #[error("SuperID's signing keys are unknown because discovery failed: {0}")]
    Discovery(DiscoveryError),
}

impl From<JwtError> for ValidationError {
    fn from(error: JwtError) -> Self {
        Self::Jwt(error)
    }
}

impl From<DiscoveryError> for ValidationError {
    fn from(error: DiscoveryError) -> Self {
        Self::Discovery(error)
    }
}

impl ValidationError {
    /// Missing keys may come back (JWKS or discovery unreachable); a bad token will not get better.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Jwt(error) => matches!(error, JwtError::KeysUnavailable),
            Self::Discovery(_) => true,
        }
    }
}

/// A JWT validator whose JWKS URL follows SuperID's discovery document. Share one per process.
#[derive(Debug)]
pub struct SuperIdValidator {
    discovery: Arc<Discovery>,
    client: reqwest::Client,
    pinned: Option<Certificate>,
    leeway: Duration,
    clock: Arc<dyn Clock>,
    current: RwLock<Option<(Url, JwtValidator)>>,
}

impl SuperIdValidator {
    /// `pinned` is the environment's federated-login certificate (`jwt::pinned::pinned_certificate`),
    /// `leeway` the allowance on `exp`/`nbf` (`superoffice.jwt_leeway_secs`).
    pub fn new(
        discovery: Arc<Discovery>,
        client: reqwest::Client,
        pinned: Option<Certificate>,
        leeway: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            discovery,
            client,
            pinned,
            leeway,
            clock,
            current: RwLock::new(None),
        }
    }

    pub fn discovery(&self) -> &Arc<Discovery> {
        &self.discovery
    }

    /// Validates `token` against `expectation`.
    pub async fn validate(
        &self,
        token: &str,
        expectation: &Expectation,
    ) -> Result<SuperOfficeClaims, ValidationError> {
        let validator = self.validator(false).await?;
        match validator.validate(token, expectation).await {
            Err(JwtError::UnknownKey | JwtError::KeysUnavailable) => {
                let refreshed = self.validator(true).await?;
                Ok(refreshed.validate(token, expectation).await?)
            }
            result => Ok(result?),
        }
    }

    /// The validator for the current JWKS URL; with `refresh`, after fetching discovery again.
    async fn validator(&self, refresh: bool) -> Result<JwtValidator, ValidationError> {
        if !refresh && let Some((_, validator)) = self.current.read().await.as_ref() {
            return Ok(validator.clone());
        }
        if refresh {
            self.discovery.invalidate().await;
        }
        let metadata = match self.discovery.metadata().await {
            Ok(metadata) => metadata,
            // Without discovery the pinned certificate still verifies the environment's tokens.
            Err(error) => {
                return match &self.pinned {
                    Some(pinned) => {
                        tracing::warn!(error = %error, "discovery failed; validating with the pinned certificate only");
                        Ok(self.build(Some(pinned), None))
                    }
                    None => Err(error.into()),
                };
            }
        };
        let mut current = self.current.write().await;
        if let Some((uri, validator)) = current.as_ref()
            && *uri == metadata.jwks_uri
        {
            return Ok(validator.clone());
        }
        let validator = self.build(
            self.pinned.as_ref(),
            Some(JwksEndpoint {
                uri: metadata.jwks_uri.clone(),
                client: self.client.clone(),
            }),
        );
        *current = Some((metadata.jwks_uri.clone(), validator.clone()));
        Ok(validator)
    }

    fn build(&self, pinned: Option<&Certificate>, jwks: Option<JwksEndpoint>) -> JwtValidator {
        JwtValidator::new(
            KeySet::new(pinned, jwks, DEFAULT_REFETCH_COOLDOWN),
            self.leeway,
        )
        .with_clock(Arc::clone(&self.clock))
    }
}
