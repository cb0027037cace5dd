//! The system under faults, as real processes: the database restarted under both services, SuperID's
//! signing key rotated, SuperID failing. After each fault the system recovers by itself, loses nothing and
//! does not storm SuperOffice with retries.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use e2e::{PrivateCluster, Stack, WebUser, run, test_secrets, wait_for_http};
use serde_json::{Value, json};
use shared::db::testing::TestDatabase;

const ADMIN: &str = "admin@northwind.example";

async fn sim_admin(
    stack: &Stack,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let client = reqwest::Client::new();
    let mut request = client.request(method, format!("{}/admin{path}", stack.superid_url));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    assert!(
        response.status().is_success(),
        "admin {path}: {}",
        response.status()
    );
    response.json().await.unwrap_or(Value::Null)
}

/// Exchanges partner-service attempted, whatever their outcome (its /metrics).
async fn exchange_attempts(stack: &Stack) -> f64 {
    let text = reqwest::get(format!("{}/metrics", stack.metrics_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| line.starts_with("partner_service_exchanges_total"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn tickets_issued(stack: &Stack) -> u64 {
    let tenant = sim_admin(stack, reqwest::Method::GET, "/tenants/Cust10001", None).await;
    tenant["tickets_issued"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_restart_under_both_services_is_survived() {
    let cluster = PrivateCluster::start();
    let url = cluster.url("postgres");
    let mut env = test_secrets();
    env.push(("DATABASE_URL", url.clone()));
    let migrated = run("partner-service", &["migrate"], &env);
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    let mut stack = Stack::start("db-restart", &url).await;
    let user = WebUser::new(&stack.web_url);
    assert_eq!(user.sign_in(ADMIN).await, 303);
    let (state, page) = user
        .system_user_company("Before Restart AS", Duration::from_secs(30))
        .await;
    assert_eq!(state, "done", "{page}");

    cluster.stop();
    let ready = user.get("/readyz").await;
    assert_eq!(
        ready.status().as_u16(),
        503,
        "readiness must report the database"
    );
    // What /readyz says is what the scraper sees too (the PartnerWebNotReady alert).
    let scraped = reqwest::get(format!("{}/metrics", stack.web_metrics_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(scraped.contains("partner_web_ready 0"), "{scraped}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.start_again();

    let deadline = Instant::now() + Duration::from_secs(30);
    while user.get("/readyz").await.status().as_u16() != 200 {
        assert!(
            Instant::now() < deadline,
            "partner-web never saw the database again"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The service reconnects too (its LISTEN connection with backoff, its pool on demand).
    let (state, page) = user
        .system_user_company("After Restart AS", Duration::from_secs(60))
        .await;
    assert_eq!(state, "done", "{page}");
    let statuses = stack.stop();
    assert!(
        statuses.iter().all(|s| s.success()),
        "a process died: {statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_superid_key_is_picked_up_without_a_restart() {
    let database = TestDatabase::create().await.unwrap();
    let stack = Stack::start("key-rotation", database.url()).await;
    let user = WebUser::new(&stack.web_url);
    assert_eq!(user.sign_in(ADMIN).await, 303);
    let (state, _) = user
        .system_user_company("Old Key AS", Duration::from_secs(30))
        .await;
    assert_eq!(state, "done");

    sim_admin(
        &stack,
        reqwest::Method::POST,
        "/keys/rotate",
        Some(json!({"keep_old": false})),
    )
    .await;
    // A re-approval forces a new exchange, whose JWT is signed with the new key; the sign-in's id_token too.
    sim_admin(
        &stack,
        reqwest::Method::POST,
        &format!("/tenants/Cust10001/apps/{}/reapprove", e2e::CLIENT_ID),
        None,
    )
    .await;
    let fresh = WebUser::new(&stack.web_url);
    assert_eq!(
        fresh.sign_in(ADMIN).await,
        303,
        "the id_token signed with the new key was refused"
    );
    let (state, page) = fresh
        .system_user_company("New Key AS", Duration::from_secs(30))
        .await;
    assert_eq!(state, "done", "{page}");
}

#[tokio::test(flavor = "multi_thread")]
async fn superid_failing_backs_off_and_recovers_without_a_retry_storm() {
    let database = TestDatabase::create().await.unwrap();
    let stack = Stack::start("superid-5xx", database.url()).await;
    sim_admin(
        &stack,
        reqwest::Method::PUT,
        "/faults/exchange",
        Some(json!({"fail_share": 1.0, "fail_status": 503})),
    )
    .await;
    let user = WebUser::new(&stack.web_url);
    assert_eq!(user.sign_in(ADMIN).await, 303);
    let queued = user
        .create_company("as-system-user", "Despite 5xx AS")
        .await;
    let path = e2e::location(&queued);
    tokio::time::sleep(Duration::from_secs(6)).await;
    // Refused before its handler runs, a failed exchange leaves no record in the simulator: count the
    // service's own attempts.
    let attempts = exchange_attempts(&stack).await;
    assert!(attempts >= 1.0, "the service never tried");
    assert!(
        attempts <= 6.0,
        "{attempts} exchange attempts in 6 s: a retry storm"
    );
    assert_eq!(tickets_issued(&stack).await, 0);

    sim_admin(&stack, reqwest::Method::DELETE, "/faults/exchange", None).await;
    let (state, page) = user.wait_for_request(&path, Duration::from_secs(90)).await;
    assert_eq!(
        state, "done",
        "not recovered after the fault was cleared:\n{page}"
    );
    assert_eq!(tickets_issued(&stack).await, 1);
    let health = wait_for_http(
        &format!("{}/healthz", stack.metrics_url),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(health, Some(reqwest::StatusCode::OK));
}

/// Companies the simulator holds for Northwind with this name.
async fn companies_named(stack: &Stack, name: &str) -> usize {
    let records = sim_admin(stack, reqwest::Method::GET, "/records", None).await;
    records["companies"]
        .as_array()
        .map_or(0, |all| all.iter().filter(|c| c["name"] == name).count())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_killed_mid_company_creation_creates_it_exactly_once() {
    let database = TestDatabase::create().await.unwrap();
    let mut stack = Stack::start_with(
        "sigkill-company",
        database.url(),
        &[("PARTNER_SERVICE__LEASE_SECS", "10".to_owned())],
    )
    .await;
    let user = WebUser::new(&stack.web_url);
    assert_eq!(user.sign_in(ADMIN).await, 303);
    // A first company: the ticket is obtained and cached.
    let (state, _) = user
        .system_user_company("Warm Up AS", Duration::from_secs(30))
        .await;
    assert_eq!(state, "done");

    // Saving a company now takes 3 s; the service is killed while it waits for the answer.
    sim_admin(
        &stack,
        reqwest::Method::PUT,
        "/faults/api",
        Some(json!({"method": "POST", "latency_ms": 3000})),
    )
    .await;
    let queued = user
        .create_company("as-system-user", "Killed Midway AS")
        .await;
    let path = e2e::location(&queued);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stack.kill_service();
    sim_admin(&stack, reqwest::Method::DELETE, "/faults/api", None).await;

    // Another instance takes the tenant over when the dead one's lease expires, and finds the company
    // the dead one may have created before creating it again.
    stack.start_service().await;
    let (state, page) = user.wait_for_request(&path, Duration::from_secs(60)).await;
    assert_eq!(state, "done", "{page}");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        companies_named(&stack, "Killed Midway AS").await,
        1,
        "created twice or lost"
    );
    assert_eq!(
        tickets_issued(&stack).await,
        1,
        "the cached ticket should have been reused"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_killed_mid_exchange_recovers_with_a_bounded_number_of_exchanges() {
    let database = TestDatabase::create().await.unwrap();
    let mut stack = Stack::start_with(
        "sigkill-exchange",
        database.url(),
        &[("PARTNER_SERVICE__LEASE_SECS", "10".to_owned())],
    )
    .await;
    sim_admin(
        &stack,
        reqwest::Method::PUT,
        "/faults/exchange",
        Some(json!({"latency_ms": 3000})),
    )
    .await;
    let user = WebUser::new(&stack.web_url);
    assert_eq!(user.sign_in(ADMIN).await, 303);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stack.kill_service();
    sim_admin(&stack, reqwest::Method::DELETE, "/faults/exchange", None).await;
    stack.start_service().await;
    let (state, page) = user
        .system_user_company("After The Kill AS", Duration::from_secs(60))
        .await;
    assert_eq!(state, "done", "{page}");
    let issued = tickets_issued(&stack).await;
    assert!(
        (1..=2).contains(&issued),
        "{issued} tickets: the token was lost or exchanged again and again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn state_changes_reach_the_running_service() {
    let database = TestDatabase::create().await.unwrap();
    let stack = Stack::start("lifecycle", database.url()).await;
    let user = WebUser::new(&stack.web_url);
    assert_eq!(user.sign_in(ADMIN).await, 303);
    let (state, _) = user
        .system_user_company("Before Suspend AS", Duration::from_secs(30))
        .await;
    assert_eq!(state, "done");

    // SuperOffice suspends the tenant and tells partner-web; the page stops offering the action.
    sim_admin(
        &stack,
        reqwest::Method::POST,
        "/tenants/Cust10001/state",
        Some(json!({"state": "Suspended"})),
    )
    .await;
    let home = user.get("/").await.text().await.unwrap();
    assert!(
        home.contains("SuperOffice has stopped this tenant"),
        "{home}"
    );
    let refused = user
        .create_company("as-system-user", "While Suspended AS")
        .await;
    assert_eq!(refused.status().as_u16(), 400);

    // Resumed: the service works for it again at once.
    sim_admin(
        &stack,
        reqwest::Method::POST,
        "/tenants/Cust10001/state",
        Some(json!({"state": "Running"})),
    )
    .await;
    let (state, page) = user
        .system_user_company("After Resume AS", Duration::from_secs(30))
        .await;
    assert_eq!(state, "done", "{page}");

    // Moved to another host: the service follows the state API to the new host.
    sim_admin(
        &stack,
        reqwest::Method::POST,
        "/tenants/Cust10001/move",
        Some(json!({"host": "sod3"})),
    )
    .await;
    let (state, page) = user
        .system_user_company("After Move AS", Duration::from_secs(30))
        .await;
    assert_eq!(state, "done", "{page}");
    assert_eq!(companies_named(&stack, "While Suspended AS").await, 0);
}

/// The request's state and last change, and the tenant's recorded failures: what a stalled instance
/// must not touch once another holds the tenant.
async fn rows(database: &TestDatabase, name: &str) -> (String, String, String) {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use shared::db::schema::{tenants, work_requests};
    let mut conn = database.connect().await.unwrap();
    let (state, updated, context_id): (String, chrono::DateTime<chrono::Utc>, String) =
        work_requests::table
            .filter(work_requests::payload.retrieve_as_text("name").eq(name))
            .select((
                work_requests::state,
                work_requests::updated_at,
                work_requests::context_id,
            ))
            .first(&mut conn)
            .await
            .unwrap();
    let (failures, error_at): (i32, Option<chrono::DateTime<chrono::Utc>>) = tenants::table
        .filter(tenants::context_id.eq(&context_id))
        .select((tenants::failed_attempts, tenants::last_error_at))
        .first(&mut conn)
        .await
        .unwrap();
    (
        state,
        updated.to_rfc3339(),
        format!("{failures} {error_at:?}"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_instance_past_its_lease_changes_nothing_when_it_wakes() {
    let database = TestDatabase::create().await.unwrap();
    let mut stack = Stack::start_with(
        "sigstop-lease",
        database.url(),
        &[("PARTNER_SERVICE__LEASE_SECS", "10".to_owned())],
    )
    .await;
    let user = WebUser::new(&stack.web_url);
    assert_eq!(user.sign_in(ADMIN).await, 303);
    let (state, _) = user
        .system_user_company("Warm Up AS", Duration::from_secs(30))
        .await;
    assert_eq!(state, "done");

    // Saving a company takes 3 s; the instance is stopped while it waits for the answer.
    sim_admin(
        &stack,
        reqwest::Method::PUT,
        "/faults/api",
        Some(json!({"method": "POST", "latency_ms": 3000})),
    )
    .await;
    let queued = user.create_company("as-system-user", "Stalled AS").await;
    let path = e2e::location(&queued);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stalled = stack.service_pid().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-STOP", &stalled])
            .status()
            .unwrap()
            .success()
    );
    sim_admin(&stack, reqwest::Method::DELETE, "/faults/api", None).await;

    // A second instance takes the tenant over once the stalled one's lease runs out, and finishes.
    stack.start_service().await;
    let (state, page) = user.wait_for_request(&path, Duration::from_secs(60)).await;
    assert_eq!(state, "done", "{page}");
    let before = rows(&database, "Stalled AS").await;

    // The stalled instance wakes up: its late answer and writes must change nothing.
    assert!(
        std::process::Command::new("kill")
            .args(["-CONT", &stalled])
            .status()
            .unwrap()
            .success()
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(rows(&database, "Stalled AS").await, before);
    assert_eq!(before.0, "done");
    assert_eq!(companies_named(&stack, "Stalled AS").await, 1);
    let done_rows = {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use shared::db::schema::work_requests;
        let mut conn = database.connect().await.unwrap();
        work_requests::table
            .filter(
                work_requests::payload
                    .retrieve_as_text("name")
                    .eq("Stalled AS"),
            )
            .filter(work_requests::state.eq("done"))
            .count()
            .get_result::<i64>(&mut conn)
            .await
            .unwrap()
    };
    assert_eq!(done_rows, 1);
    stack.stop();
}
