//! Work requests: what the web asks the service to do with a tenant's system user.

use chrono::Utc;
use diesel::dsl::{self, Filter, Select};
use diesel::helper_types::AsSelect;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::audit::{self, NewAuditEvent};
use super::models::{AuditAction, WorkKind, WorkRequest, WorkState};
use super::schema::{tenants, work_requests};
use serde::{Deserialize, Serialize};

use super::DbError;

/// Seconds the oldest queued work request has waited (0 when nothing is queued), for the
/// `partner_work_oldest_queued_seconds` gauge.
pub async fn oldest_queued_age_secs(conn: &mut AsyncPgConnection) -> Result<f64, DbError> {
    let oldest: Option<chrono::DateTime<Utc>> = work_requests::table
        .filter(work_requests::state.eq(WorkState::Queued))
        .select(diesel::dsl::min(work_requests::created_at))
        .first(conn)
        .await?;
    Ok(oldest.map_or(0.0, |at| {
        (Utc::now() - at).num_milliseconds().max(0) as f64 / 1000.0
    }))
}

/// What a work request asks for: the `kind` column names the variant, `payload` holds its fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload", rename_all = "snake_case")]
pub enum Work {
    CreateCompany(CreateCompany),
}

/// Create a company in the tenant with the system user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateCompany {
    pub name: String,
}

impl Work {
    /// The `kind` column.
    pub fn kind(&self) -> WorkKind {
        match self {
            Self::CreateCompany(_) => WorkKind::CreateCompany,
        }
    }

    /// The `payload` column.
    pub fn payload(&self) -> serde_json::Value {
        match self {
            Self::CreateCompany(fields) => serde_json::json!(fields),
        }
    }
}

impl WorkRequest {
    /// The typed work of this request; an error says what is wrong with the stored payload.
    pub fn work(&self) -> Result<Work, serde_json::Error> {
        serde_json::from_value(serde_json::json!({ "kind": self.kind, "payload": self.payload }))
    }
}

/// Queues a company creation for a tenant, makes the tenant due now and wakes the service.
pub async fn enqueue_create_company(
    conn: &mut AsyncPgConnection,
    context_id: &str,
    company_name: &str,
    requested_by: &str,
) -> Result<WorkRequest, DbError> {
    let work = Work::CreateCompany(CreateCompany {
        name: company_name.to_owned(),
    });
    conn.transaction::<_, DbError, _>(async move |conn| {
        let request: WorkRequest = diesel::insert_into(work_requests::table)
            .values((
                work_requests::context_id.eq(context_id),
                work_requests::kind.eq(work.kind()),
                work_requests::payload.eq(work.payload()),
                work_requests::requested_by.eq(requested_by),
                work_requests::idempotency_key.eq(uuid::Uuid::new_v4()),
            ))
            .returning(WorkRequest::as_returning())
            .get_result(conn)
            .await?;
        diesel::update(tenants::table.filter(tenants::context_id.eq(context_id)))
            .set(tenants::next_attempt_at.eq(Utc::now()))
            .execute(conn)
            .await?;
        let detail = serde_json::json!({ "work_request": request.id, "kind": work.kind() });
        let event =
            NewAuditEvent::tenant(context_id, AuditAction::WorkQueued, requested_by, detail);
        audit::record_and_wake(conn, event).await?;
        Ok(request)
    })
    .await
}

/// The requests of one tenant: what every read on behalf of a tenant starts from, so that a user never
/// sees another tenant's work.
type OfTenant<'a> = Select<
    Filter<work_requests::table, dsl::Eq<work_requests::context_id, &'a str>>,
    AsSelect<WorkRequest, Pg>,
>;

fn of_tenant(context_id: &str) -> OfTenant<'_> {
    work_requests::table
        .filter(work_requests::context_id.eq(context_id))
        .select(WorkRequest::as_select())
}

/// A work request by id, only within its tenant.
pub async fn find_for_tenant(
    conn: &mut AsyncPgConnection,
    context_id: &str,
    id: i64,
) -> Result<Option<WorkRequest>, DbError> {
    Ok(of_tenant(context_id)
        .filter(work_requests::id.eq(id))
        .first(conn)
        .await
        .optional()?)
}

/// The open (queued or running) requests of a tenant, oldest first.
pub async fn open_for_tenant(
    conn: &mut AsyncPgConnection,
    context_id: &str,
) -> Result<Vec<WorkRequest>, DbError> {
    Ok(of_tenant(context_id)
        .filter(work_requests::state.eq_any(WorkState::OPEN))
        .order(work_requests::id.asc())
        .load(conn)
        .await?)
}

/// The latest requests of a tenant, newest first.
pub async fn recent_for_tenant(
    conn: &mut AsyncPgConnection,
    context_id: &str,
    limit: i64,
) -> Result<Vec<WorkRequest>, DbError> {
    Ok(of_tenant(context_id)
        .order(work_requests::id.desc())
        .limit(limit)
        .load(conn)
        .await?)
}

/// `work_requests` rows of tenants whose lease `owner` holds now: the fence of every write the
/// service makes to a request, so an instance that lost its lease changes nothing.
fn leased_by(owner: &str) -> diesel::dsl::exists<tenants_leased::Query<'_>> {
    diesel::dsl::exists(tenants_leased::query(owner))
}

