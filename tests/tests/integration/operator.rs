//! The operator commands against a real database, run as the real binary.

use std::process::Output;

use diesel_async::AsyncPgConnection;
use e2e::{run, test_secrets};
use shared::db::models::{Tenant, TenantState};
use testkit::TestDatabase;

/// `partner-service tenants ARGS` against `db`, run by the operator `ops`.
fn tenants(db: &TestDatabase, args: &[&str]) -> Output {
    let mut env = test_secrets();
    env.push(("DATABASE_URL", db.url().to_owned()));
    env.push(("USER", "ops".to_owned()));
    let args: Vec<&str> = std::iter::once("tenants")
        .chain(args.iter().copied())
        .collect();
    run("partner-service", &args, &env)
}

async fn find(conn: &mut AsyncPgConnection, ctx: &str) -> Option<Tenant> {
    shared::db::tenants::find(conn, ctx).await.unwrap()
}

async fn seed(db: &TestDatabase, ctx: &str) {
    testkit::seed::tenant(ctx)
        .company("Acme")
        .serial("1")
        .token(&[1, 2, 3])
        .captured_by("admin@acme.example")
        .insert(&mut db.connect().await.unwrap())
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_disable_retry_and_purge() {
    let db = TestDatabase::create().await.unwrap();
    seed(&db, "Cust501").await;
    seed(&db, "Cust502").await;

    let list = tenants(&db, &["list"]);
    assert!(list.status.success());
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.starts_with("CONTEXT"), "{text}");
    assert!(
        text.contains("Cust501") && text.contains("Cust502") && text.contains("pending"),
        "{text}"
    );

    let disable = tenants(&db, &["disable", "Cust501"]);
    assert!(disable.status.success());
    let mut conn = db.connect().await.unwrap();
    let tenant = find(&mut conn, "Cust501").await.unwrap();
    assert_eq!(tenant.state, TenantState::Disabled);
    assert_eq!(tenant.next_attempt_at, None);

    let retry = tenants(&db, &["retry", "Cust501"]);
    assert!(retry.status.success());
    let tenant = find(&mut conn, "Cust501").await.unwrap();
    assert_eq!(tenant.state, TenantState::Pending);
    assert!(tenant.next_attempt_at.is_some());

    let purge = tenants(&db, &["purge", "Cust502"]);
    assert!(purge.status.success());
    assert!(find(&mut conn, "Cust502").await.is_none());
    let events = shared::db::audit::recent_for_tenant(&mut conn, "Cust502", 5)
        .await
        .unwrap();
    assert_eq!(events[0].action, "tenant_purged");
    assert_eq!(events[0].actor, "operator:ops");

    let events = shared::db::audit::recent_for_tenant(&mut conn, "Cust501", 5)
        .await
        .unwrap();
    let actions: Vec<_> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions[..2], ["operator_retry", "state_changed"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_and_malformed_tenants_are_refused() {
    let db = TestDatabase::create().await.unwrap();
    let missing = tenants(&db, &["retry", "Cust999"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no tenant Cust999"));
    let malformed = tenants(&db, &["purge", "Customer9"]);
    assert_eq!(malformed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&malformed.stderr).contains("CustNNNNN"));
    let empty = tenants(&db, &["list"]);
    assert!(String::from_utf8_lossy(&empty.stdout).contains("no tenants"));
}

#[tokio::test(flavor = "multi_thread")]
async fn enable_undoes_disable_and_only_that() {
    let db = TestDatabase::create().await.unwrap();
    seed(&db, "Cust503").await;
    let refused = tenants(&db, &["enable", "Cust503"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Cust503 is pending, not disabled"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let disable = tenants(&db, &["disable", "Cust503"]);
    assert!(disable.status.success());
    assert!(String::from_utf8_lossy(&disable.stdout).contains("tenants enable Cust503"));
    let enable = tenants(&db, &["enable", "Cust503"]);
    assert!(enable.status.success());
    let mut conn = db.connect().await.unwrap();
    let tenant = find(&mut conn, "Cust503").await.unwrap();
    assert_eq!(tenant.state, TenantState::Pending);
    assert!(tenant.next_attempt_at.is_some());
    let events = shared::db::audit::recent_for_tenant(&mut conn, "Cust503", 1)
        .await
        .unwrap();
    assert_eq!(
        (events[0].action.as_str(), events[0].actor.as_str()),
        ("state_changed", "operator:ops")
    );
    assert_eq!(events[0].detail["from"], "disabled");
}
