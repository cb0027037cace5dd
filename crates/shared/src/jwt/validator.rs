//! One validator for every JWT SuperOffice sends (protocol §3.4, §3.5, §6.1, §8).
//!
//! The order of checks is deliberate: size first, then the header's algorithm (RS256 only, so `none` and
//! HS256-keyed-with-the-certificate are refused before any key is looked at), then the signature, then the
//! claims — issuer, audience, lifetime with leeway, and what the caller expects (nonce, tenant).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Value};

use crate::clock::{Clock, SystemClock};
use crate::domain::ContextId;
use crate::jwt::JwtError;
use crate::jwt::claims::{Claims, SuperOfficeClaims};
use crate::jwt::key_set::{Candidates, KeyHint, KeySet};

/// The issuer of system-user JWTs, legacy federated posts and notifications.
pub const SUPEROFFICE_ISSUER: &str = "SuperOffice AS";
/// Tokens longer than this are refused unread. Real ones are 1–3 KiB.
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// base64url, with or without `=` padding.
const JWT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What the caller knows and the token must agree with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expectation {
    /// An OpenID Connect id_token: issued by the environment's SuperID, for this application.
    IdToken {
        issuer: String,
        client_id: String,
        /// The nonce sent with the authorization request; when given the token must carry it.
        nonce: Option<String>,
    },
    /// The JWT PartnerSystemUserService returns: audience `spn:{serial}` and the tenant the exchange was for.
    SystemUser {
        /// The serial stored for the tenant (with or without `spn:`); never read from the token itself.
        serial: String,
        context_id: ContextId,
    },
    /// Signature and issuer `SuperOffice AS` only, for an operator's offline check (`verify-jwt`) before the
    /// token's own tenant is known. Never enough to trust a token: nothing says whom it was issued to.
    Legacy,
    /// The deprecated federated-login form post. Its audience is undocumented, so `client_id` or
    /// `spn:{client_id}` is accepted, but one of them must be there; a nonce, if any, must be the one this
    /// browser sent; a system-user JWT (a ticket for `spn:{serial}`) is refused.
    LegacySignIn {
        client_id: String,
        /// The nonce of the sign-in this browser started.
        nonce: String,
    },
    /// A tenant state-change notification: its `ctx` must be the tenant named in the body; its audience must
    /// be `spn:{client_id}` (when `audience_required`, or whenever it has one). A ticket, a nonce or a system
    /// user token means it was issued for something else.
    StateChange {
        context_id: ContextId,
        client_id: String,
        audience_required: bool,
    },
}

impl Expectation {
    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::IdToken { .. } => "id_token",
            Self::SystemUser { .. } => "system_user",
            Self::Legacy => "legacy",
            Self::LegacySignIn { .. } => "legacy_sign_in",
            Self::StateChange { .. } => "state_change",
        }
    }

    fn issuer(&self) -> &str {
        match self {
            Self::IdToken { issuer, .. } => issuer,
            Self::SystemUser { .. }
            | Self::Legacy
            | Self::LegacySignIn { .. }
            | Self::StateChange { .. } => SUPEROFFICE_ISSUER,
        }
    }
}

/// Checks SuperOffice's JWTs against a key set. Cheap to clone.
#[derive(Debug, Clone)]
pub struct JwtValidator {
    keys: KeySet,
    leeway: Duration,
    clock: Arc<dyn Clock>,
}

