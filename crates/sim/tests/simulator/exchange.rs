//! PartnerSystemUserService over REST and SOAP.

use chrono::TimeDelta;
use rsa::PrivateKey;
use serde_json::Value;
use superoffice_sim::{GrantStatus, TEST_CLIENT_ID, TEST_CLIENT_SECRET};

use crate::support::*;

const SOAP_ACTION: &str = "http://www.superoffice.com/superid/partnersystemuser/0.1/IPartnerSystemUserService/Authenticate";
const PSU_NS: &str = "http://www.superoffice.com/superid/partnersystemuser/0.1";

/// The request envelope exactly as published (§5.1), with the values interpolated.
fn published_envelope(app_token: &str, ctx: &str, signed: &str) -> String {
    include_str!("../../src/exchange/published-request.xml")
        .replace(">app-token<", &format!(">{app_token}<"))
        .replace(">Cust10001<", &format!(">{ctx}<"))
        .replace(">My App-x.202401021304.c2ln<", &format!(">{signed}<"))
}

async fn soap(t: &TestSim, path: &str, action: Option<&str>, body: String) -> reqwest::Response {
    let mut request = t
        .http
        .post(t.url(path))
        .header("Content-Type", "text/xml;charset=UTF-8")
        .header("Accept", "application/json")
        .body(body);
    if let Some(action) = action {
        request = request.header("SOAPAction", action);
    }
    request.fetch().await
}

const SOAP_PATH: &str = "/Login/Services/PartnerSystemUserService.svc";

/// The published envelope for a tenant, posted with the published SOAPAction.
async fn soap_exchange(t: &TestSim, app_token: &str, ctx: &str) -> reqwest::Response {
    let signed = t.sign(&t.system_token(ctx));
    let body = published_envelope(app_token, ctx, &signed);
    soap(t, SOAP_PATH, Some(SOAP_ACTION), body).await
}

/// `(IsSuccessful, Token, ErrorMessage)` of a SOAP AuthenticationResponse, checking its namespace.
fn soap_result(xml: &str) -> (bool, Option<String>, Option<String>) {
    let doc = parse_xml(xml);
    assert_eq!(doc.ns, "http://schemas.xmlsoap.org/soap/envelope/");
    assert_eq!(doc.name, "Envelope");
    let response = doc
        .find("AuthenticationResponse")
        .unwrap_or_else(|| panic!("no AuthenticationResponse in {xml}"));
    assert_eq!(response.ns, PSU_NS);
    let field = |name: &str| response.child(name).value().map(str::to_owned);
    (
        field("IsSuccessful").as_deref() == Some("true"),
        field("Token"),
        field("ErrorMessage"),
    )
}

/// The error message of a REST exchange SuperID refuses.
async fn refusal(t: &TestSim, ctx: &str, signed: &str) -> String {
    error_message(&t.exchange_rest(ctx, signed, TEST_CLIENT_SECRET).await)
}

/// SuperID refuses a REST exchange with a message that starts with `prefix`.
async fn assert_refused(t: &TestSim, ctx: &str, signed: &str, prefix: &str) {
    let message = refusal(t, ctx, signed).await;
    assert!(
        message.starts_with(prefix),
        "{message:?} does not start with {prefix:?}"
    );
}

fn error_message(body: &Value) -> String {
    assert_eq!(body["IsSuccessful"], false, "{body}");
    assert!(body["Token"].is_null());
    body["ErrorMessage"].text().to_owned()
}

#[tokio::test]
async fn rest_exchange_returns_a_signed_jwt_with_a_fresh_ticket() {
    let t = spawn().await;
    let signed = t.sign(&t.system_token("Cust10001"));
    let body = t
        .exchange_rest("Cust10001", &signed, TEST_CLIENT_SECRET)
        .await;
    assert_eq!(body["IsSuccessful"], true);
    assert!(body["ErrorMessage"].is_null());
    let jwt = body["Token"].text();
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    assert!(header.kid.is_some() && header.x5t.is_some());
    let claims = t.verify(jwt, Some("spn:1801510001")).await;
    let c = |name: &str| claims[format!("{CLAIM}{name}")].clone();
    assert_eq!(claims["iss"], "SuperOffice AS");
    assert!(c("ticket").text().starts_with("7T:"));
    assert_cust10001_claims(&t, &claims);
    assert!(claims["nbf"].is_i64() && claims["iat"].is_i64() && claims["exp"].is_i64());

    // Each exchange is a new ticket and a new credential record.
    let again = t
        .exchange_rest(
            "Cust10001",
            &t.sign(&t.system_token("Cust10001")),
            TEST_CLIENT_SECRET,
        )
        .await;
    let second = t.verify(again["Token"].text(), None).await;
    assert_ne!(second[format!("{CLAIM}ticket")], c("ticket"));
    let tenant = t.sim.admin().tenant("Cust10001").unwrap();
    assert_eq!(tenant.tickets_issued, 2);
    let records = t.admin_get("/records").await;
    assert_eq!(records["tickets_issued"]["Cust10001"], 2);
    assert_eq!(records["exchanges"][0]["outcome"], "Success");
    assert_eq!(records["exchanges"][0]["via"], "rest");
}

