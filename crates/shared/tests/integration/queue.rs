//! Token capture, the tenant work queue, tickets and work requests against a real Postgres.

use std::collections::HashSet;

use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use shared::crypto::at_rest::Encrypted;
use shared::db::models::TenantState;
use shared::db::schema::tenants;
use shared::db::tenants::{CaptureOutcome, TokenCapture, capture_token};
use shared::db::{queue, tickets, work};
use shared::domain::ContextId;
use testkit::TestDatabase;

fn differs(_: &Encrypted) -> bool {
    false
}

fn matches(_: &Encrypted) -> bool {
    true
}

fn capture<'a>(ctx: &'a str, cipher: &[u8], changed: bool) -> TokenCapture<'a> {
    TokenCapture {
        context_id: ctx,
        environment: "custom",
        company_name: Some("Northwind"),
        serial: Some("123"),
        webapi_url: Some("http://api/Cust1/api/"),
        netserver_url: None,
        token_ciphertext: cipher.to_vec(),
        token_key_version: 1,
        captured_by: "admin@example.com",
        same_token: if changed { &differs } else { &matches },
        token_issued_at: None,
    }
}

async fn seed(conn: &mut AsyncPgConnection, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let ctx = format!("Cust{}", 1000 + i);
        testkit::seed::tenant(&ctx)
            .urls("http://api/Cust1/api/", None)
            .captured_by("admin@example.com")
            .insert(conn)
            .await;
        ids.push(ctx);
    }
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn capture_creates_replaces_and_confirms() {
    let (_db, mut conn) = TestDatabase::connected().await;
    let first = capture_token(&mut conn, capture("Cust1", b"a", true))
        .await
        .unwrap();
    assert_eq!(first, CaptureOutcome::Created);
    tickets::store(
        &mut conn,
        tickets::NewTicket {
            context_id: "Cust1",
            ciphertext: b"t".to_vec(),
            key_version: 1,
            token_generation: 1,
            issued_at: Utc::now(),
        },
    )
    .await
    .unwrap();
    let same = capture_token(&mut conn, capture("Cust1", b"a2", false))
        .await
        .unwrap();
    assert_eq!(same, CaptureOutcome::Unchanged);
    assert!(
        tickets::find(&mut conn, "Cust1").await.unwrap().is_some(),
        "ticket kept"
    );
    let replaced = capture_token(&mut conn, capture("Cust1", b"b", true))
        .await
        .unwrap();
    assert_eq!(replaced, CaptureOutcome::Replaced);
    assert!(
        tickets::find(&mut conn, "Cust1").await.unwrap().is_none(),
        "ticket dropped"
    );
    let tenant = shared::db::tenants::find(&mut conn, "Cust1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tenant.token_generation, 2);
    assert_eq!(tenant.system_token_ciphertext.as_deref(), Some(&b"b"[..]));
    let events = shared::db::audit::recent_for_tenant(&mut conn, "Cust1", 10)
        .await
        .unwrap();
    let actions: Vec<_> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["token_replaced", "token_confirmed", "token_captured"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_approval_revives_a_revoked_tenant_but_not_a_suspended_one() {
    let (_db, mut conn) = TestDatabase::connected().await;
    seed(&mut conn, 2).await;
    shared::db::tenants::set_state(
        &mut conn,
        "Cust1000",
        TenantState::Revoked,
        "Revoked",
        "service",
    )
    .await
    .unwrap();
    shared::db::tenants::set_state(
        &mut conn,
        "Cust1001",
        TenantState::Suspended,
        "Suspend",
        "superoffice",
    )
    .await
    .unwrap();
    capture_token(&mut conn, capture("Cust1000", b"x", false))
        .await
        .unwrap();
    capture_token(&mut conn, capture("Cust1001", b"y", true))
        .await
        .unwrap();
    let a = shared::db::tenants::find(&mut conn, "Cust1000")
        .await
        .unwrap()
        .unwrap();
    let b = shared::db::tenants::find(&mut conn, "Cust1001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.state, TenantState::Pending);
    assert_eq!(b.state, TenantState::Suspended);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_claims_never_share_a_tenant() {
    let (db, mut conn) = TestDatabase::connected().await;
    seed(&mut conn, 40).await;
    let pool = db.pool().unwrap();
    let mut handles = Vec::new();
    for worker in 0..4 {
        let pool = pool.clone();
        handles.push(tokio::spawn(async move {
            let mut conn = pool.get().await.unwrap();
            let mut mine = Vec::new();
            loop {
                let batch = queue::claim_due(&mut conn, &format!("w{worker}"), 60, 3)
                    .await
                    .unwrap();
                if batch.is_empty() {
                    break;
                }
                mine.extend(batch.into_iter().map(|c| c.tenant.context_id));
            }
            mine
        }));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for handle in handles {
        for ctx in handle.await.unwrap() {
            total += 1;
            assert!(seen.insert(ctx.clone()), "{ctx} claimed twice");
        }
    }
    assert_eq!(total, 40);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_lease_is_taken_over_and_the_old_owner_cannot_release() {
    let (_db, mut conn) = TestDatabase::connected().await;
    seed(&mut conn, 1).await;
    let claimed = queue::claim_due(&mut conn, "crashed", 60, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(
        queue::claim_due(&mut conn, "other", 60, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // The lease runs out: the claim made the tenant due again at the same instant.
    let expired = Some(Utc::now() - Duration::seconds(1));
    diesel::update(tenants::table)
        .set((
            tenants::lease_expires_at.eq(expired),
            tenants::next_attempt_at.eq(expired),
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    let taken = queue::claim_due(&mut conn, "other", 60, 10).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert!(
        !queue::release(&mut conn, "Cust1000", "crashed", None)
            .await
            .unwrap()
    );
    assert!(
        !queue::renew_lease(&mut conn, "Cust1000", "crashed", 60)
            .await
            .unwrap()
    );
    assert!(
        queue::renew_lease(&mut conn, "Cust1000", "other", 60)
            .await
            .unwrap()
    );
    assert!(
        queue::release(&mut conn, "Cust1000", "other", None)
            .await
            .unwrap()
    );
    assert!(
        queue::claim_due(&mut conn, "other", 60, 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing due"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn only_working_states_with_a_token_are_due() {
    let (_db, mut conn) = TestDatabase::connected().await;
    seed(&mut conn, 3).await;
    shared::db::tenants::set_state(
        &mut conn,
        "Cust1001",
        TenantState::Disabled,
        "operator",
        "op",
    )
    .await
    .unwrap();
    let claimed: Vec<_> = queue::claim_due(&mut conn, "w", 60, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.tenant.context_id.to_string())
        .collect();
    assert_eq!(claimed.len(), 2);
    assert!(!claimed.contains(&"Cust1001".to_owned()));
    assert_eq!(queue::release_all(&mut conn, "w").await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn queued_work_makes_the_tenant_due_and_is_scoped_to_its_tenant() {
    let (_db, mut conn) = TestDatabase::connected().await;
    seed(&mut conn, 2).await;
    queue::claim_due(&mut conn, "w", 60, 10).await.unwrap();
    queue::release(&mut conn, "Cust1000", "w", None)
        .await
        .unwrap();
    let request = work::enqueue_create_company(&mut conn, "Cust1000", "Acme", "user@example.com")
        .await
        .unwrap();
    assert_eq!(request.state, "queued");
    assert!(
        work::find_for_tenant(&mut conn, "Cust1001", request.id)
            .await
            .unwrap()
            .is_none()
    );
    // New work makes the tenant due; only the lease holder may write to its requests.
    let due = queue::claim_due(&mut conn, "w", 60, 10).await.unwrap();
    assert!(due.iter().any(|c| c.tenant.context_id == "Cust1000"));
    assert!(
        work::mark_running(&mut conn, request.id, "other")
            .await
            .unwrap()
            .is_none(),
        "not the lease holder"
    );
    let running = work::mark_running(&mut conn, request.id, "w")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(running.attempts, 1);
    assert!(
        !work::finish(&mut conn, request.id, "other", Ok(serde_json::json!({})))
            .await
            .unwrap()
    );
    assert!(
        work::finish(
            &mut conn,
            request.id,
            "w",
            Ok(serde_json::json!({"contact_id": 7})),
        )
        .await
        .unwrap()
    );
    assert!(
        !work::finish(&mut conn, request.id, "w", Err("late".into()))
            .await
            .unwrap(),
        "a finished request is not running any more"
    );
    let done = work::find_for_tenant(&mut conn, "Cust1000", request.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.state, "done");
    assert_eq!(done.result.unwrap()["contact_id"], 7);
    assert!(
        work::open_for_tenant(&mut conn, "Cust1000")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_of_an_instance_whose_lease_ran_out_change_nothing() {
    let (_db, mut conn) = TestDatabase::connected().await;
    seed(&mut conn, 1).await;
    let request = work::enqueue_create_company(&mut conn, "Cust1000", "Acme", "user@example.com")
        .await
        .unwrap();
    queue::claim_due(&mut conn, "stalled", 60, 10)
        .await
        .unwrap();
    work::mark_running(&mut conn, request.id, "stalled")
        .await
        .unwrap()
        .unwrap();
    // The lease runs out while the instance is stalled; another takes the tenant over.
    diesel::sql_query("UPDATE tenants SET lease_expires_at = now() - interval '1 second', next_attempt_at = now() - interval '1 second'")
        .execute(&mut conn)
        .await
        .unwrap();
    assert!(
        !work::requeue(&mut conn, request.id, "stalled", Some("late"))
            .await
            .unwrap()
    );
    let taken = queue::claim_due(&mut conn, "successor", 60, 10)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    let again = work::mark_running(&mut conn, request.id, "successor")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        again.attempts, 2,
        "the successor looks the company up first"
    );
    assert!(
        !work::finish(&mut conn, request.id, "stalled", Err("late".into()))
            .await
            .unwrap()
    );
    assert!(
        work::finish(
            &mut conn,
            request.id,
            "successor",
            Ok(serde_json::json!({"contact_id": 1}))
        )
        .await
        .unwrap()
    );
    let row = work::find_for_tenant(&mut conn, "Cust1000", request.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.state, "done");
    assert_eq!(row.error, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn work_queued_during_a_pass_survives_the_release() {
    let (_db, mut conn) = TestDatabase::connected().await;
    seed(&mut conn, 2).await;
    let claimed = queue::claim_due(&mut conn, "worker", 60, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    // While both are leased, new work arrives for Cust1001 only.
    shared::db::work::enqueue_create_company(&mut conn, "Cust1001", "Acme", "user")
        .await
        .unwrap();
    assert!(
        queue::renew_lease(&mut conn, "Cust1001", "worker", 60)
            .await
            .unwrap()
    );
    for ctx in ["Cust1000", "Cust1001"] {
        assert!(
            queue::release(&mut conn, ctx, "worker", None)
                .await
                .unwrap()
        );
    }
    let due: Vec<String> = queue::claim_due(&mut conn, "next", 60, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.tenant.context_id.to_string())
        .collect();
    assert_eq!(
        due,
        ["Cust1001"],
        "the idle tenant waits, the one with new work is due"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_tenants_are_given_back_in_one_statement_and_work_queued_meanwhile_survives() {
    let (_db, mut conn) = TestDatabase::connected().await;
    seed(&mut conn, 3).await;
    let claimed = queue::claim_due(&mut conn, "worker", 60, 10).await.unwrap();
    assert_eq!(claimed.len(), 3);
    // Work arrives for Cust1001 after the claim read its open work (none then).
    assert!(claimed.iter().all(|c| !c.has_open_work));
    shared::db::work::enqueue_create_company(&mut conn, "Cust1001", "Acme", "user")
        .await
        .unwrap();
    let ids: Vec<i64> = claimed.iter().map(|c| c.tenant.id).collect();
    // Another owner cannot give them back; the holder gives back all three at once.
    assert_eq!(
        queue::release_idle(&mut conn, &ids, "other").await.unwrap(),
        0
    );
    assert_eq!(
        queue::release_idle(&mut conn, &ids, "worker")
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        queue::release_idle(&mut conn, &[], "worker").await.unwrap(),
        0
    );
    let leased: i64 = tenants::table
        .filter(tenants::lease_owner.is_not_null())
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(leased, 0, "no lease is left behind");
    let due: Vec<(String, bool)> = queue::claim_due(&mut conn, "next", 60, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.tenant.context_id.to_string(), c.has_open_work))
        .collect();
    assert_eq!(
        due,
        [("Cust1001".to_owned(), true)],
        "the idle tenants wait for something new; the one with new work is due, with its work seen"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ended_passes_are_given_back_together_each_with_its_time_and_observed_state() {
    use queue::Release;

    let db = TestDatabase::create().await.unwrap();
    let mut conn = db.connect().await.unwrap();
    seed(&mut conn, 4).await;
    let claimed = queue::claim_due(&mut conn, "worker", 60, 10).await.unwrap();
    assert_eq!(claimed.len(), 4);
    // Work arrives for Cust1002 during its pass.
    work::enqueue_create_company(&mut conn, "Cust1002", "Acme", "user")
        .await
        .unwrap();
    // Cust1000 was reported not running by an earlier pass; this pass saw it running.
    diesel::update(tenants::table.filter(tenants::context_id.eq("Cust1000")))
        .set(tenants::so_not_running_since.eq(Some(Utc::now() - Duration::hours(1))))
        .execute(&mut conn)
        .await
        .unwrap();
    let later = Utc::now() + Duration::hours(2);
    let checked = Utc::now() - Duration::seconds(1);
    let release = |ctx: &str, next, so_state: Option<&str>| Release {
        context_id: ContextId::parse(ctx).unwrap(),
        next_attempt_at: next,
        so_state: so_state.map(str::to_owned),
        so_state_checked_at: so_state.map(|_| checked),
    };
    let releases = [
        release("Cust1000", None, Some("Running")),
        release("Cust1001", Some(later), None),
        release("Cust1002", None, Some("Running")),
    ];
    // Only the holder's leases are given back.
    assert_eq!(
        queue::release_many(&mut conn, &releases, "other")
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        queue::release_many(&mut conn, &releases, "worker")
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        queue::release_many(&mut conn, &[], "worker").await.unwrap(),
        0
    );
    type Row = (
        String,
        Option<String>,
        Option<chrono::DateTime<Utc>>,
        Option<String>,
        Option<chrono::DateTime<Utc>>,
    );
    let rows: Vec<Row> = tenants::table
        .order(tenants::context_id)
        .select((
            tenants::context_id,
            tenants::lease_owner,
            tenants::next_attempt_at,
            tenants::so_state,
            tenants::so_state_checked_at,
        ))
        .load(&mut conn)
        .await
        .unwrap();
    let (c0, c1, c2, c3) = (&rows[0], &rows[1], &rows[2], &rows[3]);
    assert_eq!(
        (c0.1.as_deref(), c0.2),
        (None, None),
        "idle until something new"
    );
    assert_eq!(c0.3.as_deref(), Some("Running"));
    assert_eq!(
        c0.4.map(|t| t.timestamp_micros()),
        Some(checked.timestamp_micros())
    );
    assert_eq!(
        (c1.1.as_deref(), c1.2.map(|t| t.timestamp_micros())),
        (None, Some(later.timestamp_micros())),
        "due at the time its pass gave"
    );
    assert_eq!(c1.3, None, "no state observed, none recorded");
    assert!(
        c2.1.is_none() && c2.2.is_some_and(|t| t <= Utc::now()),
        "work queued meanwhile keeps it due"
    );
    assert_eq!(c2.3.as_deref(), Some("Running"));
    assert_eq!(
        c3.1.as_deref(),
        Some("worker"),
        "a tenant not given back keeps its lease"
    );
    let not_running_since: Option<chrono::DateTime<Utc>> = tenants::table
        .filter(tenants::context_id.eq("Cust1000"))
        .select(tenants::so_not_running_since)
        .first(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        not_running_since, None,
        "seen running: no longer not running"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_obtained_ticket_is_stored_with_its_audit_and_activates_a_pending_tenant_once() {
    use shared::db::tickets::{NewTicket, Obtained, store_obtained};

    let (_db, mut conn) = TestDatabase::connected().await;
    seed(&mut conn, 1).await;
    diesel::update(tenants::table)
        .set((
            tenants::failed_attempts.eq(3),
            tenants::last_success_at.eq(None::<chrono::DateTime<Utc>>),
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    let obtained = |generation: i32, bytes: &'static [u8]| Obtained {
        ticket: NewTicket {
            context_id: "Cust1000",
            ciphertext: bytes.to_vec(),
            key_version: 1,
            token_generation: generation,
            issued_at: Utc::now() - Duration::seconds(5),
        },
        actor: "partner-service",
        detail: serde_json::json!({ "via": "rest", "token_generation": generation }),
        activated_because: "system user ticket obtained",
        at: Utc::now(),
    };
    assert!(
        store_obtained(&mut conn, obtained(1, b"first"))
            .await
            .unwrap()
    );
    let tenant = shared::db::tenants::find(&mut conn, "Cust1000")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tenant.state, TenantState::Active.as_str());
    assert_eq!(
        tenant.state_reason.as_deref(),
        Some("system user ticket obtained")
    );
    assert_eq!(tenant.failed_attempts, 0);
    assert!(tenant.last_success_at.is_some());
    assert!(tenant.lease_owner.is_none(), "the lease is not touched");
    // Tickets are replaced, a rejection mark is cleared, and an active tenant is not "activated" again.
    tickets::mark_rejected(&mut conn, "Cust1000", Utc::now())
        .await
        .unwrap();
    assert!(
        !store_obtained(&mut conn, obtained(2, b"second"))
            .await
            .unwrap()
    );
    let ticket = tickets::find(&mut conn, "Cust1000").await.unwrap().unwrap();
    assert_eq!(ticket.ciphertext, b"second");
    assert_eq!(ticket.token_generation, 2);
    assert!(ticket.rejected_at.is_none());
    assert_eq!(ticket.last_used_at, ticket.issued_at);
    let events = shared::db::audit::recent_for_tenant(&mut conn, "Cust1000", 20)
        .await
        .unwrap();
    let actions: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    let obtained_events = actions
        .iter()
        .filter(|(action, actor)| *action == "ticket_obtained" && *actor == "partner-service")
        .count();
    let activations: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e.action == "state_changed")
        .map(|e| &e.detail)
        .collect();
    assert_eq!(obtained_events, 2, "{actions:?}");
    assert_eq!(
        activations,
        [&serde_json::json!({ "state": "active", "reason": "system user ticket obtained" })]
    );
    // A purged tenant's ticket is refused, and nothing of it is written.
    diesel::delete(tenants::table)
        .execute(&mut conn)
        .await
        .unwrap();
    assert!(
        store_obtained(&mut conn, obtained(3, b"third"))
            .await
            .is_err()
    );
    assert!(
        tickets::find(&mut conn, "Cust1000")
            .await
            .unwrap()
            .is_none()
    );
}

/// Several administrators of a new tenant signing in at once: every capture succeeds (none fails on
/// the unique context id), exactly one creates the tenant, and one row holds the last token.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_first_captures_of_one_tenant_all_succeed() {
    let db = TestDatabase::create().await.unwrap();
    let pool = db.pool().unwrap();
    let mut handles = Vec::new();
    for n in 0..8u8 {
        let pool = pool.clone();
        handles.push(tokio::spawn(async move {
            let mut conn = pool.get().await.unwrap();
            capture_token(&mut conn, capture("Cust4242", &[n], true)).await
        }));
    }
    let mut outcomes = Vec::new();
    for handle in handles {
        outcomes.push(handle.await.unwrap().expect("a concurrent capture failed"));
    }
    let created = outcomes
        .iter()
        .filter(|o| **o == CaptureOutcome::Created)
        .count();
    assert_eq!(created, 1, "{outcomes:?}");
    let mut conn = db.connect().await.unwrap();
    let rows: i64 = tenants::table
        .filter(tenants::context_id.eq("Cust4242"))
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows, 1);
}
