//! Liveness, readiness and metrics.

use serde_json::Value;

use testkit::TestApp;

#[tokio::test(flavor = "multi_thread")]
async fn health_and_readiness_answer_on_the_bound_port() {
    let app = TestApp::spawn().await;
    assert_ne!(app.port, 0, "port 0 was replaced by the bound port");
    let live = app.get("/healthz").await;
    assert_eq!(live.status().as_u16(), 200);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status().as_u16(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["database"], "ok");
    shared::db::ping(&app.pool).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_are_served_on_their_own_port_not_the_public_one() {
    let app = TestApp::spawn().await;
    assert_ne!(app.metrics_port, app.port);
    let public = app.get("/metrics").await;
    assert_eq!(public.status().as_u16(), 404);
    // A request on the public port is measured, and the measurement shows on the metrics port.
    app.get("/healthz").await;
    let metrics = app
        .client
        .get(format!("http://127.0.0.1:{}/metrics", app.metrics_port))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("# TYPE partner_web_request_seconds histogram"),
        "{text}"
    );
    // Each scrape checks the database as /readyz does and reads the pool.
    assert!(text.contains("partner_web_ready 1"), "{text}");
    assert!(
        text.contains(r#"partner_db_pool_connections{state="idle"}"#),
        "{text}"
    );
    assert!(text.contains("partner_db_pool_max 10"), "{text}");
}
