//! Validation of every JWT SuperOffice sends: id_tokens, system-user JWTs, legacy federated posts and
//! tenant state-change notifications. RS256 only, keys from the pinned certificate and SuperID's JWKS.

pub mod certificate;
pub mod claims;
pub mod key_set;
pub mod pinned;
pub mod validator;

use chrono::{DateTime, Utc};

use crate::domain::ContextId;

pub use certificate::{Certificate, CertificateError, Thumbprint};
pub use claims::SuperOfficeClaims;
pub use key_set::{
    DEFAULT_MAX_AGE, DEFAULT_REFETCH_COOLDOWN, JwksEndpoint, KeySet, VerificationKey,
};
pub use validator::{Expectation, JwtValidator, MAX_TOKEN_BYTES, SUPEROFFICE_ISSUER, fingerprint};

/// Why a token was refused. Each message names the check that failed; none carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("token is {size} bytes; at most {max} are accepted")]
    TooLarge { size: usize, max: usize },
    #[error("token is malformed: {0}")]
    Malformed(String),
    #[error("token algorithm {0:?} is refused; only RS256 is accepted")]
    Algorithm(String),
    #[error(
        "token is signed by an unknown key: its kid/x5t is neither the pinned certificate nor in SuperID's JWKS"
    )]
    UnknownKey,
    #[error(
        "no signing key is available: SuperID's JWKS could not be fetched and no certificate is pinned"
    )]
    KeysUnavailable,
    #[error("token signature does not verify")]
    Signature,
    #[error("token issuer {found:?} is not the expected {expected:?}")]
    Issuer { expected: String, found: String },
    #[error("token audience {found:?} does not include the expected {expected:?}")]
    Audience {
        expected: String,
        found: Vec<String>,
    },
    #[error("token expired at {0} (clock leeway included)")]
    Expired(DateTime<Utc>),
    #[error("token is not valid before {0} (clock leeway included)")]
    NotYetValid(DateTime<Utc>),
    #[error("token nonce does not match the one sent with the sign-in request")]
    Nonce,
    #[error("token is for tenant {found}, not {expected}")]
    ContextMismatch {
        expected: ContextId,
        found: ContextId,
    },
    #[error("token lacks the required claim {0}")]
    MissingClaim(&'static str),
    #[error(
        "token carries the claim {0}, which a token of this kind never has; it was issued for something else"
    )]
    UnexpectedClaim(&'static str),
}
