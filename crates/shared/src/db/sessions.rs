//! partner-web's sessions (`web_sessions`): shared by every instance, ended by sign-out, by the idle and
//! the absolute timeout, and by an operator for a whole tenant.
//!
//! Rows are keyed by the SHA-256 of the id in the cookie and hold the session's state encrypted; this
//! module stores and returns the bytes and leaves encryption to the caller.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bytea, Nullable, SmallInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::audit;
use super::models::AuditAction;
use super::operator::ByOperator;
use super::schema::web_sessions;
use super::{DbError, Prepared};

/// A session's row as partner-web writes it.
#[derive(Insertable)]
#[diesel(table_name = web_sessions)]
pub struct SessionRow<'a> {
    /// SHA-256 of the id in the cookie.
    pub id_hash: &'a [u8],
    /// The signed-in user's tenant, when someone is signed in.
    pub context_id: Option<&'a str>,
    /// The signed-in user's SuperID user name.
    pub subject: Option<&'a str>,
    pub state_ciphertext: &'a [u8],
    pub key_version: i16,
}

/// The encrypted state of a live session.
#[derive(QueryableByName)]
pub struct StoredSession {
    #[diesel(sql_type = Bytea)]
    pub state_ciphertext: Vec<u8>,
    #[diesel(sql_type = SmallInt)]
    pub key_version: i16,
}

impl std::fmt::Debug for StoredSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "StoredSession(key version {}, {} bytes)",
            self.key_version,
            self.state_ciphertext.len()
        )
    }
}

/// How long sessions live: `idle` after the last request, `max_age` after sign-in.
#[derive(Debug, Clone, Copy)]
pub struct Lifetime {
    pub idle: Duration,
    pub max_age: Duration,
}

/// What a row is keyed by: the SHA-256 of the id in the cookie.
pub fn id_hash(session_id: &str) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(session_id.as_bytes()).into()
}

fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// A new session.
#[tracing::instrument(skip_all)]
pub async fn insert(conn: &mut AsyncPgConnection, row: SessionRow<'_>) -> Result<(), DbError> {
    diesel::insert_into(web_sessions::table)
        .values(row)
        .execute(conn)
        .await?;
    Ok(())
}

/// The state of a session that has neither been idle too long nor lived too long (by the database's
/// clock, which every instance shares); `None` for an unknown, ended or expired session.
///
/// The same round trip marks the session used now, unless it was marked within the last `resolution`:
/// a busy session costs one write per `resolution` rather than one per request, and the idle timeout is
/// that much coarser.
#[tracing::instrument(skip_all)]
pub async fn load_live(
    conn: &mut AsyncPgConnection,
    id_hash: &[u8],
    lifetime: Lifetime,
    resolution: Duration,
) -> Result<Option<StoredSession>, DbError> {
    Ok(Prepared(
        diesel::sql_query(
            "WITH live AS ( \
                 SELECT id_hash, state_ciphertext, key_version, last_seen_at FROM web_sessions \
                 WHERE id_hash = $1 \
                   AND last_seen_at > now() - $2 * interval '1 second' \
                   AND created_at > now() - $3 * interval '1 second'), \
             touched AS ( \
                 UPDATE web_sessions SET last_seen_at = now() \
                 WHERE id_hash IN (SELECT id_hash FROM live \
                                   WHERE last_seen_at < now() - $4 * interval '1 second')) \
             SELECT state_ciphertext, key_version FROM live",
        )
        .bind::<Bytea, _>(id_hash)
        .bind::<BigInt, _>(seconds(lifetime.idle))
        .bind::<BigInt, _>(seconds(lifetime.max_age))
        .bind::<BigInt, _>(seconds(resolution)),
    )
    .get_result(conn)
    .await
    .optional()?)
}

/// Replaces a live session's state and marks it used now. Returns false when the session no longer
/// lives (signed out, ended or expired meanwhile): it is not brought back.
#[tracing::instrument(skip_all)]
pub async fn update(
    conn: &mut AsyncPgConnection,
    row: SessionRow<'_>,
    lifetime: Lifetime,
) -> Result<bool, DbError> {
    let updated = Prepared(
        diesel::sql_query(
            "UPDATE web_sessions SET context_id = $2, subject = $3, state_ciphertext = $4, \
                 key_version = $5, last_seen_at = now() \
             WHERE id_hash = $1 \
               AND last_seen_at > now() - $6 * interval '1 second' \
               AND created_at > now() - $7 * interval '1 second'",
        )
        .bind::<Bytea, _>(row.id_hash)
        .bind::<Nullable<Text>, _>(row.context_id)
        .bind::<Nullable<Text>, _>(row.subject)
        .bind::<Bytea, _>(row.state_ciphertext)
        .bind::<SmallInt, _>(row.key_version)
        .bind::<BigInt, _>(seconds(lifetime.idle))
        .bind::<BigInt, _>(seconds(lifetime.max_age)),
    )
    .execute(conn)
    .await?;
    Ok(updated > 0)
}

/// Ends one session (sign-out).
#[tracing::instrument(skip_all)]
pub async fn delete(conn: &mut AsyncPgConnection, id_hash: &[u8]) -> Result<(), DbError> {
    diesel::delete(web_sessions::table.filter(web_sessions::id_hash.eq(id_hash)))
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends every session signed in to a tenant and records who did it. Returns how many ended.
#[tracing::instrument(skip_all, fields(tenant = by.context_id))]
pub async fn end_for_tenant(
    conn: &mut AsyncPgConnection,
    by: ByOperator<'_>,
) -> Result<usize, DbError> {
    conn.transaction::<_, DbError, _>(async move |conn| {
        let ended =
            diesel::delete(web_sessions::table.filter(web_sessions::context_id.eq(by.context_id)))
                .execute(conn)
                .await?;
        let detail = serde_json::json!({ "sessions": ended });
        audit::record(conn, by.event(AuditAction::SessionsEnded, detail)).await?;
        Ok(ended)
    })
    .await
}

/// Removes up to `batch` expired sessions; returns how many. Call again while it returns `batch`.
#[tracing::instrument(skip_all)]
pub async fn purge_expired(
    conn: &mut AsyncPgConnection,
    lifetime: Lifetime,
    batch: i64,
) -> Result<usize, DbError> {
    Ok(Prepared(
        diesel::sql_query(
            "DELETE FROM web_sessions WHERE id_hash IN ( \
                 SELECT id_hash FROM web_sessions \
                 WHERE last_seen_at <= now() - $1 * interval '1 second' \
                    OR created_at <= now() - $2 * interval '1 second' \
                 LIMIT $3)",
        )
        .bind::<BigInt, _>(seconds(lifetime.idle))
        .bind::<BigInt, _>(seconds(lifetime.max_age))
        .bind::<BigInt, _>(batch),
    )
    .execute(conn)
    .await?)
}

/// How many sessions are signed in to a tenant (the operator's view and tests).
#[tracing::instrument(skip_all)]
pub async fn count_for_tenant(
    conn: &mut AsyncPgConnection,
    context_id: &str,
) -> Result<i64, DbError> {
    Ok(web_sessions::table
        .filter(web_sessions::context_id.eq(context_id))
        .count()
        .get_result(conn)
        .await?)
}
