//! Test databases: each test gets its own database, cloned from a migrated template, dropped afterwards.
//!
//! The server is `DATABASE_URL` when set, else `postgres://postgres@127.0.0.1:5432/postgres`. When nothing
//! answers there, `scripts/lib.sh`'s `ensure_postgres` starts one (see [`crate::postgres`]).

use std::time::Duration;

use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use url::Url;

use shared::db::models::{AuditAction, AuditEvent};
use shared::db::{DbError, Pool, migrate, pool_for_url};

const DEFAULT_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// Advisory lock key while the template is created ("partnert").
const TEMPLATE_LOCK_KEY: i64 = 0x7061_7274_6e65_7274;

/// A database that exists for one test and is dropped with it.
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
}

impl TestDatabase {
    /// A fresh, migrated database.
    pub async fn create() -> Result<Self, DbError> {
        let admin_url = admin_url();
        crate::postgres::ensure_server(&admin_url).await;
        let template = ensure_template(&admin_url).await?;
        let name = format!("partner_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = AsyncPgConnection::establish(&admin_url).await?;
        let mut attempts = 0;
        loop {
            let created = diesel::sql_query(format!(
                "CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""
            ))
            .execute(&mut admin)
            .await;
            match created {
                Ok(_) => break,
                // Two clones of one template at the same instant can collide; try again shortly.
                Err(e)
                    if attempts < 50 && e.to_string().contains("being accessed by other users") =>
                {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Self {
            url: with_database(&admin_url, &name),
            name,
            admin_url,
        })
    }

    /// A fresh, migrated database and a connection on it; panics when Postgres cannot give them.
    pub async fn connected() -> (Self, AsyncPgConnection) {
        let database = Self::create()
            .await
            .unwrap_or_else(|e| panic!("creating the test database: {e}"));
        let conn = database
            .connect()
            .await
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", database.name));
        (database, conn)
    }

    /// An empty database without any migration applied (for migration tests).
    pub async fn create_empty() -> Result<Self, DbError> {
        let admin_url = admin_url();
        crate::postgres::ensure_server(&admin_url).await;
        let name = format!("partner_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = AsyncPgConnection::establish(&admin_url).await?;
        diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await?;
        Ok(Self {
            url: with_database(&admin_url, &name),
            name,
            admin_url,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A small pool on this database.
    pub fn pool(&self) -> Result<Pool, DbError> {
        pool_for_url(&self.url, 5, Duration::from_secs(10))
    }

    /// A single connection on this database.
    pub async fn connect(&self) -> Result<AsyncPgConnection, DbError> {
        Ok(AsyncPgConnection::establish(&self.url).await?)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs outside async context; a short-lived runtime on its own thread does the work.
        let dropper = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(mut admin) = AsyncPgConnection::establish(&admin_url).await {
                    let _ = diesel::sql_query(format!(
                        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                    ))
                    .execute(&mut admin)
                    .await;
                }
            });
        });
        let _ = dropper.join();
    }
}

/// The server's maintenance URL: `DATABASE_URL` or the local default.
pub fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned())
}

pub(crate) fn with_database(url: &str, name: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) => {
            parsed.set_path(&format!("/{name}"));
            parsed.to_string()
        }
        Err(_) => url.to_owned(),
    }
}

/// The template's name changes whenever a migration changes, so an old template is never reused.
fn template_name() -> String {
    format!("partner_template_{}", migrate::FINGERPRINT)
}

#[derive(diesel::QueryableByName)]
struct Exists {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

async fn ensure_template(admin_url: &str) -> Result<String, DbError> {
    let template = template_name();
    let mut admin = AsyncPgConnection::establish(admin_url).await?;
    diesel::sql_query(format!("SELECT pg_advisory_lock({TEMPLATE_LOCK_KEY})"))
        .execute(&mut admin)
        .await?;
    let result = create_template_if_missing(&mut admin, admin_url, &template).await;
    diesel::sql_query(format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK_KEY})"))
        .execute(&mut admin)
        .await?;
    result.map(|()| template)
}

async fn create_template_if_missing(
    admin: &mut AsyncPgConnection,
    admin_url: &str,
    template: &str,
) -> Result<(), DbError> {
    let found: Exists =
        diesel::sql_query("SELECT count(*) AS count FROM pg_database WHERE datname = $1")
            .bind::<Text, _>(template)
            .get_result(admin)
            .await?;
    if found.count > 0 {
        return Ok(());
    }
    let building = format!("{template}_building");
    diesel::sql_query(format!(
        "DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"
    ))
    .execute(admin)
    .await?;
    diesel::sql_query(format!("CREATE DATABASE \"{building}\""))
        .execute(admin)
        .await?;
    migrate::run_pending(&with_database(admin_url, &building)).await?;
    // Renaming makes the finished template appear atomically.
    diesel::sql_query(format!(
        "ALTER DATABASE \"{building}\" RENAME TO \"{template}\""
    ))
    .execute(admin)
    .await?;
    Ok(())
}

/// Checks what ending `ctx`'s sessions as `actor` leaves behind: none of its sessions, the one
/// session of `other` still signed in, and one `sessions_ended` event by `actor`, which it returns.
pub async fn assert_sessions_ended(
    conn: &mut AsyncPgConnection,
    ctx: &str,
    actor: &str,
    other: &str,
) -> AuditEvent {
    for (tenant, left) in [(ctx, 0), (other, 1)] {
        let count = shared::db::sessions::count_for_tenant(conn, tenant).await;
        let count = count.unwrap_or_else(|e| panic!("counting the sessions of {tenant}: {e}"));
        assert_eq!(count, left, "sessions left signed in to {tenant}");
    }
    let mut events = shared::db::audit::recent_for_tenant(conn, ctx, 5)
        .await
        .unwrap_or_else(|e| panic!("reading the audit trail of {ctx}: {e}"));
    assert_eq!(events.len(), 1, "{events:?}");
    let event = events.remove(0);
    assert_eq!(event.action, AuditAction::SessionsEnded);
    assert_eq!(event.actor, actor);
    event
}
