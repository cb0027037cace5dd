//! The system under faults, as real processes: the database restarted under both services, SuperID's
//! signing key rotated, SuperID failing. After each fault the system recovers by itself, loses nothing and
//! does not storm SuperOffice with retries.

use std::time::{Duration, Instant};

use e2e::{PrivateCluster, Stack, WebUser, run, scrape_metrics, test_secrets, wait_for_http};
use serde_json::{Value, json};
use testkit::TestDatabase;

const ADMIN: &str = "admin@northwind.example";

/// Exchanges partner-service attempted, whatever their outcome (its /metrics).
async fn exchange_attempts(stack: &Stack) -> f64 {
    let text = scrape_metrics(&stack.metrics_url).await;
    text.lines()
        .filter(|line| line.starts_with("partner_service_exchanges_total"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn tickets_issued(stack: &Stack) -> u64 {
    let tenant = stack
        .sim_admin(reqwest::Method::GET, "/tenants/Cust10001", None)
        .await;
    tenant["tickets_issued"].as_u64().unwrap()
}

/// A stack over a database of its own, and the administrator's browser (not yet signed in).
struct Faulted {
    database: TestDatabase,
    stack: Stack,
    user: WebUser,
}

impl Faulted {
    /// The stack named `name` (its logs' folder), a service lease of 10 s when `short_lease`.
    async fn start(name: &str, short_lease: bool) -> Self {
        let database = TestDatabase::create().await.unwrap();
        let lease = [("PARTNER_SERVICE__LEASE_SECS", "10".to_owned())];
        let overrides: &[(&str, String)] = if short_lease { &lease } else { &[] };
        let stack = Stack::start_with(name, database.url(), overrides).await;
        let user = WebUser::new(&stack.web_url);
        Self {
            database,
            stack,
            user,
        }
    }

    /// [`Faulted::start`], the administrator signed in and `first_company` done: the ticket is obtained and
    /// cached.
    async fn working(name: &str, short_lease: bool, first_company: &str) -> Self {
        let world = Self::start(name, short_lease).await;
        world.sign_in().await;
        world
            .company_done(first_company, Duration::from_secs(30))
            .await;
        world
    }

    async fn sign_in(&self) {
        assert_eq!(self.user.sign_in(ADMIN).await, 303);
    }

    /// A company for the system user, done within `limit`.
    async fn company_done(&self, name: &str, limit: Duration) {
        let (state, page) = self.user.system_user_company(name, limit).await;
        assert_eq!(state, "done", "{page}");
    }

    /// Queues a company for the system user; returns its request page.
    async fn queue(&self, name: &str) -> String {
        let queued = self.user.create_company("as-system-user", name).await;
        e2e::location(&queued)
    }

    /// Turns on a simulator fault (`/faults/api`, `/faults/exchange`).
    async fn fault(&self, path: &str, fault: Value) {
        self.stack
            .sim_admin(reqwest::Method::PUT, path, Some(fault))
            .await;
    }

    async fn clear(&self, path: &str) {
        self.stack
            .sim_admin(reqwest::Method::DELETE, path, None)
            .await;
    }

    /// Queues company `name` with saves taking 3 s, `interrupt`s the service while it waits for the
    /// answer, then starts another instance: the company is done within a minute.
    async fn interrupted_save(&mut self, name: &str, interrupt: impl FnOnce(&mut Stack)) {
        let slow_saves = json!({"method": "POST", "latency_ms": 3000});
        self.fault("/faults/api", slow_saves).await;
        let path = self.queue(name).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        interrupt(&mut self.stack);
        self.clear("/faults/api").await;
        // Another instance takes the tenant over once the first one's lease runs out, and finishes.
        self.stack.start_service().await;
        let limit = Duration::from_secs(60);
        let (state, page) = self.user.wait_for_request(&path, limit).await;
        assert_eq!(state, "done", "{page}");
    }
}

/// Sends `signal` (`-STOP`, `-CONT`) to process `pid`.
fn signal(pid: &str, signal: &str) {
    let sent = std::process::Command::new("kill")
        .args([signal, pid])
        .status()
        .unwrap();
    assert!(sent.success(), "kill {signal} {pid}");
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
    let user = stack.signed_in_admin().await;
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
    let scraped = scrape_metrics(&stack.web_metrics_url).await;
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
    let world = Faulted::working("key-rotation", false, "Old Key AS").await;

    let rotate = json!({"keep_old": false});
    world
        .stack
        .sim_admin(reqwest::Method::POST, "/keys/rotate", Some(rotate))
        .await;
    // A re-approval forces a new exchange, whose JWT is signed with the new key; the sign-in's id_token too.
    let reapprove = format!("/tenants/Cust10001/apps/{}/reapprove", e2e::CLIENT_ID);
    world
        .stack
        .sim_admin(reqwest::Method::POST, &reapprove, None)
        .await;
    let fresh = WebUser::new(&world.stack.web_url);
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
    let world = Faulted::start("superid-5xx", false).await;
    let exchange_fails = json!({"fail_share": 1.0, "fail_status": 503});
    world.fault("/faults/exchange", exchange_fails).await;
    world.sign_in().await;
    let path = world.queue("Despite 5xx AS").await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    // Refused before its handler runs, a failed exchange leaves no record in the simulator: count the
    // service's own attempts.
    let attempts = exchange_attempts(&world.stack).await;
    assert!(attempts >= 1.0, "the service never tried");
    assert!(
        attempts <= 6.0,
        "{attempts} exchange attempts in 6 s: a retry storm"
    );
    assert_eq!(tickets_issued(&world.stack).await, 0);

    world.clear("/faults/exchange").await;
    let (state, page) = world
        .user
        .wait_for_request(&path, Duration::from_secs(90))
        .await;
    assert_eq!(
        state, "done",
        "not recovered after the fault was cleared:\n{page}"
    );
    assert_eq!(tickets_issued(&world.stack).await, 1);
    let health = wait_for_http(
        &format!("{}/healthz", world.stack.metrics_url),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(health, Some(reqwest::StatusCode::OK));
}

/// Companies the simulator holds for Northwind with this name.
async fn companies_named(stack: &Stack, name: &str) -> usize {
    let records = stack
        .sim_admin(reqwest::Method::GET, "/records", None)
        .await;
    records["companies"]
        .as_array()
        .map_or(0, |all| all.iter().filter(|c| c["name"] == name).count())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_killed_mid_company_creation_creates_it_exactly_once() {
    let mut world = Faulted::working("sigkill-company", true, "Warm Up AS").await;

    // The service is killed while it waits for the answer to a save; the next instance finds the
    // company the dead one may have created before creating it again.
    world
        .interrupted_save("Killed Midway AS", Stack::kill_service)
        .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        companies_named(&world.stack, "Killed Midway AS").await,
        1,
        "created twice or lost"
    );
    assert_eq!(
        tickets_issued(&world.stack).await,
        1,
        "the cached ticket should have been reused"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_killed_mid_exchange_recovers_with_a_bounded_number_of_exchanges() {
    let mut world = Faulted::start("sigkill-exchange", true).await;
    world
        .fault("/faults/exchange", json!({"latency_ms": 3000}))
        .await;
    world.sign_in().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    world.stack.kill_service();
    world.clear("/faults/exchange").await;
    world.stack.start_service().await;
    world
        .company_done("After The Kill AS", Duration::from_secs(60))
        .await;
    let issued = tickets_issued(&world.stack).await;
    assert!(
        (1..=2).contains(&issued),
        "{issued} tickets: the token was lost or exchanged again and again"
    );
}

/// Sets the simulator tenant Cust10001's state (`Suspended`, `Running`).
async fn set_tenant_state(stack: &Stack, state: &str) {
    let body = json!({ "state": state });
    stack
        .sim_admin(
            reqwest::Method::POST,
            "/tenants/Cust10001/state",
            Some(body),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn state_changes_reach_the_running_service() {
    let world = Faulted::working("lifecycle", false, "Before Suspend AS").await;

    // SuperOffice suspends the tenant and tells partner-web; the page stops offering the action.
    set_tenant_state(&world.stack, "Suspended").await;
    let home = world.user.get("/").await.text().await.unwrap();
    assert!(
        home.contains("SuperOffice has stopped this tenant"),
        "{home}"
    );
    let refused = world
        .user
        .create_company("as-system-user", "While Suspended AS")
        .await;
    assert_eq!(refused.status().as_u16(), 400);

    // Resumed: the service works for it again at once.
    set_tenant_state(&world.stack, "Running").await;
    world
        .company_done("After Resume AS", Duration::from_secs(30))
        .await;

    // Moved to another host: the service follows the state API to the new host.
    let sod3 = json!({"host": "sod3"});
    world
        .stack
        .sim_admin(reqwest::Method::POST, "/tenants/Cust10001/move", Some(sod3))
        .await;
    world
        .company_done("After Move AS", Duration::from_secs(30))
        .await;
    assert_eq!(companies_named(&world.stack, "While Suspended AS").await, 0);
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
    let mut world = Faulted::working("sigstop-lease", true, "Warm Up AS").await;

    // The instance is stopped while it waits for the answer to a save.
    let mut stalled = String::new();
    world
        .interrupted_save("Stalled AS", |stack| {
            stalled = stack.service_pid().unwrap().to_string();
            signal(&stalled, "-STOP");
        })
        .await;
    let before = rows(&world.database, "Stalled AS").await;

    // The stalled instance wakes up: its late answer and writes must change nothing.
    signal(&stalled, "-CONT");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(rows(&world.database, "Stalled AS").await, before);
    assert_eq!(before.0, "done");
    assert_eq!(companies_named(&world.stack, "Stalled AS").await, 1);
    let done_rows = {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use shared::db::schema::work_requests;
        let mut conn = world.database.connect().await.unwrap();
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
    world.stack.stop();
}
