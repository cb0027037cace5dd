//! Postgres through diesel-async: the pool, the schema, migrations, and the queries both services share.

pub mod audit;
pub mod migrate;
pub mod models;
pub mod queue;
pub mod rotation;
pub mod schema;
pub mod state_changes;
pub mod tenants;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tickets;
pub mod work;

use std::time::Duration;

use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::pooled_connection::deadpool::{BuildError, Object, Pool as DeadPool, PoolError};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::config::DatabaseSettings;

/// The connection pool of a process.
pub type Pool = DeadPool<AsyncPgConnection>;
/// A connection taken from the pool.
pub type Connection = Object<AsyncPgConnection>;

/// The channel partner-web notifies when there is new work for partner-service.
pub const WORK_CHANNEL: &str = "partner_work";

/// Database failures, with what we were doing.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("could not build the database pool: {0}")]
    Build(#[from] BuildError),
    #[error("no database connection available: {0}")]
    Pool(#[from] PoolError),
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("database connection failed: {0}")]
    Connect(#[from] diesel::ConnectionError),
    #[error("migrations failed: {0}")]
    Migration(String),
    #[error("stored data is inconsistent: {0}")]
    Inconsistent(String),
}

/// Builds the pool; no connection is made until one is needed.
pub fn pool(settings: &DatabaseSettings) -> Result<Pool, DbError> {
    pool_for_url(
        settings.url(),
        settings.pool_size,
        settings.connect_timeout(),
    )
}

/// Builds a pool for a URL (tests and tools).
pub fn pool_for_url(url: &str, size: usize, timeout: Duration) -> Result<Pool, DbError> {
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(url);
    Ok(DeadPool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .recycle_timeout(Some(timeout))
        .runtime(deadpool_runtime())
        .build()?)
}

fn deadpool_runtime() -> deadpool::Runtime {
    deadpool::Runtime::Tokio1
}

/// Checks that the database answers (readiness).
pub async fn ping(pool: &Pool) -> Result<(), DbError> {
    let mut conn = pool.get().await?;
    diesel::sql_query("SELECT 1").execute(&mut conn).await?;
    Ok(())
}

/// Wakes partner-service (`LISTEN partner_work`). The payload is a context id or empty; never a secret.
pub async fn notify_work(conn: &mut AsyncPgConnection, payload: &str) -> Result<(), DbError> {
    diesel::sql_query("SELECT pg_notify($1, $2)")
        .bind::<diesel::sql_types::Text, _>(WORK_CHANNEL)
        .bind::<diesel::sql_types::Text, _>(payload)
        .execute(conn)
        .await?;
    Ok(())
}
