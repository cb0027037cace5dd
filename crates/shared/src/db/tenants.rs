//! Queries on `tenants`: capture of the system user token, lifecycle changes, the operator view.

use chrono::{DateTime, Utc};
use diesel::dsl::{self, Filter};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::audit::{self, NewAuditEvent};
use super::models::{AuditAction, Tenant, TenantState};
use super::operator::ByOperator;
use super::schema::{tenants, tickets};
use super::{DbError, notify_work};
use crate::crypto::at_rest::Encrypted;
use crate::lifecycle::{self, ACTIVATION, Event, Schedule, Token, Transition};

/// The row of one tenant, by context id.
type Row<'a> = Filter<tenants::table, dsl::Eq<tenants::context_id, &'a str>>;

/// The row of one tenant, by context id: what each query on one tenant starts from.
fn row(context_id: &str) -> Row<'_> {
    tenants::table.filter(tenants::context_id.eq(context_id))
}

/// One tenant by context id.
pub async fn find(
    conn: &mut AsyncPgConnection,
    context_id: &str,
) -> Result<Option<Tenant>, DbError> {
    Ok(row(context_id)
        .select(Tenant::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Every tenant, ordered by context id.
pub async fn list(conn: &mut AsyncPgConnection) -> Result<Vec<Tenant>, DbError> {
    Ok(tenants::table
        .order(tenants::context_id.asc())
        .select(Tenant::as_select())
        .load(conn)
        .await?)
}

/// Tenants counted by lifecycle state (for metrics and the operator view).
pub async fn count_by_state(conn: &mut AsyncPgConnection) -> Result<Vec<(String, i64)>, DbError> {
    Ok(tenants::table
        .group_by(tenants::state)
        .select((tenants::state, diesel::dsl::count_star()))
        .order(tenants::state.asc())
        .load(conn)
        .await?)
}

/// Whether a stored (encrypted) token is the one being captured; the caller can decrypt, the database cannot.
pub type SameToken<'a> = dyn Fn(&Encrypted) -> bool + Send + Sync + 'a;
/// How many tenants are flagged for an operator (`needs_attention`).
pub async fn count_needing_attention(conn: &mut AsyncPgConnection) -> Result<i64, DbError> {
    Ok(tenants::table
        .filter(tenants::needs_attention)
        .count()
        .get_result(conn)
        .await?)
}

/// What an administrator's sign-in tells about a tenant, with the token already encrypted.
pub struct TokenCapture<'a> {
    pub context_id: &'a str,
    pub details: TenantDetails<'a>,
    pub token: Encrypted,
    /// Who signed in (their SuperID user name); recorded, never a secret.
    pub captured_by: &'a str,
    /// Whether a stored token is this one; asked under the tenant's row lock.
    pub same_token: &'a SameToken<'a>,
    /// When SuperID issued the token (the id_token's `iat`); `None` is now. A token issued before the stored
    /// one never replaces it.
    pub token_issued_at: Option<DateTime<Utc>>,
}

/// The tenant as the administrator's id_token describes it, written alike whether a capture creates
/// the tenant or updates it. A missing detail is written as NULL: the sign-in is the latest word on it.
#[derive(Debug, Clone, Copy, Insertable, AsChangeset)]
#[diesel(table_name = tenants, treat_none_as_null = true)]
pub struct TenantDetails<'a> {
    pub environment: &'a str,
    pub company_name: Option<&'a str>,
    pub serial: Option<&'a str>,
    pub webapi_url: Option<&'a str>,
    pub netserver_url: Option<&'a str>,
}

/// The columns a capture writes: the details, the token and who captured it when.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = tenants)]
struct CapturedColumns<'a> {
    #[diesel(embed)]
    details: TenantDetails<'a>,
    system_token_ciphertext: &'a [u8],
    system_token_key_version: i16,
    token_captured_by: &'a str,
    token_captured_at: DateTime<Utc>,
}

impl TokenCapture<'_> {
    fn columns(&self, now: DateTime<Utc>) -> CapturedColumns<'_> {
        CapturedColumns {
            details: self.details,
            system_token_ciphertext: &self.token.bytes,
            system_token_key_version: self.token.key_version,
            token_captured_by: self.captured_by,
            token_captured_at: now,
        }
    }
}