impl JwtValidator {
    /// `leeway` is allowed on `exp` and `nbf` either way (configuration: `superoffice.jwt_leeway_secs`).
    pub fn new(keys: KeySet, leeway: Duration) -> Self {
        Self {
            keys,
            leeway,
            clock: Arc::new(SystemClock),
        }
    }

    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        Self { clock, ..self }
    }

    /// Validates `token`, fetching SuperID's JWKS if the token names a key not yet known.
    #[tracing::instrument(skip_all, fields(kind = expectation.kind()), err(Display, level = "warn"))]
    pub async fn validate(
        &self,
        token: &str,
        expectation: &Expectation,
    ) -> Result<SuperOfficeClaims, JwtError> {
        let parts = Parts::split(token)?;
        let keys = self.keys.candidates(&parts.hint).await?;
        self.check(&parts, &keys, expectation)
    }

    /// Validates `token` without any network: pinned or explicit keys, and JWKS keys fetched before.
    pub fn validate_offline(
        &self,
        token: &str,
        expectation: &Expectation,
    ) -> Result<SuperOfficeClaims, JwtError> {
        let parts = Parts::split(token)?;
        let keys = self.keys.candidates_offline(&parts.hint)?;
        self.check(&parts, &keys, expectation)
    }

    fn check(
        &self,
        parts: &Parts<'_>,
        candidates: &Candidates,
        expectation: &Expectation,
    ) -> Result<SuperOfficeClaims, JwtError> {
        let signed = parts.signed.as_bytes();
        if !candidates
            .keys
            .iter()
            .any(|key| key.verifies(signed, &parts.signature))
        {
            return Err(if candidates.fallback {
                JwtError::UnknownKey
            } else {
                JwtError::Signature
            });
        }
        let payload: Map<String, Value> = decode_json(parts.payload, "payload")?;
        self.check_claims(&payload, expectation)
    }

    fn check_claims(
        &self,
        payload: &Map<String, Value>,
        expectation: &Expectation,
    ) -> Result<SuperOfficeClaims, JwtError> {
        let raw = Claims(payload);
        let issuer = raw.string("iss")?.ok_or(JwtError::MissingClaim("iss"))?;
        if issuer.trim_end_matches('/') != expectation.issuer().trim_end_matches('/') {
            return Err(JwtError::Issuer {
                expected: expectation.issuer().to_owned(),
                found: issuer.chars().take(100).collect(),
            });
        }
        check_audience(&raw.audience()?, expectation)?;

        let now = self.clock.now();
        let leeway = chrono::Duration::from_std(self.leeway).unwrap_or(chrono::Duration::MAX);
        let expires_at = raw.time("exp")?.ok_or(JwtError::MissingClaim("exp"))?;
        if now > expires_at.checked_add_signed(leeway).unwrap_or(expires_at) {
            return Err(JwtError::Expired(expires_at));
        }
        if let Some(not_before) = raw.time("nbf")?
            && now.checked_add_signed(leeway).unwrap_or(now) < not_before
        {
            return Err(JwtError::NotYetValid(not_before));
        }

        let claims = SuperOfficeClaims::from_payload(payload)?;
        match expectation {
            Expectation::IdToken { nonce, .. } => {
                if let Some(expected) = nonce
                    && claims.token.nonce.as_deref() != Some(expected.as_str())
                {
                    return Err(JwtError::Nonce);
                }
                if claims.user.subject.is_none() {
                    return Err(JwtError::MissingClaim("sub"));
                }
                // OpenID Connect never puts a ticket in an id_token: this is a legacy or system-user JWT.
                if claims.credentials.ticket.is_some() {
                    return Err(JwtError::UnexpectedClaim("ticket"));
                }
            }
            Expectation::LegacySignIn { nonce, .. } => {
                if claims
                    .token
                    .nonce
                    .as_deref()
                    .is_some_and(|found| found != nonce.as_str())
                {
                    return Err(JwtError::Nonce);
                }
                // A system-user JWT names its tenant's database as `spn:{serial}`; its ticket is the system
                // user's, never a signed-in user's.
                if claims.credentials.ticket.is_some()
                    && claims.tenant.serial.as_deref().is_some_and(|serial| {
                        claims.token.audience.contains(&format!("spn:{serial}"))
                    })
                {
                    return Err(JwtError::UnexpectedClaim("ticket"));
                }
            }
            Expectation::SystemUser { context_id, .. } => {
                check_context(context_id, &claims.tenant.context_id)?;
                if claims.credentials.ticket.is_none() {
                    return Err(JwtError::MissingClaim("ticket"));
                }
            }
            Expectation::StateChange { context_id, .. } => {
                check_context(context_id, &claims.tenant.context_id)?;
                if claims.credentials.ticket.is_some() {
                    return Err(JwtError::UnexpectedClaim("ticket"));
                }
                if claims.token.nonce.is_some() {
                    return Err(JwtError::UnexpectedClaim("nonce"));
                }
                if claims.credentials.system_token.is_some() {
                    return Err(JwtError::UnexpectedClaim("system_token"));
                }
            }
            Expectation::Legacy => {}
        }
        Ok(claims)
    }
}

fn check_audience(found: &[String], expectation: &Expectation) -> Result<(), JwtError> {
    let expected = match expectation {
        Expectation::IdToken { client_id, .. } => client_id.clone(),
        Expectation::SystemUser { serial, .. } => {
            format!("spn:{}", serial.strip_prefix("spn:").unwrap_or(serial))
        }
        Expectation::LegacySignIn { client_id, .. } => {
            if found.contains(client_id) {
                return Ok(());
            }
            format!("spn:{client_id}")
        }
        Expectation::StateChange {
            client_id,
            audience_required,
            ..
        } if *audience_required || !found.is_empty() => format!("spn:{client_id}"),
        Expectation::StateChange { .. } | Expectation::Legacy => return Ok(()),
    };
    if found.contains(&expected) {
        Ok(())
    } else {
        Err(JwtError::Audience {
            expected,
            found: found
                .iter()
                .take(5)
                .map(|a| a.chars().take(100).collect())
                .collect(),
        })
    }
}

fn check_context(expected: &ContextId, found: &ContextId) -> Result<(), JwtError> {
    if expected == found {
        Ok(())
    } else {
        Err(JwtError::ContextMismatch {
            expected: expected.clone(),
            found: found.clone(),
        })
    }
}

/// A token split into its three parts, its header read and its algorithm checked.
struct Parts<'a> {
    /// `header.payload`: what the signature covers.
    signed: &'a str,
    payload: &'a str,
    signature: Vec<u8>,
    hint: KeyHint,
}

impl<'a> Parts<'a> {
    fn split(token: &'a str) -> Result<Self, JwtError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(JwtError::TooLarge {
                size: token.len(),
                max: MAX_TOKEN_BYTES,
            });
        }
        if token.is_empty() {
            return Err(JwtError::Malformed("the token is empty".into()));
        }
        let mut pieces = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (pieces.next(), pieces.next(), pieces.next(), pieces.next())
        else {
            return Err(JwtError::Malformed(
                "a JWT has three base64url parts separated by dots".into(),
            ));
        };
        let signed = &token[..header.len() + 1 + payload.len()];
        let header: Map<String, Value> = decode_json(header, "header")?;
        match header.get("alg") {
            Some(Value::String(alg)) if alg == "RS256" => {}
            Some(Value::String(alg)) => {
                return Err(JwtError::Algorithm(alg.chars().take(20).collect()));
            }
            _ => return Err(JwtError::Algorithm("(missing)".into())),
        }
        if header.contains_key("crit") {
            return Err(JwtError::Malformed(
                "critical header parameters (crit) are not supported".into(),
            ));
        }
        if signature.is_empty() {
            return Err(JwtError::Malformed("the signature is missing".into()));
        }
        let signature = JWT_BASE64
            .decode(signature)
            .map_err(|_| JwtError::Malformed("the signature is not base64url".into()))?;
        let name = |key: &str| header.get(key).and_then(Value::as_str);
        let hint = KeyHint::new(name("kid"), name("x5t"));
        Ok(Self {
            signed,
            payload,
            signature,
            hint,
        })
    }
}

