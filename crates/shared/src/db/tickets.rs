//! The cached system user ticket of each tenant (encrypted; see `crypto::at_rest`).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bytea, Integer, Jsonb, SmallInt, Text, Timestamptz};
use diesel::upsert::excluded;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::models::{AuditAction, StoredTicket};
use super::schema::tickets;
use super::{DbError, Prepared};
use crate::lifecycle::ACTIVATION;

/// A freshly obtained ticket, encrypted by the caller.
pub struct NewTicket<'a> {
    pub context_id: &'a str,
    pub ciphertext: Vec<u8>,
    pub key_version: i16,
    pub token_generation: i32,
    pub issued_at: DateTime<Utc>,
}

/// Stores (or replaces) a tenant's ticket.
pub async fn store(conn: &mut AsyncPgConnection, ticket: NewTicket<'_>) -> Result<(), DbError> {
    diesel::insert_into(tickets::table)
        .values((
            tickets::context_id.eq(ticket.context_id),
            tickets::ciphertext.eq(&ticket.ciphertext),
            tickets::key_version.eq(ticket.key_version),
            tickets::token_generation.eq(ticket.token_generation),
            tickets::issued_at.eq(ticket.issued_at),
            tickets::last_used_at.eq(ticket.issued_at),
            tickets::rejected_at.eq(None::<DateTime<Utc>>),
        ))
        .on_conflict(tickets::context_id)
        .do_update()
        .set((
            tickets::ciphertext.eq(excluded(tickets::ciphertext)),
            tickets::key_version.eq(excluded(tickets::key_version)),
            tickets::token_generation.eq(excluded(tickets::token_generation)),
            tickets::issued_at.eq(excluded(tickets::issued_at)),
            tickets::last_used_at.eq(excluded(tickets::last_used_at)),
            tickets::rejected_at.eq(None::<DateTime<Utc>>),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// What goes with a ticket just obtained: who obtained it, the audit detail of `ticket_obtained`
/// (never the ticket) and why a pending tenant becomes active.
pub struct Obtained<'a> {
    pub ticket: NewTicket<'a>,
    pub actor: &'a str,
    pub detail: serde_json::Value,
    pub activated_because: &'a str,
    pub at: DateTime<Utc>,
}

/// Stores a ticket just obtained with everything that goes with it, in one statement (so atomically
/// and in one round trip): the ticket, inserted or replacing the previous one; the tenant activated
/// as `lifecycle::ACTIVATION` says (`pending` becomes `active`), and its success recorded (`last_success_at`, no failed attempts);
/// the audit events `ticket_obtained` and, when the tenant was activated, `state_changed`.
/// Returns whether the tenant was activated. The tenant's lease and schedule are left alone.
pub async fn store_obtained(
    conn: &mut AsyncPgConnection,
    obtained: Obtained<'_>,
) -> Result<bool, DbError> {
    // Every CTE reads the snapshot from before the statement, so `before` sees the state as it was;
    // the update's own CASE sees the row as it is when locked. Both must agree to count as activated.
    let row: Activated = Prepared(
        diesel::sql_query(
            "WITH stored AS ( \
                 INSERT INTO tickets (context_id, ciphertext, key_version, token_generation, issued_at, \
                     last_used_at, rejected_at) \
                 VALUES ($1, $2, $3, $4, $5, $5, NULL) \
                 ON CONFLICT (context_id) DO UPDATE SET ciphertext = EXCLUDED.ciphertext, \
                     key_version = EXCLUDED.key_version, token_generation = EXCLUDED.token_generation, \
                     issued_at = EXCLUDED.issued_at, last_used_at = EXCLUDED.last_used_at, \
                     rejected_at = NULL \
                 RETURNING context_id), \
             before AS (SELECT state FROM tenants WHERE context_id = $1), \
             tenant AS ( \
                 UPDATE tenants SET \
                     state = CASE WHEN state = $10 THEN $11 ELSE state END, \
                     state_reason = CASE WHEN state = $10 THEN $6 ELSE state_reason END, \
                     last_success_at = $7, failed_attempts = 0, \
                     needs_attention = false, attention_reason = NULL, attention_at = NULL \
                 WHERE context_id = $1 \
                 RETURNING state), \
             activated AS ( \
                 SELECT 1 FROM before, tenant WHERE before.state = $10 AND tenant.state = $11), \
             events AS ( \
                 INSERT INTO audit_events (context_id, action, actor, detail) \
                 SELECT context_id, $12, $8, $9 FROM stored \
                 UNION ALL \
                 SELECT $1, $13, $8, jsonb_build_object('state', $11, 'reason', $6) \
                 FROM activated \
                 RETURNING action) \
             SELECT count(*) FILTER (WHERE action = $13) AS activated FROM events",
        )
        .bind::<Text, _>(obtained.ticket.context_id)
        .bind::<Bytea, _>(&obtained.ticket.ciphertext)
        .bind::<SmallInt, _>(obtained.ticket.key_version)
        .bind::<Integer, _>(obtained.ticket.token_generation)
        .bind::<Timestamptz, _>(obtained.ticket.issued_at)
        .bind::<Text, _>(obtained.activated_because)
        .bind::<Timestamptz, _>(obtained.at)
        .bind::<Text, _>(obtained.actor)
        .bind::<Jsonb, _>(&obtained.detail)
        .bind::<Text, _>(ACTIVATION.0)
        .bind::<Text, _>(ACTIVATION.1)
        .bind::<Text, _>(AuditAction::TicketObtained)
        .bind::<Text, _>(AuditAction::StateChanged),
    )
    .get_result(conn)
    .await?;
    Ok(row.activated > 0)
}

#[derive(QueryableByName)]
struct Activated {
    #[diesel(sql_type = BigInt)]
    activated: i64,
}

/// A tenant's ticket, if one is cached.
pub async fn find(
    conn: &mut AsyncPgConnection,
    context_id: &str,
) -> Result<Option<StoredTicket>, DbError> {
    Ok(tickets::table
        .find(context_id)
        .select(StoredTicket::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// What the tenant API did with a ticket, and when: it accepted it (SuperOffice's six-hour expiry
/// slides from the last use) or refused it (the next use exchanges anew).
#[derive(Debug, Clone, Copy, AsChangeset)]
#[diesel(table_name = tickets)]
pub struct TicketUse {
    last_used_at: Option<DateTime<Utc>>,
    rejected_at: Option<DateTime<Utc>>,
}

impl TicketUse {
    pub fn accepted(at: DateTime<Utc>) -> Self {
        Self {
            last_used_at: Some(at),
            rejected_at: None,
        }
    }

    pub fn refused(at: DateTime<Utc>) -> Self {
        Self {
            last_used_at: None,
            rejected_at: Some(at),
        }
    }
}

/// Records a use of a tenant's ticket.
pub async fn record_use(
    conn: &mut AsyncPgConnection,
    context_id: &str,
    used: TicketUse,
) -> Result<(), DbError> {
    diesel::update(tickets::table.find(context_id))
        .set(used)
        .execute(conn)
        .await?;
    Ok(())
}

/// Drops a tenant's ticket.
pub async fn delete(conn: &mut AsyncPgConnection, context_id: &str) -> Result<bool, DbError> {
    Ok(diesel::delete(tickets::table.find(context_id))
        .execute(conn)
        .await?
        > 0)
}