pub use crate::lifecycle::CaptureOutcome;

/// Stores a captured system user token in one transaction: the tenant row (inserted or updated),
/// the dropped ticket when the token changed, an audit event, and a NOTIFY that wakes the service.
///
/// Whether the token changed is decided under the tenant's row lock, so two administrators signing in at
/// once are serialised: the token issued last is kept whichever commits last, and a changed token always
/// drops the ticket, so the ticket left is from the stored token.
pub async fn capture_token(
    conn: &mut AsyncPgConnection,
    capture: TokenCapture<'_>,
) -> Result<CaptureOutcome, DbError> {
    conn.transaction::<_, DbError, _>(async move |conn| {
        {
            let locked = row(capture.context_id)
                .select((
                    tenants::id,
                    tenants::state,
                    tenants::system_token_ciphertext,
                    tenants::system_token_key_version,
                    tenants::token_issued_at,
                ))
                .for_update();
            let existing: Option<Locked> = locked.first(conn).await.optional()?;
            let now = Utc::now();
            let issued_at = capture.token_issued_at.unwrap_or(now);
            let existing = match existing {
                Some(row) => Some(row),
                None => {
                    let created = diesel::insert_into(tenants::table)
                        .values((
                            tenants::context_id.eq(capture.context_id),
                            capture.columns(now),
                            tenants::state.eq(TenantState::Pending),
                            tenants::token_issued_at.eq(issued_at),
                            tenants::token_generation.eq(1),
                            tenants::next_attempt_at.eq(now),
                        ))
                        .on_conflict(tenants::context_id)
                        .do_nothing()
                        .execute(conn)
                        .await?;
                    if created == 1 {
                        None
                    } else {
                        // Another sign-in of the same tenant inserted it after our read (the
                        // insert waited for it to commit): carry on as an update of that row.
                        Some(locked.first(conn).await?)
                    }
                }
            };
            let (outcome, transition) = match existing {
                None => lifecycle::created(),
                Some((id, state, stored_bytes, stored_version, stored_issued_at)) => {
                    let same = match (stored_bytes, stored_version) {
                        (Some(bytes), Some(key_version)) => {
                            (capture.same_token)(&Encrypted { key_version, bytes })
                        }
                        _ => false,
                    };
                    let token = if same {
                        Token::Same
                    } else if stored_issued_at.is_some_and(|stored| issued_at < stored) {
                        Token::Older
                    } else {
                        Token::Different
                    };
                    let (outcome, transition) = lifecycle::capture(state, token);
                    if outcome != CaptureOutcome::Superseded {
                        update_capture(conn, id, transition, stored_issued_at, &capture, now)
                            .await?;
                    }
                    (outcome, transition)
                }
            };
            let action = match outcome {
                CaptureOutcome::Created => AuditAction::TokenCaptured,
                CaptureOutcome::Replaced => AuditAction::TokenReplaced,
                CaptureOutcome::Unchanged => AuditAction::TokenConfirmed,
                CaptureOutcome::Superseded => AuditAction::TokenSuperseded,
            };
            let detail = serde_json::json!({ "company_name": capture.details.company_name });
            let event =
                NewAuditEvent::tenant(capture.context_id, action, capture.captured_by, detail);
            audit::record_waking(conn, event, transition.effects.wake).await?;
            Ok(outcome)
        }
    })
    .await
}

/// The tenant row as `capture_token` locks it: id, state, stored token, its key version and issue time.
type Locked = (
    i64,
    TenantState,
    Option<Vec<u8>>,
    Option<i16>,
    Option<DateTime<Utc>>,
);

