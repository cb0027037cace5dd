//! Token capture, the tenant work queue, tickets and work requests against a real Postgres.

use std::collections::HashSet;

use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use shared::crypto::at_rest::Encrypted;
use shared::db::models::{Tenant, TenantState, WorkRequest};
use shared::db::schema::tenants;
use shared::db::tenants::{CaptureOutcome, TenantDetails, TokenCapture, capture_token};
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
        details: TenantDetails {
            webapi_url: Some("http://api/Cust1/api/"),
            ..testkit::seed::DETAILS
        },
        token: Encrypted {
            key_version: 1,
            bytes: cipher.to_vec(),
        },
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

/// A tenant's row, which must exist.
async fn tenant(conn: &mut AsyncPgConnection, ctx: &str) -> Tenant {
    shared::db::tenants::find(conn, ctx).await.unwrap().unwrap()
}

/// Moves a tenant to `state`, as an operator or the service would.
async fn set_state(conn: &mut AsyncPgConnection, ctx: &str, state: TenantState, reason: &str) {
    shared::db::tenants::set_state(conn, ctx, state, reason, "test")
        .await
        .unwrap();
}

/// What `owner` claims: the due tenants, for a minute, ten at most.
async fn claim(conn: &mut AsyncPgConnection, owner: &str) -> Vec<queue::Claim> {
    queue::claim_due(conn, owner, 60, 10).await.unwrap()
}

/// The context ids of what `owner` claims.
async fn claim_ids(conn: &mut AsyncPgConnection, owner: &str) -> Vec<String> {
    claim(conn, owner)
        .await
        .into_iter()
        .map(|c| c.tenant.context_id.to_string())
        .collect()
}

/// Whether `owner` still held the lease it gives back.
async fn release(conn: &mut AsyncPgConnection, ctx: &str, owner: &str) -> bool {
    queue::release(conn, ctx, owner, None).await.unwrap()
}

/// Whether `owner` still held the lease it renews.
async fn renew(conn: &mut AsyncPgConnection, ctx: &str, owner: &str) -> bool {
    queue::renew_lease(conn, ctx, owner, 60).await.unwrap()
}

/// A give-back of many leases at once (`give_back(conn, batch, owner)`, how many it released): another
/// owner gives back none of `batch`, the holder (`worker`) `expected` of them, and an empty batch none.
async fn only_the_holder_gives_back<T>(
    conn: &mut AsyncPgConnection,
    batch: &[T],
    expected: usize,
    give_back: impl AsyncFn(&mut AsyncPgConnection, &[T], &str) -> usize,
) {
    assert_eq!(give_back(conn, batch, "other").await, 0, "another owner");
    assert_eq!(
        give_back(conn, batch, "worker").await,
        expected,
        "the holder"
    );
    assert_eq!(give_back(conn, &[], "worker").await, 0, "an empty batch");
}

/// `n` tenants seeded and claimed by `worker`; then, during the pass, work arrives for `ctx`.
async fn pass_with_new_work(
    n: usize,
    ctx: &str,
) -> (TestDatabase, AsyncPgConnection, Vec<queue::Claim>) {
    let (db, mut conn) = TestDatabase::connected().await;
    seed(&mut conn, n).await;
    let claimed = claim(&mut conn, "worker").await;
    assert_eq!(claimed.len(), n);
    enqueue(&mut conn, ctx).await;
    (db, conn, claimed)
}

/// Every lease ran out a second ago, and with it the time its tenant was due again (a claim sets both).
async fn expire_leases(conn: &mut AsyncPgConnection) {
    let expired = Some(Utc::now() - Duration::seconds(1));
    diesel::update(tenants::table)
        .set((
            tenants::lease_expires_at.eq(expired),
            tenants::next_attempt_at.eq(expired),
        ))
        .execute(conn)
        .await
        .unwrap();
}

/// Queues a company creation for a tenant.
async fn enqueue(conn: &mut AsyncPgConnection, ctx: &str) -> WorkRequest {
    work::enqueue_create_company(conn, ctx, "Acme", "user@example.com")
        .await
        .unwrap()
}

/// A tenant's work request, if it is that tenant's.
async fn find_work(conn: &mut AsyncPgConnection, ctx: &str, id: i64) -> Option<WorkRequest> {
    work::find_for_tenant(conn, ctx, id).await.unwrap()
}

