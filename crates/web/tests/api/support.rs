//! Requests and checks several of partner-web's test modules share.

use serde_json::Value;
use testkit::TestApp;

/// Posts a state-change notification; returns the status and the JSON answer.
pub async fn post_state_change(app: &TestApp, body: &Value) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/superoffice/state-change"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
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
            environment: "custom",
            company_name,
            serial,
            webapi_url: None,
            netserver_url: None,
            token_ciphertext,
            token_key_version: 1,
            captured_by,
            same_token: &|_| false,
            token_issued_at: None,
        },
    )
    .await
    .unwrap();
}
