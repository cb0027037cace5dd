//! The tenant work queue: due tenants are claimed with `FOR UPDATE SKIP LOCKED` and a lease.
//!
//! A tenant is the unit of work: while one instance holds its lease, no other instance exchanges its
//! token or does its work. A crashed instance's lease expires and another instance takes the tenant over.
//!
//! While a tenant is leased, its `next_attempt_at` equals `lease_expires_at` (the claim and each
//! renewal set both), so a crashed holder's tenant is due again when its lease runs out. Anything that
//! makes the tenant due meanwhile (new work, an operator's retry) moves `next_attempt_at` away from the
//! lease; `release` then keeps that time instead of the holder's, so work queued during a pass is never
//! forgotten.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::models::{StoredTicket, Tenant, WorkState};
use super::schema::{tenants, tickets, work_requests};
use super::{DbError, Prepared};
use crate::domain::ContextId;

/// Claims up to `limit` due tenants for `owner` for `lease_secs`. Due: a token is stored, the state
/// allows work (`tenant_state_allows_work`, the SQL twin of `TenantState::allows_work`), `next_attempt_at` has passed, and no live lease is held by another instance.
pub async fn claim_due(
    conn: &mut AsyncPgConnection,
    owner: &str,
    lease_secs: i64,
    limit: i64,
) -> Result<Vec<Claim>, DbError> {
    let claimed_ids: Vec<Claimed> = Prepared(
        diesel::sql_query(
            "UPDATE tenants SET lease_owner = $1, lease_expires_at = now() + make_interval(secs => $2), \
                 next_attempt_at = now() + make_interval(secs => $2) \
             WHERE id IN ( \
                 SELECT id FROM tenants \
                 WHERE next_attempt_at <= now() \
                   AND tenant_state_allows_work(state) \
                   AND system_token_ciphertext IS NOT NULL \
                   AND (lease_expires_at IS NULL OR lease_expires_at < now()) \
                 ORDER BY next_attempt_at \
                 LIMIT $3 \
                 FOR UPDATE SKIP LOCKED) \
             RETURNING id",
        )
        .bind::<Text, _>(owner)
        .bind::<BigInt, _>(lease_secs)
        .bind::<BigInt, _>(limit),
    )
    .load(conn)
    .await?;
    let ids: Vec<i64> = claimed_ids.into_iter().map(|c| c.id).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // The claimed tenants with what their pass needs first (the cached ticket, whether work is open),
    // read in one round trip: a tenant with a valid ticket and no work then costs no other query.
    // This must stay a second statement, after the claim has committed: it reads on a newer snapshot,
    // so work queued by a transaction that committed before the claim took the tenant's row is seen.
    // (Folded into the claim, its EXISTS would run on the claim's older snapshot and could miss it,
    // while the claim overwrote the `next_attempt_at` that request had set.) Work queued after the
    // claim moves `next_attempt_at` away from the lease, which `release` and `release_many` keep.
    let open_work = diesel::dsl::exists(
        work_requests::table
            .filter(work_requests::context_id.eq(tenants::context_id))
            .filter(work_requests::state.eq_any(WorkState::OPEN)),
    );
    let rows: Vec<(Tenant, Option<StoredTicket>, bool)> = tenants::table
        .left_join(tickets::table.on(tickets::context_id.eq(tenants::context_id)))
        .filter(tenants::id.eq_any(&ids))
        .order(tenants::next_attempt_at.asc())
        .select((
            Tenant::as_select(),
            Option::<StoredTicket>::as_select(),
            open_work,
        ))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(tenant, ticket, has_open_work)| Claim {
            tenant,
            ticket,
            has_open_work,
        })
        .collect())
}

/// A claimed tenant, with its cached ticket and whether it has open work, as of the claim.
#[derive(Debug, Clone)]
pub struct Claim {
    pub tenant: Tenant,
    pub ticket: Option<StoredTicket>,
    pub has_open_work: bool,
}

#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Extends a lease still held by `owner`; false when it was lost (expired and taken over).
pub async fn renew_lease(
    conn: &mut AsyncPgConnection,
    context_id: &str,
    owner: &str,
    lease_secs: i64,
) -> Result<bool, DbError> {
    let updated = Prepared(
        diesel::sql_query(
            "UPDATE tenants SET lease_expires_at = now() + make_interval(secs => $3), \
                 next_attempt_at = CASE WHEN next_attempt_at = lease_expires_at \
                     THEN now() + make_interval(secs => $3) ELSE next_attempt_at END \
             WHERE context_id = $1 AND lease_owner = $2",
        )
        .bind::<Text, _>(context_id)
        .bind::<Text, _>(owner)
        .bind::<BigInt, _>(lease_secs),
    )
    .execute(conn)
    .await?;
    Ok(updated == 1)
}