/// The request marked running under `owner`'s lease; `None` when the lease is not `owner`'s.
async fn mark_running(conn: &mut AsyncPgConnection, id: i64, owner: &str) -> Option<WorkRequest> {
    work::mark_running(conn, id, owner).await.unwrap()
}

/// Whether `owner` could record the request's outcome.
async fn finish(
    conn: &mut AsyncPgConnection,
    id: i64,
    owner: &str,
    outcome: Result<serde_json::Value, String>,
) -> bool {
    work::finish(conn, id, owner, outcome).await.unwrap()
}

/// Whether a ticket is cached for the tenant.
async fn has_ticket(conn: &mut AsyncPgConnection, ctx: &str) -> bool {
    tickets::find(conn, ctx).await.unwrap().is_some()
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
    assert!(has_ticket(&mut conn, "Cust1").await, "ticket kept");
    let replaced = capture_token(&mut conn, capture("Cust1", b"b", true))
        .await
        .unwrap();
    assert_eq!(replaced, CaptureOutcome::Replaced);
    assert!(!has_ticket(&mut conn, "Cust1").await, "ticket dropped");
    let tenant = tenant(&mut conn, "Cust1").await;
    assert_eq!(tenant.token_generation, 2);
    assert_eq!(tenant.system_token.unwrap().bytes, b"b");
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
    set_state(&mut conn, "Cust1000", TenantState::Revoked, "Revoked").await;
    set_state(&mut conn, "Cust1001", TenantState::Suspended, "Suspend").await;
    capture_token(&mut conn, capture("Cust1000", b"x", false))
        .await
        .unwrap();
    capture_token(&mut conn, capture("Cust1001", b"y", true))
        .await
        .unwrap();
    assert_eq!(
        tenant(&mut conn, "Cust1000").await.state,
        TenantState::Pending
    );
    assert_eq!(
        tenant(&mut conn, "Cust1001").await.state,
        TenantState::Suspended
    );
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
    assert_eq!(claim(&mut conn, "crashed").await.len(), 1);
    assert!(claim(&mut conn, "other").await.is_empty());
    // The lease runs out: the claim made the tenant due again at the same instant.
    expire_leases(&mut conn).await;
    assert_eq!(claim(&mut conn, "other").await.len(), 1);
    assert!(!release(&mut conn, "Cust1000", "crashed").await);
    assert!(!renew(&mut conn, "Cust1000", "crashed").await);
    assert!(renew(&mut conn, "Cust1000", "other").await);
    assert!(release(&mut conn, "Cust1000", "other").await);
    assert!(claim(&mut conn, "other").await.is_empty(), "nothing due");
}