/// Updates a locked tenant with a captured token, as the lifecycle decided.
async fn update_capture(
    conn: &mut AsyncPgConnection,
    id: i64,
    transition: Transition,
    stored_issued_at: Option<DateTime<Utc>>,
    capture: &TokenCapture<'_>,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let issued_at = capture.token_issued_at.unwrap_or(now);
    diesel::update(tenants::table.find(id))
        .set((
            capture.columns(now),
            tenants::token_issued_at.eq(stored_issued_at.map_or(issued_at, |s| s.max(issued_at))),
            tenants::state.eq(transition.to),
        ))
        .execute(conn)
        .await?;
    let effects = transition.effects;
    if !effects.new_token {
        return Ok(());
    }
    // A new token: the lifecycle also asks for the ticket dropped, due now and failures reset.
    debug_assert!(
        effects.drop_ticket && effects.schedule == Schedule::Now && effects.reset_failures
    );
    diesel::update(tenants::table.find(id))
        .set((
            tenants::token_generation.eq(tenants::token_generation + 1),
            tenants::state_reason.eq(None::<String>),
            tenants::next_attempt_at.eq(now),
            tenants::failed_attempts.eq(0),
            tenants::last_error.eq(None::<String>),
        ))
        .execute(conn)
        .await?;
    diesel::delete(tickets::table.filter(tickets::context_id.eq(capture.context_id)))
        .execute(conn)
        .await?;
    Ok(())
}

/// When a tenant is due after a transition that reschedules it; `None` when it keeps its time.
fn scheduled(schedule: Schedule) -> Option<Option<DateTime<Utc>>> {
    match schedule {
        Schedule::Keep => None,
        Schedule::Now => Some(Some(Utc::now())),
        Schedule::Never => Some(None),
    }
}

/// Moves a tenant to a lifecycle state with a reason (`lifecycle::set`), and records who did it.
pub async fn set_state(
    conn: &mut AsyncPgConnection,
    context_id: &str,
    state: TenantState,
    reason: &str,
    actor: &str,
) -> Result<bool, DbError> {
    let transition = lifecycle::set(state);
    let effects = transition.effects;
    debug_assert!(effects.reset_failures && effects.wake && effects.schedule != Schedule::Keep);
    conn.transaction::<_, DbError, _>(async move |conn| {
        let updated = diesel::update(row(context_id))
            .set((
                tenants::state.eq(transition.to),
                tenants::state_reason.eq(reason),
                tenants::next_attempt_at.eq(scheduled(effects.schedule).flatten()),
                tenants::failed_attempts.eq(0),
            ))
            .execute(conn)
            .await?;
        let event = state_changed(context_id, actor, state, reason);
        audit::record_if_changed(conn, updated, event, effects.wake).await
    })
    .await
}

/// The audit event of a tenant moved to `state` for `reason`.
fn state_changed<'a>(
    context_id: &'a str,
    actor: &'a str,
    state: TenantState,
    reason: &str,
) -> NewAuditEvent<'a> {
    let detail = serde_json::json!({ "state": state.as_str(), "reason": reason });
    NewAuditEvent::tenant(context_id, AuditAction::StateChanged, actor, detail)
}

/// An operator's disable (the CLI's `tenants disable` and the console's): the tenant stops, its token and
/// work are kept, audited as `state_changed` to `disabled`. `operator::enable` undoes it. False: no tenant.
pub async fn disable(conn: &mut AsyncPgConnection, by: ByOperator<'_>) -> Result<bool, DbError> {
    set_state(
        conn,
        by.context_id,
        TenantState::Disabled,
        "disabled by an operator",
        by.actor,
    )
    .await
}

/// Marks a tenant the caller holds the lease of `active` (a ticket was obtained, or the tenant runs
/// again with a valid one), with an audit event. Unlike `set_state` it neither reschedules the tenant
/// nor wakes the service: the lease holder decides when the tenant is due again.
pub async fn activate(
    conn: &mut AsyncPgConnection,
    context_id: &str,
    reason: &str,
    actor: &str,
) -> Result<bool, DbError> {
    conn.transaction::<_, DbError, _>(async move |conn| {
        let updated = diesel::update(row(context_id).filter(tenants::state.eq(ACTIVATION.0)))
            .set((
                tenants::state.eq(ACTIVATION.1),
                tenants::state_reason.eq(reason),
            ))
            .execute(conn)
            .await?;
        let event = state_changed(context_id, actor, ACTIVATION.1, reason);
        audit::record_if_changed(conn, updated, event, false).await
    })
    .await
}

