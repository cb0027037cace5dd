//! The keys SuperOffice signs with: the pinned federated-login certificate and SuperID's JWKS.
//!
//! A token names its key by `kid` or `x5t`; either may carry the thumbprint as hex or in x5t form, so both
//! are compared as thumbprints (protocol §3.1). An unknown key triggers one JWKS refetch, then no other for a
//! cooldown, so a flood of forged tokens cannot hammer SuperID; keys are also fetched again once a day (a key
//! SuperID withdrew stops being trusted). When the JWKS cannot be fetched, the pinned certificate still
//! validates tokens. Tokens naming no key, and tokens whose key name is still unknown after a refetch, try
//! every key known.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rsa::{BoxedUint, PublicKey};
use serde_json::Value;
use url::Url;

use crate::crypto::rs256::Rs256Verifier;
use crate::jwt::JwtError;
use crate::jwt::certificate::{Certificate, Thumbprint};

/// How long after one JWKS fetch an unknown key may trigger another.
pub const DEFAULT_REFETCH_COOLDOWN: Duration = Duration::from_secs(60);
/// How old fetched keys may grow before they are fetched again (`superoffice.jwks_refresh_secs`).
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// A JWKS larger than this is refused.
const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Upper bound on one JWKS request, whatever the client's own timeout.
const JWKS_TIMEOUT: Duration = Duration::from_secs(10);

/// How a key is named: a certificate thumbprint (in either spelling) or any other `kid`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyId {
    Thumbprint(Thumbprint),
    Name(String),
}

impl KeyId {
    fn parse(text: &str) -> Self {
        Thumbprint::parse(text).map_or_else(|| Self::Name(text.to_owned()), Self::Thumbprint)
    }
}

/// The key names in a token's header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyHint {
    ids: Vec<KeyId>,
}

impl KeyHint {
    pub(crate) fn new(kid: Option<&str>, x5t: Option<&str>) -> Self {
        Self {
            ids: kid.into_iter().chain(x5t).map(KeyId::parse).collect(),
        }
    }

    fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// One RSA public key that may have signed a token, with the names it is known by.
#[derive(Debug, Clone)]
pub struct VerificationKey {
    ids: Vec<KeyId>,
    public_key: Rs256Verifier,
}

impl VerificationKey {
    /// A certificate's key, known by its thumbprint.
    pub fn from_certificate(certificate: &Certificate) -> Self {
        Self {
            ids: vec![KeyId::Thumbprint(certificate.thumbprint())],
            public_key: certificate.verifier().clone(),
        }
    }

    /// Any RSA public key, optionally known by a `kid`.
    pub fn new(kid: Option<&str>, public_key: PublicKey) -> Self {
        Self {
            ids: kid.map(KeyId::parse).into_iter().collect(),
            public_key: Rs256Verifier::new(public_key),
        }
    }

    fn matches(&self, hint: &KeyHint) -> bool {
        hint.ids.iter().any(|id| self.ids.contains(id))
    }

    /// RSASSA-PKCS1-v1_5 SHA-256 (RS256) over `message`.
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        self.public_key.verifies(message, signature)
    }
}

/// Where SuperID publishes its keys: discovery's `jwks_uri`, and the process's HTTP client.
#[derive(Debug, Clone)]
pub struct JwksEndpoint {
    pub uri: Url,
    pub client: reqwest::Client,
}

/// The keys tokens are checked against. Cheap to clone; clones share one cache.
#[derive(Clone)]
pub struct KeySet {
    inner: Arc<Inner>,
}

/// The JWKS keys as last fetched, and when.
type Fetched = (Instant, Arc<[Arc<VerificationKey>]>);

struct Inner {
    fixed: Vec<Arc<VerificationKey>>,
    jwks: Option<JwksEndpoint>,
    cooldown: Duration,
    /// Fetch the JWKS again once what was fetched is this old, even if every token names a known key.
    max_age: Duration,
    /// `None` until the JWKS has been fetched once.
    fetched: RwLock<Option<Fetched>>,
    /// When the last fetch was attempted; held during a fetch so that one runs at a time.
    last_attempt: tokio::sync::Mutex<Option<Instant>>,
}

