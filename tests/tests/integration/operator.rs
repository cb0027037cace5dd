//! The operator commands against a real database, run as the real binary.

use e2e::{run, test_secrets};
use shared::db::models::TenantState;
use testkit::TestDatabase;

fn env(db: &TestDatabase) -> Vec<(&'static str, String)> {
    let mut env = test_secrets();
    env.push(("DATABASE_URL", db.url().to_owned()));
    env.push(("USER", "ops".to_owned()));
    env
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

    let list = run("partner-service", &["tenants", "list"], &env(&db));
    assert!(list.status.success());
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.starts_with("CONTEXT"), "{text}");
    assert!(
        text.contains("Cust501") && text.contains("Cust502") && text.contains("pending"),
        "{text}"
    );

    let disable = run(
        "partner-service",
        &["tenants", "disable", "Cust501"],
        &env(&db),
    );
    assert!(disable.status.success());
    let mut conn = db.connect().await.unwrap();
    let tenant = shared::db::tenants::find(&mut conn, "Cust501")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tenant.state, TenantState::Disabled);
    assert_eq!(tenant.next_attempt_at, None);

    let retry = run(
        "partner-service",
        &["tenants", "retry", "Cust501"],
        &env(&db),
    );
    assert!(retry.status.success());
    let tenant = shared::db::tenants::find(&mut conn, "Cust501")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tenant.state, TenantState::Pending);
    assert!(tenant.next_attempt_at.is_some());

    let purge = run(
        "partner-service",
        &["tenants", "purge", "Cust502"],
        &env(&db),
    );
    assert!(purge.status.success());
    assert!(
        shared::db::tenants::find(&mut conn, "Cust502")
            .await
            .unwrap()
            .is_none()
    );
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
    let missing = run(
        "partner-service",
        &["tenants", "retry", "Cust999"],
        &env(&db),
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no tenant Cust999"));
    let malformed = run(
        "partner-service",
        &["tenants", "purge", "Customer9"],
        &env(&db),
    );
    assert_eq!(malformed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&malformed.stderr).contains("CustNNNNN"));
    let empty = run("partner-service", &["tenants", "list"], &env(&db));
    assert!(String::from_utf8_lossy(&empty.stdout).contains("no tenants"));
}

#[tokio::test(flavor = "multi_thread")]
async fn enable_undoes_disable_and_only_that() {
    let db = TestDatabase::create().await.unwrap();
    seed(&db, "Cust503").await;
    let refused = run(
        "partner-service",
        &["tenants", "enable", "Cust503"],
        &env(&db),
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Cust503 is pending, not disabled"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let disable = run(
        "partner-service",
        &["tenants", "disable", "Cust503"],
        &env(&db),
    );
    assert!(disable.status.success());
    assert!(String::from_utf8_lossy(&disable.stdout).contains("tenants enable Cust503"));
    let enable = run(
        "partner-service",
        &["tenants", "enable", "Cust503"],
        &env(&db),
    );
    assert!(enable.status.success());
    let mut conn = db.connect().await.unwrap();
    let tenant = shared::db::tenants::find(&mut conn, "Cust503")
        .await
        .unwrap()
        .unwrap();
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
