//! Validation of the tokens SuperID returns to the clients here (id_tokens, system-user JWTs), with the
//! keys the credentials core checks against: the environment's pinned certificate and the JWKS at the
//! URL discovery advertises. When no key fits or the JWKS cannot be fetched, the discovery document is
//! fetched again and, if it now names another JWKS, the check is repeated once with that. Discovery is
//! fetched again for that at most once per cooldown, and a token never waits for another's refetch, so a
//! flood of tokens naming made-up keys costs SuperID at most one discovery and one JWKS fetch a minute.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, RwLock};
use tokio::time::Instant;
use url::Url;

use crate::clock::Clock;
use crate::jwt::{
    Certificate, DEFAULT_MAX_AGE, DEFAULT_REFETCH_COOLDOWN, Expectation, JwksEndpoint, JwtError,
    JwtValidator, KeySet, SuperOfficeClaims,
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
    /// `superoffice.jwks_refresh_secs`.
    jwks_max_age: Duration,
    /// Least time between two discovery refetches for unknown keys.
    refresh_cooldown: Duration,
    /// When discovery was last refetched for an unknown key; held while it is.
    last_refresh: Mutex<Option<Instant>>,
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
            jwks_max_age: DEFAULT_MAX_AGE,
            refresh_cooldown: DEFAULT_REFETCH_COOLDOWN,
            last_refresh: Mutex::new(None),
            current: RwLock::new(None),
        }
    }

    /// Fetch the JWKS again once what was fetched is this old (`superoffice.jwks_refresh_secs`).
    pub fn with_jwks_max_age(self, jwks_max_age: Duration) -> Self {
        Self {
            jwks_max_age,
            ..self
        }
    }

    /// Least time between two refetches of discovery (and of the JWKS) for unknown keys.
    pub fn with_refresh_cooldown(self, refresh_cooldown: Duration) -> Self {
        Self {
            refresh_cooldown,
            ..self
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
        let validator = self.validator().await?;
        match validator.validate(token, expectation).await {
            Err(error @ (JwtError::UnknownKey | JwtError::KeysUnavailable)) => {
                match self.refreshed_validator().await {
                    Some(refreshed) => Ok(refreshed.validate(token, expectation).await?),
                    None => Err(error.into()),
                }
            }
            result => Ok(result?),
        }
    }

    /// The validator for the current JWKS URL.
    async fn validator(&self) -> Result<JwtValidator, ValidationError> {
        if let Some((_, validator)) = self.current.read().await.as_ref() {
            return Ok(validator.clone());
        }
        match self.discovery.metadata().await {
            Ok(metadata) => Ok(self.validator_for(&metadata.jwks_uri).await),
            // Without discovery the pinned certificate still verifies the environment's tokens.
            Err(error) => match &self.pinned {
                Some(pinned) => {
                    tracing::warn!(error = %error, "discovery failed; validating with the pinned certificate only");
                    Ok(self.build(Some(pinned), None))
                }
                None => Err(error.into()),
            },
        }
    }

    /// After discovery is fetched again: the validator for the JWKS it names now. `None` when discovery was
    /// refetched less than the cooldown ago, another token's refetch is running (nobody queues behind it),
    /// or the refetch failed: the token's first answer stands.
    async fn refreshed_validator(&self) -> Option<JwtValidator> {
        let mut last = self.last_refresh.try_lock().ok()?;
        if last.is_some_and(|at| at.elapsed() < self.refresh_cooldown) {
            return None;
        }
        *last = Some(Instant::now());
        match self.discovery.refresh().await {
            Ok(metadata) => Some(self.validator_for(&metadata.jwks_uri).await),
            Err(error) => {
                tracing::warn!(error = %error, "discovery could not be fetched again for an unknown key");
                None
            }
        }
    }

    /// The cached validator when `jwks_uri` is the one it uses, a new one (with a fresh key set) otherwise.
    async fn validator_for(&self, jwks_uri: &Url) -> JwtValidator {
        let mut current = self.current.write().await;
        if let Some((uri, validator)) = current.as_ref()
            && uri == jwks_uri
        {
            return validator.clone();
        }
        let validator = self.build(
            self.pinned.as_ref(),
            Some(JwksEndpoint {
                uri: jwks_uri.clone(),
                client: self.client.clone(),
            }),
        );
        *current = Some((jwks_uri.clone(), validator.clone()));
        validator
    }

    fn build(&self, pinned: Option<&Certificate>, jwks: Option<JwksEndpoint>) -> JwtValidator {
        JwtValidator::new(
            KeySet::new(pinned, jwks, self.refresh_cooldown, self.jwks_max_age),
            self.leeway,
        )
        .with_clock(Arc::clone(&self.clock))
    }
}
