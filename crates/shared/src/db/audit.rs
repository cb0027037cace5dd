//! The append-only audit trail.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::DbError;
use super::models::{AuditAction, AuditEvent};
use super::schema::audit_events;

/// Something that happened, to be written to `audit_events`. Never put a secret in `detail`.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = audit_events)]
pub struct NewAuditEvent<'a> {
    pub context_id: Option<&'a str>,
    pub action: AuditAction,
    pub actor: &'a str,
    pub detail: serde_json::Value,
}

/// Appends an event (in the caller's transaction, if any).
pub async fn record(conn: &mut AsyncPgConnection, event: NewAuditEvent<'_>) -> Result<(), DbError> {
    diesel::insert_into(audit_events::table)
        .values(&event)
        .execute(conn)
        .await?;
    Ok(())
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
