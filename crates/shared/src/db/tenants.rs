//! Queries on `tenants`.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::DbError;
use super::models::Tenant;
use super::schema::tenants;

/// One tenant by context id.
pub async fn find(
    conn: &mut AsyncPgConnection,
    context_id: &str,
) -> Result<Option<Tenant>, DbError> {
    Ok(tenants::table
        .filter(tenants::context_id.eq(context_id))
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
