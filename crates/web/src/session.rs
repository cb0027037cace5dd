//! The signed-in user and the sign-in in progress, kept in the session (a row of `web_sessions`, see
//! `session_store`; the cookie holds only its id).

use std::fmt;

use actix_session::{Session, SessionExt, SessionGetError, SessionInsertError};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use serde::{Deserialize, Serialize};

use shared::crypto::constant_time_eq;
use shared::superid::oidc::PendingSignIn;

use crate::errors::WebError;

pub(crate) const USER_KEY: &str = "user";
const LOGIN_KEY: &str = "login";
const CSRF_KEY: &str = "csrf";
const FLASH_CREATED_KEY: &str = "flash_created";

/// Who is signed in, from their validated id_token.
#[derive(Clone, Serialize, Deserialize)]
pub struct SessionUser {
    /// SuperID user name (`sub`).
    pub subject: String,
    pub display_name: String,
    pub email: Option<String>,
    pub context_id: String,
    pub company_name: Option<String>,
    pub is_administrator: bool,
    pub associate_id: Option<String>,
    pub webapi_url: Option<String>,
    /// The user's own access token (`8A:…`), for "create company with login user". Secret.
    pub access_token: Option<String>,
    /// Unix time the access token expires.
    pub access_expires_at: i64,
    /// The refresh token, when SuperID gave one. Secret.
    pub refresh_token: Option<String>,
    /// The user's own ticket from a legacy federated sign-in (`SOTicket`). Secret.
    pub user_ticket: Option<String>,
}

impl fmt::Debug for SessionUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionUser")
            .field("subject", &self.subject)
            .field("context_id", &self.context_id)
            .field("is_administrator", &self.is_administrator)
            .finish_non_exhaustive()
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
mod tests {
    use super::*;

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
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
