//! Rows as Rust types.

use std::fmt;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use super::schema::{audit_events, tenants, tickets, work_requests};
use crate::domain::ContextId;

/// A Rust enum stored as one of a fixed set of words in a `TEXT` column (the migration
/// `typed_states` lists the same words in a CHECK constraint): `as_str`, `FromStr`, `Display`,
/// serde as the word, and diesel's `ToSql`/`FromSql` on `Text`, so queries bind it as a parameter.
/// It also compares equal to its word (`state == "active"`).
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, diesel::expression::AsExpression, diesel::deserialize::FromSqlRow)]
        #[diesel(sql_type = diesel::sql_types::Text)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; [$($text),+].len()] = [$(Self::$variant),+];

            /// The word stored in the database.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $text, )+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .into_iter()
                    .find(|value| value.as_str() == s)
                    .ok_or_else(|| format!(concat!("unknown ", $what, " {:?}"), s))
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>,
            ) -> diesel::serialize::Result {
                <str as diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg>>::to_sql(
                    self.as_str(),
                    out,
                )
            }
        }

        impl diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn from_sql(value: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
                let text = <String as diesel::deserialize::FromSql<
                    diesel::sql_types::Text,
                    diesel::pg::Pg,
                >>::from_sql(value)?;
                Ok(text.parse::<Self>()?)
            }
        }
    };
}

text_enum! {
    /// Where a tenant is in its life with this application.
    TenantState, "tenant state" {
        /// A system user token is stored; no ticket obtained yet.
        Pending = "pending",
        /// A ticket was obtained; work runs.
        Active = "active",
        /// SuperOffice suspended the tenant; work waits for a resume.
        Suspended = "suspended",
        /// The tenant revoked the application; an administrator must sign in and approve again.
        Revoked = "revoked",
        /// The authorization expired; an administrator must sign in again.
        Expired = "expired",
        /// SuperID denied the exchange.
        Denied = "denied",
        /// The application needs re-approval by an administrator.
        NeedsReapproval = "needs_reapproval",
        /// SuperOffice deleted the tenant; data kept until an operator purges it.
        Deleted = "deleted",
        /// An operator disabled the tenant.
        Disabled = "disabled",
    }
}

impl TenantState {
    /// The states that allow work (`allows_work`).
    pub const WORKING: [TenantState; 2] = [Self::Pending, Self::Active];

    /// Whether the service may do work for a tenant in this state.
    pub fn allows_work(self) -> bool {
        Self::WORKING.contains(&self)
    }
}

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
        Queued = "queued",
        Running = "running",
        Done = "done",
        Failed = "failed",
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
        CreateCompany = "create_company",
    }
}

text_enum! {
    /// What an audit event records.
    AuditAction, "audit action" {
        /// An administrator's sign-in stored a new tenant's token.
        TokenCaptured = "token_captured",
        /// A different token replaced the stored one.
        TokenReplaced = "token_replaced",
        /// The stored token was captured again.
        TokenConfirmed = "token_confirmed",
        /// A token issued before the stored one was refused.
        TokenSuperseded = "token_superseded",
        /// A system user ticket was obtained.
        TicketObtained = "ticket_obtained",
        /// The tenant's lifecycle state changed.
        StateChanged = "state_changed",
        /// An operator retried the tenant.
        OperatorRetry = "operator_retry",
        /// An operator purged the tenant.
        TenantPurged = "tenant_purged",
        /// Work was queued.
        WorkQueued = "work_queued",
        /// Work failed for good.
        WorkFailed = "work_failed",
        /// A company was created for queued work.
        CompanyCreated = "company_created",
        /// Stored secrets were re-encrypted under the current key.
        EncryptionKeyRotated = "encryption_key_rotated",
        /// Web sessions were ended.
        SessionsEnded = "sessions_ended",
        /// State-change notifications (protocol §8), one action per ChangeType.
        SuperofficeUpgrade = "superoffice_upgrade",
        SuperofficeBackupRestored = "superoffice_backup_restored",
        SuperofficeSuspend = "superoffice_suspend",
        SuperofficeResume = "superoffice_resume",
        SuperofficeDelete = "superoffice_delete",
        SuperofficeMove = "superoffice_move",
        SuperofficeStateChangeUnsupported = "superoffice_state_change_unsupported",
        SuperofficeStateChangeUnknownTenant = "superoffice_state_change_unknown_tenant",
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