/// Gives a tenant back, due again at `next_attempt_at` (or not until new work arrives, with `None`).
/// When the tenant was made due while leased (new work, an operator's retry), that time wins.
/// Only the lease holder can release; a release after the lease was taken over changes nothing.
pub async fn release(
    conn: &mut AsyncPgConnection,
    context_id: &str,
    owner: &str,
    next_attempt_at: Option<DateTime<Utc>>,
) -> Result<bool, DbError> {
    let updated = Prepared(
        diesel::sql_query(
            "UPDATE tenants SET lease_owner = NULL, lease_expires_at = NULL, \
                 next_attempt_at = CASE WHEN next_attempt_at IS DISTINCT FROM lease_expires_at \
                     THEN next_attempt_at ELSE $3 END \
             WHERE context_id = $1 AND lease_owner = $2",
        )
        .bind::<Text, _>(context_id)
        .bind::<Text, _>(owner)
        .bind::<Nullable<Timestamptz>, _>(next_attempt_at),
    )
    .execute(conn)
    .await?;
    Ok(updated == 1)
}

/// Releases every lease held by `owner` (graceful shutdown): the tenants are due again at once.
pub async fn release_all(conn: &mut AsyncPgConnection, owner: &str) -> Result<usize, DbError> {
    Ok(
        diesel::update(tenants::table.filter(tenants::lease_owner.eq(owner)))
            .set((
                tenants::lease_owner.eq(None::<String>),
                tenants::lease_expires_at.eq(None::<DateTime<Utc>>),
                tenants::next_attempt_at.eq(Some(Utc::now())),
            ))
            .execute(conn)
            .await?,
    )
}

/// One tenant to give back with `release_many`: due again at `next_attempt_at` (or not until new
/// work arrives, with `None`); with `so_state`, the SuperOffice state the state API reported running
/// during the pass, recorded as `tenants::record_so_state` does for a running tenant.
#[derive(Debug, Clone)]
pub struct Release {
    pub context_id: ContextId,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub so_state: Option<String>,
    pub so_state_checked_at: Option<DateTime<Utc>>,
}

/// Gives back many tenants at once, each due again at its own time, with `release`'s rule per
/// tenant: a tenant made due while leased keeps that time, and only `owner`'s leases are released
/// (a tenant taken over meanwhile is left alone). One statement for all of them; the daemon gathers
/// the tenants whose passes ended and gives them back with its next claim round. Returns how many
/// were released.
pub async fn release_many(
    conn: &mut AsyncPgConnection,
    releases: &[Release],
    owner: &str,
) -> Result<usize, DbError> {
    if releases.is_empty() {
        return Ok(0);
    }
    let ids: Vec<&str> = releases.iter().map(|r| r.context_id.as_str()).collect();
    let next: Vec<Option<DateTime<Utc>>> = releases.iter().map(|r| r.next_attempt_at).collect();
    let so_states: Vec<Option<&str>> = releases.iter().map(|r| r.so_state.as_deref()).collect();
    let checked: Vec<Option<DateTime<Utc>>> =
        releases.iter().map(|r| r.so_state_checked_at).collect();
    Ok(Prepared(
        diesel::sql_query(
            "UPDATE tenants SET lease_owner = NULL, lease_expires_at = NULL, \
                 next_attempt_at = CASE WHEN tenants.next_attempt_at IS DISTINCT FROM tenants.lease_expires_at \
                     THEN tenants.next_attempt_at ELSE given.next_attempt_at END, \
                 so_state = coalesce(given.so_state, tenants.so_state), \
                 so_state_checked_at = CASE WHEN given.so_state IS NULL THEN tenants.so_state_checked_at \
                     ELSE coalesce(given.checked_at, now()) END, \
                 so_not_running_since = CASE WHEN given.so_state IS NULL THEN tenants.so_not_running_since \
                     ELSE NULL END \
             FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::timestamptz[]) \
                 AS given(context_id, next_attempt_at, so_state, checked_at) \
             WHERE tenants.context_id = given.context_id AND tenants.lease_owner = $5",
        )
        .bind::<Array<Text>, _>(ids)
        .bind::<Array<Nullable<Timestamptz>>, _>(next)
        .bind::<Array<Nullable<Text>>, _>(so_states)
        .bind::<Array<Nullable<Timestamptz>>, _>(checked)
        .bind::<Text, _>(owner),
    )
    .execute(conn)
    .await?)
}
