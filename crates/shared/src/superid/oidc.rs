//! The OpenID Connect code flow with SuperID (protocol §2): the authorization request (fresh state,
//! nonce and PKCE S256 verifier, optional tenant preselection), the code exchange (client_secret_post),
//! id_token validation through the credentials core, and the refresh of a user's access token.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

use crate::clock::Clock;
use crate::crypto::constant_time_eq;
use crate::domain::ContextId;
use crate::http::{self, SuperOfficeHttp, TransportError};
use crate::jwt::{Expectation, SuperOfficeClaims};
use crate::superid::discovery::DiscoveryError;
use crate::superid::validation::{SuperIdValidator, ValidationError};

const WHAT: &str = "SuperID token endpoint";

/// Why a sign-in or a refresh failed, in the order its steps run: the callback's checks, discovery,
/// the token request, the id_token's validation.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the sign-in callback's state does not match the one sent; start the sign-in again")]
    StateMismatch,
    #[error("the sign-in callback has no authorization code; start the sign-in again")]
    MissingCode,
    #[error("SuperID refused the sign-in: {0}")]
    Authorization(OAuthError),
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("SuperID's token endpoint refused the request: {refusal}")]
    TokenEndpoint { status: u16, refusal: OAuthError },
    #[error("SuperID's token endpoint answered HTTP {status}; try again later")]
    Status { status: u16 },
    #[error("SuperID's token response cannot be read: {0}")]
    Malformed(String),
    #[error(transparent)]
    IdToken(#[from] ValidationError),
}

impl OidcError {
    /// `invalid_grant` from a refresh: the refresh token is no longer valid and the user must sign in.
    pub fn is_invalid_grant(&self) -> bool {
        matches!(self, Self::TokenEndpoint { refusal, .. } if refusal.error == "invalid_grant")
    }
}

/// An OAuth 2.0 error (RFC 6749 §4.1.2.1, §5.2): SuperID's refusal, in the sign-in callback or from the
/// token endpoint. Shown as `error (error_description)`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OAuthError {
    pub error: String,
    #[serde(rename = "error_description")]
    pub description: Option<String>,
}

impl OAuthError {
    /// At most 100 characters of the code and 300 of the description: SuperID's words go into errors
    /// shown to the user and into the log.
    fn shortened(&self) -> Self {
        Self {
            error: self.error.chars().take(100).collect(),
            description: self
                .description
                .as_ref()
                .map(|d| d.chars().take(300).collect()),
        }
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.error)?;
        match &self.description {
            Some(description) => write!(f, " ({description})"),
            None => Ok(()),
        }
    }
}

/// What the sign-in request must remember until the callback: keep it in the session. `Debug` redacts
/// the state, nonce and verifier.
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingSignIn {
    state: String,
    nonce: String,
    code_verifier: String,
    /// The tenant preselected with `?ctx=`, if any.
    pub tenant: Option<ContextId>,
}

impl fmt::Debug for PendingSignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingSignIn")
            .field("state", &"[REDACTED]")
            .field("nonce", &"[REDACTED]")
            .field("code_verifier", &"[REDACTED]")
            .field("tenant", &self.tenant)
            .finish()
    }
}

impl PendingSignIn {
    fn new(tenant: Option<ContextId>) -> Self {
        Self {
            state: random_url_safe(),
            nonce: random_url_safe(),
            code_verifier: random_url_safe(),
            tenant,
        }
    }

    /// The nonce sent with this sign-in: a token that carries another was not issued for it.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// The S256 code challenge of the verifier.
    fn code_challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.code_verifier.as_bytes()))
    }
}

/// 32 random bytes, base64url without padding (43 characters: a valid PKCE verifier too).
fn random_url_safe() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Where to send the browser, and what to keep in the session until it comes back.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub url: Url,
    pub pending: PendingSignIn,
}

/// The query of the redirect back to `/callback`: the state sent, and a code or SuperID's refusal.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    #[serde(flatten)]
    pub error: Option<OAuthError>,
}

