//! The signed-in user and the sign-in in progress, kept in the session (a row of `web_sessions`, see
//! `session_store`; the cookie holds only its id).

use actix_session::{Session, SessionExt, SessionGetError, SessionInsertError};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use shared::crypto::constant_time_eq;
use shared::domain::ContextId;
use shared::superid::oidc::{PendingSignIn, UserTokens};

use crate::errors::WebError;

pub(crate) const USER_KEY: &str = "user";
const LOGIN_KEY: &str = "login";
const CSRF_KEY: &str = "csrf";
const FLASH_CREATED_KEY: &str = "flash_created";

/// Who is signed in, from their validated id_token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionUser {
    /// SuperID user name (`sub`).
    pub subject: String,
    pub display_name: String,
    pub email: Option<String>,
    pub is_administrator: bool,
    pub associate_id: Option<String>,
    /// The groups below are kept beside the fields above in the session's state.
    #[serde(flatten)]
    pub tenant: SessionTenant,
    #[serde(flatten)]
    pub credentials: UserCredentials,
}

/// The tenant the user signed in to, as their id_token named it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionTenant {
    pub context_id: ContextId,
    pub company_name: Option<String>,
    pub webapi_url: Option<String>,
}

/// How the signed-in user calls the tenant's API themselves: the tokens of the code flow, or the
/// ticket of a legacy federated sign-in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserCredentials {
    /// When the access token (or the legacy ticket) expires; kept as Unix time.
    #[serde(with = "chrono::serde::ts_seconds")]
    pub access_expires_at: DateTime<Utc>,
    /// The user's own access token (`8A:…`), for "create company with login user".
    pub access_token: Option<SessionSecret>,
    /// The refresh token, when SuperID gave one.
    pub refresh_token: Option<SessionSecret>,
    /// The user's own ticket from a legacy federated sign-in (`SOTicket`).
    pub user_ticket: Option<SessionSecret>,
}

impl UserCredentials {
    /// The tokens of a code-flow sign-in.
    pub fn from_tokens(tokens: UserTokens) -> Self {
        Self {
            access_token: Some(tokens.access_token.into()),
            access_expires_at: tokens.expires_at,
            refresh_token: tokens.refresh_token.map(Into::into),
            user_ticket: None,
        }
    }

    /// The ticket of a legacy sign-in (if it carried one), valid until `expires_at`.
    pub fn legacy(ticket: Option<String>, expires_at: DateTime<Utc>) -> Self {
        Self {
            access_token: None,
            access_expires_at: expires_at,
            refresh_token: None,
            user_ticket: ticket.map(|ticket| SecretString::from(ticket).into()),
        }
    }

    /// Takes renewed tokens; a renewal that returns no refresh token keeps the old one.
    pub fn renew(&mut self, tokens: UserTokens) {
        self.access_token = Some(tokens.access_token.into());
        self.access_expires_at = tokens.expires_at;
        if let Some(refresh) = tokens.refresh_token {
            self.refresh_token = Some(refresh.into());
        }
    }
}

/// A credential kept in the session. It is serialized as its text, since the session's state is
/// stored encrypted (`session_store`); `Debug` never shows it.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct SessionSecret(SecretString);

impl SessionSecret {
    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

impl From<SecretString> for SessionSecret {
    fn from(secret: SecretString) -> Self {
        Self(secret)
    }
}

impl Serialize for SessionSecret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.expose_secret())
    }
}

/// Typed access to the session.
pub struct TypedSession(Session);

impl TypedSession {
    pub fn user(&self) -> Result<Option<SessionUser>, SessionGetError> {
        self.0.get(USER_KEY)
    }

    /// Signs a user in under a new session id, so a session fixed before sign-in is worthless.
    pub fn sign_in(&self, user: &SessionUser) -> Result<(), SessionInsertError> {
        self.0.remove(LOGIN_KEY);
        self.0.renew();
        self.0.insert(USER_KEY, user)?;
        self.0.insert(CSRF_KEY, new_csrf_token())
    }

    pub fn update_user(&self, user: &SessionUser) -> Result<(), SessionInsertError> {
        self.0.insert(USER_KEY, user)
    }

    /// Ends the session: its row is deleted, so a copy of the cookie is worthless at once.
    pub fn sign_out(&self) {
        self.0.purge();
    }

    pub fn start_login(&self, login: &PendingSignIn) -> Result<(), SessionInsertError> {
        self.0.insert(LOGIN_KEY, login)
    }

    /// The pending sign-in, removed so it can be used once.
    pub fn take_login(&self) -> Result<Option<PendingSignIn>, SessionGetError> {
        let login = self.0.get(LOGIN_KEY)?;
        self.0.remove(LOGIN_KEY);
        Ok(login)
    }

    /// Remembers a created company to show once on the next page.
    pub fn set_flash_created(&self, created: &CreatedCompany) -> Result<(), SessionInsertError> {
        self.0.insert(FLASH_CREATED_KEY, created)
    }