#[tokio::test]
async fn rest_path_is_case_insensitive_and_malformed_requests_are_400() {
    let t = spawn().await;
    let signed = t.sign(&t.system_token("Cust10002"));
    let ok: Value = t
        .http
        .post(t.url("/login/API/partnersystemuser/authenticate"))
        .json(&serde_json::json!({
            "ApplicationToken": TEST_CLIENT_SECRET,
            "ContextIdentifier": "Cust10002",
            "ReturnTokenType": "JWT",
            "SignedSystemToken": signed,
        }))
        .fetch_json()
        .await;
    assert_eq!(ok["IsSuccessful"], true);

    let url = t.url("/Login/api/PartnerSystemUser/Authenticate");
    let missing = serde_json::json!({ "ApplicationToken": TEST_CLIENT_SECRET }).to_string();
    let cases = [
        ("not JSON", b"{not json".to_vec(), 400),
        ("missing fields", missing.into_bytes(), 400),
        ("over the body limit", vec![b' '; 1024 * 1024 + 1], 413),
    ];
    for (what, body, expected) in cases {
        let request = t.http.post(&url).header("Content-Type", "application/json");
        let status = request.body(body).fetch_status().await;
        assert_eq!(status, expected, "{what}");
    }
}

#[tokio::test]
async fn soap_exchange_accepts_the_published_envelope() {
    let t = spawn().await;
    let response = soap_exchange(&t, TEST_CLIENT_SECRET, "Cust10001").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/xml")
    );
    let (ok, token, error) = soap_result(&response.body_text().await);
    assert!(ok);
    assert_eq!(error, None);
    let claims = t.verify(&token.unwrap(), Some("spn:1801510001")).await;
    assert!(claims[format!("{CLAIM}ticket")].text().starts_with("7T:"));
    let records = t.sim.admin().records();
    assert_eq!(records.records.superid.exchanges[0].via, "soap");

    // Quoted SOAPAction and a lower-case path are fine too.
    let signed = t.sign(&t.system_token("Cust10001"));
    let response = soap(
        &t,
        "/login/services/PartnerSystemUserService.svc",
        Some(&format!("\"{SOAP_ACTION}\"")),
        published_envelope(TEST_CLIENT_SECRET, "Cust10001", &signed),
    )
    .await;
    assert!(soap_result(&response.body_text().await).0);
}

#[tokio::test]
async fn soap_failures_carry_a_nil_token_and_the_error_code() {
    let t = spawn().await;
    let response = soap_exchange(&t, "not-the-app-token", "Cust10001").await;
    assert_eq!(response.status(), 200);
    let (ok, token, error) = soap_result(&response.body_text().await);
    assert!(!ok);
    assert_eq!(token, None);
    assert!(error.unwrap().starts_with("Denied: "));
}

#[tokio::test]
async fn malformed_soap_is_a_fault() {
    let t = spawn().await;
    let path = SOAP_PATH;
    let good = published_envelope(TEST_CLIENT_SECRET, "Cust10001", "x");
    let cases = [
        (Some("urn:wrong-action"), good.clone(), "ContractFilter"),
        (None, good.clone(), "ContractFilter"),
        (Some(SOAP_ACTION), "<not xml".to_owned(), ""),
        (
            Some(SOAP_ACTION),
            format!(
                "<!DOCTYPE x [<!ENTITY e \"boom\">]>{}",
                good.replace("<?xml version=\"1.0\" encoding=\"UTF-8\"?>", "")
            ),
            "DOCTYPE",
        ),
        (
            Some(SOAP_ACTION),
            good.replace(
                "http://schemas.xmlsoap.org/soap/envelope/",
                "http://www.w3.org/2003/05/soap-envelope",
            ),
            "SOAP 1.2",
        ),
        (
            Some(SOAP_ACTION),
            good.replace(
                "<tns:ContextIdentifier>Cust10001</tns:ContextIdentifier>",
                "",
            ),
            "ContextIdentifier",
        ),
        (
            Some(SOAP_ACTION),
            good.replace(">Jwt<", ">JWT<"),
            "ReturnTokenType",
        ),
    ];
    for (action, body, needle) in cases {
        let response = soap(&t, path, action, body).await;
        assert_eq!(response.status(), 500, "{needle}");
        let xml = response.body_text().await;
        let doc = parse_xml(&xml);
        let fault = doc
            .find("Fault")
            .unwrap_or_else(|| panic!("no Fault: {xml}"));
        assert!(
            fault.child("faultstring").text.contains(needle),
            "{needle}: {xml}"
        );
    }
    let wrong_type = t
        .http
        .post(t.url(path))
        .header("Content-Type", "application/soap+xml")
        .header("SOAPAction", SOAP_ACTION)
        .body(good)
        .fetch()
        .await;
    assert_eq!(wrong_type.status(), 415);
}

