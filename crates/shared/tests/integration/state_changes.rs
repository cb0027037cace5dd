//! State-change notifications against a real Postgres: the record, idempotency under concurrent deliveries,
//! states a notification must not lift, and tenants we do not know.

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use shared::db::models::{AuditEvent, Tenant, TenantState};
use shared::db::schema::{audit_events, state_change_notifications, tenants};
use shared::db::state_changes::{self, ChangeType, Notification, Outcome, idempotency_key};
use shared::db::tenants::set_state;
use shared::db::tickets;
use testkit::TestDatabase;

async fn seed(conn: &mut AsyncPgConnection, ctx: &str) {
    testkit::seed::tenant(ctx)
        .urls(
            "http://api/Cust1/api/",
            Some("http://api/Cust1/Remote/Services88/"),
        )
        .captured_by("admin@example.com")
        .with_ticket(b"t")
        .insert(conn)
        .await;
}

fn notification<'a>(ctx: &'a str, change: &'a ChangeType, key: &'a str) -> Notification<'a> {
    Notification {
        context_id: ctx,
        change,
        idempotency_key: key,
        token_issued_at: Some(Utc::now()),
        version_name: Some("Release 10.3"),
        file_version: Some("10.3.8.2024"),
        public_endpoint: None,
        unconfirmed: false,
    }
}

async fn tenant(conn: &mut AsyncPgConnection, ctx: &str) -> Tenant {
    shared::db::tenants::find(conn, ctx).await.unwrap().unwrap()
}

async fn events(conn: &mut AsyncPgConnection, action: &str) -> Vec<AuditEvent> {
    audit_events::table
        .filter(audit_events::action.eq(action))
        .select(AuditEvent::as_select())
        .load(conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_deliveries_of_one_notification_apply_once() {
    let (db, mut conn) = TestDatabase::connected().await;
    seed(&mut conn, "Cust1").await;
    let change = ChangeType::Suspend;
    let key = idempotency_key("Cust1", &change, &[1; 32]);
    let mut deliveries = Vec::new();
    for _ in 0..5 {
        let mut conn = db.connect().await.unwrap();
        let change = change.clone();
        let key = key.clone();
        deliveries.push(tokio::spawn(async move {
            state_changes::apply(&mut conn, notification("Cust1", &change, &key))
                .await
                .unwrap()
        }));
    }
    let mut outcomes = Vec::new();
    for delivery in deliveries {
        outcomes.push(delivery.await.unwrap());
    }
    let applied = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Applied { .. }))
        .count();
    assert_eq!(applied, 1, "{outcomes:?}");
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == Outcome::Duplicate)
            .count(),
        4
    );
    assert_eq!(events(&mut conn, "superoffice_suspend").await.len(), 1);
    let (outcome, change_type): (String, String) = state_change_notifications::table
        .select((
            state_change_notifications::outcome,
            state_change_notifications::change_type,
        ))
        .first(&mut conn)
        .await
        .unwrap();
    assert_eq!(outcome, "suspended");
    assert_eq!(change_type, "Suspend");
    let t = tenant(&mut conn, "Cust1").await;
    assert_eq!(t.state, "suspended");
    assert_eq!(t.next_attempt_at, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operators_disable_survives_delete_and_resume() {
    let (_db, mut conn) = TestDatabase::connected().await;
    seed(&mut conn, "Cust1").await;
    set_state(
        &mut conn,
        "Cust1",
        TenantState::Disabled,
        "operator",
        "ops@example.com",
    )
    .await
    .unwrap();
    let delete = ChangeType::Delete;
    let outcome = state_changes::apply(&mut conn, notification("Cust1", &delete, "k1"))
        .await
        .unwrap();
    assert_eq!(outcome.summary(), "ticket_dropped_kept_disabled");
    assert!(tickets::find(&mut conn, "Cust1").await.unwrap().is_none());
    let resume = ChangeType::Resume;
    let outcome = state_changes::apply(&mut conn, notification("Cust1", &resume, "k2"))
        .await
        .unwrap();
    assert_eq!(outcome.summary(), "kept_disabled");
    let t = tenant(&mut conn, "Cust1").await;
    assert_eq!(t.state, "disabled");
    assert_eq!(t.state_reason.as_deref(), Some("operator"));
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_tenants_and_unsupported_types_are_only_recorded() {
    let (_db, mut conn) = TestDatabase::connected().await;
    let suspend = ChangeType::Suspend;
    let outcome = state_changes::apply(&mut conn, notification("Cust77", &suspend, "k1"))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::UnknownTenant);
    let again = state_changes::apply(&mut conn, notification("Cust77", &suspend, "k1"))
        .await
        .unwrap();
    assert_eq!(again, Outcome::Duplicate);
    let recorded = events(&mut conn, "superoffice_state_change_unknown_tenant").await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].context_id.as_deref(), Some("Cust77"));
    assert_eq!(recorded[0].detail["change_type"], "Suspend");
    let tenants: i64 = tenants::table.count().get_result(&mut conn).await.unwrap();
    assert_eq!(tenants, 0);

    seed(&mut conn, "Cust1").await;
    let future = ChangeType::from_code(9);
    let outcome = state_changes::apply(&mut conn, notification("Cust1", &future, "k2"))
        .await
        .unwrap();
    assert_eq!(outcome.summary(), "kept_pending");
    let recorded = events(&mut conn, "superoffice_state_change_unsupported").await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].detail["change_type"], "9");
    assert!(tickets::find(&mut conn, "Cust1").await.unwrap().is_some());
}
