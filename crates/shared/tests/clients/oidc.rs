//! The OpenID Connect client against a mock SuperID.

use std::collections::HashMap;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use shared::superid::oidc::{CallbackParams, OAuthError, OidcApplication, OidcClient, OidcError};
use wiremock::ResponseTemplate;

use crate::support::{self, MockSuperId, claim};

const CLIENT_ID: &str = "0123456789abcdef0123456789abcdef";
const REDIRECT: &str = "http://127.0.0.1:8080/callback";
const TOKEN_PATH: &str = "/login/common/oauth/tokens";
const ACCESS: &str = "8A:Cust12345.AR2s3phb0gXK8DP0NfoYlsrQ";

fn client(superid: &MockSuperId) -> OidcClient {
    let http = support::http();
    OidcClient::new(
        http.clone(),
        superid.validator(&http),
        support::clock(),
        OidcApplication {
            issuer: superid.server.uri(),
            client_id: CLIENT_ID.into(),
            client_secret: SecretString::from(support::APP_TOKEN),
            redirect_uri: REDIRECT.into(),
            pkce: true,
        },
    )
}

fn id_token(superid: &MockSuperId, nonce: &str, admin: bool) -> String {
    let iat = support::now().timestamp();
    let mut claims = json!({
        "sub": "tony@example.com",
        claim("ctx"): "Cust12345",
        claim("serial"): support::SERIAL,
        claim("is_administrator"): if admin { "True" } else { "False" },
        claim("associateid"): "5",
        claim("webapi_url"): "https://sod.superoffice.com/Cust12345/api/",
        "nonce": nonce,
        "iat": iat, "nbf": iat - 60, "exp": iat + 300,
        "iss": superid.server.uri(), "aud": CLIENT_ID,
    });
    if admin {
        claims[claim("system_token")] = Value::from("Partner App-8k8Q7DmBgo");
    }
    support::superid_jwt(&claims)
}

fn query(url: &url::Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

/// The callback SuperID redirects to after a sign-in, with `code` and `state`.
fn callback(code: &str, state: &str) -> CallbackParams {
    CallbackParams {
        code: Some(code.into()),
        state: Some(state.into()),
        ..CallbackParams::default()
    }
}

/// The token endpoint answers every request with `status` and the JSON `body`.
async fn token_endpoint_answers(superid: &MockSuperId, status: u16, body: Value) {
    let response = ResponseTemplate::new(status).set_body_json(body);
    support::serve(&superid.server, "POST", TOKEN_PATH, response).await;
}

fn form(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

#[tokio::test]
async fn the_authorization_request_carries_state_nonce_and_pkce() {
    let superid = MockSuperId::start().await;
    let request = client(&superid).authorization_request(None).await.unwrap();
    assert_eq!(request.url.path(), "/login/common/oauth/authorize");
    let query = query(&request.url);
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(query["scope"], "openid");
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["response_mode"], "query");
    assert_eq!(query["redirect_uri"], REDIRECT);
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["code_challenge"].len(), 43);
    assert!(query["state"].len() >= 43 && query["nonce"].len() >= 43);
    assert!(!query.contains_key("acr_values"));
}

#[tokio::test]
async fn a_tenant_is_preselected_by_path_and_acr_values() {
    let superid = MockSuperId::start().await;
    let request = client(&superid)
        .authorization_request(Some(&support::ctx()))
        .await
        .unwrap();
    assert_eq!(request.url.path(), "/login/Cust12345/oauth/authorize");
    assert_eq!(query(&request.url)["acr_values"], "tenant:Cust12345");
    assert_eq!(request.pending.tenant, Some(support::ctx()));
}