/// What a token's signature covers, independent of how the token is spelled: SHA-256 over its header and
/// payload as JSON with sorted member names and no whitespace, and over its signature's bytes. Base64url
/// padding, member order or spacing of the JSON (none of which a valid signature allows to change, except the
/// signature's own padding) give the same fingerprint; any change to what SuperOffice signed gives another.
/// Call it on a token that validated.
pub fn fingerprint(token: &str) -> Result<[u8; 32], JwtError> {
    use sha2::{Digest, Sha256};
    let parts = Parts::split(token)?;
    let header = token.split('.').next().unwrap_or_default();
    let mut hasher = Sha256::new();
    for (part, what) in [(header, "header"), (parts.payload, "payload")] {
        let json = canonical(Value::Object(decode_json(part, what)?));
        hasher.update(json.to_string().as_bytes());
        hasher.update([0u8]);
    }
    hasher.update(&parts.signature);
    Ok(hasher.finalize().into())
}

/// The same JSON with every object's members in name order.
fn canonical(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut members: Vec<(String, Value)> = map.into_iter().collect();
            members.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                members
                    .into_iter()
                    .map(|(name, value)| (name, canonical(value)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

fn decode_json(part: &str, what: &str) -> Result<Map<String, Value>, JwtError> {
    let bytes = JWT_BASE64
        .decode(part)
        .map_err(|_| JwtError::Malformed(format!("the {what} is not base64url")))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| JwtError::Malformed(format!("the {what} is not a JSON object")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::OnceLock;

    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use chrono::{DateTime, Utc};
    use rsa::traits::PublicKeyParts;
    use secrecy::ExposeSecret;
    use serde_json::json;
    use url::Url;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::clock::FixedClock;
    use crate::crypto::partner_key::PartnerKey;
    use crate::jwt::{Certificate, DEFAULT_MAX_AGE, DEFAULT_REFETCH_COOLDOWN, JwksEndpoint};

    const NOW: i64 = 1_800_000_000;
    const CLIENT_ID: &str = "6cf25376616343b38d14ddcd804f2891";
    const ISSUER: &str = "https://sod.superoffice.com";
    const SERIAL: &str = "1801550193";
    const JWKS_PATH: &str = "/login/.well-known/jwks";
    /// testdata/test-federated-login.pem is a self-signed certificate for testdata/localhost-private-key.xml:
    /// `openssl req -x509 -new -key localhost.pem -sha256 -days 36500 -subj "/CN=Partner Test Federated Login"`.
    const TEST_CERTIFICATE: &str = include_str!("../../testdata/test-federated-login.pem");

    /// Signs like SuperID's pinned certificate in these tests.
    fn pinned_key() -> &'static PartnerKey {
        static KEY: OnceLock<PartnerKey> = OnceLock::new();
        KEY.get_or_init(|| {
            PartnerKey::parse(include_str!("../../testdata/localhost-private-key.xml")).unwrap()
        })
    }

    /// A key neither pinned nor published: a forger's.
    fn unknown_key() -> &'static PartnerKey {
        static KEY: OnceLock<PartnerKey> = OnceLock::new();
        KEY.get_or_init(|| {
            PartnerKey::parse(include_str!("../../testdata/partner-private-key.xml")).unwrap()
        })
    }

    /// A key published only in the (mock) JWKS.
    fn jwks_key() -> &'static PartnerKey {
        static KEY: OnceLock<PartnerKey> = OnceLock::new();
        KEY.get_or_init(|| {
            PartnerKey::parse(include_str!("../../testdata/service-console-key.xml")).unwrap()
        })
    }

    fn certificate() -> Certificate {
        Certificate::from_pem(TEST_CERTIFICATE).unwrap()
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    fn encode(part: &Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(part).unwrap())
    }

    fn sign(key: &PartnerKey, header: &Value, claims: &Value) -> String {
        let signed = format!("{}.{}", encode(header), encode(claims));
        let signature = key.sign_sha256(signed.as_bytes());
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    fn pinned_header() -> Value {
        let thumbprint = certificate().thumbprint();
        json!({"alg": "RS256", "typ": "JWT", "kid": thumbprint.hex(), "x5t": thumbprint.x5t()})
    }

    /// A token with `claims`, signed by the pinned key and named by its thumbprint.
    fn pinned_token(claims: &Value) -> String {
        sign(pinned_key(), &pinned_header(), claims)
    }

    /// The claims of a pinned token with `claims`, validated offline against `expectation`.
    fn validated(claims: &Value, expectation: &Expectation) -> SuperOfficeClaims {
        offline()
            .validate_offline(&pinned_token(claims), expectation)
            .unwrap()
    }

    fn jwks_header() -> Value {
        json!({"alg": "RS256", "typ": "JWT", "kid": "jwks-key-1"})
    }

    fn custom(name: &str) -> String {
        format!("http://schemes.superoffice.net/identity/{name}")
    }

    fn id_token_claims() -> Value {
        json!({
            "sub": "tony@superoffice.com",
            custom("ctx"): "Cust12345",
            custom("serial"): SERIAL,
            custom("is_administrator"): "True",
            custom("associateid"): "5",
            custom("system_token"): "Partner App-8k8Q7DmBgo",
            custom("webapi_url"): "https://sod.superoffice.com/Cust12345/api/",
            "nonce": "nonce-1",
            "iat": NOW, "nbf": NOW - 60, "exp": NOW + 300,
            "iss": ISSUER, "aud": CLIENT_ID,
        })
    }

    fn system_user_claims() -> Value {
        json!({
            custom("ctx"): "Cust12345",
            custom("serial"): SERIAL,
            custom("ticket"): "7T:MAA3AGYAMQBl",
            custom("netserver_url"): "https://sod2.superoffice.com/Cust12345/Remote/Services88/",
            "iat": NOW, "nbf": NOW - 60, "exp": NOW + 300,
            "iss": "SuperOffice AS", "aud": format!("spn:{SERIAL}"),
        })
    }

    fn with(mut claims: Value, name: &str, value: Value) -> Value {
        claims[name] = value;
        claims
    }

    fn without(mut claims: Value, name: &str) -> Value {
        claims.as_object_mut().unwrap().remove(name);
        claims
    }

    fn id_token_expectation() -> Expectation {
        Expectation::IdToken {
            issuer: ISSUER.into(),
            client_id: CLIENT_ID.into(),
            nonce: Some("nonce-1".into()),
        }
    }

    fn system_user_expectation() -> Expectation {
        Expectation::SystemUser {
            serial: SERIAL.into(),
            context_id: ContextId::parse("Cust12345").unwrap(),
        }
    }

    /// `token` checked online as a system user's JWT for the test tenant.
    async fn check(validator: &JwtValidator, token: &str) -> Result<SuperOfficeClaims, JwtError> {
        validator.validate(token, &system_user_expectation()).await
    }

    /// `token` checked offline as a system user's JWT for the test tenant.
    fn check_offline(validator: &JwtValidator, token: &str) -> Result<SuperOfficeClaims, JwtError> {
        validator.validate_offline(token, &system_user_expectation())
    }

    fn offline() -> JwtValidator {
        JwtValidator::new(
            KeySet::new(
                Some(&certificate()),
                None,
                DEFAULT_REFETCH_COOLDOWN,
                DEFAULT_MAX_AGE,
            ),
            Duration::from_secs(60),
        )
        .with_clock(Arc::new(FixedClock(at(NOW))))
    }

    fn jwks_document() -> Value {
        let public = jwks_key().public_key();
        json!({"keys": [
            {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "kid": "ignored"},
            {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": "jwks-key-1",
             "n": URL_SAFE_NO_PAD.encode(public.n_bytes()), "e": URL_SAFE_NO_PAD.encode(public.e_bytes())},
        ]})
    }

    async fn jwks_server(response: ResponseTemplate) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(JWKS_PATH))
            .respond_with(response)
            .mount(&server)
            .await;
        server
    }

    /// A JWKS endpoint serving `jwks_document()`.
    async fn jwks_document_server() -> MockServer {
        jwks_server(ResponseTemplate::new(200).set_body_json(jwks_document())).await
    }

    /// A JWKS endpoint serving `jwks_document()`, and a validator using it with the pinned
    /// certificate and the default refetch cooldown.
    async fn serving_jwks() -> (MockServer, JwtValidator) {
        let server = jwks_document_server().await;
        let validator = online(&server, true, DEFAULT_REFETCH_COOLDOWN);
        (server, validator)
    }

    fn online(server: &MockServer, pinned: bool, cooldown: Duration) -> JwtValidator {
        online_with_max_age(server, pinned, cooldown, DEFAULT_MAX_AGE)
    }

    fn online_with_max_age(
        server: &MockServer,
        pinned: bool,
        cooldown: Duration,
        max_age: Duration,
    ) -> JwtValidator {
        let endpoint = JwksEndpoint {
            uri: Url::parse(&format!("{}{JWKS_PATH}", server.uri())).unwrap(),
            client: reqwest::Client::new(),
        };
        let certificate = certificate();
        JwtValidator::new(
            KeySet::new(
                pinned.then_some(&certificate),
                Some(endpoint),
                cooldown,
                max_age,
            ),
            Duration::from_secs(60),
        )
        .with_clock(Arc::new(FixedClock(at(NOW))))
    }

    async fn requests(server: &MockServer) -> usize {
        server.received_requests().await.unwrap().len()
    }

    #[test]
    fn a_valid_id_token_yields_its_claims() {
        let claims = validated(&id_token_claims(), &id_token_expectation());
        assert_eq!(claims.tenant.context_id.as_str(), "Cust12345");
        assert_eq!(claims.user.subject.as_deref(), Some("tony@superoffice.com"));
        assert!(claims.associate.is_administrator);
        assert_eq!(claims.associate.id, Some(5));
        assert_eq!(
            claims.credentials.system_token.as_ref().map(|t| t.expose()),
            Some("Partner App-8k8Q7DmBgo")
        );
        assert_eq!(claims.token.expires_at, at(NOW + 300));
    }

    #[test]
    fn a_token_from_jsonwebtoken_validates_too() {
        let pem = pinned_key().to_pkcs1_pem().unwrap();
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.expose_secret().as_bytes()).unwrap();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.x5t = Some(certificate().thumbprint().x5t());
        let token = jsonwebtoken::encode(&header, &id_token_claims(), &key).unwrap();
        assert!(
            offline()
                .validate_offline(&token, &id_token_expectation())
                .is_ok()
        );
    }

    #[test]
    fn a_valid_system_user_jwt_yields_the_ticket() {
        let claims = validated(&system_user_claims(), &system_user_expectation());
        assert_eq!(
            claims.credentials.ticket.as_ref().map(|t| t.expose()),
            Some("7T:MAA3AGYAMQBl")
        );
        let with_prefix = Expectation::SystemUser {
            serial: format!("spn:{SERIAL}"),
            context_id: ContextId::parse("Cust12345").unwrap(),
        };
        validated(&system_user_claims(), &with_prefix);
    }

    #[test]
    fn alg_none_is_refused_before_any_key() {
        let unsigned = format!(
            "{}.{}.",
            encode(&json!({"alg": "none"})),
            encode(&id_token_claims())
        );
        let validator = JwtValidator::new(KeySet::from_keys(Vec::new()), Duration::ZERO);
        assert_eq!(
            validator
                .validate_offline(&unsigned, &id_token_expectation())
                .unwrap_err(),
            JwtError::Algorithm("none".into())
        );
        let no_alg = sign(pinned_key(), &json!({"typ": "JWT"}), &id_token_claims());
        assert_eq!(
            offline()
                .validate_offline(&no_alg, &id_token_expectation())
                .unwrap_err(),
            JwtError::Algorithm("(missing)".into())
        );
    }

    #[test]
    fn hs256_keyed_with_the_certificate_is_refused() {
        for secret in [TEST_CERTIFICATE.as_bytes(), certificate().der()] {
            let key = jsonwebtoken::EncodingKey::from_secret(secret).unwrap();
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
            header.kid = Some(certificate().thumbprint().hex());
            let token = jsonwebtoken::encode(&header, &id_token_claims(), &key).unwrap();
            let err = offline()
                .validate_offline(&token, &id_token_expectation())
                .unwrap_err();
            assert_eq!(err, JwtError::Algorithm("HS256".into()));
            assert!(err.to_string().contains("only RS256"));
        }
    }

    #[test]
    fn a_tampered_payload_fails_the_signature() {
        let token = pinned_token(&id_token_claims());
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = encode(&with(
            id_token_claims(),
            "sub",
            json!("admin@superoffice.com"),
        ));
        let tampered = parts.join(".");
        assert_eq!(
            offline()
                .validate_offline(&tampered, &id_token_expectation())
                .unwrap_err(),
            JwtError::Signature
        );
        let by_another_key = sign(jwks_key(), &pinned_header(), &id_token_claims());
        assert_eq!(
            offline()
                .validate_offline(&by_another_key, &id_token_expectation())
                .unwrap_err(),
            JwtError::Signature
        );
    }

    #[test]
    fn a_stripped_signature_is_malformed() {
        let token = pinned_token(&id_token_claims());
        let stripped = &token[..=token.rfind('.').unwrap()];
        let err = offline()
            .validate_offline(stripped, &id_token_expectation())
            .unwrap_err();
        assert_eq!(err, JwtError::Malformed("the signature is missing".into()));
        let two_parts = &token[..token.rfind('.').unwrap()];
        assert!(matches!(
            offline().validate_offline(two_parts, &id_token_expectation()),
            Err(JwtError::Malformed(_))
        ));
    }

    #[test]
    fn issuer_and_audience_are_checked() {
        let validator = offline();
        let cases = [
            (
                with(id_token_claims(), "iss", json!("https://evil.example")),
                "issuer",
            ),
            (
                with(id_token_claims(), "iss", json!("SuperOffice AS")),
                "issuer",
            ),
            (
                with(id_token_claims(), "aud", json!("another-app")),
                "audience",
            ),
            (with(id_token_claims(), "aud", json!([])), "audience"),
            (without(id_token_claims(), "aud"), "audience"),
        ];
        for (claims, check) in cases {
            let token = pinned_token(&claims);
            let err = validator
                .validate_offline(&token, &id_token_expectation())
                .unwrap_err();
            assert!(err.to_string().contains(check), "{err}");
        }
        let listed = with(id_token_claims(), "aud", json!(["other", CLIENT_ID]));
        let token = pinned_token(&listed);
        assert!(
            validator
                .validate_offline(&token, &id_token_expectation())
                .is_ok()
        );

        let wrong_serial = with(system_user_claims(), "aud", json!("spn:999"));
        let token = pinned_token(&wrong_serial);
        assert_eq!(
            check_offline(&validator, &token).unwrap_err(),
            JwtError::Audience {
                expected: format!("spn:{SERIAL}"),
                found: vec!["spn:999".into()]
            }
        );
        let id_token = pinned_token(&id_token_claims());
        assert!(matches!(
            check_offline(&validator, &id_token),
            Err(JwtError::Issuer { .. })
        ));
    }

    #[test]
    fn lifetime_is_checked_with_leeway() {
        let validator = offline();
        let check = |claims: Value| {
            let token = pinned_token(&claims);
            validator.validate_offline(&token, &id_token_expectation())
        };
        assert_eq!(
            check(with(id_token_claims(), "exp", json!(NOW - 61))).unwrap_err(),
            JwtError::Expired(at(NOW - 61))
        );
        assert!(check(with(id_token_claims(), "exp", json!(NOW - 59))).is_ok());
        assert_eq!(
            check(with(id_token_claims(), "nbf", json!(NOW + 61))).unwrap_err(),
            JwtError::NotYetValid(at(NOW + 61))
        );
        assert!(check(with(id_token_claims(), "nbf", json!(NOW + 59))).is_ok());
        assert_eq!(
            check(without(id_token_claims(), "exp")).unwrap_err(),
            JwtError::MissingClaim("exp")
        );
        let iat_as_string = with(id_token_claims(), "iat", json!(NOW.to_string()));
        assert_eq!(check(iat_as_string).unwrap().token.issued_at, Some(at(NOW)));
    }

    #[test]
    fn nonce_and_tenant_are_checked() {
        let validator = offline();
        let token = sign(
            pinned_key(),
            &pinned_header(),
            &with(id_token_claims(), "nonce", json!("other")),
        );
        assert_eq!(
            validator
                .validate_offline(&token, &id_token_expectation())
                .unwrap_err(),
            JwtError::Nonce
        );
        let token = sign(
            pinned_key(),
            &pinned_header(),
            &without(id_token_claims(), "nonce"),
        );
        assert_eq!(
            validator
                .validate_offline(&token, &id_token_expectation())
                .unwrap_err(),
            JwtError::Nonce
        );
        let no_nonce_expected = Expectation::IdToken {
            issuer: ISSUER.into(),
            client_id: CLIENT_ID.into(),
            nonce: None,
        };
        assert!(
            validator
                .validate_offline(&token, &no_nonce_expected)
                .is_ok()
        );

        let other_tenant = with(system_user_claims(), &custom("ctx"), json!("Cust999"));
        let token = pinned_token(&other_tenant);
        let err = check_offline(&validator, &token).unwrap_err();
        assert!(matches!(err, JwtError::ContextMismatch { .. }));
        assert_eq!(
            err.to_string(),
            "token is for tenant Cust999, not Cust12345"
        );

        let no_ticket = without(system_user_claims(), &custom("ticket"));
        let token = pinned_token(&no_ticket);
        assert_eq!(
            check_offline(&validator, &token).unwrap_err(),
            JwtError::MissingClaim("ticket")
        );
    }

    #[test]
    fn legacy_and_state_change_tokens() {
        let validator = offline();
        let legacy = with(id_token_claims(), "iss", json!("SuperOffice AS"));
        let legacy = with(legacy, "aud", json!("whatever"));
        let token = pinned_token(&legacy);
        assert!(
            validator
                .validate_offline(&token, &Expectation::Legacy)
                .is_ok()
        );

        let state_change = Expectation::StateChange {
            context_id: ContextId::parse("Cust12345").unwrap(),
            client_id: CLIENT_ID.into(),
            audience_required: false,
        };
        let notification = without(without(system_user_claims(), "aud"), &custom("ticket"));
        let token = pinned_token(&notification);
        assert!(validator.validate_offline(&token, &state_change).is_ok());
        let for_us = with(
            notification.clone(),
            "aud",
            json!(format!("spn:{CLIENT_ID}")),
        );
        let token = pinned_token(&for_us);
        assert!(validator.validate_offline(&token, &state_change).is_ok());
        let for_others = with(notification.clone(), "aud", json!("spn:other"));
        let token = pinned_token(&for_others);
        assert!(matches!(
            validator.validate_offline(&token, &state_change),
            Err(JwtError::Audience { .. })
        ));
        let other_tenant = with(notification, &custom("ctx"), json!("Cust1"));
        let token = pinned_token(&other_tenant);
        assert!(matches!(
            validator.validate_offline(&token, &state_change),
            Err(JwtError::ContextMismatch { .. })
        ));
    }

    fn notification_claims() -> Value {
        json!({
            custom("ctx"): "Cust12345",
            "iat": NOW, "nbf": NOW - 60, "exp": NOW + 300,
            "iss": "SuperOffice AS", "aud": format!("spn:{CLIENT_ID}"),
        })
    }

    fn state_change(audience_required: bool) -> Expectation {
        Expectation::StateChange {
            context_id: ContextId::parse("Cust12345").unwrap(),
            client_id: CLIENT_ID.into(),
            audience_required,
        }
    }

    #[test]
    fn state_changes_need_our_audience_and_nothing_issued_for_something_else() {
        let validator = offline();
        let check = |claims: &Value, audience_required| {
            let token = pinned_token(claims);
            validator.validate_offline(&token, &state_change(audience_required))
        };
        assert!(check(&notification_claims(), true).is_ok());
        let no_audience = without(notification_claims(), "aud");
        assert!(matches!(
            check(&no_audience, true),
            Err(JwtError::Audience { .. })
        ));
        assert!(check(&no_audience, false).is_ok());
        let cases = [
            (custom("ticket"), json!("7T:abc"), "ticket"),
            ("nonce".to_owned(), json!("n-1"), "nonce"),
            (
                custom("system_token"),
                json!("App-1234567890"),
                "system_token",
            ),
        ];
        for (claim, value, name) in cases {
            let claims = with(notification_claims(), &claim, value);
            assert_eq!(
                check(&claims, true).unwrap_err(),
                JwtError::UnexpectedClaim(name),
                "{claim}"
            );
        }
        // A system-user JWT for the tenant (audience spn:{serial}, a ticket) is no notification.
        assert!(check(&system_user_claims(), false).is_err());
        assert!(check(&system_user_claims(), true).is_err());
    }

    #[test]
    fn id_tokens_never_carry_a_ticket() {
        let claims = with(id_token_claims(), &custom("ticket"), json!("7T:abc"));
        let token = pinned_token(&claims);
        assert_eq!(
            offline()
                .validate_offline(&token, &id_token_expectation())
                .unwrap_err(),
            JwtError::UnexpectedClaim("ticket")
        );
    }

    #[test]
    fn legacy_sign_ins_need_our_audience_and_our_nonce() {
        let validator = offline();
        let expectation = Expectation::LegacySignIn {
            client_id: CLIENT_ID.into(),
            nonce: "nonce-1".into(),
        };
        let legacy = with(
            with(id_token_claims(), "iss", json!("SuperOffice AS")),
            &custom("ticket"),
            json!("7T:user-ticket"),
        );
        let check = |claims: &Value| {
            let token = pinned_token(claims);
            validator.validate_offline(&token, &expectation)
        };
        let claims = check(&legacy).unwrap();
        assert_eq!(
            claims.credentials.ticket.as_ref().map(|t| t.expose()),
            Some("7T:user-ticket")
        );
        assert!(
            check(&with(
                legacy.clone(),
                "aud",
                json!(format!("spn:{CLIENT_ID}"))
            ))
            .is_ok()
        );
        assert!(check(&without(legacy.clone(), "nonce")).is_ok());
        for audience in [
            json!("other-app"),
            json!([]),
            json!(format!("spn:{SERIAL}")),
        ] {
            assert!(
                matches!(
                    check(&with(legacy.clone(), "aud", audience.clone())),
                    Err(JwtError::Audience { .. })
                ),
                "{audience}"
            );
        }
        assert!(matches!(
            check(&without(legacy.clone(), "aud")),
            Err(JwtError::Audience { .. })
        ));
        assert_eq!(
            check(&with(legacy.clone(), "nonce", json!("another-browser"))).unwrap_err(),
            JwtError::Nonce
        );
        // A system-user JWT that also names us is still a system-user JWT.
        let system_user = with(
            system_user_claims(),
            "aud",
            json!([format!("spn:{SERIAL}"), CLIENT_ID]),
        );
        assert_eq!(
            check(&system_user).unwrap_err(),
            JwtError::UnexpectedClaim("ticket")
        );
    }

    #[tokio::test]
    async fn a_kid_unknown_after_a_refetch_tries_every_key_known() {
        let (server, validator) = serving_jwks().await;
        let renamed = json!({"alg": "RS256", "kid": "renamed-since"});
        for key in [pinned_key(), jwks_key()] {
            let token = sign(key, &renamed, &system_user_claims());
            check(&validator, &token).await.unwrap();
        }
        let forged = sign(unknown_key(), &renamed, &system_user_claims());
        assert_eq!(
            check(&validator, &forged).await.unwrap_err(),
            JwtError::UnknownKey
        );
        // The first fetch, one refetch for the unknown name, then the cooldown.
        assert_eq!(requests(&server).await, 2);
        // Offline, the same fallback over the pinned certificate and the keys fetched before.
        let token = sign(jwks_key(), &renamed, &system_user_claims());
        assert!(check_offline(&validator, &token).is_ok());
        let pinned_only = offline();
        let token = sign(pinned_key(), &renamed, &system_user_claims());
        assert!(check_offline(&pinned_only, &token).is_ok());
    }

    #[tokio::test]
    async fn the_key_set_is_fetched_again_once_it_is_old() {
        let server = jwks_document_server().await;
        let token = sign(jwks_key(), &jwks_header(), &system_user_claims());
        let fresh = online(&server, true, Duration::ZERO);
        for _ in 0..3 {
            check(&fresh, &token).await.unwrap();
        }
        assert_eq!(requests(&server).await, 1, "a known key needs no refetch");
        let aging = online_with_max_age(&server, true, Duration::ZERO, Duration::ZERO);
        for _ in 0..3 {
            check(&aging, &token).await.unwrap();
        }
        assert_eq!(requests(&server).await, 4, "every use finds the keys old");
    }

    #[test]
    fn the_fingerprint_ignores_spelling_but_not_content() {
        let token = pinned_token(&notification_claims());
        let print = fingerprint(&token).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let pad = |part: &str| format!("{part}{}", "=".repeat((4 - part.len() % 4) % 4));
        let padded_signature = format!("{}.{}.{}", parts[0], parts[1], pad(parts[2]));
        assert_ne!(padded_signature, token, "the signature needs padding");
        // Still a valid token, and the same notification.
        assert!(
            offline()
                .validate_offline(&padded_signature, &state_change(true))
                .is_ok()
        );
        assert_eq!(fingerprint(&padded_signature).unwrap(), print);
        let padded_everything = format!("{}.{}.{}", pad(parts[0]), pad(parts[1]), pad(parts[2]));
        assert_eq!(fingerprint(&padded_everything).unwrap(), print);
        // The same JSON written in another member order and with spaces.
        let mut claims: Vec<(String, Value)> = notification_claims()
            .as_object()
            .unwrap()
            .clone()
            .into_iter()
            .collect();
        claims.reverse();
        let spaced = claims
            .iter()
            .map(|(k, v)| format!("{} : {v}", Value::String(k.clone())))
            .collect::<Vec<_>>()
            .join(" , ");
        let reordered = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(format!("{{ {spaced} }}")),
            parts[2]
        );
        assert_eq!(fingerprint(&reordered).unwrap(), print);
        // Another notification (another iat) or another signature is another fingerprint.
        let later = sign(
            pinned_key(),
            &pinned_header(),
            &with(notification_claims(), "iat", json!(NOW + 1)),
        );
        assert_ne!(fingerprint(&later).unwrap(), print);
        let other_signature = format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            later.split('.').nth(2).unwrap()
        );
        assert_ne!(fingerprint(&other_signature).unwrap(), print);
        assert!(fingerprint("garbage").is_err());
    }

    #[test]
    fn the_docs_example_payload_validates_at_its_own_time() {
        let payload: Value = serde_json::from_str(crate::jwt::claims::tests::DOCS_EXAMPLE).unwrap();
        let token = pinned_token(&payload);
        let validator = offline().with_clock(Arc::new(FixedClock(at(1_581_665_300))));
        let claims = validator
            .validate_offline(
                &token,
                &Expectation::IdToken {
                    issuer: "https://sod.superoffice.com/".into(),
                    client_id: "6cf25376616343b38d14ddcd804f2891".into(),
                    nonce: payload["nonce"].as_str().map(str::to_owned),
                },
            )
            .unwrap();
        assert_eq!(claims.tenant.context_id.as_str(), "Cust26759");
        assert_eq!(claims.token.issued_at, Some(at(1_581_665_207)));
    }

    #[test]
    fn garbage_empty_and_huge_tokens_are_refused() {
        let validator = offline();
        for garbage in [
            "garbage",
            "a.b.c",
            "....",
            "eyJhbGciOiJSUzI1NiJ9.e30.!!!",
            "ü.ü.ü",
        ] {
            assert!(
                matches!(
                    validator.validate_offline(garbage, &id_token_expectation()),
                    Err(JwtError::Malformed(_))
                ),
                "{garbage}"
            );
        }
        assert_eq!(
            validator
                .validate_offline("", &id_token_expectation())
                .unwrap_err(),
            JwtError::Malformed("the token is empty".into())
        );
        let huge = "a".repeat(1024 * 1024);
        assert_eq!(
            validator
                .validate_offline(&huge, &id_token_expectation())
                .unwrap_err(),
            JwtError::TooLarge {
                size: 1024 * 1024,
                max: MAX_TOKEN_BYTES
            }
        );
    }

    #[tokio::test]
    async fn jwks_keys_validate_and_are_fetched_once() {
        let (server, validator) = serving_jwks().await;
        let token = sign(jwks_key(), &jwks_header(), &system_user_claims());
        for _ in 0..3 {
            check(&validator, &token).await.unwrap();
        }
        assert_eq!(requests(&server).await, 1);
        let pinned = pinned_token(&system_user_claims());
        validator
            .clone()
            .validate(&pinned, &system_user_expectation())
            .await
            .unwrap();
        assert_eq!(requests(&server).await, 1);
    }

    #[tokio::test]
    async fn unknown_keys_refetch_at_most_once_per_cooldown() {
        let (server, validator) = serving_jwks().await;
        let unknown_kid = json!({"alg": "RS256", "kid": "forged"});
        let forged = sign(unknown_key(), &unknown_kid, &id_token_claims());
        let mut flood = Vec::new();
        for _ in 0..20 {
            let validator = validator.clone();
            let forged = forged.clone();
            flood.push(tokio::spawn(async move {
                validator.validate(&forged, &id_token_expectation()).await
            }));
        }
        for task in flood {
            assert_eq!(task.await.unwrap().unwrap_err(), JwtError::UnknownKey);
        }
        // The first fetch, then one refetch for the unknown key; the other 18 tokens wait for the cooldown.
        assert_eq!(requests(&server).await, 2);

        let eager = online(&server, true, Duration::ZERO);
        for _ in 0..3 {
            assert_eq!(
                eager
                    .validate(&forged, &id_token_expectation())
                    .await
                    .unwrap_err(),
                JwtError::UnknownKey
            );
        }
        // Without a cooldown every unknown key refetches: 2 before, then 3 more.
        assert_eq!(requests(&server).await, 5);
    }

    #[tokio::test]
    async fn an_unreachable_jwks_falls_back_to_the_pinned_certificate() {
        let server = jwks_server(ResponseTemplate::new(503)).await;
        let validator = online(&server, true, DEFAULT_REFETCH_COOLDOWN);
        let named = pinned_token(&system_user_claims());
        check(&validator, &named).await.unwrap();
        assert_eq!(requests(&server).await, 0, "a pinned kid needs no JWKS");

        let unnamed = sign(
            pinned_key(),
            &json!({"alg": "RS256"}),
            &system_user_claims(),
        );
        check(&validator, &unnamed).await.unwrap();
        assert_eq!(requests(&server).await, 1);
        check(&validator, &unnamed).await.unwrap();
        assert_eq!(
            requests(&server).await,
            1,
            "the failed fetch is not retried within the cooldown"
        );

        let jwks_only = sign(jwks_key(), &jwks_header(), &system_user_claims());
        assert_eq!(
            check(&validator, &jwks_only).await.unwrap_err(),
            JwtError::UnknownKey
        );

        let custom = online(&server, false, DEFAULT_REFETCH_COOLDOWN);
        for token in [&unnamed, &jwks_only] {
            assert_eq!(
                check(&custom, token).await.unwrap_err(),
                JwtError::KeysUnavailable
            );
        }
    }

    #[tokio::test]
    async fn tokens_without_a_key_name_try_every_key() {
        let (server, validator) = serving_jwks().await;
        let no_kid = json!({"alg": "RS256", "typ": "JWT"});
        let unnamed = sign(jwks_key(), &no_kid, &system_user_claims());
        check(&validator, &unnamed).await.unwrap();
        assert_eq!(requests(&server).await, 1);
        assert!(check_offline(&validator, &unnamed).is_ok());
    }

    #[tokio::test]
    async fn alg_none_never_reaches_the_jwks() {
        let server = jwks_document_server().await;
        let validator = online(&server, false, Duration::ZERO);
        let unsigned = format!(
            "{}.{}.",
            encode(&json!({"alg": "none", "kid": "jwks-key-1"})),
            encode(&system_user_claims())
        );
        assert_eq!(
            check(&validator, &unsigned).await.unwrap_err(),
            JwtError::Algorithm("none".into())
        );
        let huge = format!(
            "{}.{}.x",
            encode(&jwks_header()),
            "e".repeat(MAX_TOKEN_BYTES)
        );
        assert!(matches!(
            check(&validator, &huge).await,
            Err(JwtError::TooLarge { .. })
        ));
        assert_eq!(requests(&server).await, 0);
    }
}
