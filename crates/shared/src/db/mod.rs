//! Postgres through diesel-async: the pool, the schema, migrations, and the queries both services share.

pub mod audit;
pub mod migrate;
pub mod models;
pub mod operator;
pub mod queue;
pub mod rotation;
pub mod schema;
pub mod sessions;
pub mod state_changes;
pub mod tenants;
pub mod tickets;
pub mod work;
pub mod work_limits;

use std::time::Duration;

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};

use diesel_async::pooled_connection::deadpool::{BuildError, Object, Pool as DeadPool, PoolError};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
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
///
/// A connection handed back to the pool is reused without a test query (`RecyclingMethod::Fast`):
/// the default sends `SELECT 1` on every checkout, one extra round trip per `pool.get()`, which was
/// a large share of the daemon's per-tenant cost (see BENCHMARKS.md). A connection whose socket the
/// server closed (a restart) is still discarded on checkout, since the driver marks it closed once
/// its background task sees the end of the stream; a query on a connection that dies between
/// checkout and use fails with an error, which every caller already handles.
pub fn pool_for_url(url: &str, size: usize, timeout: Duration) -> Result<Pool, DbError> {
    let mut config = ManagerConfig::default();
    config.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
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

/// Raw SQL that is prepared once per connection and reused afterwards, as the query builder's own
/// statements are. diesel treats every `sql_query` as not cacheable (its text could embed values), so
/// each execution would prepare it anew: one round trip more per query, on the daemon's hottest
/// paths. Wrap only a `sql_query` whose text is a constant and whose values are all bound; the cache
/// is keyed by that text.
#[derive(Debug, Clone)]
pub struct Prepared<Q>(pub Q);

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Prepared<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> diesel::QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> diesel::QueryResult<bool> {
        Ok(true)
    }
}

impl<Q> QueryId for Prepared<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Prepared<Q> {
    type SqlType = Q::SqlType;
}

/// Checks that the database answers (readiness).
pub async fn ping(pool: &Pool) -> Result<(), DbError> {
    let mut conn = pool.get().await?;
    diesel::sql_query("SELECT 1").execute(&mut conn).await?;
    Ok(())
}

/// Exports the pool's state as gauges (`partner_db_pool_connections{state="in_use"|"idle"}`,
/// `partner_db_pool_max`, `partner_db_pool_waiting`); call it before rendering `/metrics`.
pub fn export_pool_gauges(pool: &Pool) {
    let status = pool.status();
    let idle = status.available;
    let in_use = status.size.saturating_sub(idle);
    metrics::gauge!("partner_db_pool_connections", "state" => "in_use").set(in_use as f64);
    metrics::gauge!("partner_db_pool_connections", "state" => "idle").set(idle as f64);
    metrics::gauge!("partner_db_pool_max").set(status.max_size as f64);
    metrics::gauge!("partner_db_pool_waiting").set(status.waiting as f64);
}

/// Wakes partner-service (`LISTEN partner_work`). The payload is a context id or empty; never a secret.
pub async fn notify_work(conn: &mut AsyncPgConnection, payload: &str) -> Result<(), DbError> {
    Prepared(
        diesel::sql_query("SELECT pg_notify($1, $2)")
            .bind::<diesel::sql_types::Text, _>(WORK_CHANNEL)
            .bind::<diesel::sql_types::Text, _>(payload),
    )
    .execute(conn)
    .await?;
    Ok(())
}
