//! The system user exchange over REST and SOAP against a mock SuperID.

use std::time::Duration;

use serde_json::{Value, json};
use shared::crypto::system_user_token::verify_signed_token;
use shared::db::models::TenantState;
use shared::domain::SystemUserToken;
use shared::http::TransportError;
use shared::superid::exchange::{ExchangeError, IssuedTicket, TicketExchange, Verdict};
use shared::superid::exchange::{RestExchange, SoapExchange};
use shared::superid::exchange_soap::SOAP_ACTION;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::support::{self, APP_TOKEN, MockSuperId, SERIAL, TICKET};

const REST_PATH: &str = "/Login/api/PartnerSystemUser/Authenticate";
const SOAP_PATH: &str = "/Login/Services/PartnerSystemUserService.svc";
const NS: &str = "http://www.superoffice.com/superid/partnersystemuser/0.1";

fn token() -> SystemUserToken {
    SystemUserToken::parse("Partner <App> & Co-8k8Q7DmBgo").unwrap()
}

fn valid_jwt() -> String {
    support::superid_jwt(&support::system_user_claims("Cust12345", SERIAL))
}

fn rest_answer(successful: bool, token: Option<&str>, message: Option<&str>) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "IsSuccessful": successful, "Token": token, "ErrorMessage": message
    }))
}

fn soap_prefixed(successful: bool, token: Option<&str>, message: Option<&str>) -> String {
    let element = |name: &str, value: Option<&str>| match value {
        Some(v) => format!("<a:{name}>{v}</a:{name}>"),
        None => format!("<a:{name} i:nil=\"true\"/>"),
    };
    format!(
        r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
<a:AuthenticationResponse xmlns:a="{NS}" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
<a:IsSuccessful>{successful}</a:IsSuccessful>{}{}</a:AuthenticationResponse></s:Body></s:Envelope>"#,
        element("Token", token),
        element("ErrorMessage", message),
    )
}

fn soap_response(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body, "text/xml; charset=utf-8")
}

/// A mock SuperID that answers every exchange at `at` with `response`.
async fn superid_answering(at: &str, response: ResponseTemplate) -> MockSuperId {
    let superid = MockSuperId::start().await;
    support::serve(&superid.server, "POST", at, response).await;
    superid
}

/// A mock SuperID that answers the first exchange at `at` with `first`, every later one with `then`.
async fn superid_answering_first(
    at: &str,
    first: ResponseTemplate,
    then: ResponseTemplate,
) -> MockSuperId {
    let superid = superid_answering(at, then).await;
    support::serve_first(&superid.server, "POST", at, first).await;
    superid
}

/// The REST exchange's error when SuperID answers `response` to the one request it expects.
async fn rest_error_once(response: ResponseTemplate) -> ExchangeError {
    let superid = MockSuperId::start().await;
    support::serve_once(&superid.server, "POST", REST_PATH, response).await;
    rest(&superid).await.unwrap_err()
}

/// The REST exchange's error when SuperID answers once, unsuccessfully, with `message`.
async fn rest_refusal(message: &str) -> ExchangeError {
    rest_error_once(rest_answer(false, None, Some(message))).await
}

/// Runs `exchange` for the test tenant and token.
async fn run(exchange: &dyn TicketExchange) -> Result<IssuedTicket, ExchangeError> {
    exchange.exchange(&support::ctx(), &token(), SERIAL).await
}

/// The REST exchange fails with a retryable transport error that `is` accepts.
async fn assert_transport_failure(exchange: RestExchange, is: fn(&TransportError) -> bool) {
    let error = run(&exchange).await.unwrap_err();
    assert_is!(&error, ExchangeError::Transport(e) if is(e));
    assert!(error.is_retryable());
}

async fn rest(superid: &MockSuperId) -> Result<IssuedTicket, ExchangeError> {
    run(&RestExchange::new(superid.exchange_core())).await
}

async fn soap(superid: &MockSuperId) -> Result<IssuedTicket, ExchangeError> {
    run(&SoapExchange::new(superid.exchange_core())).await
}

#[tokio::test]
async fn rest_sends_the_documented_body_and_returns_the_validated_ticket() {
    let superid = MockSuperId::start().await;
    Mock::given(method("POST"))
        .and(path(REST_PATH))
        .and(header("content-type", "application/json"))
        .respond_with(rest_answer(true, Some(&valid_jwt()), None))
        .expect(1)
        .mount(&superid.server)
        .await;
    let issued = rest(&superid).await.unwrap();
    assert_eq!(issued.ticket.expose(), TICKET);
    assert_eq!(issued.issued_at, support::now());
    assert_eq!(
        issued.urls.webapi_url.unwrap().as_str(),
        "https://sod2.superoffice.com/Cust12345/api/"
    );
    assert!(!format!("{:?}", issued.ticket).contains("7T:"));

    let request = &superid.requests_to(REST_PATH).await[0];
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    let members: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(members.len(), 4, "{members:?}");
    assert_eq!(body["ApplicationToken"], APP_TOKEN);
    assert_eq!(body["ContextIdentifier"], "Cust12345");
    assert_eq!(body["ReturnTokenType"], "JWT");
    let signed = body["SignedSystemToken"].as_str().unwrap();
    let parsed = verify_signed_token(support::partner_key().public_key(), signed).unwrap();
    assert_eq!(parsed.token, token().expose());
    assert_eq!(parsed.timestamp, support::now());
}

