//! What the client tests share: a fast HTTP stack, environments pointing at a mock server.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rsa::traits::PublicKeyParts;
use secrecy::SecretString;
use serde_json::{Value, json};
use shared::clock::{Clock, FixedClock};
use shared::crypto::partner_key::PartnerKey;
use shared::domain::ContextId;
use shared::environment::SuperIdEnvironment;
use shared::http::{RetryPolicy, SuperOfficeHttp, TenantRateLimiter, build_client};
use shared::superid::discovery::Discovery;
use shared::superid::exchange::ExchangeCore;
use shared::superid::validation::SuperIdValidator;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;
use wiremock::matchers::{self, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

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
    SuperIdEnvironment::custom(Url::parse(&format!("{}/", server.uri())).unwrap())
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

/// The application token the mocks expect.
pub const APP_TOKEN: &str = "app-token-secret";
/// The tenant's serial: the system-user JWT's audience is `spn:{SERIAL}`.
pub const SERIAL: &str = "1801550193";
/// A ticket as SuperOffice shapes them.
pub const TICKET: &str = "7T:MAA3AGYAMQBlAGQAZAAxAGQAZQAwADgA";
/// The key id of the mock SuperID's JWKS key.
const JWKS_KID: &str = "mock-superid-key";

/// The partner's private key (signs system user tokens).
pub fn partner_key() -> Arc<PartnerKey> {
    Arc::new(PartnerKey::parse(include_str!("../../testdata/partner-private-key.xml")).unwrap())
}

/// The mock SuperID's signing key, published in its JWKS.
fn superid_key() -> &'static PartnerKey {
    static KEY: OnceLock<PartnerKey> = OnceLock::new();
    KEY.get_or_init(|| {
        PartnerKey::parse(include_str!("../../testdata/service-console-key.xml")).unwrap()
    })
}

fn encode(part: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(part).unwrap())
}

/// A JWT signed by the mock SuperID.
pub fn superid_jwt(claims: &Value) -> String {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": JWKS_KID});
    let signed = format!("{}.{}", encode(&header), encode(claims));
    let signature = superid_key().sign_sha256(signed.as_bytes());
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
}

pub fn claim(name: &str) -> String {
    format!("http://schemes.superoffice.net/identity/{name}")
}

/// The claims of the JWT PartnerSystemUserService returns.
pub fn system_user_claims(ctx: &str, serial: &str) -> Value {
    let iat = now().timestamp();
    json!({
        claim("ctx"): ctx,
        claim("serial"): serial,
        claim("ticket"): TICKET,
        claim("webapi_url"): "https://sod2.superoffice.com/Cust12345/api/",
        claim("netserver_url"): "https://sod2.superoffice.com/Cust12345/Remote/Services88/",
        "iat": iat, "nbf": iat - 60, "exp": iat + 300,
        "iss": "SuperOffice AS", "aud": format!("spn:{serial}"),
    })
}

/// A mock SuperID: discovery and JWKS mounted; tests add the endpoints they exercise.
pub struct MockSuperId {
    pub server: MockServer,
}

impl MockSuperId {
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let base = server.uri();
        Mock::given(method("GET"))
            .and(path("/login/.well-known/openid-configuration"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "issuer": base,
                "authorization_endpoint": format!("{base}/login/common/oauth/authorize"),
                "token_endpoint": format!("{base}/login/common/oauth/tokens"),
                "jwks_uri": format!("{base}/login/.well-known/jwks"),
            })))
            .mount(&server)
            .await;
        let public = superid_key().public_key();
        Mock::given(method("GET"))
            .and(path("/login/.well-known/jwks"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"keys": [{
                "kty": "RSA", "use": "sig", "alg": "RS256", "kid": JWKS_KID,
                "n": URL_SAFE_NO_PAD.encode(public.n_bytes()),
                "e": URL_SAFE_NO_PAD.encode(public.e_bytes()),
            }]})))
            .mount(&server)
            .await;
        Self { server }
    }

    pub fn environment(&self) -> SuperIdEnvironment {
        environment(&self.server)
    }

    pub fn validator(&self, http: &SuperOfficeHttp) -> Arc<SuperIdValidator> {
        let discovery = Arc::new(Discovery::new(http.clone(), &self.environment()));
        Arc::new(SuperIdValidator::new(
            discovery,
            http.client().clone(),
            None,
            Duration::from_secs(60),
            clock(),
        ))
    }

    pub fn exchange_core_with(&self, http: SuperOfficeHttp) -> ExchangeCore {
        let validator = self.validator(&http);
        ExchangeCore::new(
            http,
            self.environment(),
            SecretString::from(APP_TOKEN),
            partner_key(),
            clock(),
            validator,
        )
    }

    pub fn exchange_core(&self) -> ExchangeCore {
        self.exchange_core_with(http())
    }

    /// The requests received at `path`.
    pub async fn requests_to(&self, at: &str) -> Vec<wiremock::Request> {
        self.server
            .received_requests()
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.url.path() == at)
            .collect()
    }
}

/// A server that answers every connection with headers promising more body than it sends, then closes.
pub async fn truncating_server(content_type: &str, partial_body: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{partial_body}",
        partial_body.len() + 500
    );
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let response = response.clone();
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 65536];
                let _ = socket.read(&mut buffer).await;
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{address}")
}

/// A mock that answers every GET, whatever its path, with `response`.
pub fn every_get(response: ResponseTemplate) -> Mock {
    Mock::given(matchers::method("GET")).respond_with(response)
}

fn mock(method: &str, at: &str, response: ResponseTemplate) -> Mock {
    Mock::given(matchers::method(method))
        .and(matchers::path(at))
        .respond_with(response)
}

/// The server answers every `method` request to `at` with `response`.
pub async fn serve(server: &MockServer, method: &str, at: &str, response: ResponseTemplate) {
    mock(method, at, response).mount(server).await;
}

/// The server answers one `method` request to `at` with `response`; the test fails on another.
pub async fn serve_once(server: &MockServer, method: &str, at: &str, response: ResponseTemplate) {
    mock(method, at, response).expect(1).mount(server).await;
}

/// The server answers the first `method` request to `at` with `response`, before other mocks.
pub async fn serve_first(server: &MockServer, method: &str, at: &str, response: ResponseTemplate) {
    let first = mock(method, at, response).up_to_n_times(1);
    first.with_priority(1).mount(server).await;
}
