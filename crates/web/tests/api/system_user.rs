//! Who may ask the system user for work, and how much: refused requests queue nothing.

use testkit::TestApp;
use testkit::snapshot::{ALL_SESSIONS, unchanged};

const ADMIN: &str = "admin@cust10001.example";
const USER: &str = "user@cust10001.example";
const TENANT: &str = "Cust10001";

/// The administrator signs in (capturing the tenant's system user token), then `who` signs in.
async fn signed_in_as(overrides: &[(&str, &str)], who: &str) -> TestApp {
    let app = TestApp::with_sim(overrides).await;
    assert_eq!(app.sign_in_as(ADMIN).await.status().as_u16(), 303);
    if who != ADMIN {
        assert_eq!(app.sign_in_as(who).await.status().as_u16(), 303);
    }
    app
}

async fn queue(app: &TestApp, csrf: &str, name: &str) -> (u16, String) {
    let response = app
        .post("/companies/as-system-user", csrf, &[("name", name)])
        .await;
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Queues `name`, which must be refused with `status` and a page that says `says`, changing nothing.
async fn assert_refused(app: &TestApp, csrf: &str, name: &str, status: u16, says: &str) {
    let (answered, page) = unchanged(&app.pool, &ALL_SESSIONS, queue(app, csrf, name)).await;
    assert_eq!(answered, status, "{page}");
    assert!(page.contains(says), "{page}");
}

/// Queues work for the tenant as someone else (another user, earlier).
async fn queued_by_others(app: &TestApp, count: usize) {
    let mut conn = app.pool.get().await.unwrap();
    for n in 0..count {
        shared::db::work::enqueue_create_company(
            &mut conn,
            TENANT,
            &format!("Other {n}"),
            &format!("other-{n}"),
        )
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn attack_non_administrator_posts_system_user_work_directly() {
    let app = signed_in_as(&[], USER).await;
    let home = app.home().await;
    assert!(
        home.contains("Only administrators of your tenant may ask the system user"),
        "{home}"
    );
    assert!(
        !home.contains("action=\"/companies/as-system-user\""),
        "{home}"
    );
    let csrf = app.csrf().await;
    assert_refused(&app, &csrf, "Not Allowed AS", 403, "Only administrators").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn all_users_may_queue_when_configured() {
    let app = signed_in_as(&[("PARTNER_WEB__SYSTEM_USER_ACTIONS", "all_users")], USER).await;
    assert!(!app.home().await.contains("Only administrators"));
    let csrf = app.csrf().await;
    assert_eq!(queue(&app, &csrf, "Anyone AS").await.0, 303);
}

#[tokio::test(flavor = "multi_thread")]
async fn attack_flood_over_the_per_user_limit() {
    let app = signed_in_as(&[("PARTNER_WEB__WORK_PER_USER_PER_MINUTE", "3")], ADMIN).await;
    let csrf = app.csrf().await;
    for n in 0..3 {
        assert_eq!(queue(&app, &csrf, &format!("Flood {n}")).await.0, 303);
    }
    assert_refused(&app, &csrf, "Flood 3", 429, "the most one user may").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn attack_flood_over_the_per_tenant_limit() {
    let app = signed_in_as(&[("PARTNER_WEB__WORK_PER_TENANT_PER_MINUTE", "4")], ADMIN).await;
    queued_by_others(&app, 3).await;
    let csrf = app.csrf().await;
    assert_eq!(queue(&app, &csrf, "Last One").await.0, 303);
    assert_refused(&app, &csrf, "One Too Many", 429, "the most one tenant may").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn attack_flood_over_the_open_request_cap() {
    let app = signed_in_as(&[("PARTNER_WEB__OPEN_WORK_PER_TENANT", "2")], ADMIN).await;
    queued_by_others(&app, 2).await;
    // Queued long ago: only the cap on open requests applies, not the per-minute limits.
    let mut conn = app.pool.get().await.unwrap();
    crate::support::execute(
        &mut conn,
        "UPDATE work_requests SET created_at = now() - interval '1 hour'",
    )
    .await;
    let csrf = app.csrf().await;
    let waiting = "requests waiting for the system user";
    assert_refused(&app, &csrf, "Over The Cap", 429, waiting).await;
    // One done, one place free.
    crate::support::execute_with(
        &mut conn,
        "UPDATE work_requests SET state = $1 WHERE id = (SELECT min(id) FROM work_requests)",
        shared::db::models::WorkState::Done.as_str(),
    )
    .await;
    assert_eq!(queue(&app, &csrf, "Fits Now").await.0, 303);
}
