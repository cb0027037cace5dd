//! The append-only audit trail.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::models::{AuditAction, AuditEvent};
use super::schema::audit_events;
use super::{DbError, notify_work};

/// Something that happened, to be written to `audit_events`. Never put a secret in `detail`.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = audit_events)]
pub struct NewAuditEvent<'a> {
    pub context_id: Option<&'a str>,
    pub action: AuditAction,
    pub actor: &'a str,
    pub detail: serde_json::Value,
}

impl<'a> NewAuditEvent<'a> {
    /// An event of one tenant.
    pub fn tenant(
        context_id: &'a str,
        action: AuditAction,
        actor: &'a str,
        detail: serde_json::Value,
    ) -> Self {
        Self {
            context_id: Some(context_id),
            action,
            actor,
            detail,
        }
    }
}

/// Appends an event (in the caller's transaction, if any).
pub async fn record(conn: &mut AsyncPgConnection, event: NewAuditEvent<'_>) -> Result<(), DbError> {
    diesel::insert_into(audit_events::table)
        .values(&event)
        .execute(conn)
        .await?;
    Ok(())
}

/// Appends an event and wakes partner-service for the event's tenant (`NOTIFY partner_work`), in the
/// caller's transaction: the ending of every change the service has to act on.
pub async fn record_and_wake(
    conn: &mut AsyncPgConnection,
    event: NewAuditEvent<'_>,
) -> Result<(), DbError> {
    let context_id = event.context_id.unwrap_or_default();
    record(conn, event).await?;
    notify_work(conn, context_id).await
}

/// Appends an event, waking partner-service with it when `wake` (`record_and_wake`).
pub async fn record_waking(
    conn: &mut AsyncPgConnection,
    event: NewAuditEvent<'_>,
    wake: bool,
) -> Result<(), DbError> {
    if wake {
        record_and_wake(conn, event).await
    } else {
        record(conn, event).await
    }
}

/// The ending of a change that may have found nothing to change: when it touched a row (`changed`),
/// appends `event` as `record_waking` does. Says whether it did.
pub async fn record_if_changed(
    conn: &mut AsyncPgConnection,
    changed: usize,
    event: NewAuditEvent<'_>,
    wake: bool,
) -> Result<bool, DbError> {
    if changed == 0 {
        return Ok(false);
    }
    record_waking(conn, event, wake).await?;
    Ok(true)
}

/// The latest events of a tenant, newest first.
pub async fn recent_for_tenant(
    conn: &mut AsyncPgConnection,
    context_id: &str,
    limit: i64,
) -> Result<Vec<AuditEvent>, DbError> {
    Ok(audit_events::table
        .filter(audit_events::context_id.eq(context_id))
        .order((audit_events::created_at.desc(), audit_events::id.desc()))
        .limit(limit)
        .select(AuditEvent::as_select())
        .load(conn)
        .await?)
}
