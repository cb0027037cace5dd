use std::time::Duration;

use serde_json::json;
use shared::http::Retryable;
use shared::superid::discovery::{Discovery, DiscoveryError};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support;

fn document(server: &MockServer) -> serde_json::Value {
    let base = server.uri();
    json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/login/common/oauth/authorize"),
        "token_endpoint": format!("{base}/login/common/oauth/tokens"),
        "jwks_uri": format!("{base}/login/.well-known/jwks"),
        "scopes_supported": ["openid"],
        "response_types_supported": ["code"]
    })
}

#[tokio::test]
async fn endpoints_come_from_the_document_which_is_cached() {
    let server = MockServer::start().await;
    support::serve_once(
        &server,
        "GET",
        "/login/.well-known/openid-configuration",
        ResponseTemplate::new(200).set_body_json(document(&server)),
    )
    .await;
    let discovery = Discovery::new(support::http(), &support::environment(&server));
    let first = discovery.metadata().await.unwrap();
    let second = discovery.metadata().await.unwrap();
    assert_eq!(
        first.token_endpoint.as_str(),
        format!("{}/login/common/oauth/tokens", server.uri())
    );
    assert_eq!(first, second);
}

#[tokio::test]
async fn the_document_is_fetched_again_after_its_ttl_or_a_refresh() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/login/.well-known/openid-configuration"))
        .respond_with(ResponseTemplate::new(200).set_body_json(document(&server)))
        .expect(3)
        .mount(&server)
        .await;
    let discovery = Discovery::with_ttl(
        support::http(),
        &support::environment(&server),
        Duration::from_millis(50),
    );
    discovery.metadata().await.unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    discovery.metadata().await.unwrap();
    discovery.refresh().await.unwrap();
    discovery.metadata().await.unwrap();
}

#[tokio::test]
async fn a_server_error_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    support::every_get(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    support::every_get(ResponseTemplate::new(200).set_body_json(document(&server)))
        .mount(&server)
        .await;
    let discovery = Discovery::new(support::http(), &support::environment(&server));
    assert!(discovery.metadata().await.is_ok());
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_document_without_endpoints_is_invalid_and_not_retried() {
    let server = MockServer::start().await;
    support::every_get(ResponseTemplate::new(200).set_body_json(json!({"issuer": "x"})))
        .expect(1)
        .mount(&server)
        .await;
    let discovery = Discovery::new(support::http(), &support::environment(&server));
    let error = discovery.metadata().await.unwrap_err();
    assert_is!(error, DiscoveryError::Invalid { .. });
    assert!(!error.is_retryable());
}