    /// The created company to show, removed so it shows once.
    pub fn take_flash_created(&self) -> Option<CreatedCompany> {
        let created = self.0.get(FLASH_CREATED_KEY).ok().flatten();
        if created.is_some() {
            self.0.remove(FLASH_CREATED_KEY);
        }
        created
    }

    /// The session's CSRF token, created on first use.
    pub fn csrf_token(&self) -> Result<String, SessionInsertError> {
        if let Ok(Some(token)) = self.0.get::<String>(CSRF_KEY) {
            return Ok(token);
        }
        let token = new_csrf_token();
        self.0.insert(CSRF_KEY, &token)?;
        Ok(token)
    }

    /// Whether a submitted form carries this session's CSRF token (compared in constant time).
    pub fn csrf_matches(&self, submitted: &str) -> bool {
        match self.0.get::<String>(CSRF_KEY) {
            Ok(Some(expected)) => constant_time_eq(expected.as_bytes(), submitted.as_bytes()),
            _ => false,
        }
    }
}

fn new_csrf_token() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

impl TypedSession {
    /// The session of `req`.
    pub fn of(req: &HttpRequest) -> Self {
        TypedSession(req.get_session())
    }
}

impl FromRequest for TypedSession {
    type Error = <Session as FromRequest>::Error;
    type Future = std::future::Ready<Result<TypedSession, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        std::future::ready(Ok(TypedSession::of(req)))
    }
}

/// The signed-in user as a handler's argument, or the "please sign in" page.
impl FromRequest for SessionUser {
    type Error = WebError;
    type Future = std::future::Ready<Result<SessionUser, WebError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        std::future::ready(require_user(&TypedSession::of(req)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    fn user(credentials: UserCredentials) -> SessionUser {
        SessionUser {
            subject: "ada@example.com".into(),
            display_name: "Ada".into(),
            email: None,
            is_administrator: false,
            associate_id: None,
            tenant: SessionTenant {
                context_id: ContextId::parse("Cust1").unwrap(),
                company_name: None,
                webapi_url: None,
            },
            credentials,
        }
    }

    #[test]
    fn credentials_are_stored_beside_the_user_and_never_shown() {
        let expires_at = DateTime::from_timestamp(1, 0).unwrap();
        let legacy = user(UserCredentials::legacy(
            Some("7T:ticket".into()),
            expires_at,
        ));
        let shown = format!("{legacy:?}");
        assert!(shown.contains("ada@example.com"), "{shown}");
        assert!(!shown.contains("7T:ticket"), "{shown}");
        let json = serde_json::to_value(&legacy).unwrap();
        assert_eq!(json["user_ticket"], "7T:ticket");
        assert_eq!(json["access_expires_at"], 1);
        assert!(json["access_token"].is_null());
        let read: SessionUser = serde_json::from_value(json).unwrap();
        let ticket = read.credentials.user_ticket.unwrap();
        assert_eq!(ticket.secret().expose_secret(), "7T:ticket");
    }

    #[test]
    fn a_renewal_without_a_refresh_token_keeps_the_old_one() {
        let tokens = |access: &str, refresh: Option<&str>| UserTokens {
            access_token: access.to_owned().into(),
            refresh_token: refresh.map(|r| r.to_owned().into()),
            expires_at: DateTime::from_timestamp(60, 0).unwrap(),
        };
        let mut credentials = UserCredentials::from_tokens(tokens("8A:one", Some("r1")));
        credentials.renew(tokens("8A:two", None));
        let exposed = |secret: &Option<SessionSecret>| {
            secret
                .as_ref()
                .map(|s| s.secret().expose_secret().to_owned())
        };
        assert_eq!(
            exposed(&credentials.access_token).as_deref(),
            Some("8A:two")
        );
        assert_eq!(exposed(&credentials.refresh_token).as_deref(), Some("r1"));
        assert_eq!(credentials.access_expires_at.timestamp(), 60);
        credentials.renew(tokens("8A:three", Some("r2")));
        assert_eq!(exposed(&credentials.refresh_token).as_deref(), Some("r2"));
    }

    #[test]
    fn csrf_tokens_are_long_and_distinct() {
        let (a, b) = (new_csrf_token(), new_csrf_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}

/// The company just created with the user's own credentials (shown once after the redirect).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CreatedCompany {
    pub contact_id: i64,
    pub name: String,
}

/// The signed-in user, or the "please sign in" page.
pub fn require_user(session: &TypedSession) -> Result<SessionUser, WebError> {
    session
        .user()
        .map_err(|e| WebError::Unexpected(anyhow::anyhow!("reading the session: {e}")))?
        .ok_or(WebError::NotSignedIn)
}

/// Refuses a POST whose form does not carry the session's CSRF token.
pub fn require_csrf(session: &TypedSession, submitted: &str) -> Result<(), WebError> {
    if session.csrf_matches(submitted) {
        Ok(())
    } else {
        metrics::counter!("partner_web_csrf_rejected_total").increment(1);
        Err(WebError::Csrf)
    }
}
