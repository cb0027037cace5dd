//! The cached system user ticket of each tenant (encrypted; see `crypto::at_rest`).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::DbError;
use super::models::StoredTicket;
use super::schema::tickets;

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

/// Records a use: SuperOffice's six-hour expiry slides from the last use.
pub async fn touch(
    conn: &mut AsyncPgConnection,
    context_id: &str,
    at: DateTime<Utc>,
) -> Result<(), DbError> {
    diesel::update(tickets::table.find(context_id))
        .set(tickets::last_used_at.eq(at))
        .execute(conn)
        .await?;
    Ok(())
}

/// Marks the ticket refused by the tenant API; the next use exchanges anew.
pub async fn mark_rejected(
    conn: &mut AsyncPgConnection,
    context_id: &str,
    at: DateTime<Utc>,
) -> Result<(), DbError> {
    diesel::update(tickets::table.find(context_id))
        .set(tickets::rejected_at.eq(Some(at)))
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
