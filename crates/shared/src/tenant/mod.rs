//! Calling a tenant: its status (where it lives, whether it runs), its REST API and its SOAP services.
//!
//! Both API clients resolve the tenant's current host through the state API first, refuse to work
//! for a tenant that is not running, and on `421 Misdirected Request` (the tenant moved) forget the
//! cached status, resolve again and try once more.

pub mod rest;
pub mod soap;
pub mod status;

use std::fmt;
use std::sync::Arc;

use secrecy::SecretString;
use serde::Serialize;
use url::Url;

use crate::domain::{ContextId, Ticket};
use crate::http::{self, Retryable, SuperOfficeHttp, TransportError, is_transient_status, scrub};
use crate::tenant::status::{StatusError, TenantRunState, TenantStatus, TenantStatusClient};

/// Who a tenant call runs as. `Debug` redacts the credential.
#[derive(Clone)]
pub enum TenantCredentials {
    /// The system user: `Authorization: SOTicket {ticket}` with `SO-AppToken: {client_secret}`.
    SystemUser(Ticket),
    /// A signed-in user: `Authorization: Bearer {access_token}` (REST only).
    User(SecretString),
}

impl fmt::Debug for TenantCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SystemUser(_) => f.write_str("SystemUser([REDACTED])"),
            Self::User(_) => f.write_str("User([REDACTED])"),
        }
    }
}

/// A company (a `ContactEntity`) as the tenant returned it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Company {
    pub contact_id: i64,
    pub name: String,
    pub department: Option<String>,
    /// As the tenant formats it.
    pub created_date: Option<String>,
    /// The company's owner (`Associate`), by full name.
    pub owner: Option<String>,
}

impl Company {
    /// The company a `ContactEntity` describes, read the REST or the SOAP way: `contact_id` as found,
    /// `text` the trimmed, non-empty text of a member by its path (e.g. `["Associate", "FullName"]`).
    fn from_entity(
        tenant: &ContextId,
        contact_id: Option<i64>,
        text: impl Fn(&[&str]) -> Option<String>,
    ) -> Result<Self, TenantError> {
        let contact_id = contact_id.ok_or_else(|| TenantError::Malformed {
            tenant: tenant.clone(),
            reason: "the ContactEntity has no ContactId".into(),
        })?;
        Ok(Self {
            contact_id,
            name: text(&["Name"]).unwrap_or_default(),
            department: text(&["Department"]),
            created_date: text(&["CreatedDate"]),
            owner: text(&["Associate", "FullName"]),
        })
    }
}

/// Why a tenant call failed. `TicketRejected` and `AccessTokenRejected` tell the caller to renew the
/// credential once and call again.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error(transparent)]
    Status(#[from] StatusError),
    #[error("tenant {tenant} is not running (state {state}); work waits until it is")]
    NotRunning {
        tenant: ContextId,
        state: TenantRunState,
    },
    #[error("the state API names no {what} for tenant {tenant}; try again later")]
    NoEndpoint {
        tenant: ContextId,
        what: &'static str,
    },
    #[error(
        "tenant {tenant} rejected the system user ticket; obtain a new ticket and call once more"
    )]
    TicketRejected { tenant: ContextId },
    /// HTTP 403 to a call made with a ticket: a dead ticket may come back so. Renewed once like a 401;
    /// refused again, the request itself is refused.
    #[error(
        "tenant {tenant} refused the request made with the system user ticket (HTTP 403): {message}"
    )]
    TicketForbidden { tenant: ContextId, message: String },
    #[error("tenant {tenant} rejected the user's access token; refresh it or sign in again")]
    AccessTokenRejected { tenant: ContextId },
    #[error("tenant {tenant} refused the request (HTTP 403): {message}")]
    Forbidden { tenant: ContextId, message: String },
    #[error(
        "tenant {tenant} answered 421 Misdirected Request even after resolving its host again; try again later"
    )]
    Misdirected { tenant: ContextId },
    #[error("tenant {tenant} answered HTTP {status}: {message}")]
    Http {
        tenant: ContextId,
        status: u16,
        message: String,
    },
    #[error("tenant {tenant} returned a SOAP fault ({exception}): {message}")]
    Fault {
        tenant: ContextId,
        exception: String,
        message: String,
    },
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("tenant {tenant}'s answer cannot be read: {reason}")]
    Malformed { tenant: ContextId, reason: String },
}

