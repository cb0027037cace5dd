//! SuperOffice's tenant state-change notifications (protocol §8): what each one does to a tenant, applied
//! once per notification, together with its record, its audit event and the wake-up of partner-service.
//!
//! | ChangeType | effect on the tenant |
//! |---|---|
//! | 0 Upgrade | none; recorded with `VersionName` and `FileVersion` |
//! | 1 BackupRestored, 3 Resume | `suspended`/`deleted` → `pending`, due now (the service checks the state API afresh) |
//! | 2 Suspend | `pending`/`active`/`deleted` → `suspended`, once the state API confirms it |
//! | 4 Delete | `pending`/`active`/`suspended` → `deleted`; the cached ticket is dropped; data kept until purged; once the state API confirms it |
//! | 5 Move | `webapi_url` and `netserver_url` cleared, so the next call resolves the new host |
//!
//! States set by an administrator's decision or an operator (`revoked`, `expired`, `denied`,
//! `needs_reapproval`, `disabled`) are never changed by a notification: lifting them is not SuperOffice's call.
//!
//! Nothing signs a notification's `ChangeType` (the token covers the tenant, not the change), so a Suspend or
//! Delete takes effect only when the caller has confirmed with the state API that the tenant is not running
//! or is gone; otherwise it is recorded as `unconfirmed`, changes nothing and wakes partner-service, which
//! asks the state API itself.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::audit::{self, NewAuditEvent};
use super::models::{AuditAction, TenantState};
use super::schema::{state_change_notifications, tenants, tickets};
use super::{DbError, notify_work};
use crate::lifecycle::{self, Event, Schedule, Transition};

/// Who the audit trail names as the actor of a notification.
pub const ACTOR: &str = "superoffice";

/// Prefix of the `partner_work` NOTIFY payload that tells partner-service to forget its cached tenant status
/// (state API answer) for the context id that follows, e.g. `state-change:Cust12345`.
pub const STATUS_INVALIDATION_PREFIX: &str = "state-change:";

/// The NOTIFY payload that invalidates the cached tenant status of `context_id`.
pub fn status_invalidation_payload(context_id: &str) -> String {
    format!("{STATUS_INVALIDATION_PREFIX}{context_id}")
}

pub use crate::lifecycle::ChangeType;

impl ChangeType {
    /// The audit action of a notification of this type.
    pub fn audit_action(&self) -> AuditAction {
        match self {
            Self::Upgrade => AuditAction::SuperofficeUpgrade,
            Self::BackupRestored => AuditAction::SuperofficeBackupRestored,
            Self::Suspend => AuditAction::SuperofficeSuspend,
            Self::Resume => AuditAction::SuperofficeResume,
            Self::Delete => AuditAction::SuperofficeDelete,
            Self::Move => AuditAction::SuperofficeMove,
            Self::Unsupported(_) => AuditAction::SuperofficeStateChangeUnsupported,
        }
    }
}

/// The idempotency key of a notification: SHA-256 (hex) of the context id, the change type and the token's
/// fingerprint (`jwt::fingerprint`: what its signature covers, and the signature, however the token is
/// spelled).
///
/// The token is signed by SuperOffice and carries its own `iat`, so a redelivery of one notification has the
/// same key, a re-encoded copy of it too, and two notifications have different ones; the change type is part
/// of the key because the token does not cover it.
pub fn idempotency_key(context_id: &str, change: &ChangeType, fingerprint: &[u8; 32]) -> String {
    let mut hasher = Sha256::new();
    for part in [
        context_id.as_bytes(),
        change.as_str().as_bytes(),
        fingerprint,
    ] {
        hasher.update(part);
        hasher.update([0u8]);
    }
    hex::encode(hasher.finalize())
}

/// What a tenant in `state` becomes when a notification of type `change` arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub to: TenantState,
    pub drop_ticket: bool,
    pub clear_urls: bool,
}

