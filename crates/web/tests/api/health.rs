//! Liveness and readiness.

use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test(flavor = "multi_thread")]
async fn health_and_readiness_answer_on_the_bound_port() {
    let app = spawn_app().await;
    assert_ne!(app.port, 0, "port 0 was replaced by the bound port");
    let live = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(live.status().as_u16(), 200);
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["database"], "ok");
    shared::db::ping(&app.pool).await.unwrap();
}
