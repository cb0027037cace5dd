//! Requests and checks several of partner-web's test modules share.

use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use testkit::TestApp;

/// partner-web with the simulator, and Cust10001's administrator signed in.
pub async fn admin_signed_in() -> TestApp {
    let app = TestApp::with_sim(&[]).await;
    app.sign_in_as("admin@cust10001.example").await;
    app
}

/// Runs one SQL statement, a test's own change to the data.
pub async fn execute(conn: &mut AsyncPgConnection, statement: &str) {
    diesel::sql_query(statement).execute(conn).await.unwrap();
}

/// Runs one SQL statement whose `$1` is `value` (a state: states are bound, never written into SQL).
pub async fn execute_with(conn: &mut AsyncPgConnection, statement: &str, value: &str) {
    diesel::sql_query(statement)
        .bind::<diesel::sql_types::Text, _>(value)
        .execute(conn)
        .await
        .unwrap();
}

/// Posts a state-change notification; returns the response.
pub async fn send_state_change(app: &TestApp, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/superoffice/state-change"))
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Posts a state-change notification; returns the status and the JSON answer.
pub async fn post_state_change(app: &TestApp, body: &Value) -> (u16, Value) {
    let response = send_state_change(app, body).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Posts `body` to `path` as `content_type`, whatever the body holds; returns the response.
pub async fn post_body(
    app: &TestApp,
    path: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// The message of a JSON error answer.
pub fn error_of(answer: &Value) -> &str {
    answer["error"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error: {answer}"))
}

/// The tenant has no queued or running work request.
pub async fn assert_no_open_work(app: &TestApp, ctx: &str) {
    let mut conn = app.pool.get().await.unwrap();
    let open = shared::db::work::open_for_tenant(&mut conn, ctx)
        .await
        .unwrap();
    assert!(open.is_empty(), "{open:?}");
}

/// The `code` parameter of SuperID's redirect back to partner-web.
pub fn code_of(callback: &str) -> String {
    url::Url::parse(callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned()
}

/// Stores a system user token for `context_id`, as its administrator's sign-in does (no SuperOffice
/// addresses yet, a token that never matches the stored one).
pub async fn capture_token(
    conn: &mut diesel_async::AsyncPgConnection,
    context_id: &str,
    company_name: Option<&str>,
    serial: Option<&str>,
    token_ciphertext: Vec<u8>,
    captured_by: &str,
) {
    shared::db::tenants::capture_token(
        conn,
        shared::db::tenants::TokenCapture {
            context_id,
            details: shared::db::tenants::TenantDetails {
                company_name,
                serial,
                ..testkit::seed::DETAILS
            },
            token: shared::crypto::at_rest::Encrypted {
                key_version: 1,
                bytes: token_ciphertext,
            },
            captured_by,
            same_token: &|_| false,
            token_issued_at: None,
        },
    )
    .await
    .unwrap();
}