impl CallbackParams {
    /// The authorization code, once the callback is known to answer `pending`. A refusal is reported
    /// only for our own request: with another state it is a state mismatch, as a forged one would be.
    fn code_for(&self, pending: &PendingSignIn) -> Result<&str, OidcError> {
        let state_matches = self
            .state
            .as_deref()
            .is_some_and(|state| constant_time_eq(state.as_bytes(), pending.state.as_bytes()));
        if !state_matches {
            return Err(OidcError::StateMismatch);
        }
        if let Some(refusal) = &self.error {
            return Err(OidcError::Authorization(refusal.shortened()));
        }
        self.code
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or(OidcError::MissingCode)
    }
}

/// A user's tokens. `Debug` redacts them.
#[derive(Debug, Clone)]
pub struct UserTokens {
    /// `8A:…`: `Authorization: Bearer` for the tenant's REST API.
    pub access_token: SecretString,
    /// Only the code flow returns one; a refresh keeps the old one.
    pub refresh_token: Option<SecretString>,
    pub expires_at: DateTime<Utc>,
}

/// A completed sign-in: the validated id_token's claims and the user's tokens.
#[derive(Debug, Clone)]
pub struct SignIn {
    pub claims: SuperOfficeClaims,
    pub tokens: UserTokens,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    refresh_token: Option<String>,
    id_token: Option<String>,
    expires_in: Option<serde_json::Value>,
}

/// The application's OpenID Connect client. Share one per process.
#[derive(Debug, Clone)]
pub struct OidcClient {
    http: SuperOfficeHttp,
    /// Checks the id_tokens; its discovery gives the endpoints.
    validator: Arc<SuperIdValidator>,
    clock: Arc<dyn Clock>,
    application: OidcApplication,
}

/// What identifies the application to SuperID. `Debug` redacts the client secret.
#[derive(Debug, Clone)]
pub struct OidcApplication {
    /// The expected id_token issuer (`SuperIdEnvironment::issuer`).
    pub issuer: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// `{web.public_url}/callback`.
    pub redirect_uri: String,
    /// Send a PKCE challenge (S256) and verifier (`superoffice.pkce`).
    pub pkce: bool,
}

impl OidcClient {
    pub fn new(
        http: SuperOfficeHttp,
        validator: Arc<SuperIdValidator>,
        clock: Arc<dyn Clock>,
        application: OidcApplication,
    ) -> Self {
        Self {
            http,
            validator,
            clock,
            application,
        }
    }

