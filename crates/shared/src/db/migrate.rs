//! Applies the embedded migrations, one process at a time.

use diesel::Connection;
use diesel::RunQueryDsl;
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::DbError;

/// The migrations of `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// A digest of every migration file (from build.rs): changes whenever a migration changes.
pub const FINGERPRINT: &str = env!("MIGRATIONS_FINGERPRINT");

/// Advisory lock key held while migrating ("partnerm" in ASCII), so concurrent runs queue up.
const MIGRATION_LOCK_KEY: i64 = 0x7061_7274_6e65_726d;

/// Applies pending migrations and returns the versions applied (empty when the schema was current).
///
/// Safe to run twice and from several processes at once: a session advisory lock serialises the
/// runs, and each run applies only what is still pending once it holds the lock.
pub async fn run_pending(url: &str) -> Result<Vec<String>, DbError> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || run_pending_blocking(&url))
        .await
        .map_err(|e| DbError::Migration(format!("migration task failed: {e}")))?
}

fn run_pending_blocking(url: &str) -> Result<Vec<String>, DbError> {
    let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(url)?;
    diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
        .execute(&mut conn)?;
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|versions| versions.iter().map(ToString::to_string).collect::<Vec<_>>())
        .map_err(|e| DbError::Migration(e.to_string()));
    let unlocked = diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
        .execute(&mut conn);
    let applied = applied?;
    unlocked?;
    Ok(applied)
}

/// Versions applied to the database, oldest first.
pub async fn applied_versions(url: &str) -> Result<Vec<String>, DbError> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url)?;
        let versions = conn
            .applied_migrations()
            .map_err(|e| DbError::Migration(e.to_string()))?;
        let mut versions: Vec<String> = versions.iter().map(ToString::to_string).collect();
        versions.sort();
        Ok(versions)
    })
    .await
    .map_err(|e| DbError::Migration(format!("migration task failed: {e}")))?
}