impl Retryable for TenantError {
    fn is_retryable(&self) -> bool {
        match self {
            Self::NotRunning { .. }
            | Self::NoEndpoint { .. }
            | Self::Misdirected { .. }
            | Self::Malformed { .. } => true,
            Self::TicketRejected { .. }
            | Self::TicketForbidden { .. }
            | Self::AccessTokenRejected { .. }
            | Self::Forbidden { .. }
            | Self::Fault { .. } => false,
            Self::Status(error) => error.is_retryable(),
            Self::Transport(error) => error.is_retryable(),
            Self::Http { status, .. } => is_transient_status(*status),
        }
    }
}

impl TenantError {
    /// Whether the tenant refused the ticket (401, or 403 to a call made with it): renew it once.
    pub fn refuses_ticket(&self) -> bool {
        matches!(
            self,
            Self::TicketRejected { .. } | Self::TicketForbidden { .. }
        )
    }
}

/// Whether a call may be repeated at once with backoff: a 421 is not, it is resolved by
/// `TenantCaller::call` instead.
fn retry_now(error: &TenantError) -> bool {
    error.is_retryable() && !matches!(error, TenantError::Misdirected { .. })
}

/// The text of a tenant's error body: the REST API's `Error`/`Message` member, or the start of the text,
/// with `secrets` scrubbed.
pub(crate) fn error_message(body: &[u8], secrets: &[&str]) -> String {
    let from_json = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|value| {
            ["Error", "Message", "error", "message"]
                .iter()
                .find_map(|key| value.get(key).and_then(|v| v.as_str()).map(str::to_owned))
        });
    let text = from_json.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let text = scrub(&text, secrets);
    if text.is_empty() {
        "(no message)".to_owned()
    } else {
        text
    }
}

/// What both API clients call a tenant with: the HTTP stack, the tenant status cache and the
/// application token. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TenantCaller {
    http: SuperOfficeHttp,
    statuses: Arc<TenantStatusClient>,
    application_token: SecretString,
}

impl TenantCaller {
    /// `application_token` is `superoffice.client_secret` (sent as `SO-AppToken` with tickets).
    pub fn new(
        http: SuperOfficeHttp,
        statuses: Arc<TenantStatusClient>,
        application_token: SecretString,
    ) -> Self {
        Self {
            http,
            statuses,
            application_token,
        }
    }

    /// One call on the tenant's current host. Each attempt builds its request for the tenant's running
    /// status (`request`), waits for the tenant's turn, sends it and reads the answer (`read`).
    /// Attempts are repeated with backoff if `repeatable` and the error allows it (`retry_now`); on
    /// `Misdirected` the status is forgotten, resolved again and the call made once more.
    async fn call<T>(
        &self,
        tenant: &ContextId,
        what: &'static str,
        repeatable: bool,
        request: impl Fn(&TenantStatus) -> Result<reqwest::RequestBuilder, TenantError>,
        read: impl Fn(http::Answer) -> Result<T, TenantError>,
    ) -> Result<T, TenantError> {
        let policy = self.http.retry_policy().if_repeatable(repeatable);
        let attempt = |status: Arc<TenantStatus>| {
            let (request, read) = (&request, &read);
            async move {
                let request = request(&status)?;
                self.http.throttle(tenant).await;
                read(http::fetch(what, request).await?)
            }
        };
        let mut resolved_again = false;
        loop {
            let status = self.statuses.status(tenant).await?;
            if !status.is_running {
                return Err(TenantError::NotRunning {
                    tenant: tenant.clone(),
                    state: status.state.clone(),
                });
            }
            let attempts = policy.run_while(what, || attempt(Arc::clone(&status)), retry_now);
            match attempts.await {
                Err(TenantError::Misdirected { .. }) if !resolved_again => {
                    tracing::info!(tenant = %tenant, "tenant answered 421; resolving its host again");
                    self.statuses.invalidate(tenant).await;
                    resolved_again = true;
                }
                result => return result,
            }
        }
    }
}

/// `{base}/{path}` with exactly one slash between, `base` being the status's `what` URL.
fn endpoint_url(
    tenant: &ContextId,
    base: Option<&Url>,
    what: &'static str,
    path: &str,
) -> Result<Url, TenantError> {
    let base = base.ok_or_else(|| TenantError::NoEndpoint {
        tenant: tenant.clone(),
        what,
    })?;
    Url::parse(&format!("{}/{path}", base.as_str().trim_end_matches('/'))).map_err(|e| {
        TenantError::Malformed {
            tenant: tenant.clone(),
            reason: format!("the {what} URL cannot take a path: {e}"),
        }
    })
}