#[tokio::test]
async fn strict_soap_order_faults_on_a_body_out_of_sequence_but_not_on_swapped_headers() {
    let t = spawn().await;
    let path = SOAP_PATH;
    let swap = |envelope: String, first: &str, second: &str| {
        let first = envelope
            .lines()
            .find(|l| l.contains(first))
            .unwrap()
            .to_owned();
        let second = envelope
            .lines()
            .find(|l| l.contains(second))
            .unwrap()
            .to_owned();
        envelope
            .replace(&first, "FIRST")
            .replace(&second, &first)
            .replace("FIRST", &second)
    };
    let swapped_body = || {
        let signed = t.sign(&t.system_token("Cust10001"));
        swap(
            published_envelope(TEST_CLIENT_SECRET, "Cust10001", &signed),
            "SignedSystemToken",
            "ReturnTokenType",
        )
    };

    // Without the mode the children are read in any order.
    let response = soap(&t, path, Some(SOAP_ACTION), swapped_body()).await;
    assert!(soap_result(&response.body_text().await).0);

    let mode = superoffice_sim::modes::Mode {
        strict_soap_order: true,
        ..Default::default()
    };
    t.sim.admin().set_mode(Some("Cust10001"), mode).unwrap();
    let response = soap(&t, path, Some(SOAP_ACTION), swapped_body()).await;
    assert_eq!(response.status(), 500);
    let xml = response.body_text().await;
    let doc = parse_xml(&xml);
    let fault = doc
        .find("Fault")
        .unwrap_or_else(|| panic!("no Fault: {xml}"));
    assert_eq!(fault.child("faultcode").text, "s:Client", "{xml}");
    assert!(
        fault.child("faultstring").text.contains("ReturnTokenType"),
        "{xml}"
    );

    // The WSDL's order passes, whatever the order of the headers.
    let signed = t.sign(&t.system_token("Cust10001"));
    let headers_swapped = swap(
        published_envelope(TEST_CLIENT_SECRET, "Cust10001", &signed),
        "ApplicationToken",
        "ContextIdentifier",
    );
    let response = soap(&t, path, Some(SOAP_ACTION), headers_swapped).await;
    assert!(soap_result(&response.body_text().await).0);
    assert_eq!(t.sim.admin().records().records.superid.exchanges.len(), 2);
}

#[tokio::test]
async fn a_token_signed_with_another_key_is_an_invalid_signature() {
    let t = spawn().await;
    let other = PrivateKey::new(&mut rand::rng(), 1024).unwrap();
    let signed = sign_with(&other, &t.system_token("Cust10001"), t.now());
    assert_refused(
        &t,
        "Cust10001",
        &signed,
        "InvalidSignature: Calculated signature is invalid",
    )
    .await;
    // A tampered token under a valid signature fails the same way.
    let good = t.sign(&t.system_token("Cust10001"));
    let tampered = good.replacen("Test", "Best", 1);
    assert_refused(&t, "Cust10001", &tampered, "InvalidSignature").await;
    assert_refused(&t, "Cust10001", "no-dots-here", "InvalidSignature").await;
    assert_eq!(
        t.sim.admin().records().records.superid.exchanges[0].outcome,
        "InvalidSignature"
    );
}

#[tokio::test]
async fn timestamps_outside_the_window_are_refused() {
    let t = spawn().await;
    let token = t.system_token("Cust10001");
    let now = t.now();
    for offset in [-7 * 60, 7 * 60] {
        let signed = sign_with(&t.key, &token, now + TimeDelta::seconds(offset));
        let body = t
            .exchange_rest("Cust10001", &signed, TEST_CLIENT_SECRET)
            .await;
        assert!(
            error_message(&body).starts_with("InvalidTimestamp: The supplied timestamp is invalid"),
            "{offset}"
        );
    }
    let signed = sign_with(&t.key, &token, now - TimeDelta::seconds(4 * 60));
    let body = t
        .exchange_rest("Cust10001", &signed, TEST_CLIENT_SECRET)
        .await;
    assert_eq!(body["IsSuccessful"], true);
    // The window is around the simulator's clock: skew it and a correct wall-clock timestamp fails.
    t.sim.admin().set_clock_offset(3600);
    let signed = sign_with(&t.key, &token, chrono::Utc::now());
    assert_refused(&t, "Cust10001", &signed, "InvalidTimestamp").await;
}