#[tokio::test]
async fn soap_sends_the_published_envelope_and_reads_a_prefixed_answer() {
    let superid = MockSuperId::start().await;
    Mock::given(method("POST"))
        .and(path(SOAP_PATH))
        .and(header("SOAPAction", SOAP_ACTION))
        .and(header("content-type", "text/xml;charset=UTF-8"))
        .respond_with(soap_response(soap_prefixed(true, Some(&valid_jwt()), None)))
        .expect(1)
        .mount(&superid.server)
        .await;
    let issued = soap(&superid).await.unwrap();
    assert_eq!(issued.ticket.expose(), TICKET);
    let request = &superid.requests_to(SOAP_PATH).await[0];
    let body = String::from_utf8(request.body.clone()).unwrap();
    assert!(body.contains(&format!(
        "<tns:ApplicationToken>{APP_TOKEN}</tns:ApplicationToken>"
    )));
    assert!(body.contains("<tns:ContextIdentifier>Cust12345</tns:ContextIdentifier>"));
    assert!(
        body.contains(
            "<ns1:SignedSystemToken>Partner &lt;App&gt; &amp; Co-8k8Q7DmBgo.202603011000."
        )
    );
    assert!(body.contains("<ns1:ReturnTokenType>Jwt</ns1:ReturnTokenType>"));
}

#[tokio::test]
async fn soap_reads_an_unprefixed_answer() {
    let answer = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/">
<Body><AuthenticationResponse xmlns="{NS}"><IsSuccessful>true</IsSuccessful><Token>{}</Token>
<ErrorMessage/></AuthenticationResponse></Body></Envelope>"#,
        valid_jwt()
    );
    let superid = superid_answering(SOAP_PATH, soap_response(answer)).await;
    assert_eq!(soap(&superid).await.unwrap().ticket.expose(), TICKET);
}

#[tokio::test]
async fn a_revoked_tenant_is_a_permanent_failure_sent_once() {
    let error = rest_refusal("Revoked: Application's access to the tenant has been revoked").await;
    assert_is!(error, ExchangeError::Revoked { .. });
    assert!(!error.is_retryable());
    assert_eq!(error.tenant_state_hint(), Some(TenantState::Revoked));
    assert!(
        error.to_string().contains("approve the app again"),
        "{error}"
    );
}

#[tokio::test]
async fn soap_needs_reapproval_stops_and_an_unknown_message_only_flags() {
    let superid = superid_answering_first(
        SOAP_PATH,
        soap_response(soap_prefixed(false, None, Some("needsreapproval"))),
        soap_response(soap_prefixed(false, None, Some("Computer says no"))),
    )
    .await;
    let error = soap(&superid).await.unwrap_err();
    assert_eq!(
        error.tenant_state_hint(),
        Some(TenantState::NeedsReapproval),
        "{error}"
    );
    let error = soap(&superid).await.unwrap_err();
    assert_is!(&error, ExchangeError::Rejected { message, .. } if message == "Computer says no");
    assert!(error.is_retryable());
    assert_eq!(error.verdict(), Verdict::Suspect);
    assert_eq!(error.tenant_state_hint(), None);
}

#[tokio::test]
async fn an_invalid_timestamp_is_retried_once_with_a_fresh_signature() {
    let superid = superid_answering_first(
        REST_PATH,
        rest_answer(false, None, Some("InvalidTimestamp")),
        rest_answer(true, Some(&valid_jwt()), None),
    )
    .await;
    assert_eq!(rest(&superid).await.unwrap().ticket.expose(), TICKET);
    assert_eq!(superid.requests_to(REST_PATH).await.len(), 2);
}

#[tokio::test]
async fn a_second_invalid_timestamp_is_reported_with_the_estimated_skew() {
    let superid = superid_answering(
        SOAP_PATH,
        soap_response(soap_prefixed(
            false,
            None,
            Some("The supplied timestamp is invalid"),
        ))
        .insert_header("Date", "Sun, 01 Mar 2026 10:07:30 GMT"),
    )
    .await;
    let error = soap(&superid).await.unwrap_err();
    match &error {
        ExchangeError::InvalidTimestamp { skew_secs, .. } => assert_eq!(*skew_secs, Some(450)),
        other => panic!("{other}"),
    }
    assert!(error.to_string().contains("NTP"), "{error}");
    assert_eq!(error.verdict(), Verdict::Suspect);
    assert_eq!(superid.requests_to(SOAP_PATH).await.len(), 2);
}

