//! OpenID Connect discovery, authorize, tokens and JWKS.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use superoffice_sim::{TEST_CLIENT_ID, TEST_CLIENT_SECRET, TEST_REDIRECT_URI};

use crate::support::*;

#[tokio::test]
async fn discovery_document_has_issuer_at_host_root_and_documented_endpoints() {
    let t = spawn().await;
    let doc = t.discovery().fetch_json().await;
    let base = t.sim.superid_url();
    assert_eq!(doc["issuer"], base);
    assert_eq!(
        doc["authorization_endpoint"],
        format!("{base}/login/common/oauth/authorize")
    );
    assert_eq!(
        doc["token_endpoint"],
        format!("{base}/login/common/oauth/tokens")
    );
    assert_eq!(doc["jwks_uri"], format!("{base}/login/.well-known/jwks"));
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_post", "client_secret_basic"])
    );
}

#[tokio::test]
async fn back_channel_endpoints_follow_the_request_host() {
    let t = spawn().await;
    let doc = t
        .discovery()
        .header("Host", "sim.internal:9100")
        .fetch_json()
        .await;
    assert_eq!(
        doc["token_endpoint"],
        "http://sim.internal:9100/login/common/oauth/tokens"
    );
    assert_eq!(doc["issuer"], t.sim.superid_url());
}

#[tokio::test]
async fn jwks_serves_the_signing_key_with_kid_and_x5t() {
    let t = spawn().await;
    let jwks = t.jwks().await;
    let key = &jwks["keys"][0];
    let kid = key["kid"].text();
    assert_eq!(kid.len(), 40);
    assert!(
        kid.chars()
            .all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c))
    );
    assert_eq!(
        key["x5t"],
        URL_SAFE_NO_PAD.encode(hex::decode(kid).unwrap())
    );
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["use"], "sig");
    assert_eq!(kid, t.sim.admin().keys().kid);
}