#[tokio::test]
async fn the_timestamp_window_is_configurable() {
    let t = spawn_with(|c| c.superid.timestamp_window_secs = 60).await;
    let signed = sign_with(
        &t.key,
        &t.system_token("Cust10001"),
        t.now() - TimeDelta::seconds(180),
    );
    assert_refused(&t, "Cust10001", &signed, "InvalidTimestamp").await;
}

#[tokio::test]
async fn the_token_must_belong_to_the_tenant_and_the_app_be_installed() {
    let t = spawn().await;
    let token_1 = t.system_token("Cust10001");
    assert_refused(&t, "Cust10002", &t.sign(&token_1), "Denied: ").await;
    assert!(
        refusal(&t, "Cust10003", &t.sign(&token_1))
            .await
            .contains("not installed")
    );
    assert!(
        refusal(&t, "Cust99999", &t.sign(&token_1))
            .await
            .contains("unknown context identifier")
    );
    let body = t
        .exchange_rest("Cust10001", &t.sign(&token_1), "wrong-app-token")
        .await;
    assert!(error_message(&body).starts_with("Denied: "));
    assert_eq!(t.sim.admin().tenant("Cust10001").unwrap().tickets_issued, 0);
}

#[tokio::test]
async fn every_grant_status_names_its_error_code() {
    let t = spawn().await;
    let token = t.system_token("Cust10001");
    let cases = [
        (
            GrantStatus::Revoked,
            "Revoked: Application's access to the tenant has been revoked",
        ),
        (
            GrantStatus::Expired,
            "Expired: The application authorization on this tenant has expired",
        ),
        (GrantStatus::Denied, "Denied: "),
        (GrantStatus::NeedsReapproval, "NeedsReapproval: "),
    ];
    for (status, expected) in cases {
        let name = serde_json::to_value(status).unwrap();
        let response = t
            .admin_post(
                &format!("/tenants/Cust10001/apps/{TEST_CLIENT_ID}/status"),
                serde_json::json!({ "status": name }),
            )
            .await;
        assert_eq!(response.status(), 200);
        let body = t
            .exchange_rest("Cust10001", &t.sign(&token), TEST_CLIENT_SECRET)
            .await;
        assert!(
            error_message(&body).starts_with(expected),
            "{status:?}: {body}"
        );
    }
}

#[tokio::test]
async fn revoke_then_reapprove_issues_a_new_system_token() {
    let t = spawn().await;
    let old = t.system_token("Cust10001");
    let revoked = t
        .admin_post(
            &format!("/tenants/Cust10001/apps/{TEST_CLIENT_ID}/revoke"),
            Value::Null,
        )
        .await;
    assert_eq!(revoked.status(), 200);
    assert_refused(&t, "Cust10001", &t.sign(&old), "Revoked: ").await;

    let reapproved: Value = t
        .admin_post(
            &format!("/tenants/Cust10001/apps/{TEST_CLIENT_ID}/reapprove"),
            Value::Null,
        )
        .await
        .body_json()
        .await;
    let new = reapproved["system_token"].text();
    assert_ne!(new, old);
    assert_refused(&t, "Cust10001", &t.sign(&old), "Denied: ").await;
    let body = t
        .exchange_rest("Cust10001", &t.sign(new), TEST_CLIENT_SECRET)
        .await;
    assert_eq!(body["IsSuccessful"], true);

    // Re-approval also installs the app where it was not installed.
    t.sim
        .admin()
        .reapprove("Cust10003", TEST_CLIENT_ID)
        .unwrap();
    let token = t.system_token("Cust10003");
    let body = t
        .exchange_rest("Cust10003", &t.sign(&token), TEST_CLIENT_SECRET)
        .await;
    assert_eq!(body["IsSuccessful"], true);
}

#[tokio::test]
async fn system_tokens_with_dots_and_spaces_are_split_from_the_right() {
    let t = spawn_with(|c| c.applications[0].name = "Acme Sync v2.1 (beta)".into()).await;
    let token = t.system_token("Cust10001");
    assert!(token.starts_with("Acme Sync v2.1 (beta)-"));
    let body = t
        .exchange_rest("Cust10001", &t.sign(&token), TEST_CLIENT_SECRET)
        .await;
    assert_eq!(body["IsSuccessful"], true, "{body}");
}
