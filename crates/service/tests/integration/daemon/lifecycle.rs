//! Tenants that stop (revoked), wait (suspended), move (421), and a POST whose answer is lost.

use chrono::Utc;
use superoffice_sim::{Fault, Group, TEST_CLIENT_ID, TenantState};

use super::support::{seeded, world};

const CTX: &str = "Cust10001";

#[tokio::test]
async fn a_revoked_tenant_stops_with_a_reason_and_is_not_retried() {
    let w = world().await;
    w.seed(CTX).await;
    w.seed("Cust10002").await;
    let daemon = w.daemon();
    // Cust10002 holds a ticket when its access is revoked; Cust10001 never got one.
    w.enqueue("Cust10002", "Before the revocation").await;
    daemon.run_once().await.unwrap();
    assert_eq!(w.tickets_issued("Cust10002"), 1);
    w.sim.admin().revoke(CTX, TEST_CLIENT_ID).unwrap();
    w.sim.admin().revoke("Cust10002", TEST_CLIENT_ID).unwrap();
    let first = w.enqueue(CTX, "Never made").await;
    let second = w.enqueue("Cust10002", "Never made either").await;
    daemon.run_once().await.unwrap();

    for (ctx, request) in [(CTX, &first), ("Cust10002", &second)] {
        let tenant = w.tenant(ctx).await.unwrap();
        assert_eq!(tenant.state, "revoked", "{ctx}");
        assert!(tenant.state_reason.unwrap().contains("revoked"));
        assert_eq!(tenant.lease_owner, None);
        let failed = w.request(request.id).await;
        assert_eq!(failed.state, "failed");
        let reason = failed.error.unwrap();
        assert!(
            reason.contains("administrator must sign in again"),
            "{reason}"
        );
        assert!(!reason.contains("7T:"));
    }
    assert!(w.ticket("Cust10002").await.unwrap().rejected_at.is_some());
    let exchanges = |ctx: &str| w.exchanges(ctx);
    let (before_1, before_2) = (exchanges(CTX), exchanges("Cust10002"));
    // More work and more passes: no retry storm while the tenant is stopped.
    let third = w.pass(&daemon, CTX, "Still not").await;
    daemon.run_once().await.unwrap();
    assert_eq!(
        (exchanges(CTX), exchanges("Cust10002")),
        (before_1, before_2)
    );
    assert_eq!(w.request(third.id).await.state, "queued");
    assert!(w.companies(CTX).is_empty());
    w.sim.stop().await;
}

#[tokio::test]
async fn a_suspended_tenant_waits_and_resumes() {
    let w = world().await;
    w.set_so_state(CTX, TenantState::Suspended).await;
    w.seed(CTX).await;
    let request = w.enqueue(CTX, "After the suspension").await;
    let daemon = w.daemon();
    daemon.run_once().await.unwrap();
    assert_eq!(w.tickets_issued(CTX), 0, "no exchange while not running");
    assert_eq!(w.request(request.id).await.state, "queued");
    let tenant = w.tenant(CTX).await.unwrap();
    assert_eq!(tenant.state, "pending");
    assert!(tenant.last_error.unwrap().contains("not running"));
    assert!(tenant.next_attempt_at.unwrap() > Utc::now(), "backed off");
    assert_eq!(tenant.failed_attempts, 1);

    w.set_so_state(CTX, TenantState::Running).await;
    w.due_now(CTX).await;
    daemon.run_once().await.unwrap();
    assert_eq!(w.request(request.id).await.state, "done");
    assert_eq!(w.tenant(CTX).await.unwrap().state, "active");
    assert_eq!(w.companies(CTX).len(), 1);
    w.sim.stop().await;
}

#[tokio::test]
async fn a_moved_tenant_is_followed_to_its_new_host() {
    let (w, daemon) = seeded(CTX).await;
    w.pass(&daemon, CTX, "On sod2").await;
    // The daemon's cached status still names sod2; the old host answers 421.
    w.sim.admin().move_tenant(CTX, "sod3").await.unwrap();
    let request = w.pass(&daemon, CTX, "On sod3").await;
    let done = w.request(request.id).await;
    assert_eq!(done.state, "done", "{:?}", done.error);
    assert_eq!(w.companies(CTX).len(), 2);
    assert_eq!(w.tickets_issued(CTX), 1, "the ticket survives the move");
    w.sim.stop().await;
}

#[tokio::test]
async fn a_lost_answer_after_the_company_was_saved_does_not_create_it_twice() {
    let (w, daemon) = seeded(CTX).await;
    w.sim.admin().set_fault(
        Group::Api,
        Fault {
            fail_next: 1,
            fail_status: Some(504),
            method: Some("POST".into()),
            after_handler: true,
            ..Fault::default()
        },
    );
    let request = w.pass(&daemon, CTX, "Saved once").await;
    let waiting = w.request(request.id).await;
    assert_eq!(
        waiting.state, "queued",
        "a passing failure queues the work again"
    );
    assert_eq!(waiting.attempts, 1);
    assert_eq!(w.companies(CTX).len(), 1, "SuperOffice saved it anyway");
    assert!(w.tenant(CTX).await.unwrap().next_attempt_at.unwrap() > Utc::now());

    w.due_now(CTX).await;
    daemon.run_once().await.unwrap();
    let done = w.request(request.id).await;
    assert_eq!(done.state, "done", "{:?}", done.error);
    assert_eq!(done.attempts, 2);
    let companies = w.companies(CTX);
    assert_eq!(companies.len(), 1, "found by its key, not created again");
    assert_eq!(done.result.unwrap()["contact_id"], companies[0].contact_id);
    let audit = w.audit(CTX).await;
    assert!(
        audit
            .iter()
            .any(|(action, detail)| action == "company_created"
                && detail["found_after_lost_answer"] == true)
    );
    w.sim.stop().await;
}
