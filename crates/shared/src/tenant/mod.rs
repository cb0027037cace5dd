//! Calling a tenant: its status (where it lives, whether it runs), its REST API and its SOAP services.
//!
//! Both API clients resolve the tenant's current host through the state API first, refuse to work
//! for a tenant that is not running, and on `421 Misdirected Request` (the tenant moved) forget the
//! cached status, resolve again and try once more.

pub mod rest;
pub mod soap;
pub mod status;

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use secrecy::SecretString;
use serde::Serialize;

use crate::domain::{ContextId, Ticket};
use crate::http::{RetryPolicy, Retryable, TransportError, is_transient_status, scrub};
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
            Self::Status(error) => error.is_retryable(),
            Self::NotRunning { .. } | Self::NoEndpoint { .. } | Self::Misdirected { .. } => true,
            Self::Http { status, .. } => is_transient_status(*status),
            Self::Transport(error) => error.is_retryable(),
            Self::Malformed { .. } => true,
            Self::TicketRejected { .. }
            | Self::TicketForbidden { .. }
            | Self::AccessTokenRejected { .. }
            | Self::Forbidden { .. }
            | Self::Fault { .. } => false,
        }
    }
}

impl TenantError {
    pub fn is_retryable(&self) -> bool {
        Retryable::is_retryable(self)
    }

    /// Whether the tenant refused the ticket (401, or 403 to a call made with it): renew it once.
    pub fn refuses_ticket(&self) -> bool {
        matches!(
            self,
            Self::TicketRejected { .. } | Self::TicketForbidden { .. }
        )
    }
}

/// Whether a call may be repeated at once with backoff: a 421 is not, it is resolved by
/// `on_current_host` instead.
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

/// Resolves the tenant's running status and calls `call` with it, repeated under `policy` while the
/// error allows it (`retry_now`); on `Misdirected` forgets the status, resolves again and calls once
/// more.
pub(crate) async fn on_current_host<T, F, Fut>(
    statuses: &TenantStatusClient,
    tenant: &ContextId,
    policy: RetryPolicy,
    what: &'static str,
    mut call: F,
) -> Result<T, TenantError>
where
    F: FnMut(Arc<TenantStatus>) -> Fut,
    Fut: Future<Output = Result<T, TenantError>>,
{
    let mut resolved_again = false;
    loop {
        let status = statuses.status(tenant).await?;
        if !status.is_running {
            return Err(TenantError::NotRunning {
                tenant: tenant.clone(),
                state: status.state.clone(),
            });
        }
        let attempt = policy.run_while(what, || call(Arc::clone(&status)), retry_now);
        match attempt.await {
            Err(TenantError::Misdirected { .. }) if !resolved_again => {
                tracing::info!(tenant = %tenant, "tenant answered 421; resolving its host again");
                statuses.invalidate(tenant).await;
                resolved_again = true;
            }
            result => return result,
        }
    }
}
