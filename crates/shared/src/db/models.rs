//! Rows as Rust types.

use chrono::{DateTime, Utc};
use diesel::deserialize;
use diesel::dsl::{AssumeNotNull, Nullable};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Binary, SmallInt};
use serde::Serialize;

use super::schema::{audit_events, tenants, tickets, work_requests};
use crate::crypto::at_rest::Encrypted;
use crate::domain::ContextId;

pub use crate::lifecycle::TenantState;

/// A secret as its row stores it, key version then ciphertext: the value `crypto::at_rest`
/// decrypts. Its `Debug` shows only the key version and the length.
impl Queryable<(SmallInt, Binary), Pg> for Encrypted {
    type Row = (i16, Vec<u8>);

    fn build((key_version, bytes): Self::Row) -> deserialize::Result<Self> {
        Ok(Self { key_version, bytes })
    }
}

/// A row of `tenants`. The token stays encrypted here; decrypt it with `crypto::at_rest`.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
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
    /// The system user token, still encrypted, when one is stored (the table's check keeps its two
    /// columns both set or both empty).
    #[diesel(select_expression = (
        tenants::system_token_key_version.assume_not_null(),
        tenants::system_token_ciphertext.assume_not_null(),
    ).nullable())]
    #[diesel(select_expression_type = Nullable<(
        AssumeNotNull<tenants::system_token_key_version>,
        AssumeNotNull<tenants::system_token_ciphertext>,
    )>)]
    pub system_token: Option<Encrypted>,
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

/// A row of `tickets`: the cached system user ticket, still encrypted.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = tickets)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct StoredTicket {
    pub context_id: ContextId,
    /// The ticket, still encrypted.
    #[diesel(select_expression = (tickets::key_version, tickets::ciphertext))]
    #[diesel(select_expression_type = (tickets::key_version, tickets::ciphertext))]
    pub encrypted: Encrypted,
    pub token_generation: i32,
    pub issued_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub rejected_at: Option<DateTime<Utc>>,
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_ticket_shows_its_key_version_and_length_only() {
        let ticket = StoredTicket {
            context_id: ContextId::parse("Cust1").unwrap(),
            encrypted: Encrypted {
                key_version: 3,
                bytes: b"7T:sealed".to_vec(),
            },
            token_generation: 1,
            issued_at: Utc::now(),
            last_used_at: Utc::now(),
            rejected_at: None,
        };
        let shown = format!("{ticket:?}");
        assert!(
            shown.contains("Encrypted(key version 3, 9 bytes)"),
            "{shown}"
        );
        assert!(!shown.contains("55, 84"), "the bytes are shown: {shown}");
    }
}