/// The request `id` while it is in one of the states `from`, behind the fence of `owner`'s lease:
/// what every write of the service to a request targets.
type Fenced<'a> = Filter<
    Filter<
        Filter<work_requests::table, dsl::Eq<work_requests::id, i64>>,
        dsl::EqAny<work_requests::state, &'a [WorkState]>,
    >,
    dsl::exists<tenants_leased::Query<'a>>,
>;

fn fenced<'a>(id: i64, from: &'a [WorkState], owner: &'a str) -> Fenced<'a> {
    work_requests::table
        .filter(work_requests::id.eq(id))
        .filter(work_requests::state.eq_any(from))
        .filter(leased_by(owner))
}

mod tenants_leased {
    use diesel::dsl::{And, Eq, Filter, Gt, Select};
    use diesel::prelude::*;

    use super::super::schema::{tenants, work_requests};

    type Fence<'a> = And<
        And<Eq<tenants::context_id, work_requests::context_id>, Eq<tenants::lease_owner, &'a str>>,
        Gt<tenants::lease_expires_at, diesel::dsl::now>,
    >;

    pub(super) type Query<'a> = Select<Filter<tenants::table, Fence<'a>>, tenants::id>;

    pub(super) fn query(owner: &str) -> Query<'_> {
        tenants::table
            .filter(
                tenants::context_id
                    .eq(work_requests::context_id)
                    .and(tenants::lease_owner.eq(owner))
                    .and(tenants::lease_expires_at.gt(diesel::dsl::now)),
            )
            .select(tenants::id)
    }
}

/// Marks a request as being attempted (before any call leaves the process), counting the attempt.
/// Only an open request of a tenant whose lease `owner` holds: `None` when the lease was lost (or
/// the request is no longer open), and then nothing may be sent for it.
pub async fn mark_running(
    conn: &mut AsyncPgConnection,
    id: i64,
    owner: &str,
) -> Result<Option<WorkRequest>, DbError> {
    Ok(diesel::update(fenced(id, &WorkState::OPEN, owner))
        .set((
            work_requests::state.eq(WorkState::Running),
            work_requests::attempts.eq(work_requests::attempts + 1),
        ))
        .returning(WorkRequest::as_returning())
        .get_result(conn)
        .await
        .optional()?)
}

/// Records the outcome of a running request under `owner`'s lease: done with a result, or failed
/// with a reason for the page. Returns false, changing nothing, when the lease was lost or the
/// request is not running.
pub async fn finish(
    conn: &mut AsyncPgConnection,
    id: i64,
    owner: &str,
    outcome: Result<serde_json::Value, String>,
) -> Result<bool, DbError> {
    settle(conn, id, owner, &[WorkState::Running], outcome).await
}

/// Fails an open (queued or running) request under `owner`'s lease: the tenant was stopped.
pub async fn fail_open(
    conn: &mut AsyncPgConnection,
    id: i64,
    owner: &str,
    reason: &str,
) -> Result<bool, DbError> {
    settle(
        conn,
        id,
        owner,
        &[WorkState::Queued, WorkState::Running],
        Err(reason.to_owned()),
    )
    .await
}

async fn settle(
    conn: &mut AsyncPgConnection,
    id: i64,
    owner: &str,
    from: &[WorkState],
    outcome: Result<serde_json::Value, String>,
) -> Result<bool, DbError> {
    let now = Utc::now();
    let (state, result, error) = match outcome {
        Ok(result) => (WorkState::Done, Some(result), None),
        Err(error) => (WorkState::Failed, None, Some(error)),
    };
    let updated = diesel::update(fenced(id, from, owner))
        .set((
            work_requests::state.eq(state),
            work_requests::result.eq(result),
            work_requests::error.eq(error),
            work_requests::completed_at.eq(Some(now)),
        ))
        .execute(conn)
        .await?;
    Ok(updated == 1)
}

/// Puts a running request back in the queue (shutdown, timeout, transient failure), only under
/// `owner`'s lease. Returns false, changing nothing, when the lease was lost.
pub async fn requeue(
    conn: &mut AsyncPgConnection,
    id: i64,
    owner: &str,
    error: Option<&str>,
) -> Result<bool, DbError> {
    let updated = diesel::update(fenced(id, &[WorkState::Running], owner))
        .set((
            work_requests::state.eq(WorkState::Queued),
            work_requests::error.eq(error),
        ))
        .execute(conn)
        .await?;
    Ok(updated == 1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn work_is_stored_as_its_kind_and_payload() {
        let work = Work::CreateCompany(CreateCompany {
            name: "Fjord AS".into(),
        });
        assert_eq!(work.kind(), WorkKind::CreateCompany);
        assert_eq!(work.payload(), serde_json::json!({ "name": "Fjord AS" }));
        let read: Work = serde_json::from_value(
            serde_json::json!({ "kind": "create_company", "payload": { "name": "Fjord AS" } }),
        )
        .unwrap();
        assert_eq!(read, work);
        let nameless = serde_json::from_value::<Work>(
            serde_json::json!({ "kind": "create_company", "payload": { "title": "x" } }),
        );
        assert!(nameless.is_err());
    }
}