#[tokio::test]
async fn sign_in_page_lists_users_as_buttons_and_escapes_what_it_echoes() {
    let t = spawn().await;
    let url = t.authorize_url("common", &[("state", "<script>alert(1)</script>\"")]);
    let html = t.http.get(url).fetch().await.body_text().await;
    for name in [
        "Ada Admin",
        "Ulf User",
        "Frida Admin",
        "Finn User",
        "Per Admin",
        "Pia User",
    ] {
        assert!(
            html.contains(&format!("Sign in as {name}</button>")),
            "{name}"
        );
    }
    assert!(!html.contains("<script>"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;"));
    // A tenant-specific authorize path offers that tenant's users only.
    let url = t.authorize_url("Cust10002", &[]);
    let html = t.http.get(url).fetch().await.body_text().await;
    assert!(html.contains("Sign in as Frida Admin"));
    assert!(!html.contains("Sign in as Ada Admin"));
    // So does acr_values=tenant:CustNNNNN.
    let url = t.authorize_url("common", &[("acr_values", "tenant:Cust10003")]);
    let html = t.http.get(url).fetch().await.body_text().await;
    assert!(html.contains("Sign in as Per Admin"));
    assert!(!html.contains("Sign in as Frida Admin"));
}

#[tokio::test]
async fn code_flow_with_pkce_s256_issues_the_documented_tokens() {
    let t = spawn().await;
    let (verifier, challenge) = pkce_pair();
    let params = t
        .sign_in(
            ADA_ADMIN,
            &[
                ("state", "st-1"),
                ("nonce", "n-1"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        )
        .await;
    assert!(params.contains(&("state".into(), "st-1".into())));
    let code = &params.iter().find(|(k, _)| k == "code").unwrap().1;
    let response = t.exchange_code(code, Some(&verifier)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.body_json().await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert!(body["access_token"].text().starts_with("8A:Cust10001."));
    assert_eq!(body["refresh_token"].text().len(), 64);

    let id_token = body["id_token"].text();
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    assert!(header.x5t.is_some());
    let claims = t.verify(id_token, Some(TEST_CLIENT_ID)).await;
    let c = |name: &str| claims[format!("{CLAIM}{name}")].clone();
    assert_eq!(claims["iss"], t.sim.superid_url());
    assert_eq!(claims["sub"], "admin@cust10001.example");
    assert_eq!(claims["nonce"], "n-1");
    assert_cust10001_claims(&t, &claims);
    assert_eq!(c("is_administrator"), "True");
    assert_eq!(c("associateid"), "5");
    assert_eq!(c("initials"), "AA");
    assert_eq!(c("email"), "admin@cust10001.example");
    assert_eq!(c("upn"), "admin@cust10001.example");
    assert_eq!(c("so_primary_email_address"), "admin@cust10001.example");
    assert_eq!(c("identityprovider"), "central-superid");
    assert_eq!(c("system_token"), t.system_token("Cust10001"));
    assert!(c("system_token").text().starts_with("Test Partner App-"));
    // Every SuperOffice claim is a string; iat, nbf and exp are numbers.
    for (name, value) in claims.as_object().unwrap() {
        if name.starts_with(CLAIM) {
            assert!(value.is_string(), "{name} is not a string");
        }
    }
    let iat = claims["iat"].as_i64().unwrap();
    assert_eq!(claims["nbf"].as_i64().unwrap(), iat - 60);
    assert_eq!(claims["exp"].as_i64().unwrap(), iat + 300);

    let records = t.sim.admin().records();
    assert_eq!(records.records.superid.sign_ins.len(), 1);
    assert_eq!(
        records.records.superid.sign_ins[0].username,
        "admin@cust10001.example"
    );
    assert!(records.records.superid.token_requests[0].system_token_issued);
}

#[tokio::test]
async fn ordinary_users_and_admins_of_tenants_without_the_app_get_no_system_token() {
    let t = spawn().await;
    for name in [ULF_USER, PER_ADMIN] {
        let body = t.tokens_for(name).await;
        let claims = t
            .verify(body["id_token"].text(), Some(TEST_CLIENT_ID))
            .await;
        assert!(
            claims.get(format!("{CLAIM}system_token")).is_none(),
            "{name}"
        );
        assert!(claims.get("nonce").is_none());
    }
    let body = t.tokens_for(PER_ADMIN).await;
    let claims = t.verify(body["id_token"].text(), None).await;
    assert_eq!(claims[format!("{CLAIM}is_administrator")], "True");
    let sod3 = t.sim.api_host_url("sod3").unwrap();
    assert_eq!(
        claims[format!("{CLAIM}webapi_url")],
        format!("{sod3}/Cust10003/api/")
    );
}

#[tokio::test]
async fn pkce_plain_is_the_default_method_and_mismatches_are_refused() {
    let t = spawn().await;
    let (verifier, _) = pkce_pair();
    let code = t.code(ADA_ADMIN, &[("code_challenge", &verifier)]).await;
    assert_eq!(t.exchange_code(&code, Some(&verifier)).await.status(), 200);

    let (verifier, challenge) = pkce_pair();
    let s256 = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let code = t.code(ADA_ADMIN, &s256).await;
    let response = t.exchange_code(&code, Some(&format!("{verifier}x"))).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.body_json().await;
    assert_eq!(body["error"], "invalid_grant");

    let code = t.code(ADA_ADMIN, &s256).await;
    let body: Value = t.exchange_code(&code, None).await.body_json().await;
    assert_eq!(body["error"], "invalid_grant");
    assert!(body["error_description"].text().contains("code_verifier"));

    // A verifier without a challenge at authorize is a client bug.
    let code = t.code(ADA_ADMIN, &[]).await;
    let body: Value = t
        .exchange_code(&code, Some(&verifier))
        .await
        .body_json()
        .await;
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn a_code_is_single_use() {
    let t = spawn().await;
    let code = t.code(ADA_ADMIN, &[]).await;
    assert_eq!(t.exchange_code(&code, None).await.status(), 200);
    let replay = t.exchange_code(&code, None).await;
    assert_eq!(replay.status(), 400);
    let body: Value = replay.body_json().await;
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .text()
            .contains("already been used")
    );
}

#[tokio::test]
async fn a_code_expires_after_ten_minutes() {
    let t = spawn().await;
    let code = t.code(ADA_ADMIN, &[]).await;
    t.sim.admin().advance_clock(590);
    assert_eq!(t.exchange_code(&code, None).await.status(), 200);
    let code = t.code(ADA_ADMIN, &[]).await;
    t.sim.admin().advance_clock(601);
    let body: Value = t.exchange_code(&code, None).await.body_json().await;
    assert_eq!(body["error"], "invalid_grant");
    assert!(body["error_description"].text().contains("expired"));
}

#[tokio::test]
async fn the_redirect_uri_must_match_at_authorize_and_at_the_token_endpoint() {
    let t = spawn().await;
    let code = t.code(ADA_ADMIN, &[]).await;
    let response = t
        .token_request(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://localhost:8080/callback"),
        ])
        .await;
    let body: Value = response.body_json().await;
    assert_eq!(body["error"], "invalid_grant");
    assert!(body["error_description"].text().contains("redirect_uri"));

    let url = t
        .authorize_url("common", &[])
        .replace("127.0.0.1%3A8080", "evil.example");
    let page = t.http.get(url).fetch().await;
    assert_eq!(page.status(), 400);
    assert!(page.headers().get("location").is_none());
    assert!(page.body_text().await.contains("not registered"));
}

#[tokio::test]
async fn client_secret_basic_works_and_bad_client_credentials_are_refused() {
    let t = spawn().await;
    let code = t.code(ADA_ADMIN, &[]).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", TEST_REDIRECT_URI),
    ];
    let response = t
        .http
        .post(t.url("/login/common/oauth/tokens"))
        .basic_auth(TEST_CLIENT_ID, Some(TEST_CLIENT_SECRET))
        .form(&form)
        .fetch()
        .await;
    assert_eq!(response.status(), 200);

    let response = t
        .http
        .post(t.url("/login/common/oauth/tokens"))
        .basic_auth(TEST_CLIENT_ID, Some("wrong"))
        .form(&form)
        .fetch()
        .await;
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
    let body: Value = response.body_json().await;
    assert_eq!(body["error"], "invalid_client");

    let both = t
        .http
        .post(t.url("/login/common/oauth/tokens"))
        .basic_auth(TEST_CLIENT_ID, Some(TEST_CLIENT_SECRET))
        .form(&[
            ("client_secret", TEST_CLIENT_SECRET),
            ("grant_type", "authorization_code"),
        ])
        .fetch()
        .await;
    assert_eq!(both.status(), 400);

    let unknown_grant = t.token_request(&[("grant_type", "password")]).await;
    let body: Value = unknown_grant.body_json().await;
    assert_eq!(body["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn parameters_on_the_query_string_are_accepted_as_documented() {
    let t = spawn().await;
    let code = t.code(ADA_ADMIN, &[]).await;
    let mut url = url::Url::parse(&t.url("/login/common/oauth/tokens")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", TEST_CLIENT_ID)
        .append_pair("client_secret", TEST_CLIENT_SECRET)
        .append_pair("code", &code)
        .append_pair("redirect_uri", TEST_REDIRECT_URI)
        .append_pair("grant_type", "authorization_code");
    let response = t.http.post(url).fetch().await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn form_post_response_mode_answers_with_an_auto_submitting_form() {
    let t = spawn().await;
    let url = t.authorize_url(
        "common",
        &[("response_mode", "form_post"), ("state", "a&b")],
    );
    let response = t.click_sign_in(&url, ADA_ADMIN).await;
    assert_eq!(response.status(), 200);
    let html = response.body_text().await;
    assert!(html.contains(&format!("action=\"{TEST_REDIRECT_URI}\"")));
    let inputs = hidden_inputs(&html);
    assert!(inputs.contains(&("state".into(), "a&b".into())));
    let code = &inputs.iter().find(|(k, _)| k == "code").unwrap().1;
    assert_eq!(t.exchange_code(code, None).await.status(), 200);
}

#[tokio::test]
async fn a_user_of_another_tenant_cannot_sign_in_on_a_tenant_specific_path() {
    let t = spawn().await;
    let url = t.authorize_url("Cust10002", &[]);
    let html = t.http.get(&url).fetch().await.body_text().await;
    let form = html.split("<form ").nth(1).unwrap();
    let mut inputs = hidden_inputs(form);
    for (name, value) in inputs.iter_mut() {
        if name == "username" {
            *value = "admin@cust10001.example".into();
        }
    }
    let response = t
        .post_form("/login/Cust10002/oauth/authorize", &inputs)
        .await;
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn authorize_errors_after_a_trusted_redirect_uri_go_back_to_the_client() {
    let t = spawn().await;
    let url = t
        .authorize_url("common", &[("state", "s")])
        .replace("response_type=code", "response_type=token");
    let response = t.http.get(url).fetch().await;
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(TEST_REDIRECT_URI));
    assert!(location.contains("error=unsupported_response_type"));
    assert!(location.contains("state=s"));

    let url = t.authorize_url(
        "common",
        &[
            ("code_challenge_method", "S512"),
            ("code_challenge", &pkce_pair().1),
        ],
    );
    let response = t.http.get(url).fetch().await;
    let location = response.headers()["location"].to_str().unwrap();
    assert!(location.contains("error=invalid_request"), "{location}");
}

#[tokio::test]
async fn refresh_tokens_give_new_access_tokens_until_the_app_is_revoked() {
    let t = spawn().await;
    let first = t.tokens_for(ADA_ADMIN).await;
    let refresh = first["refresh_token"].text();
    let response = t
        .token_request(&[("grant_type", "refresh_token"), ("refresh_token", refresh)])
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.body_json().await;
    assert!(body.get("refresh_token").is_none());
    assert_ne!(body["access_token"], first["access_token"]);
    assert_eq!(body["expires_in"], 3600);
    t.verify(body["id_token"].text(), Some(TEST_CLIENT_ID))
        .await;

    t.sim.admin().revoke("Cust10001", TEST_CLIENT_ID).unwrap();
    let response = t
        .token_request(&[("grant_type", "refresh_token"), ("refresh_token", refresh)])
        .await;
    let body: Value = response.body_json().await;
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn access_tokens_work_as_bearer_until_expires_in() {
    let t = spawn().await;
    let body = t.tokens_for(ULF_USER).await;
    let token = body["access_token"].text();
    let principal = t.api("sod2", "/Cust10001/api/v1/User/currentPrincipal");
    let response = t.http.get(&principal).bearer_auth(token).fetch().await;
    assert_eq!(response.status(), 200);
    let me: Value = response.body_json().await;
    assert_eq!(me["AssociateId"], 6);
    assert_eq!(me["FullName"], "Ulf User");
    assert_eq!(me["IsSystemUser"], false);
    t.sim.admin().advance_clock(3601);
    let response = t.http.get(&principal).bearer_auth(token).fetch().await;
    assert_eq!(response.status(), 401);
}
