//! The database layer against a real Postgres: per-test databases, migrations, schema, audit trail.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;
use shared::db::audit::{self, NewAuditEvent};
use shared::db::models::{AuditAction, Tenant, TenantState};
use shared::db::schema::tenants;
use shared::db::{self, migrate};
use testkit::TestDatabase;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

#[tokio::test(flavor = "multi_thread")]
async fn schema_rs_matches_the_migrated_database() {
    let (_database, mut conn) = TestDatabase::connected().await;
    diesel::sql_query(
        "INSERT INTO tenants (context_id, environment, company_name, serial, webapi_url, netserver_url, \
         state, state_reason, system_token_ciphertext, system_token_key_version, token_captured_by, \
         token_captured_at) VALUES ('Cust1', 'sod', 'A', '1', 'w', 'n', $1, 'r', '\\x00', 1, 'u', now())",
    )
    .bind::<Text, _>(TenantState::Active)
    .execute(&mut conn)
    .await
    .unwrap();
    // Loading every column through schema.rs fails if a name or a type differs from the migration.
    let tenant: Tenant = tenants::table
        .select(Tenant::as_select())
        .first(&mut conn)
        .await
        .unwrap();
    assert_eq!(tenant.context_id, "Cust1");
    let token = tenant.system_token.unwrap();
    assert_eq!((token.key_version, token.bytes), (1, vec![0]));
    audit::record(
        &mut conn,
        NewAuditEvent {
            context_id: Some("Cust1"),
            action: AuditAction::TokenConfirmed,
            actor: "tester",
            detail: serde_json::json!({"k": 1}),
        },
    )
    .await
    .unwrap();
    let events = audit::recent_for_tenant(&mut conn, "Cust1", 10)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].detail["k"], 1);
    // Columns that exist in the database but not in schema.rs would go unnoticed above: count them.
    let columns: Count = diesel::sql_query(
        "SELECT count(*) AS count FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name IN ('tenants', 'audit_events')",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    assert_eq!(columns.count, 30 + 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_events_are_append_only() {
    let (_database, mut conn) = TestDatabase::connected().await;
    audit::record(
        &mut conn,
        NewAuditEvent {
            context_id: None,
            action: AuditAction::TenantPurged,
            actor: "b",
            detail: serde_json::json!({}),
        },
    )
    .await
    .unwrap();
    let update = diesel::sql_query("UPDATE audit_events SET actor = 'x'")
        .execute(&mut conn)
        .await;
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = diesel::sql_query("DELETE FROM audit_events")
        .execute(&mut conn)
        .await;
    assert!(delete.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn tenant_rows_are_checked_by_the_schema() {
    let (_database, mut conn) = TestDatabase::connected().await;
    for bad in [
        "INSERT INTO tenants (context_id, environment) VALUES ('Customer1', 'sod')",
        "INSERT INTO tenants (context_id, environment) VALUES ('Cust1', 'prod')",
        "INSERT INTO tenants (context_id, environment, state) VALUES ('Cust1', 'sod', 'paused')",
        "INSERT INTO tenants (context_id, environment, system_token_ciphertext) VALUES ('Cust1', 'sod', '\\x00')",
    ] {
        assert!(
            diesel::sql_query(bad).execute(&mut conn).await.is_err(),
            "{bad}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn migrations_run_twice_and_concurrently_leave_one_schema() {
    let database = TestDatabase::create_empty().await.unwrap();
    let url = database.url().to_owned();
    let (a, b, c) = tokio::join!(
        migrate::run_pending(&url),
        migrate::run_pending(&url),
        migrate::run_pending(&url)
    );
    let applied: Vec<Vec<String>> = vec![a.unwrap(), b.unwrap(), c.unwrap()];
    // Exactly one run applied the migrations; the others found nothing pending.
    assert_eq!(
        applied.iter().filter(|v| !v.is_empty()).count(),
        1,
        "{applied:?}"
    );
    assert!(migrate::run_pending(&url).await.unwrap().is_empty());
    let versions = migrate::applied_versions(&url).await.unwrap();
    let expected: Count = {
        let mut conn = database.connect().await.unwrap();
        diesel::sql_query("SELECT count(*) AS count FROM __diesel_schema_migrations")
            .get_result(&mut conn)
            .await
            .unwrap()
    };
    assert_eq!(versions.len() as i64, expected.count);
    assert!(!versions.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn each_test_database_is_separate_and_dropped() {
    let first = TestDatabase::create().await.unwrap();
    let second = TestDatabase::create().await.unwrap();
    assert_ne!(first.name(), second.name());
    let name = first.name().to_owned();
    drop(first);
    let mut conn = second.connect().await.unwrap();
    let left: Count =
        diesel::sql_query("SELECT count(*) AS count FROM pg_database WHERE datname = $1")
            .bind::<Text, _>(&name)
            .get_result(&mut conn)
            .await
            .unwrap();
    assert_eq!(left.count, 0);
    let pool = second.pool().unwrap();
    db::ping(&pool).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn state_change_notifications_match_schema_rs() {
    use shared::db::schema::state_change_notifications as scn;
    let (_database, mut conn) = TestDatabase::connected().await;
    diesel::sql_query(
        "INSERT INTO state_change_notifications (idempotency_key, context_id, change_type, \
         token_issued_at, version_name, file_version, public_endpoint, outcome) \
         VALUES ('k', 'Cust1', 'Move', now(), 'v', 'f', 'sod3.superoffice.com', 'urls_cleared')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    type Row = (
        i64,
        String,
        String,
        String,
        Option<chrono::DateTime<chrono::Utc>>,
        Option<String>,
        Option<String>,
        Option<String>,
        String,
        chrono::DateTime<chrono::Utc>,
    );
    let row: Row = scn::table
        .select((
            scn::id,
            scn::idempotency_key,
            scn::context_id,
            scn::change_type,
            scn::token_issued_at,
            scn::version_name,
            scn::file_version,
            scn::public_endpoint,
            scn::outcome,
            scn::received_at,
        ))
        .first(&mut conn)
        .await
        .unwrap();
    assert_eq!(row.7.as_deref(), Some("sod3.superoffice.com"));
    assert_eq!(
        crate::db::column_count(&mut conn, "state_change_notifications").await,
        10
    );
    let duplicate = diesel::sql_query(
        "INSERT INTO state_change_notifications (idempotency_key, context_id, change_type, outcome) \
         VALUES ('k', 'Cust1', 'Move', 'x')",
    )
    .execute(&mut conn)
    .await;
    assert!(duplicate.is_err(), "the idempotency key is unique");
}

#[derive(QueryableByName)]
struct PreparedStatement {
    #[diesel(sql_type = Text)]
    statement: String,
}

async fn prepared_statements(conn: &mut diesel_async::AsyncPgConnection) -> Vec<String> {
    diesel::sql_query("SELECT statement FROM pg_prepared_statements")
        .load::<PreparedStatement>(conn)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.statement)
        .collect()
}

/// `db::Prepared` SQL is prepared once per connection and then reused (a named statement the server
/// keeps); a plain `sql_query` is prepared anew each time and never kept.
#[tokio::test(flavor = "multi_thread")]
async fn prepared_raw_sql_is_prepared_once_per_connection() {
    let (_db, mut conn) = TestDatabase::connected().await;
    for _ in 0..3 {
        db::notify_work(&mut conn, "Cust1").await.unwrap();
        diesel::sql_query("SELECT pg_notify($1, 'plain')")
            .bind::<Text, _>(db::WORK_CHANNEL)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let kept = prepared_statements(&mut conn).await;
    let notify: Vec<&String> = kept.iter().filter(|s| s.contains("pg_notify")).collect();
    assert_eq!(
        notify,
        [&"SELECT pg_notify($1, $2)".to_owned()],
        "one kept statement for the prepared SQL, none for the plain one: {kept:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_actions_match_the_schema_check() {
    let database = TestDatabase::create().await.unwrap();
    let mut conn = database.connect().await.unwrap();
    for action in AuditAction::ALL {
        audit::record(
            &mut conn,
            NewAuditEvent {
                context_id: None,
                action,
                actor: "tester",
                detail: serde_json::json!({}),
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{action} refused: {e}"));
    }
    let unknown = diesel::sql_query(
        "INSERT INTO audit_events (action, actor, detail) VALUES ($1, 'tester', '{}')",
    )
    .bind::<diesel::sql_types::Text, _>("made_up")
    .execute(&mut conn)
    .await;
    assert!(unknown.is_err(), "an unknown action is refused");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sql_twin_of_allows_work_agrees() {
    #[derive(diesel::QueryableByName)]
    struct Allows {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        allows: bool,
    }
    let database = TestDatabase::create().await.unwrap();
    let mut conn = database.connect().await.unwrap();
    for state in TenantState::ALL {
        let row: Allows = diesel::sql_query("SELECT tenant_state_allows_work($1) AS allows")
            .bind::<diesel::sql_types::Text, _>(state)
            .get_result(&mut conn)
            .await
            .unwrap();
        assert_eq!(row.allows, state.allows_work(), "{state}");
    }
}

/// How many columns a table of the public schema has.
pub async fn column_count(conn: &mut diesel_async::AsyncPgConnection, table: &str) -> i64 {
    let columns: Count = diesel::sql_query(
        "SELECT count(*) AS count FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name = $1",
    )
    .bind::<Text, _>(table)
    .get_result(conn)
    .await
    .unwrap();
    columns.count
}
