//! Limits on the work users may queue for a tenant's system user, counted from `work_requests` so they
//! hold across every partner-web instance.

use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::models::WorkRequest;
use super::models::WorkState;
use super::{DbError, Prepared, work};

/// The configured limits.
#[derive(Debug, Clone, Copy)]
pub struct WorkLimits {
    /// Requests one user may queue in a minute.
    pub per_user_per_minute: u32,
    /// Requests one tenant may queue in a minute, all its users together.
    pub per_tenant_per_minute: u32,
    /// Requests of one tenant open (queued or running) at once.
    pub open_per_tenant: u32,
}

/// Which limit a request would exceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitExceeded {
    UserPerMinute(u32),
    TenantPerMinute(u32),
    OpenPerTenant(u32),
}

impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UserPerMinute(limit) => write!(
                f,
                "You have asked for {limit} companies in the last minute, the most one user may. Wait a minute and try again."
            ),
            Self::TenantPerMinute(limit) => write!(
                f,
                "Your tenant has asked for {limit} companies in the last minute, the most one tenant may. Wait a minute and try again."
            ),
            Self::OpenPerTenant(limit) => write!(
                f,
                "Your tenant already has {limit} requests waiting for the system user, the most it may have. Try again when some of them are done."
            ),
        }
    }
}

#[derive(diesel::QueryableByName)]
struct Counts {
    #[diesel(sql_type = BigInt)]
    user_recent: i64,
    #[diesel(sql_type = BigInt)]
    tenant_recent: i64,
    #[diesel(sql_type = BigInt)]
    open: i64,
}

/// Queues "create company" for the tenant's system user unless it would exceed a limit; then nothing is
/// written. The tenant's requests are counted and queued under a transaction-scoped advisory lock on the
/// tenant, so concurrent requests (on any instance) cannot both slip under a limit.
#[tracing::instrument(skip_all, fields(tenant = context_id))]
pub async fn enqueue_create_company_within(
    conn: &mut AsyncPgConnection,
    context_id: &str,
    company_name: &str,
    requested_by: &str,
    limits: WorkLimits,
) -> Result<Result<WorkRequest, LimitExceeded>, DbError> {
    conn.transaction::<_, DbError, _>(async move |conn| {
        Prepared(
            diesel::sql_query(
                "SELECT pg_advisory_xact_lock(hashtextextended('partner_work_limits:' || $1, 0))",
            )
            .bind::<Text, _>(context_id),
        )
        .execute(conn)
        .await?;
        let counts: Counts = Prepared(
            diesel::sql_query(
                "SELECT \
                   count(*) FILTER (WHERE created_at > now() - interval '1 minute' AND requested_by = $2) \
                     AS user_recent, \
                   count(*) FILTER (WHERE created_at > now() - interval '1 minute') AS tenant_recent, \
                   count(*) FILTER (WHERE state = ANY($3)) AS open \
                 FROM work_requests \
                 WHERE context_id = $1 \
                   AND (created_at > now() - interval '1 minute' OR state = ANY($3))",
            )
            .bind::<Text, _>(context_id)
            .bind::<Text, _>(requested_by)
            .bind::<diesel::sql_types::Array<Text>, _>(WorkState::OPEN.to_vec()),
        )
        .get_result(conn)
        .await?;
        if counts.user_recent >= i64::from(limits.per_user_per_minute) {
            return Ok(Err(LimitExceeded::UserPerMinute(
                limits.per_user_per_minute,
            )));
        }
        if counts.tenant_recent >= i64::from(limits.per_tenant_per_minute) {
            return Ok(Err(LimitExceeded::TenantPerMinute(
                limits.per_tenant_per_minute,
            )));
        }
        if counts.open >= i64::from(limits.open_per_tenant) {
            return Ok(Err(LimitExceeded::OpenPerTenant(limits.open_per_tenant)));
        }
        let request =
            work::enqueue_create_company(conn, context_id, company_name, requested_by).await?;
        Ok(Ok(request))
    })
    .await
}