/// The keys a token's signature is tried against.
#[derive(Debug)]
pub(crate) struct Candidates {
    pub(crate) keys: Vec<Arc<VerificationKey>>,
    /// No key has the token's name, even after a refetch: these are every key known, and a signature none
    /// of them verifies means the key is unknown rather than the signature bad.
    pub(crate) fallback: bool,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("fixed", &self.inner.fixed)
            .field("jwks", &self.inner.jwks.as_ref().map(|j| j.uri.as_str()))
            .field("cooldown", &self.inner.cooldown)
            .field("max_age", &self.inner.max_age)
            .finish_non_exhaustive()
    }
}

impl KeySet {
    /// The pinned certificate (none for `custom`) and SuperID's JWKS, fetched again on an unknown key (at
    /// most once per `refetch_cooldown`) and whenever what was fetched is older than `max_age`.
    pub fn new(
        pinned: Option<&Certificate>,
        jwks: Option<JwksEndpoint>,
        refetch_cooldown: Duration,
        max_age: Duration,
    ) -> Self {
        let fixed = pinned
            .map(VerificationKey::from_certificate)
            .into_iter()
            .collect();
        Self::build(fixed, jwks, refetch_cooldown, max_age)
    }

    /// Only these keys, never fetched: the offline path (`verify-jwt`, benchmarks, the simulator's tests).
    pub fn from_keys(keys: Vec<VerificationKey>) -> Self {
        Self::build(keys, None, DEFAULT_REFETCH_COOLDOWN, DEFAULT_MAX_AGE)
    }

