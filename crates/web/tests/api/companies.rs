//! The two actions and the CSRF check.

use shared::db::models::WorkRequest;

use testkit::{TestApp, location};

const ADMIN: &str = "admin@cust10001.example";

#[tokio::test(flavor = "multi_thread")]
async fn create_company_with_login_user_shows_the_new_company() {
    let app = crate::support::admin_signed_in().await;
    let response = app.user().create_company("as-user", "Login User AS").await;
    assert_eq!(response.status().as_u16(), 303);
    let home = app.home().await;
    assert!(
        home.contains("Company <strong>Login User AS</strong> created with your own credentials"),
        "{home}"
    );
    let records = app.sim().admin().records();
    let created = serde_json::to_value(&records).unwrap();
    let text = created.to_string();
    assert!(
        text.contains("Login User AS") && text.contains("user_bearer"),
        "{text}"
    );
    // Shown once.
    assert!(
        !app.home()
            .await
            .contains("created with your own credentials")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn create_company_with_system_user_is_queued_never_done_in_the_request() {
    let app = crate::support::admin_signed_in().await;
    let response = app
        .user()
        .create_company("as-system-user", "System User AS")
        .await;
    assert_eq!(response.status().as_u16(), 303);
    let target = location(&response);
    assert!(target.starts_with("/companies/requests/"), "{target}");
    let page = app.get(&target).await.text().await.unwrap();
    assert!(
        page.contains("data-state=\"queued\"") && page.contains("http-equiv=\"refresh\""),
        "{page}"
    );
    let text = serde_json::to_value(app.sim().admin().records())
        .unwrap()
        .to_string();
    assert!(
        !text.contains("System User AS"),
        "created in the request thread"
    );
    let mut conn = app.pool.get().await.unwrap();
    let work: Vec<WorkRequest> = shared::db::work::open_for_tenant(&mut conn, "Cust10001")
        .await
        .unwrap();
    assert_eq!(work.len(), 1);
    assert_eq!(work[0].payload["name"], "System User AS");
}

#[tokio::test(flavor = "multi_thread")]
async fn posts_without_the_right_csrf_token_are_refused() {
    let app = crate::support::admin_signed_in().await;
    for form in [
        vec![("name", "X")],
        vec![("csrf_token", "0".repeat(64).leak() as &str), ("name", "X")],
    ] {
        for path in ["/companies/as-user", "/companies/as-system-user"] {
            let response = app
                .client
                .post(app.url(path))
                .form(&form)
                .send()
                .await
                .unwrap();
            assert!(
                matches!(response.status().as_u16(), 400 | 403),
                "{path}: {}",
                response.status()
            );
        }
    }
    crate::support::assert_no_open_work(&app, "Cust10001").await;
    let text = serde_json::to_value(app.sim().admin().records())
        .unwrap()
        .to_string();
    assert!(!text.contains("\"X\""));
    let logout = app
        .client
        .post(app.url("/logout"))
        .form(&[("csrf_token", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status().as_u16(), 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_out_users_cannot_act_and_requests_are_scoped_to_the_tenant() {
    let app = TestApp::with_sim(&[]).await;
    let response = app.get("/tenant").await;
    assert_eq!(response.status().as_u16(), 401);
    app.sign_in_as(ADMIN).await;
    let mut conn = app.pool.get().await.unwrap();
    // Another tenant's request is not visible.
    crate::support::capture_token(&mut conn, "Cust10002", None, None, vec![1], "x").await;
    let other = shared::db::work::enqueue_create_company(&mut conn, "Cust10002", "Secret AS", "x")
        .await
        .unwrap();
    let response = app.get(&format!("/companies/requests/{}", other.id)).await;
    assert_eq!(response.status().as_u16(), 404);
    let tenant_page = app.get("/tenant").await.text().await.unwrap();
    assert!(!tenant_page.contains("Secret AS"));
    assert!(tenant_page.contains("Cust10001"));
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_carry_security_headers() {
    let app = TestApp::with_sim(&[]).await;
    let response = app.get("/").await;
    let headers = response.headers();
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let body = response.text().await.unwrap();
    assert!(body.contains("Sign in with SuperOffice"));
}
