//! Rows as Rust types.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use super::schema::{audit_events, tenants, tickets, work_requests};

/// Where a tenant is in its life with this application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantState {
    /// A system user token is stored; no ticket obtained yet.
    Pending,
    /// A ticket was obtained; work runs.
    Active,
    /// SuperOffice suspended the tenant; work waits for a resume.
    Suspended,
    /// The tenant revoked the application; an administrator must sign in and approve again.
    Revoked,
    /// The authorization expired; an administrator must sign in again.
    Expired,
    /// SuperID denied the exchange.
    Denied,
    /// The application needs re-approval by an administrator.
    NeedsReapproval,
    /// SuperOffice deleted the tenant; data kept until an operator purges it.
    Deleted,
    /// An operator disabled the tenant.
    Disabled,
}

impl TenantState {
    pub const ALL: [TenantState; 9] = [
        Self::Pending,
        Self::Active,
        Self::Suspended,
        Self::Revoked,
        Self::Expired,
        Self::Denied,
        Self::NeedsReapproval,
        Self::Deleted,
        Self::Disabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::Denied => "denied",
            Self::NeedsReapproval => "needs_reapproval",
            Self::Deleted => "deleted",
            Self::Disabled => "disabled",
        }
    }

    /// Whether the service may do work for a tenant in this state.
    pub fn allows_work(self) -> bool {
        matches!(self, Self::Pending | Self::Active)
    }
}

impl fmt::Display for TenantState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TenantState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown tenant state {s:?}"))
    }
}

/// A row of `tenants`. The token stays encrypted here; decrypt it with `crypto::at_rest`.
#[derive(Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = tenants)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct Tenant {
    pub id: i64,
    pub context_id: String,
    pub environment: String,
    pub company_name: Option<String>,
    pub serial: Option<String>,
    pub webapi_url: Option<String>,
    pub netserver_url: Option<String>,
    pub state: String,
    pub state_reason: Option<String>,
    pub system_token_ciphertext: Option<Vec<u8>>,
    pub system_token_key_version: Option<i16>,
    pub token_captured_by: Option<String>,
    pub token_captured_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub token_generation: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub failed_attempts: i32,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    /// Something the operator must look at; the tenant keeps its state (see `attention_reason`).
    pub needs_attention: bool,
    pub attention_reason: Option<String>,
    pub attention_at: Option<DateTime<Utc>>,
    /// The state API's last answer and when it came.
    pub so_state: Option<String>,
    pub so_state_checked_at: Option<DateTime<Utc>>,
    /// Since when the state API reports the tenant as not running.
    pub so_not_running_since: Option<DateTime<Utc>>,
}

impl Tenant {
    /// The lifecycle state; a value the schema's CHECK allows but this build does not know is an error.
    pub fn lifecycle(&self) -> Result<TenantState, super::DbError> {
        self.state.parse().map_err(super::DbError::Inconsistent)
    }

    /// What went wrong, only while it is the latest outcome: an error followed by a success is history.
    /// A tenant stopped by SuperOffice or an operator gives its state's reason when no error is current;
    /// a working tenant's reason ("system user ticket obtained") is never an error.
    pub fn current_error(&self) -> Option<(&str, Option<DateTime<Utc>>)> {
        let error_is_latest = match (self.last_error_at, self.last_success_at) {
            (Some(failed), Some(succeeded)) => failed > succeeded,
            (None, Some(_)) => false,
            (_, None) => true,
        };
        if let Some(error) = self.last_error.as_deref().filter(|_| error_is_latest) {
            return Some((error, self.last_error_at));
        }
        match self.lifecycle() {
            Ok(state) if state.allows_work() => None,
            _ => self.state_reason.as_deref().map(|reason| (reason, None)),
        }
    }
}

impl fmt::Debug for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tenant")
            .field("context_id", &self.context_id)
            .field("environment", &self.environment)
            .field("state", &self.state)
            .field("has_token", &self.system_token_ciphertext.is_some())
            .field("token_captured_at", &self.token_captured_at)
            .finish_non_exhaustive()
    }
}

/// A row of `tickets`: the cached system user ticket, still encrypted.
#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = tickets)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct StoredTicket {
    pub context_id: String,
    pub ciphertext: Vec<u8>,
    pub key_version: i16,
    pub token_generation: i32,
    pub issued_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub rejected_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for StoredTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredTicket")
            .field("context_id", &self.context_id)
            .field("issued_at", &self.issued_at)
            .field("last_used_at", &self.last_used_at)
            .field("rejected_at", &self.rejected_at)
            .finish_non_exhaustive()
    }
}

/// What a work request is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkState {
    Queued,
    Running,
    Done,
    Failed,
}

impl WorkState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
}

impl FromStr for WorkState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Queued, Self::Running, Self::Done, Self::Failed]
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown work state {s:?}"))
    }
}

/// A row of `work_requests`.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = work_requests)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct WorkRequest {
    pub id: i64,
    pub context_id: String,
    pub kind: String,
    pub payload: serde_json::Value,
    pub requested_by: String,
    pub idempotency_key: uuid::Uuid,
    pub state: String,
    pub attempts: i32,
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// A row of `audit_events`.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = audit_events)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct AuditEvent {
    pub id: i64,
    pub context_id: Option<String>,
    pub action: String,
    pub actor: String,
    pub detail: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_text() {
        for state in TenantState::ALL {
            assert_eq!(state.as_str().parse::<TenantState>(), Ok(state));
        }
        assert!("paused".parse::<TenantState>().is_err());
    }

    #[test]
    fn only_pending_and_active_allow_work() {
        let working: Vec<_> = TenantState::ALL
            .into_iter()
            .filter(|s| s.allows_work())
            .collect();
        assert_eq!(working, vec![TenantState::Pending, TenantState::Active]);
    }
}