    /// A fresh authorization request. With `tenant`, the tenant is preselected: the authorize path
    /// becomes `/login/{ctx}/oauth/authorize` and `acr_values=tenant:{ctx}` is added.
    #[tracing::instrument(skip_all, fields(tenant = ?tenant), err)]
    pub async fn authorization_request(
        &self,
        tenant: Option<&ContextId>,
    ) -> Result<AuthorizationRequest, OidcError> {
        let metadata = self.validator.discovery().metadata().await?;
        let pending = PendingSignIn::new(tenant.cloned());
        let mut url = metadata.authorization_endpoint.clone();
        if let Some(tenant) = tenant {
            let path = url
                .path()
                .replacen("/login/common/", &format!("/login/{tenant}/"), 1);
            url.set_path(&path);
        }
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("client_id", &self.application.client_id)
                .append_pair("scope", "openid")
                .append_pair("redirect_uri", &self.application.redirect_uri)
                .append_pair("response_type", "code")
                .append_pair("response_mode", "query")
                .append_pair("state", &pending.state)
                .append_pair("nonce", &pending.nonce);
            if self.application.pkce {
                query
                    .append_pair("code_challenge", &pending.code_challenge())
                    .append_pair("code_challenge_method", "S256");
            }
            if let Some(tenant) = tenant {
                query.append_pair("acr_values", &format!("tenant:{tenant}"));
            }
        }
        Ok(AuthorizationRequest { url, pending })
    }

    /// Checks the callback against the pending request (state, error) and exchanges its code.
    pub async fn complete(
        &self,
        pending: &PendingSignIn,
        callback: &CallbackParams,
    ) -> Result<SignIn, OidcError> {
        self.exchange_code(callback.code_for(pending)?, pending)
            .await
    }

    /// Exchanges an authorization code (client_secret_post with the PKCE verifier) and validates the
    /// id_token: issuer, audience = client id, the pending nonce, signature.
    #[tracing::instrument(skip_all, err)]
    pub async fn exchange_code(
        &self,
        code: &str,
        pending: &PendingSignIn,
    ) -> Result<SignIn, OidcError> {
        let mut form = vec![
            ("client_id", self.application.client_id.as_str()),
            (
                "client_secret",
                self.application.client_secret.expose_secret(),
            ),
            ("code", code),
            ("redirect_uri", self.application.redirect_uri.as_str()),
            ("grant_type", "authorization_code"),
        ];
        if self.application.pkce {
            form.push(("code_verifier", pending.code_verifier.as_str()));
        }
        let response = self.token_request(&form).await?;
        let id_token = response
            .id_token
            .ok_or_else(|| OidcError::Malformed("no id_token in the response".into()))?;
        let claims = self
            .validator
            .validate(
                &id_token,
                &Expectation::IdToken {
                    issuer: self.application.issuer.clone(),
                    client_id: self.application.client_id.clone(),
                    nonce: Some(pending.nonce.clone()),
                },
            )
            .await?;
        let tokens = self.user_tokens(
            response.access_token,
            response.refresh_token,
            response.expires_in,
            None,
        )?;
        tracing::info!(tenant = %claims.tenant.context_id, admin = claims.associate.is_administrator, "signed in");
        Ok(SignIn { claims, tokens })
    }

    /// Refreshes a user's access token. The answer carries no new refresh token: the old one is kept.
    /// An id_token in the answer is validated too.
    #[tracing::instrument(skip_all, err)]
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<UserTokens, OidcError> {
        let form = [
            ("client_id", self.application.client_id.as_str()),
            (
                "client_secret",
                self.application.client_secret.expose_secret(),
            ),
            ("refresh_token", refresh_token.expose_secret()),
            ("redirect_uri", self.application.redirect_uri.as_str()),
            ("grant_type", "refresh_token"),
        ];
        let response = self.token_request(&form).await?;
        if let Some(id_token) = &response.id_token {
            self.validator
                .validate(
                    id_token,
                    &Expectation::IdToken {
                        issuer: self.application.issuer.clone(),
                        client_id: self.application.client_id.clone(),
                        nonce: None,
                    },
                )
                .await?;
        }
        self.user_tokens(
            response.access_token,
            response.refresh_token,
            response.expires_in,
            Some(refresh_token),
        )
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> Result<TokenResponse, OidcError> {
        let metadata = self.validator.discovery().metadata().await?;
        let request = self
            .http
            .client()
            .post(metadata.token_endpoint.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .form(form);
        let http::Answer { status, body, .. } = http::fetch(WHAT, request).await?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<OAuthError>(&body) {
                Ok(refusal) => OidcError::TokenEndpoint {
                    status: status.as_u16(),
                    refusal: refusal.shortened(),
                },
                Err(_) => OidcError::Status {
                    status: status.as_u16(),
                },
            });
        }
        serde_json::from_slice(&body).map_err(|e| OidcError::Malformed(e.to_string()))
    }

    fn user_tokens(
        &self,
        access_token: Option<String>,
        refresh_token: Option<String>,
        expires_in: Option<serde_json::Value>,
        previous_refresh_token: Option<&SecretString>,
    ) -> Result<UserTokens, OidcError> {
        let access_token = access_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| OidcError::Malformed("no access_token in the response".into()))?;
        // `expires_in` is a number in the samples; read a string too, default to the documented hour.
        let expires_in = match expires_in {
            Some(serde_json::Value::Number(n)) => n.as_i64(),
            Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        }
        .unwrap_or(3600);
        Ok(UserTokens {
            access_token: SecretString::from(access_token),
            refresh_token: refresh_token
                .filter(|t| !t.is_empty())
                .map(SecretString::from)
                .or_else(|| previous_refresh_token.cloned()),
            expires_at: self.clock.now() + chrono::Duration::seconds(expires_in),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn pending_values_are_fresh_url_safe_and_redacted() {
        let a = PendingSignIn::new(None);
        let b = PendingSignIn::new(None);
        assert_ne!(a.state, b.state);
        assert_ne!(a.nonce, b.nonce);
        assert_eq!(a.code_verifier.len(), 43);
        assert!(
            a.code_verifier
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        let shown = format!("{a:?}");
        assert!(
            !shown.contains(&a.state) && !shown.contains(&a.code_verifier),
            "{shown}"
        );
    }

    #[test]
    fn the_challenge_is_s256_of_the_verifier() {
        // RFC 7636 appendix B.
        let pending = PendingSignIn {
            state: String::new(),
            nonce: String::new(),
            code_verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into(),
            tenant: None,
        };
        assert_eq!(
            pending.code_challenge(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    fn callback(query: &str) -> CallbackParams {
        let members: serde_json::Map<String, serde_json::Value> =
            url::form_urlencoded::parse(query.as_bytes())
                .map(|(name, value)| (name.into_owned(), value.into_owned().into()))
                .collect();
        serde_json::from_value(members.into()).unwrap()
    }

    #[test]
    fn the_callback_reads_a_refusal_only_with_its_error() {
        let refused = callback("error=access_denied&error_description=Declined&state=s");
        let error = refused.error.unwrap();
        assert_eq!(
            (error.error.as_str(), error.description.as_deref()),
            ("access_denied", Some("Declined"))
        );
        assert_eq!(refused.state.as_deref(), Some("s"));
        let described_only = callback("code=c&state=s&error_description=Declined");
        assert!(described_only.error.is_none());
        assert_eq!(described_only.code.as_deref(), Some("c"));
    }

    #[test]
    fn the_callback_gives_its_code_only_to_its_own_sign_in() {
        let pending = PendingSignIn::new(None);
        let state = pending.state.clone();
        let answered = |query: String| callback(&query).code_for(&pending).map(str::to_owned);
        assert_eq!(answered(format!("code=c&state={state}")).unwrap(), "c");
        assert!(matches!(
            answered("code=c&state=other".into()),
            Err(OidcError::StateMismatch)
        ));
        assert!(matches!(
            answered("code=c".into()),
            Err(OidcError::StateMismatch)
        ));
        assert!(
            matches!(
                answered("error=access_denied&state=other".into()),
                Err(OidcError::StateMismatch)
            ),
            "a refusal for another sign-in is not reported"
        );
        assert!(matches!(
            answered(format!("error=access_denied&state={state}")),
            Err(OidcError::Authorization(OAuthError { error, description: None })) if error == "access_denied"
        ));
        assert!(matches!(
            answered(format!("code=&state={state}")),
            Err(OidcError::MissingCode)
        ));
    }

    #[test]
    fn a_refusal_is_shown_shortened() {
        let long = OAuthError {
            error: "e".repeat(150),
            description: Some("d".repeat(400)),
        }
        .shortened();
        assert_eq!(long.error.len(), 100);
        assert_eq!(long.description.map(|d| d.len()), Some(300));
        let refusal = OAuthError {
            error: "access_denied".into(),
            description: Some("Declined".into()),
        };
        assert_eq!(refusal.to_string(), "access_denied (Declined)");
        let bare = OAuthError {
            description: None,
            ..refusal
        };
        assert_eq!(bare.to_string(), "access_denied");
    }

    #[test]
    fn the_application_hides_its_client_secret() {
        let application = OidcApplication {
            issuer: "https://sod.superoffice.com".into(),
            client_id: "client".into(),
            client_secret: SecretString::from("very-secret-value"),
            redirect_uri: "https://app/callback".into(),
            pkce: true,
        };
        let shown = format!("{application:?}");
        assert!(
            shown.contains("client") && !shown.contains("very-secret-value"),
            "{shown}"
        );
    }

    #[test]
    fn comparison_is_exact() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
