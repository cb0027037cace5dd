//! Every handler error becomes a page that says what happened and how to go on.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

/// Errors of the web handlers, mapped to status codes in one place.
#[derive(thiserror::Error)]
pub enum WebError {
    #[error("You are not signed in.")]
    NotSignedIn,
    #[error(
        "The form has expired or did not come from this site. Go back, reload the page and try again."
    )]
    Csrf,
    #[error("{0}")]
    BadRequest(String),
    #[error("Sign-in failed: {0}")]
    SignIn(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    TooManyRequests(String),
    #[error("SuperOffice did not answer as expected: {0}")]
    Upstream(String),
    #[error("Something went wrong on our side. Try again in a moment.")]
    Unexpected(#[from] anyhow::Error),
}

/// The request logger records errors with `Debug`. An `anyhow::Error`'s own `Debug` appends its
/// backtrace when `RUST_BACKTRACE` or `RUST_LIB_BACKTRACE` is set, and symbolising one loads the
/// binary's debug information into memory for the life of the process (tens of MiB); the cause chain
/// is what the log needs.
impl std::fmt::Debug for WebError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unexpected(e) => write!(f, "Unexpected({e:#})"),
            other => write!(f, "{}({other})", other.title()),
        }
    }
}

impl WebError {
    fn title(&self) -> &'static str {
        match self {
            Self::NotSignedIn => "Please sign in",
            Self::Csrf => "Form expired",
            Self::BadRequest(_) => "Bad request",
            Self::SignIn(_) => "Sign-in failed",
            Self::NotFound(_) => "Not found",
            Self::Forbidden(_) => "Not allowed",
            Self::TooManyRequests(_) => "Too many requests",
            Self::Upstream(_) => "SuperOffice is not answering",
            Self::Unexpected(_) => "Unexpected error",
        }
    }
}

impl From<shared::db::DbError> for WebError {
    fn from(e: shared::db::DbError) -> Self {
        Self::Unexpected(e.into())
    }
}

#[derive(Template)]
#[template(path = "errors/error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: String,
    offer_sign_in: bool,
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotSignedIn => StatusCode::UNAUTHORIZED,
            Self::Csrf | Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::BadRequest(_) | Self::SignIn(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Unexpected(e) = self {
            tracing::error!(error = %format!("{e:#}"), "request failed");
        }
        let page = ErrorPage {
            title: self.title(),
            message: self.to_string(),
            offer_sign_in: matches!(self, Self::NotSignedIn | Self::SignIn(_) | Self::Csrf),
        };
        let body = page
            .render()
            .unwrap_or_else(|_| "<!doctype html><title>Error</title><p>Error.</p>".to_owned());
        let mut response = HttpResponse::build(self.status_code());
        if let Self::TooManyRequests(_) = self {
            response.insert_header(("Retry-After", "60"));
        }
        response.content_type("text/html; charset=utf-8").body(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_the_cause_chain_and_never_a_backtrace() {
        let error =
            WebError::from(anyhow::anyhow!("connection refused").context("saving the token"));
        assert_eq!(
            format!("{error:?}"),
            "Unexpected(saving the token: connection refused)"
        );
        assert_eq!(
            format!("{:?}", WebError::NotFound("no such request".into())),
            "Not found(no such request)"
        );
    }
}
