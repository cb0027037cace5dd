//! The operator's tenant commands that need a database, run as the built binary.

use std::process::Output;

use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use shared::db::models::TenantState;
use shared::db::sessions::{self, SessionRow};
use testkit::TestDatabase;

use crate::binary::{partner_service, stdout};

fn run(database_url: &str, args: &[&str]) -> Output {
    partner_service()
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("USER", "alice")
        .env_remove("SUDO_USER")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn end_sessions_ends_every_session_of_the_tenant_and_is_audited() {
    let (database, mut conn) = TestDatabase::connected().await;
    for (id, ctx) in [("a", "Cust7"), ("b", "Cust7"), ("c", "Cust8")] {
        let hash = sessions::id_hash(id);
        sessions::insert(
            &mut conn,
            SessionRow {
                id_hash: &hash,
                context_id: Some(ctx),
                subject: Some("someone"),
                state_ciphertext: b"sealed",
                key_version: 1,
            },
        )
        .await
        .unwrap();
    }
    let output = run(database.url(), &["tenants", "end-sessions", "cust7"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        stdout(&output),
        "Cust7: 2 sessions ended; their users must sign in again\n"
    );
    // Only the named tenant's sessions end.
    testkit::db::assert_sessions_ended(&mut conn, "Cust7", "operator:alice", "Cust8").await;

    let refused = run(database.url(), &["tenants", "end-sessions", "nobody"]);
    assert!(!refused.status.success());
    let error = String::from_utf8(refused.stderr).unwrap();
    assert!(error.contains("nobody"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tenants_list_shows_the_last_error_only_after_a_failure() {
    let database = TestDatabase::create().await.unwrap();
    let mut conn = database.connect().await.unwrap();
    diesel::sql_query(
        "INSERT INTO tenants (context_id, environment, state, state_reason, last_error, last_error_at, \
             last_success_at) \
         VALUES ('Cust1', 'custom', $1, 'system user ticket obtained', 'tenant timed out', \
                 now() - interval '1 hour', now()), \
                ('Cust2', 'custom', $1, 'system user ticket obtained', 'SuperOffice answered 503', \
                 now(), now() - interval '1 hour'), \
                ('Cust3', 'custom', $2, 'the tenant revoked the application', NULL, NULL, NULL)",
    )
    .bind::<Text, _>(TenantState::Active)
    .bind::<Text, _>(TenantState::Revoked)
    .execute(&mut conn)
    .await
    .unwrap();
    let output = run(database.url(), &["tenants", "list"]);
    assert!(output.status.success(), "{output:?}");
    let table = stdout(&output);
    let line = |ctx: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{ctx} ")))
            .unwrap_or_else(|| panic!("no {ctx} in {table}"))
            .to_owned()
    };
    assert!(!table.contains("system user ticket obtained"), "{table}");
    assert!(!line("Cust1").contains("tenant timed out"), "{table}");
    assert!(line("Cust1").trim_end().ends_with('-'), "{table}");
    assert!(
        line("Cust2").contains("SuperOffice answered 503"),
        "{table}"
    );
    assert!(
        line("Cust3").contains("the tenant revoked the application"),
        "{table}"
    );
}