#[tokio::test(flavor = "multi_thread")]
async fn only_working_states_with_a_token_are_due() {
    let (_db, mut conn) = TestDatabase::connected().await;
    seed(&mut conn, 3).await;
    set_state(&mut conn, "Cust1001", TenantState::Disabled, "operator").await;
    let claimed = claim_ids(&mut conn, "w").await;
    assert_eq!(claimed.len(), 2);
    assert!(!claimed.contains(&"Cust1001".to_owned()));
    assert_eq!(queue::release_all(&mut conn, "w").await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn queued_work_makes_the_tenant_due_and_is_scoped_to_its_tenant() {
    let (_db, mut conn) = TestDatabase::connected().await;
    seed(&mut conn, 2).await;
    claim(&mut conn, "w").await;
    release(&mut conn, "Cust1000", "w").await;
    let request = enqueue(&mut conn, "Cust1000").await;
    assert_eq!(request.state, "queued");
    assert!(find_work(&mut conn, "Cust1001", request.id).await.is_none());
    // New work makes the tenant due; only the lease holder may write to its requests.
    assert!(
        claim_ids(&mut conn, "w")
            .await
            .contains(&"Cust1000".to_owned())
    );
    assert!(
        mark_running(&mut conn, request.id, "other").await.is_none(),
        "not the lease holder"
    );
    let running = mark_running(&mut conn, request.id, "w").await.unwrap();
    assert_eq!(running.attempts, 1);
    assert!(!finish(&mut conn, request.id, "other", Ok(serde_json::json!({}))).await);
    let result = serde_json::json!({"contact_id": 7});
    assert!(finish(&mut conn, request.id, "w", Ok(result)).await);
    assert!(
        !finish(&mut conn, request.id, "w", Err("late".into())).await,
        "a finished request is not running any more"
    );
    let done = find_work(&mut conn, "Cust1000", request.id).await.unwrap();
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
    let request = enqueue(&mut conn, "Cust1000").await;
    claim(&mut conn, "stalled").await;
    mark_running(&mut conn, request.id, "stalled")
        .await
        .unwrap();
    // The lease runs out while the instance is stalled; another takes the tenant over.
    expire_leases(&mut conn).await;
    assert!(
        !work::requeue(&mut conn, request.id, "stalled", Some("late"))
            .await
            .unwrap()
    );
    assert_eq!(claim(&mut conn, "successor").await.len(), 1);
    let again = mark_running(&mut conn, request.id, "successor")
        .await
        .unwrap();
    assert_eq!(
        again.attempts, 2,
        "the successor looks the company up first"
    );
    assert!(!finish(&mut conn, request.id, "stalled", Err("late".into())).await);
    let result = serde_json::json!({"contact_id": 1});
    assert!(finish(&mut conn, request.id, "successor", Ok(result)).await);
    let row = find_work(&mut conn, "Cust1000", request.id).await.unwrap();
    assert_eq!(row.state, "done");
    assert_eq!(row.error, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn work_queued_during_a_pass_survives_the_release() {
    // While both are leased, new work arrives for Cust1001 only.
    let (_db, mut conn, _) = pass_with_new_work(2, "Cust1001").await;
    assert!(renew(&mut conn, "Cust1001", "worker").await);
    for ctx in ["Cust1000", "Cust1001"] {
        assert!(release(&mut conn, ctx, "worker").await, "{ctx}");
    }
    assert_eq!(
        claim_ids(&mut conn, "next").await,
        ["Cust1001"],
        "the idle tenant waits, the one with new work is due"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_tenants_are_given_back_in_one_statement_and_work_queued_meanwhile_survives() {
    // Work arrives for Cust1001 after the claim read its open work (none then).
    let (_db, mut conn, claimed) = pass_with_new_work(3, "Cust1001").await;
    assert!(claimed.iter().all(|c| !c.has_open_work));
    let idle: Vec<queue::Release> = claimed
        .iter()
        .map(|c| queue::Release {
            context_id: c.tenant.context_id.clone(),
            next_attempt_at: None,
            so_state: None,
            so_state_checked_at: None,
        })
        .collect();
    // Another owner cannot give them back; the holder gives back all three at once.
    only_the_holder_gives_back(&mut conn, &idle, 3, async |conn, releases, owner| {
        queue::release_many(conn, releases, owner).await.unwrap()
    })
    .await;
    let leased: i64 = tenants::table
        .filter(tenants::lease_owner.is_not_null())
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(leased, 0, "no lease is left behind");
    let due: Vec<(String, bool)> = claim(&mut conn, "next")
        .await
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

    // Work arrives for Cust1002 during its pass.
    let (_db, mut conn, _) = pass_with_new_work(4, "Cust1002").await;
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
    only_the_holder_gives_back(&mut conn, &releases, 3, async |conn, releases, owner| {
        queue::release_many(conn, releases, owner).await.unwrap()
    })
    .await;
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
    use shared::db::tickets::{NewTicket, Obtained, TicketUse, store_obtained};

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
    let tenant = tenant(&mut conn, "Cust1000").await;
    assert_eq!(tenant.state, TenantState::Active.as_str());
    assert_eq!(
        tenant.state_reason.as_deref(),
        Some("system user ticket obtained")
    );
    assert_eq!(tenant.failed_attempts, 0);
    assert!(tenant.last_success_at.is_some());
    assert!(tenant.lease_owner.is_none(), "the lease is not touched");
    // Tickets are replaced, a rejection mark is cleared, and an active tenant is not "activated" again.
    tickets::record_use(&mut conn, "Cust1000", TicketUse::refused(Utc::now()))
        .await
        .unwrap();
    assert!(
        !store_obtained(&mut conn, obtained(2, b"second"))
            .await
            .unwrap()
    );
    let ticket = tickets::find(&mut conn, "Cust1000").await.unwrap().unwrap();
    assert_eq!(ticket.encrypted.bytes, b"second");
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
    assert!(!has_ticket(&mut conn, "Cust1000").await);
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
