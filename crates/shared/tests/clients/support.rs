//! What the client tests share: a fast HTTP stack, environments pointing at a mock server.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use shared::clock::{Clock, FixedClock};
use shared::domain::ContextId;
use shared::environment::Environment;
use shared::http::{RetryPolicy, SuperOfficeHttp, TenantRateLimiter, build_client};
use shared::superid::environment::SuperIdEnvironment;
use url::Url;
use wiremock::MockServer;

/// A client with a short timeout and quick retries.
pub fn http_with_timeout(timeout: Duration) -> SuperOfficeHttp {
    SuperOfficeHttp::new(
        build_client(timeout).unwrap(),
        TenantRateLimiter::new(100),
        RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
        },
    )
}

pub fn http() -> SuperOfficeHttp {
    http_with_timeout(Duration::from_secs(5))
}

/// A `custom` SuperID at the mock server, with a trailing slash in the base URL on purpose.
pub fn environment(server: &MockServer) -> SuperIdEnvironment {
    SuperIdEnvironment::new(
        Environment::Custom,
        Url::parse(&format!("{}/", server.uri())).unwrap(),
        server.uri(),
    )
}

pub fn ctx() -> ContextId {
    ContextId::parse("Cust12345").unwrap()
}

pub fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub fn clock() -> Arc<dyn Clock> {
    Arc::new(FixedClock(now()))
}