/// Makes a tenant due now (operator retry, new work).
pub async fn schedule_now(conn: &mut AsyncPgConnection, context_id: &str) -> Result<bool, DbError> {
    let updated = diesel::update(row(context_id))
        .set((
            tenants::next_attempt_at.eq(Utc::now()),
            tenants::failed_attempts.eq(0),
        ))
        .execute(conn)
        .await?;
    Ok(updated > 0)
}

/// When a tenant was last known good and what went wrong last, for the operator view. Only while
/// `owner` holds the tenant's lease: an instance that lost it changes nothing.
pub async fn record_outcome(
    conn: &mut AsyncPgConnection,
    context_id: &str,
    owner: &str,
    error: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), DbError> {
    let target = row(context_id).filter(tenants::lease_owner.eq(owner));
    match error {
        None => {
            diesel::update(target)
                .set((
                    tenants::last_success_at.eq(at),
                    tenants::failed_attempts.eq(0),
                    tenants::needs_attention.eq(false),
                    tenants::attention_reason.eq(None::<String>),
                    tenants::attention_at.eq(None::<DateTime<Utc>>),
                ))
                .execute(conn)
                .await?
        }
        Some(message) => {
            diesel::update(target)
                .set((
                    tenants::last_error.eq(message),
                    tenants::last_error_at.eq(at),
                    tenants::failed_attempts.eq(tenants::failed_attempts + 1),
                ))
                .execute(conn)
                .await?
        }
    };
    Ok(())
}

