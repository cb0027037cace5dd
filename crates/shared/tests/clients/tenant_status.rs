use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use shared::http::TransportError;
use shared::tenant::status::{StatusError, TenantRunState, TenantStatusClient};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support;

fn client(server: &MockServer) -> TenantStatusClient {
    TenantStatusClient::new(
        support::http(),
        support::environment(server),
        support::clock(),
    )
}

fn running(server: &MockServer, valid_for: chrono::Duration) -> serde_json::Value {
    json!({
        "ContextIdentifier": "Cust12345",
        "Endpoint": format!("{}/Cust12345", server.uri()),
        "State": "Running",
        "IsRunning": true,
        "ValidUntil": (support::now() + valid_for).to_rfc3339(),
        "Api": format!("{}/Cust12345/api", server.uri()),
        "Version": "Release_11.10"
    })
}

/// The client's error when the state API answers `response` to each of the `requests` it expects.
async fn status_error(response: ResponseTemplate, requests: u64) -> StatusError {
    let server = MockServer::start().await;
    support::every_get(response)
        .expect(requests)
        .mount(&server)
        .await;
    client(&server).status(&support::ctx()).await.unwrap_err()
}

#[tokio::test]
async fn status_is_read_and_cached_until_valid_until() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/state/Cust12345"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(running(&server, chrono::Duration::minutes(5))),
        )
        .expect(2)
        .mount(&server)
        .await;
    let client = client(&server);
    let status = client.status(&support::ctx()).await.unwrap();
    assert_eq!(status.state, TenantRunState::Running);
    assert!(status.is_running);
    assert_eq!(status.version.as_deref(), Some("Release_11.10"));
    let again = client.status(&support::ctx()).await.unwrap();
    assert!(Arc::ptr_eq(&status, &again));
    client.invalidate(&support::ctx()).await;
    client.status(&support::ctx()).await.unwrap();
}

#[tokio::test]
async fn a_not_running_tenant_is_reported_as_such() {
    let server = MockServer::start().await;
    support::every_get(ResponseTemplate::new(200).set_body_json(json!({
        "ContextIdentifier": "Cust12345", "State": "OfflineMaintenance", "IsRunning": false
    })))
    .mount(&server)
    .await;
    let status = client(&server).status(&support::ctx()).await.unwrap();
    assert_eq!(status.state, TenantRunState::OfflineMaintenance);
    assert!(!status.is_running);
}

#[tokio::test]
async fn an_unknown_tenant_is_typed_and_not_retried() {
    let error = status_error(ResponseTemplate::new(404), 1).await;
    assert_is!(error, StatusError::UnknownTenant(_));
    assert!(error.to_string().contains("Cust12345"));
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff_then_reported() {
    let error = status_error(ResponseTemplate::new(502), 3).await;
    assert_is!(error, StatusError::Status { status: 502, .. });
}

#[tokio::test]
async fn a_slow_server_hits_the_timeout() {
    let server = MockServer::start().await;
    support::every_get(
        ResponseTemplate::new(200)
            .set_body_json(running(&server, chrono::Duration::minutes(5)))
            .set_delay(Duration::from_secs(3)),
    )
    .mount(&server)
    .await;
    let client = TenantStatusClient::new(
        support::http_with_timeout(Duration::from_millis(200)),
        support::environment(&server),
        support::clock(),
    );
    let started = std::time::Instant::now();
    let error = client.status(&support::ctx()).await.unwrap_err();
    assert_is!(
        error,
        StatusError::Transport(TransportError::Timeout { .. })
    );
    // Three attempts of 200 ms and short pauses, far less than the server's delay.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}
