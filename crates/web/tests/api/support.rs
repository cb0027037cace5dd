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