#[tokio::test]
async fn the_code_is_exchanged_and_the_id_token_validated() {
    let superid = MockSuperId::start().await;
    let client = client(&superid);
    let request = client.authorization_request(None).await.unwrap();
    let query = query(&request.url);
    support::serve_once(
        &superid.server,
        "POST",
        TOKEN_PATH,
        ResponseTemplate::new(200).set_body_json(json!({
            "token_type": "Bearer", "access_token": ACCESS, "expires_in": 3600,
            "refresh_token": "refresh-1", "id_token": id_token(&superid, &query["nonce"], true),
        })),
    )
    .await;
    let callback = callback("code-1", &query["state"]);
    let sign_in = client.complete(&request.pending, &callback).await.unwrap();
    assert_eq!(sign_in.claims.tenant.context_id, support::ctx());
    assert!(sign_in.claims.associate.is_administrator);
    assert_eq!(
        sign_in.claims.credentials.system_token.unwrap().expose(),
        "Partner App-8k8Q7DmBgo"
    );
    assert_eq!(sign_in.tokens.access_token.expose_secret(), ACCESS);
    assert_eq!(
        sign_in.tokens.refresh_token.unwrap().expose_secret(),
        "refresh-1"
    );
    assert_eq!(
        sign_in.tokens.expires_at,
        support::now() + chrono::Duration::hours(1)
    );

    let sent = form(&superid.requests_to(TOKEN_PATH).await[0].body);
    assert_eq!(sent["grant_type"], "authorization_code");
    assert_eq!(sent["code"], "code-1");
    assert_eq!(sent["client_id"], CLIENT_ID);
    assert_eq!(sent["client_secret"], support::APP_TOKEN);
    assert_eq!(sent["redirect_uri"], REDIRECT);
    assert_eq!(sent["code_verifier"].len(), 43);
}

#[tokio::test]
async fn a_wrong_nonce_or_state_is_refused() {
    let superid = MockSuperId::start().await;
    let client = client(&superid);
    let request = client.authorization_request(None).await.unwrap();
    token_endpoint_answers(
        &superid,
        200,
        json!({
            "access_token": ACCESS, "id_token": id_token(&superid, "another-nonce", false),
        }),
    )
    .await;
    let state = query(&request.url)["state"].clone();
    let error = client
        .complete(&request.pending, &callback("c", &state))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("nonce"), "{error}");
    let error = client
        .complete(&request.pending, &callback("c", "forged"))
        .await
        .unwrap_err();
    assert_is!(error, OidcError::StateMismatch);
}

#[tokio::test]
async fn errors_from_the_callback_and_the_token_endpoint_are_typed() {
    let superid = MockSuperId::start().await;
    let client = client(&superid);
    let request = client.authorization_request(None).await.unwrap();
    let state = query(&request.url)["state"].clone();
    let error = client
        .complete(
            &request.pending,
            &CallbackParams {
                state: Some(state.clone()),
                error: Some(OAuthError {
                    error: "access_denied".into(),
                    description: Some("The user declined".into()),
                }),
                ..CallbackParams::default()
            },
        )
        .await
        .unwrap_err();
    assert_is!(&error, OidcError::Authorization(refusal) if refusal.error == "access_denied");
    token_endpoint_answers(
        &superid,
        400,
        json!({
            "error": "invalid_grant", "error_description": "code expired"
        }),
    )
    .await;
    let error = client
        .complete(&request.pending, &callback("old", &state))
        .await
        .unwrap_err();
    assert!(error.is_invalid_grant(), "{error}");
    assert!(error.to_string().contains("code expired"), "{error}");
}

#[tokio::test]
async fn a_refresh_keeps_the_old_refresh_token() {
    let superid = MockSuperId::start().await;
    token_endpoint_answers(
        &superid,
        200,
        json!({
            "token_type": "Bearer", "access_token": "8A:Cust12345.new", "expires_in": "1200",
        }),
    )
    .await;
    let old = SecretString::from("refresh-1");
    let tokens = client(&superid).refresh(&old).await.unwrap();
    assert_eq!(tokens.access_token.expose_secret(), "8A:Cust12345.new");
    assert_eq!(
        tokens.refresh_token.as_ref().unwrap().expose_secret(),
        "refresh-1"
    );
    assert_eq!(
        tokens.expires_at,
        support::now() + chrono::Duration::minutes(20)
    );
    let sent = form(&superid.requests_to(TOKEN_PATH).await[0].body);
    assert_eq!(sent["grant_type"], "refresh_token");
    assert_eq!(sent["refresh_token"], "refresh-1");
    assert!(!format!("{tokens:?}").contains("8A:"));
}