/// The effect table of the module documentation, as `lifecycle` decides it.
pub fn decide(change: &ChangeType, state: TenantState) -> Decision {
    let transition = lifecycle::next(state, &Event::Notification(change.clone()));
    Decision {
        to: transition.to,
        drop_ticket: transition.effects.drop_ticket,
        clear_urls: transition.effects.clear_urls,
    }
}

/// A validated notification, ready to be applied.
#[derive(Debug, Clone)]
pub struct Notification<'a> {
    pub context_id: &'a str,
    pub change: &'a ChangeType,
    /// From [`idempotency_key`].
    pub idempotency_key: &'a str,
    /// The token's `iat`.
    pub token_issued_at: Option<DateTime<Utc>>,
    pub version_name: Option<&'a str>,
    pub file_version: Option<&'a str>,
    pub public_endpoint: Option<&'a str>,
    /// A Suspend or Delete the state API did not confirm (the tenant still runs, or the API did not answer):
    /// recorded, no effect, partner-service woken to check.
    pub unconfirmed: bool,
}

/// What applying a notification did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The tenant is known; the decision was carried out (it may leave the state as it was).
    Applied {
        from: TenantState,
        decision: Decision,
    },
    /// A Suspend or Delete the state API did not confirm: the tenant is as it was.
    Unconfirmed { state: TenantState },
    /// No such tenant: only the record and an audit event were written.
    UnknownTenant,
    /// The same notification was processed before: nothing was written.
    Duplicate,
}

impl Outcome {
    /// A short word for the record, the response and logs.
    pub fn summary(&self) -> String {
        match self {
            Self::Applied { from, decision } if *from != decision.to => decision.to.to_string(),
            Self::Applied { decision, .. } if decision.clear_urls => "urls_cleared".to_owned(),
            Self::Applied { decision, .. } if decision.drop_ticket => {
                format!("ticket_dropped_kept_{}", decision.to)
            }
            Self::Applied { from, .. } => format!("kept_{from}"),
            Self::Unconfirmed { .. } => "unconfirmed".to_owned(),
            Self::UnknownTenant => "unknown_tenant".to_owned(),
            Self::Duplicate => "duplicate".to_owned(),
        }
    }
}