/// Flags a tenant for an operator without changing its state: `reason` says what was seen (with
/// secrets already removed). The flag keeps the time it was first raised; a success clears it.
/// Only while `owner` holds the tenant's lease.
pub async fn flag_attention(
    conn: &mut AsyncPgConnection,
    context_id: &str,
    owner: &str,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<(), DbError> {
    diesel::update(row(context_id).filter(tenants::lease_owner.eq(owner)))
        .set((
            tenants::needs_attention.eq(true),
            tenants::attention_reason.eq(reason),
            tenants::attention_at.eq(diesel::dsl::sql::<
                diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
            >("coalesce(attention_at, ")
            .bind::<diesel::sql_types::Timestamptz, _>(at)
            .sql(")")),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Tenants whose refusal turned out to be the instance's fault (the circuit opened): their flag is
/// cleared and, unless another pass holds them, they are due at `at`.
pub async fn absolve(
    conn: &mut AsyncPgConnection,
    context_ids: &[String],
    at: DateTime<Utc>,
) -> Result<usize, DbError> {
    if context_ids.is_empty() {
        return Ok(0);
    }
    Ok(diesel::update(
        tenants::table
            .filter(tenants::context_id.eq_any(context_ids))
            .filter(tenants::lease_owner.is_null()),
    )
    .set((
        tenants::needs_attention.eq(false),
        tenants::attention_reason.eq(None::<String>),
        tenants::attention_at.eq(None::<DateTime<Utc>>),
        tenants::next_attempt_at.eq(at),
    ))
    .execute(conn)
    .await?)
}

/// Makes the given tenants due now (their exchanges were paused by the circuit, which closed) and
/// wakes the service.
pub async fn resume(
    conn: &mut AsyncPgConnection,
    context_ids: &[String],
) -> Result<usize, DbError> {
    if context_ids.is_empty() {
        return Ok(0);
    }
    conn.transaction::<_, DbError, _>(async move |conn| {
        let updated = diesel::update(
            tenants::table
                .filter(tenants::context_id.eq_any(context_ids))
                .filter(tenants::lease_owner.is_null())
                .filter(tenants::next_attempt_at.is_not_null()),
        )
        .set(tenants::next_attempt_at.eq(Utc::now()))
        .execute(conn)
        .await?;
        if let Some(first) = context_ids.first() {
            notify_work(conn, first).await?;
        }
        Ok(updated)
    })
    .await
}

/// Writes the state API's answer onto the tenant: its `State`, when it was read, and since when the
/// tenant has not been running (kept while it stays so, cleared when it runs).
pub async fn record_so_state(
    conn: &mut AsyncPgConnection,
    context_id: &str,
    so_state: &str,
    running: bool,
    at: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, DbError> {
    let target = row(context_id);
    let checked = (
        tenants::so_state.eq(so_state),
        tenants::so_state_checked_at.eq(at),
    );
    let since: Option<Option<DateTime<Utc>>> =
        if running {
            diesel::update(target)
                .set((
                    checked,
                    tenants::so_not_running_since.eq(None::<DateTime<Utc>>),
                ))
                .returning(tenants::so_not_running_since)
                .get_result(conn)
                .await
                .optional()?
        } else {
            diesel::update(target)
                .set((
                    checked,
                    tenants::so_not_running_since.eq(diesel::dsl::sql::<
                        diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
                    >(
                        "coalesce(so_not_running_since, "
                    )
                    .bind::<diesel::sql_types::Timestamptz, _>(at)
                    .sql(")")),
                ))
                .returning(tenants::so_not_running_since)
                .get_result(conn)
                .await
                .optional()?
        };
    Ok(since.flatten())
}

/// An operator's retry: the tenant is due now, and a tenant stopped by an earlier failure or by the
/// operator gets another chance (SuperOffice's own states, suspended and deleted, are left alone).
pub async fn operator_retry(
    conn: &mut AsyncPgConnection,
    by: ByOperator<'_>,
) -> Result<bool, DbError> {
    conn.transaction::<_, DbError, _>(async move |conn| {
        let Some(tenant) = find(conn, by.context_id).await? else {
            return Ok(false);
        };
        let state = tenant.state;
        let transition = lifecycle::next(
            state,
            &Event::OperatorRetry {
                has_token: tenant.system_token.is_some(),
            },
        );
        let new_state = transition.to;
        diesel::update(row(by.context_id))
            .set((
                tenants::state.eq(new_state),
                tenants::next_attempt_at.eq(Some(Utc::now())),
                tenants::failed_attempts.eq(0),
                tenants::lease_owner.eq(None::<String>),
                tenants::lease_expires_at.eq(None::<DateTime<Utc>>),
            ))
            .execute(conn)
            .await?;
        let detail = serde_json::json!({ "from": state.as_str(), "to": new_state.as_str() });
        let event = by.event(AuditAction::OperatorRetry, detail);
        audit::record_waking(conn, event, transition.effects.wake).await?;
        Ok(true)
    })
    .await
}

/// Removes a tenant's token, ticket and work; only the audit trail remains, with a record of the purge.
pub async fn purge(conn: &mut AsyncPgConnection, by: ByOperator<'_>) -> Result<bool, DbError> {
    conn.transaction::<_, DbError, _>(async move |conn| {
        // tickets and work_requests go with the row (ON DELETE CASCADE).
        let removed = diesel::delete(row(by.context_id)).execute(conn).await?;
        let event = by.event(AuditAction::TenantPurged, serde_json::json!({}));
        audit::record_if_changed(conn, removed, event, false).await
    })
    .await
}

/// A tenant with its ticket's times, for the operator's list.
pub struct TenantOverview {
    pub tenant: Tenant,
    pub ticket_last_used_at: Option<DateTime<Utc>>,
    pub ticket_rejected: bool,
}

/// A ticket's last use and rejection time, when the tenant has a ticket.
type TicketTimes = Option<(DateTime<Utc>, Option<DateTime<Utc>>)>;

/// Every tenant with its ticket, ordered by context id.
pub async fn overview(conn: &mut AsyncPgConnection) -> Result<Vec<TenantOverview>, DbError> {
    let rows: Vec<(Tenant, TicketTimes)> = tenants::table
        .left_join(tickets::table.on(tickets::context_id.eq(tenants::context_id)))
        .order(tenants::context_id.asc())
        .select((
            Tenant::as_select(),
            (tickets::last_used_at, tickets::rejected_at).nullable(),
        ))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(tenant, ticket)| TenantOverview {
            tenant,
            ticket_last_used_at: ticket.map(|(used, _)| used),
            ticket_rejected: ticket.is_some_and(|(_, rejected)| rejected.is_some()),
        })
        .collect())
}
