//! Rows as Rust types.

use std::fmt;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use super::schema::{audit_events, tenants, tickets, work_requests};
use crate::domain::ContextId;

pub use crate::lifecycle::TenantState;

/// A row of `tenants`. The token stays encrypted here; decrypt it with `crypto::at_rest`.
#[derive(Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = tenants)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct Tenant {
    pub id: i64,
    pub context_id: ContextId,
    pub environment: String,
    pub company_name: Option<String>,
    pub serial: Option<String>,
    pub webapi_url: Option<String>,
    pub netserver_url: Option<String>,
    pub state: TenantState,
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
        match self.state {
            state if state.allows_work() => None,
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
    pub context_id: ContextId,
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

text_enum! {
    /// What a work request is in its life.
    WorkState, "work state" {
        Queued,
        Running,
        Done,
        Failed,
    }
}

impl WorkState {
    /// Queued or running: not finished yet.
    pub const OPEN: [WorkState; 2] = [Self::Queued, Self::Running];
}

text_enum! {
    /// What a work request asks for (its payload is a [`super::work::Work`] of this kind).
    WorkKind, "work kind" {
        /// Create a company in the tenant with the system user.
        CreateCompany,
    }
}

text_enum! {
    /// What an audit event records.
    AuditAction, "audit action" {
        /// An administrator's sign-in stored a new tenant's token.
        TokenCaptured,
        /// A different token replaced the stored one.
        TokenReplaced,
        /// The stored token was captured again.
        TokenConfirmed,
        /// A token issued before the stored one was refused.
        TokenSuperseded,
        /// A system user ticket was obtained.
        TicketObtained,
        /// The tenant's lifecycle state changed.
        StateChanged,
        /// An operator retried the tenant.
        OperatorRetry,
        /// An operator purged the tenant.
        TenantPurged,
        /// Work was queued.
        WorkQueued,
        /// Work failed for good.
        WorkFailed,
        /// An exchange failed (its outcome, never a secret).
        ExchangeFailed,
        /// A company was created for queued work.
        CompanyCreated,
        /// Stored secrets were re-encrypted under the current key.
        EncryptionKeyRotated,
        /// Web sessions were ended.
        SessionsEnded,
        /// State-change notifications (protocol §8), one action per ChangeType.
        SuperofficeUpgrade,
        SuperofficeBackupRestored,
        SuperofficeSuspend,
        SuperofficeResume,
        SuperofficeDelete,
        SuperofficeMove,
        SuperofficeStateChangeUnsupported,
        SuperofficeStateChangeUnknownTenant,
    }
}

/// A row of `work_requests`.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = work_requests)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct WorkRequest {
    pub id: i64,
    pub context_id: ContextId,
    pub kind: WorkKind,
    pub payload: serde_json::Value,
    pub requested_by: String,
    pub idempotency_key: uuid::Uuid,
    pub state: WorkState,
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
    pub context_id: Option<ContextId>,
    pub action: AuditAction,
    pub actor: String,
    pub detail: serde_json::Value,
    pub created_at: DateTime<Utc>,
}