/// Applies a notification in one transaction: its record (the idempotency check), the tenant's new state,
/// the dropped ticket or cleared URLs, one audit event, and the NOTIFYs that wake partner-service and make
/// it forget the tenant's cached status. A notification already recorded changes nothing.
#[tracing::instrument(skip_all, fields(tenant = %notification.context_id, change = notification.change.as_str()), err)]
pub async fn apply(
    conn: &mut AsyncPgConnection,
    notification: Notification<'_>,
) -> Result<Outcome, DbError> {
    conn.transaction::<_, DbError, _>(async move |conn| {
        let n = &notification;
        let record_id: Option<i64> = diesel::insert_into(state_change_notifications::table)
            .values((
                state_change_notifications::idempotency_key.eq(n.idempotency_key),
                state_change_notifications::context_id.eq(n.context_id),
                state_change_notifications::change_type.eq(n.change.as_str()),
                state_change_notifications::token_issued_at.eq(n.token_issued_at),
                state_change_notifications::version_name.eq(n.version_name),
                state_change_notifications::file_version.eq(n.file_version),
                state_change_notifications::public_endpoint.eq(n.public_endpoint),
                state_change_notifications::outcome.eq("processing"),
            ))
            .on_conflict(state_change_notifications::idempotency_key)
            .do_nothing()
            .returning(state_change_notifications::id)
            .get_result(conn)
            .await
            .optional()?;
        let Some(record_id) = record_id else {
            return Ok(Outcome::Duplicate);
        };

        let tenant: Option<(i64, TenantState)> = tenants::table
            .filter(tenants::context_id.eq(n.context_id))
            .select((tenants::id, tenants::state))
            .for_update()
            .first(conn)
            .await
            .optional()?;
        let outcome = match tenant {
            None => Outcome::UnknownTenant,
            Some((_, state)) if n.unconfirmed => Outcome::Unconfirmed { state },
            Some((id, from)) => {
                let transition = lifecycle::next(from, &Event::Notification(n.change.clone()));
                carry_out(conn, id, n, from, transition).await?;
                Outcome::Applied {
                    from,
                    decision: decide(n.change, from),
                }
            }
        };

        diesel::update(state_change_notifications::table.find(record_id))
            .set(state_change_notifications::outcome.eq(outcome.summary()))
            .execute(conn)
            .await?;
        let (action, decision_detail) = match &outcome {
            Outcome::Applied { from, decision } => (
                n.change.audit_action(),
                json!({
                    "from": from.as_str(),
                    "to": decision.to.as_str(),
                    "ticket_dropped": decision.drop_ticket,
                    "urls_cleared": decision.clear_urls,
                }),
            ),
            Outcome::Unconfirmed { state } => (
                n.change.audit_action(),
                json!({
                    "from": state.as_str(),
                    "to": state.as_str(),
                    "unconfirmed": "the state API did not confirm the change; partner-service checks it",
                }),
            ),
            _ => (AuditAction::SuperofficeStateChangeUnknownTenant, json!(null)),
        };
        audit::record(
            conn,
            NewAuditEvent {
                context_id: Some(n.context_id),
                action,
                actor: ACTOR,
                detail: json!({
                    "notification_id": record_id,
                    "change_type": n.change.as_str(),
                    "outcome": outcome.summary(),
                    "effect": decision_detail,
                    "version_name": n.version_name,
                    "file_version": n.file_version,
                    "public_endpoint": n.public_endpoint,
                    "token_issued_at": n.token_issued_at.map(|t| t.to_rfc3339()),
                }),
            },
        )
        .await?;
        if matches!(outcome, Outcome::Applied { .. } | Outcome::Unconfirmed { .. })
            && !matches!(n.change, ChangeType::Unsupported(_))
        {
            notify_work(conn, n.context_id).await?;
            notify_work(conn, &status_invalidation_payload(n.context_id)).await?;
        }
        Ok(outcome)
    })
    .await
}