#[tokio::test]
async fn an_invalid_signature_points_at_the_key() {
    let error = rest_refusal("InvalidSignature: Calculated signature is invalid").await;
    assert_is!(error, ExchangeError::InvalidSignature { .. });
    assert_eq!(error.verdict(), Verdict::Suspect);
    assert_eq!(error.tenant_state_hint(), None);
}

#[tokio::test]
async fn server_errors_are_transient_and_not_repeated_here() {
    let error =
        rest_error_once(ResponseTemplate::new(503).set_body_string("<html>busy</html>")).await;
    assert_is!(error, ExchangeError::Status { status: 503, .. });
    assert!(error.is_retryable());
}

#[tokio::test]
async fn a_soap_fault_is_typed() {
    let fault = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>
<faultcode>s:Client</faultcode><faultstring>The message could not be processed</faultstring>
</s:Fault></s:Body></s:Envelope>"#;
    let superid = superid_answering(
        SOAP_PATH,
        ResponseTemplate::new(500).set_body_raw(fault, "text/xml"),
    )
    .await;
    let error = soap(&superid).await.unwrap_err();
    assert_is!(&error, ExchangeError::Fault { code, message, .. }
            if code == "s:Client" && message == "The message could not be processed");
    assert_eq!(error.verdict(), Verdict::Suspect);
}

#[tokio::test]
async fn a_nil_token_with_success_is_malformed_and_transient() {
    let superid =
        superid_answering(SOAP_PATH, soap_response(soap_prefixed(true, None, None))).await;
    let error = soap(&superid).await.unwrap_err();
    assert_is!(error, ExchangeError::Malformed { .. });
    assert!(error.is_retryable());
}

#[tokio::test]
async fn unparsable_answers_are_malformed_and_transient() {
    let superid = superid_answering(
        REST_PATH,
        ResponseTemplate::new(200).set_body_raw(r#"{"IsSuccessful":tr"#, "application/json"),
    )
    .await;
    support::serve(
        &superid.server,
        "POST",
        SOAP_PATH,
        soap_response(
            r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><a:Authen"#
                .into(),
        ),
    )
    .await;
    for error in [
        rest(&superid).await.unwrap_err(),
        soap(&superid).await.unwrap_err(),
    ] {
        assert_is!(error, ExchangeError::Malformed { .. });
        assert!(error.is_retryable());
    }
}

#[tokio::test]
async fn a_body_cut_short_by_the_connection_is_transient() {
    let superid = MockSuperId::start().await;
    let base = support::truncating_server("application/json", r#"{"IsSuccessful":true,"To"#).await;
    let environment =
        shared::environment::SuperIdEnvironment::custom(url::Url::parse(&base).unwrap());
    let core = shared::superid::exchange::ExchangeCore::new(
        support::http(),
        environment,
        secrecy::SecretString::from(APP_TOKEN),
        support::partner_key(),
        support::clock(),
        superid.validator(&support::http()),
    );
    assert_transport_failure(RestExchange::new(core), |e| {
        matches!(e, TransportError::Interrupted { .. })
    })
    .await;
}

#[tokio::test]
async fn a_slow_superid_hits_the_timeout() {
    let superid = superid_answering(
        REST_PATH,
        rest_answer(true, Some(&valid_jwt()), None).set_delay(Duration::from_secs(3)),
    )
    .await;
    let exchange = RestExchange::new(
        superid.exchange_core_with(support::http_with_timeout(Duration::from_millis(300))),
    );
    assert_transport_failure(exchange, |e| matches!(e, TransportError::Timeout { .. })).await;
}

#[tokio::test]
async fn a_jwt_for_another_serial_or_tenant_is_refused() {
    let other_serial = support::superid_jwt(&support::system_user_claims("Cust12345", "999"));
    let other_tenant = support::superid_jwt(&support::system_user_claims("Cust777", SERIAL));
    let superid = superid_answering_first(
        REST_PATH,
        rest_answer(true, Some(&other_serial), None),
        rest_answer(true, Some(&other_tenant), None),
    )
    .await;
    let error = rest(&superid).await.unwrap_err();
    assert!(error.to_string().contains("spn:1801550193"), "{error}");
    assert_eq!(
        error.verdict(),
        Verdict::Suspect,
        "flagged for an operator, the tenant kept"
    );
    let error = rest(&superid).await.unwrap_err();
    assert!(error.to_string().contains("Cust777"), "{error}");
    assert!(!error.to_string().contains(TICKET));
}