    fn build(
        fixed: Vec<VerificationKey>,
        jwks: Option<JwksEndpoint>,
        cooldown: Duration,
        max_age: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                fixed: fixed.into_iter().map(Arc::new).collect(),
                jwks,
                cooldown,
                max_age,
                fetched: RwLock::new(None),
                last_attempt: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// The keys that may have signed a token with this header, fetching the JWKS when it is needed (an
    /// unknown name, never fetched, or older than `max_age`) and allowed (not cooling down).
    pub(crate) async fn candidates(&self, hint: &KeyHint) -> Result<Candidates, JwtError> {
        let fetched = self.snapshot();
        let stale = self.inner.jwks.is_some()
            && fetched
                .as_ref()
                .is_some_and(|(at, _)| at.elapsed() >= self.inner.max_age);
        let keys = fetched.map(|(_, keys)| keys);
        let found = self.select(hint, keys.as_deref());
        let complete = self.inner.jwks.is_none() || keys.is_some();
        if !stale && !found.is_empty() && (complete || !hint.is_empty()) {
            return Ok(Candidates {
                keys: found,
                fallback: false,
            });
        }
        if let Some(endpoint) = &self.inner.jwks {
            self.refetch_unless_cooling_down(endpoint).await;
        }
        self.finish(hint)
    }

    /// As `candidates`, without any network: the pinned or explicit keys and what was fetched before.
    pub(crate) fn candidates_offline(&self, hint: &KeyHint) -> Result<Candidates, JwtError> {
        self.finish(hint)
    }

    /// The keys named by the token; when none is (even after a refetch), every key known, pinned and fetched
    /// (protocol §3.1: SuperOffice's `kid` format has varied). No key at all is `KeysUnavailable`.
    fn finish(&self, hint: &KeyHint) -> Result<Candidates, JwtError> {
        let fetched = self.snapshot().map(|(_, keys)| keys);
        let found = self.select(hint, fetched.as_deref());
        if !found.is_empty() {
            return Ok(Candidates {
                keys: found,
                fallback: false,
            });
        }
        let every = self.select(&KeyHint::default(), fetched.as_deref());
        if every.is_empty() {
            return Err(JwtError::KeysUnavailable);
        }
        Ok(Candidates {
            keys: every,
            fallback: true,
        })
    }

    fn snapshot(&self) -> Option<Fetched> {
        self.inner
            .fetched
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn select(
        &self,
        hint: &KeyHint,
        fetched: Option<&[Arc<VerificationKey>]>,
    ) -> Vec<Arc<VerificationKey>> {
        self.inner
            .fixed
            .iter()
            .chain(fetched.into_iter().flatten())
            .filter(|key| hint.is_empty() || key.matches(hint))
            .cloned()
            .collect()
    }

    /// Fetches the JWKS unless a refetch ran less than the cooldown ago. The first successful fetch does
    /// not start the cooldown, so a key rotated in just after it is picked up by the very next token that
    /// names it; refetches (for unknown keys, for age) and failed fetches do. A failed fetch keeps the keys
    /// fetched before.
    async fn refetch_unless_cooling_down(&self, endpoint: &JwksEndpoint) {
        let mut last_attempt = self.inner.last_attempt.lock().await;
        if last_attempt.is_some_and(|at| at.elapsed() < self.inner.cooldown) {
            return;
        }
        let first = self.snapshot().is_none();
        match fetch_jwks(endpoint).await {
            Ok(keys) => {
                if !first {
                    *last_attempt = Some(Instant::now());
                }
                *self
                    .inner
                    .fetched
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some((Instant::now(), keys.into_iter().map(Arc::new).collect()));
            }
            Err(error) => {
                *last_attempt = Some(Instant::now());
                tracing::warn!(
                %error,
                "SuperID's JWKS could not be fetched; tokens are checked against the pinned certificate \
                 and keys fetched before"
                );
            }
        }
    }
}

/// Why the JWKS could not be used.
#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("request to {uri} failed: {source}")]
    Http { uri: String, source: reqwest::Error },
    #[error("{uri} answered HTTP {status}")]
    Status { uri: String, status: u16 },
    #[error("{uri} sent more than {MAX_JWKS_BYTES} bytes")]
    TooLarge { uri: String },
    #[error("{uri} did not send a JWKS document ({{\"keys\": [...]}})")]
    NotJwks { uri: String },
    #[error("{uri} holds no usable RS256 signing key")]
    NoKeys { uri: String },
}

#[tracing::instrument(skip_all, fields(uri = %endpoint.uri), err(Display))]
async fn fetch_jwks(endpoint: &JwksEndpoint) -> Result<Vec<VerificationKey>, FetchError> {
    let uri = endpoint.uri.to_string();
    let http = |source| FetchError::Http {
        uri: uri.clone(),
        source,
    };
    let mut response = endpoint
        .client
        .get(endpoint.uri.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .timeout(JWKS_TIMEOUT)
        .send()
        .await
        .map_err(http)?;
    if !response.status().is_success() {
        return Err(FetchError::Status {
            uri,
            status: response.status().as_u16(),
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(http)? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(FetchError::TooLarge { uri });
        }
        body.extend_from_slice(&chunk);
    }
    let document: Value =
        serde_json::from_slice(&body).map_err(|_| FetchError::NotJwks { uri: uri.clone() })?;
    let entries = document
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| FetchError::NotJwks { uri: uri.clone() })?;
    let keys: Vec<VerificationKey> = entries.iter().filter_map(read_jwk).collect();
    if keys.is_empty() {
        return Err(FetchError::NoKeys { uri });
    }
    tracing::debug!(keys = keys.len(), "fetched SuperID's JWKS");
    Ok(keys)
}

/// One JWKS entry, if it is an RSA signing key: from `n`/`e`, or else from the certificate in `x5c`.
fn read_jwk(entry: &Value) -> Option<VerificationKey> {
    let member = |name: &str| entry.get(name).and_then(Value::as_str);
    if member("kty") != Some("RSA")
        || member("use").is_some_and(|u| u != "sig")
        || member("alg").is_some_and(|a| a != "RS256")
    {
        return None;
    }
    let certificate = entry
        .get("x5c")
        .and_then(Value::as_array)
        .and_then(|chain| chain.first())
        .and_then(Value::as_str)
        .and_then(|der| STANDARD.decode(der).ok())
        .and_then(|der| Certificate::from_der(&der).ok());
    let from_components = match (member("n"), member("e")) {
        (Some(n), Some(e)) => {
            let n = URL_SAFE_NO_PAD.decode(n.trim_end_matches('=')).ok()?;
            let e = URL_SAFE_NO_PAD.decode(e.trim_end_matches('=')).ok()?;
            Some(
                PublicKey::new(
                    BoxedUint::from_be_slice_vartime(&n),
                    BoxedUint::from_be_slice_vartime(&e),
                )
                .ok()?,
            )
        }
        _ => None,
    };
    let public_key = from_components
        .map(Rs256Verifier::new)
        .or_else(|| certificate.as_ref().map(|c| c.verifier().clone()))?;
    let ids = [member("kid"), member("x5t")]
        .into_iter()
        .flatten()
        .map(KeyId::parse)
        .chain(certificate.map(|c| KeyId::Thumbprint(c.thumbprint())))
        .collect();
    Some(VerificationKey { ids, public_key })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::environment::Environment;
    use crate::jwt::pinned::pinned_certificate;

    #[test]
    fn header_names_match_thumbprints_in_either_spelling() {
        let sod = pinned_certificate(Environment::Sod).unwrap().unwrap();
        let key = VerificationKey::from_certificate(&sod);
        for hint in [
            KeyHint::new(Some("16B7FB8C3F9AB06885A800C64E64C97C4AB5E98C"), None),
            KeyHint::new(Some("16b7fb8c3f9ab06885a800c64e64c97c4ab5e98c"), None),
            KeyHint::new(Some("Frf7jD-asGiFqADGTmTJfEq16Yw"), None),
            KeyHint::new(None, Some("Frf7jD-asGiFqADGTmTJfEq16Yw")),
            KeyHint::new(Some("other"), Some("Frf7jD-asGiFqADGTmTJfEq16Yw")),
        ] {
            assert!(key.matches(&hint), "{hint:?}");
        }
        assert!(!key.matches(&KeyHint::new(Some("SEkDp3Mrkox5gKOdOOlH6hGfEIk"), None)));
        let named = VerificationKey::new(Some("sim-key-1"), sod.public_key().clone());
        assert!(named.matches(&KeyHint::new(Some("sim-key-1"), None)));
        assert!(!named.matches(&KeyHint::new(Some("sim-key-2"), None)));
    }

    #[test]
    fn jwks_entries_are_read_from_components_or_certificate() {
        let sod = pinned_certificate(Environment::Sod).unwrap().unwrap();
        // Protocol §3.1's SOD entry, with the certificate in x5c.
        let entry = serde_json::json!({
            "alg": "RS256", "e": "AQAB", "kid": "16B7FB8C3F9AB06885A800C64E64C97C4AB5E98C", "kty": "RSA",
            "n": URL_SAFE_NO_PAD.encode(rsa::traits::PublicKeyParts::n_bytes(sod.public_key())),
            "use": "sig", "x5c": [STANDARD.encode(sod.der())], "x5t": "Frf7jD-asGiFqADGTmTJfEq16Yw"
        });
        let key = read_jwk(&entry).unwrap();
        assert_eq!(key.public_key.public_key(), sod.public_key());
        let only_certificate =
            serde_json::json!({"kty": "RSA", "x5c": [STANDARD.encode(sod.der())]});
        let key = read_jwk(&only_certificate).unwrap();
        assert!(key.matches(&KeyHint::new(None, Some("Frf7jD-asGiFqADGTmTJfEq16Yw"))));
        for unusable in [
            serde_json::json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}),
            serde_json::json!({"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"}),
            serde_json::json!({"kty": "RSA", "alg": "RS512", "x5c": [STANDARD.encode(sod.der())]}),
            serde_json::json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"}),
        ] {
            assert!(read_jwk(&unusable).is_none(), "{unusable}");
        }
    }
}