async fn carry_out(
    conn: &mut AsyncPgConnection,
    id: i64,
    n: &Notification<'_>,
    from: TenantState,
    transition: Transition,
) -> Result<(), DbError> {
    let target = tenants::table.find(id);
    let effects = transition.effects;
    let due_now = Some(Utc::now());
    if transition.to != from {
        let reason = match n.change {
            ChangeType::Suspend => "SuperOffice suspended the tenant",
            ChangeType::Delete => {
                "SuperOffice deleted the tenant; its data is kept until an operator purges it"
            }
            ChangeType::Resume => "SuperOffice resumed the tenant; its state is checked afresh",
            ChangeType::BackupRestored => {
                "SuperOffice restored the tenant from a backup; its state is checked afresh"
            }
            _ => "SuperOffice changed the tenant's state",
        };
        diesel::update(target)
            .set((
                tenants::state.eq(transition.to),
                tenants::state_reason.eq(reason),
                tenants::next_attempt_at.eq(due_now.filter(|_| effects.schedule == Schedule::Now)),
                tenants::failed_attempts.eq(0),
            ))
            .execute(conn)
            .await?;
    } else if effects.schedule == Schedule::Now {
        diesel::update(target)
            .set(tenants::next_attempt_at.eq(due_now))
            .execute(conn)
            .await?;
    }
    if effects.clear_urls {
        diesel::update(target)
            .set((
                tenants::webapi_url.eq(None::<String>),
                tenants::netserver_url.eq(None::<String>),
            ))
            .execute(conn)
            .await?;
    }
    if effects.drop_ticket {
        diesel::delete(tickets::table.filter(tickets::context_id.eq(n.context_id)))
            .execute(conn)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_types_read_codes_and_names() {
        let expected = [
            (0, "Upgrade"),
            (1, "BackupRestored"),
            (2, "Suspend"),
            (3, "Resume"),
            (4, "Delete"),
            (5, "Move"),
        ];
        for (code, name) in expected {
            assert_eq!(ChangeType::from_code(code).as_str(), name);
            assert_eq!(ChangeType::from_name(name), ChangeType::from_code(code));
            assert_eq!(
                ChangeType::from_name(&name.to_lowercase()),
                ChangeType::from_code(code)
            );
            assert_eq!(
                ChangeType::from_name(&code.to_string()),
                ChangeType::from_code(code)
            );
        }
        assert_eq!(
            ChangeType::from_code(6),
            ChangeType::Unsupported("6".into())
        );
        assert_eq!(
            ChangeType::from_code(-1),
            ChangeType::Unsupported("-1".into())
        );
        assert_eq!(
            ChangeType::from_name(" Rename "),
            ChangeType::Unsupported("Rename".into())
        );
    }

    #[test]
    fn the_key_depends_on_every_part() {
        let print = [7u8; 32];
        let key = idempotency_key("Cust1", &ChangeType::Suspend, &print);
        assert_eq!(key.len(), 64);
        assert_eq!(key, idempotency_key("Cust1", &ChangeType::Suspend, &print));
        assert_ne!(key, idempotency_key("Cust2", &ChangeType::Suspend, &print));
        assert_ne!(key, idempotency_key("Cust1", &ChangeType::Resume, &print));
        assert_ne!(
            key,
            idempotency_key("Cust1", &ChangeType::Suspend, &[8u8; 32])
        );
    }

    #[test]
    fn the_effect_table() {
        use TenantState::*;
        let to = |change: ChangeType, state| decide(&change, state).to;
        for state in [Pending, Active, Deleted, Suspended] {
            assert_eq!(to(ChangeType::Suspend, state), Suspended, "{state}");
        }
        for state in [Pending, Active, Suspended, Deleted] {
            assert_eq!(to(ChangeType::Delete, state), Deleted, "{state}");
        }
        for change in [ChangeType::Resume, ChangeType::BackupRestored] {
            assert_eq!(to(change.clone(), Suspended), Pending);
            assert_eq!(to(change.clone(), Deleted), Pending);
            assert_eq!(to(change.clone(), Active), Active);
            assert_eq!(to(change, Pending), Pending);
        }
        for kept in [Revoked, Expired, Denied, NeedsReapproval, Disabled] {
            for change in [
                ChangeType::Suspend,
                ChangeType::Delete,
                ChangeType::Resume,
                ChangeType::BackupRestored,
                ChangeType::Move,
                ChangeType::Upgrade,
            ] {
                assert_eq!(to(change.clone(), kept), kept, "{change:?} on {kept}");
            }
        }
        for state in TenantState::ALL {
            assert_eq!(to(ChangeType::Upgrade, state), state);
            assert_eq!(to(ChangeType::Move, state), state);
            assert_eq!(to(ChangeType::Unsupported("9".into()), state), state);
        }
        assert!(decide(&ChangeType::Delete, Revoked).drop_ticket);
        assert!(!decide(&ChangeType::Suspend, Active).drop_ticket);
        assert!(decide(&ChangeType::Move, Active).clear_urls);
        assert!(!decide(&ChangeType::Resume, Active).clear_urls);
    }

    #[test]
    fn outcomes_summarise() {
        use TenantState::*;
        let cases = [
            (ChangeType::Suspend, Active, "suspended"),
            (ChangeType::Suspend, Revoked, "kept_revoked"),
            (ChangeType::Delete, Disabled, "ticket_dropped_kept_disabled"),
            (ChangeType::Move, Active, "urls_cleared"),
            (ChangeType::Upgrade, Active, "kept_active"),
        ];
        for (change, from, summary) in cases {
            let decision = decide(&change, from);
            let applied = Outcome::Applied { from, decision };
            assert_eq!(applied.summary(), summary, "{change:?} on {from}");
        }
        assert_eq!(Outcome::UnknownTenant.summary(), "unknown_tenant");
        assert_eq!(
            Outcome::Unconfirmed { state: Active }.summary(),
            "unconfirmed"
        );
        assert_eq!(status_invalidation_payload("Cust1"), "state-change:Cust1");
    }
}
