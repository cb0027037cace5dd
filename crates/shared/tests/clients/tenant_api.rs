//! The tenant REST and SOAP clients against a mock tenant (and its state API).

use std::sync::Arc;

use secrecy::SecretString;
use serde_json::{Value, json};
use shared::domain::Ticket;
use shared::http::{Retryable, SuperOfficeHttp};
use shared::tenant::rest::TenantRestClient;
use shared::tenant::soap::{SERVICES88_NS, TenantSoapClient};
use shared::tenant::status::TenantStatusClient;
use shared::tenant::{TenantCaller, TenantCredentials, TenantError};
use wiremock::matchers::{header, header_exists, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{self, APP_TOKEN, TICKET};

const STATE: &str = "/api/state/Cust12345";

/// Mounts the state API: the tenant lives on `/{host}/Cust12345`.
async fn lives_on(server: &MockServer, host: &str, times: Option<u64>) {
    let base = server.uri();
    let mock = Mock::given(method("GET")).and(path(STATE)).respond_with(
        ResponseTemplate::new(200).set_body_json(json!({
            "ContextIdentifier": "Cust12345",
            "Endpoint": format!("{base}/{host}/Cust12345"),
            "State": "Running",
            "IsRunning": true,
            "ValidUntil": (support::now() + chrono::Duration::minutes(30)).to_rfc3339(),
            "Api": format!("{base}/{host}/Cust12345/api"),
        })),
    );
    match times {
        Some(n) => mock.up_to_n_times(n).with_priority(1).mount(server).await,
        None => mock.mount(server).await,
    }
}

/// A mock server whose state API says the tenant lives on `/{host}/Cust12345`.
async fn tenant_living_on(host: &str) -> MockServer {
    let server = MockServer::start().await;
    lives_on(&server, host, None).await;
    server
}

fn clients(server: &MockServer) -> (TenantRestClient, TenantSoapClient, Arc<TenantStatusClient>) {
    let http: SuperOfficeHttp = support::http();
    let statuses = Arc::new(TenantStatusClient::new(
        http.clone(),
        support::environment(server),
        support::clock(),
    ));
    let caller = TenantCaller::new(http, Arc::clone(&statuses), SecretString::from(APP_TOKEN));
    (
        TenantRestClient::new(caller.clone()),
        TenantSoapClient::new(caller),
        statuses,
    )
}

fn system_user() -> TenantCredentials {
    TenantCredentials::SystemUser(Ticket::parse(TICKET).unwrap())
}

fn default_entity() -> Value {
    json!({"ContactId": 0, "Name": "", "Department": "", "Associate": {"AssociateId": 9000, "FullName": "System"}})
}

/// The error of reading the current principal, which must fail.
async fn principal_error(rest: &TenantRestClient, credentials: &TenantCredentials) -> TenantError {
    let principal = rest.current_principal(&support::ctx(), credentials).await;
    principal.unwrap_err()
}

/// The error of creating a company as the system user over REST, which must fail.
async fn company_error(rest: &TenantRestClient, name: &str) -> TenantError {
    let company = rest
        .create_company(&support::ctx(), &system_user(), name)
        .await;
    company.unwrap_err()
}

async fn count(server: &MockServer, method_name: &str, at: &str) -> usize {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == method_name && r.url.path() == at)
        .count()
}

#[tokio::test]
async fn rest_creates_a_company_the_recommended_way_with_the_ticket() {
    let server = tenant_living_on("sod2").await;
    Mock::given(method("GET"))
        .and(path("/sod2/Cust12345/api/v1/Contact/default"))
        .and(header(
            "authorization",
            format!("SOTicket {TICKET}").as_str(),
        ))
        .and(header("so-apptoken", APP_TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(default_entity()))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/sod2/Cust12345/api/v1/Contact"))
        .and(header(
            "authorization",
            format!("SOTicket {TICKET}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "ContactId": 42, "Name": "Acme AS", "Department": "",
            "CreatedDate": "2026-03-01T10:00:00", "Associate": {"FullName": "System"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let acme =
        ResponseTemplate::new(200).set_body_json(json!({"ContactId": 42, "Name": "Acme AS"}));
    support::serve(&server, "GET", "/sod2/Cust12345/api/v1/Contact/42", acme).await;
    let (rest, _, _) = clients(&server);
    let company = rest
        .create_company(&support::ctx(), &system_user(), "Acme AS")
        .await
        .unwrap();
    assert_eq!(company.contact_id, 42);
    assert_eq!(company.owner.as_deref(), Some("System"));
    let posted = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.method.as_str() == "POST")
        .unwrap();
    let body: Value = serde_json::from_slice(&posted.body).unwrap();
    assert_eq!(body["Name"], "Acme AS");
    assert_eq!(body["ContactId"], 0);
    assert_eq!(body["Associate"]["AssociateId"], 9000);
    let read = rest
        .company(&support::ctx(), &system_user(), 42)
        .await
        .unwrap();
    assert_eq!(read.name, "Acme AS");
    // One state lookup served all three calls.
    assert_eq!(count(&server, "GET", STATE).await, 1);
}

#[tokio::test]
async fn a_421_resolves_the_host_again_and_retries_once() {
    let server = MockServer::start().await;
    lives_on(&server, "sod1", Some(1)).await;
    lives_on(&server, "sod3", None).await;
    let wrong_host =
        ResponseTemplate::new(421).set_body_string("Wrong subdomain used to access tenant");
    support::serve_once(
        &server,
        "POST",
        "/sod1/Cust12345/api/v1/Contact",
        wrong_host,
    )
    .await;
    let saved = ResponseTemplate::new(200).set_body_json(json!({"ContactId": 7, "Name": "Moved"}));
    support::serve_once(&server, "POST", "/sod3/Cust12345/api/v1/Contact", saved).await;
    let (rest, _, _) = clients(&server);
    let company = rest
        .save_contact(
            &support::ctx(),
            &system_user(),
            &json!({"ContactId": 0, "Name": "Moved"}),
        )
        .await
        .unwrap();
    assert_eq!(company.contact_id, 7);
    assert_eq!(count(&server, "GET", STATE).await, 2);
}

#[tokio::test]
async fn a_persistent_421_is_reported_after_one_retry() {
    let server = tenant_living_on("sod1").await;
    support::every_get(ResponseTemplate::new(421))
        .mount(&server)
        .await;
    let (rest, _, _) = clients(&server);
    let error = principal_error(&rest, &system_user()).await;
    assert_is!(error, TenantError::Misdirected { .. });
    let at = "/sod1/Cust12345/api/v1/User/currentPrincipal";
    assert_eq!(count(&server, "GET", at).await, 2);
}

#[tokio::test]
async fn a_401_names_the_credential_to_renew() {
    let server = tenant_living_on("sod2").await;
    let expired = ResponseTemplate::new(401).set_body_json(json!({"Error": "ticket expired"}));
    let at = "/sod2/Cust12345/api/v1/User/currentPrincipal";
    support::serve(&server, "GET", at, expired).await;
    let (rest, _, _) = clients(&server);
    let error = principal_error(&rest, &system_user()).await;
    assert_is!(error, TenantError::TicketRejected { .. });
    assert!(!error.is_retryable());
    let user = TenantCredentials::User(SecretString::from("8A:Cust12345.user"));
    let error = principal_error(&rest, &user).await;
    assert_is!(error, TenantError::AccessTokenRejected { .. });
    let requests = server.received_requests().await.unwrap();
    let last = requests.last().unwrap();
    assert_eq!(last.headers["authorization"], "Bearer 8A:Cust12345.user");
    assert!(!last.headers.contains_key("so-apptoken"));
    assert!(!error.to_string().contains("8A:"));
}

#[tokio::test]
async fn the_current_principal_is_read_with_a_bearer_token() {
    let server = tenant_living_on("sod2").await;
    Mock::given(method("GET"))
        .and(path("/sod2/Cust12345/api/v1/User/currentPrincipal"))
        .and(header("authorization", "Bearer 8A:Cust12345.user"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "AssociateId": 5, "Associate": "TONY", "FullName": "Tony Y", "EMailAddress": "tony@example.com",
            "UserType": "InternalAssociate"
        })))
        .mount(&server)
        .await;
    let (rest, _, _) = clients(&server);
    let user = TenantCredentials::User(SecretString::from("8A:Cust12345.user"));
    let principal = rest
        .current_principal(&support::ctx(), &user)
        .await
        .unwrap();
    assert_eq!(principal.associate_id, Some(5));
    assert_eq!(principal.full_name.as_deref(), Some("Tony Y"));
}

#[tokio::test]
async fn gets_are_retried_but_the_save_is_sent_once() {
    let server = tenant_living_on("sod2").await;
    let at = "/sod2/Cust12345/api/v1/Contact/default";
    support::serve_first(&server, "GET", at, ResponseTemplate::new(503)).await;
    let default = ResponseTemplate::new(200).set_body_json(default_entity());
    support::serve(&server, "GET", at, default).await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"Error": "database busy"})))
        .mount(&server)
        .await;
    let (rest, _, _) = clients(&server);
    let error = company_error(&rest, "Acme").await;
    assert_is!(&error, TenantError::Http { status: 500, message, .. } if message == "database busy");
    assert!(error.is_retryable());
    assert_eq!(
        count(&server, "GET", "/sod2/Cust12345/api/v1/Contact/default").await,
        2
    );
    assert_eq!(
        count(&server, "POST", "/sod2/Cust12345/api/v1/Contact").await,
        1
    );
}

#[tokio::test]
async fn no_work_is_done_for_a_tenant_that_is_not_running() {
    let server = MockServer::start().await;
    support::serve(
        &server,
        "GET",
        STATE,
        ResponseTemplate::new(200).set_body_json(json!({
            "ContextIdentifier": "Cust12345", "State": "Suspended", "IsRunning": false
        })),
    )
    .await;
    let (rest, soap, _) = clients(&server);
    let error = company_error(&rest, "x").await;
    assert_is!(error, TenantError::NotRunning { .. });
    let error = soap
        .create_company(&support::ctx(), &Ticket::parse(TICKET).unwrap(), "x")
        .await
        .unwrap_err();
    assert!(error.to_string().contains("Suspended"), "{error}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

const CONTACT_SVC: &str = "/sod2/Cust12345/Remote/Services88/Contact.svc";

fn soap_ok(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(
        format!(
            r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header>
<h:ExceptionInfo xmlns:h="{SERVICES88_NS}" xmlns:i="http://www.w3.org/2001/XMLSchema-instance" i:nil="true"/>
<h:Succeeded xmlns:h="{SERVICES88_NS}">true</h:Succeeded></s:Header><s:Body>{body}</s:Body></s:Envelope>"#
        ),
        "text/xml; charset=utf-8",
    )
}

#[tokio::test]
async fn soap_creates_a_company_from_the_default_entity() {
    let server = tenant_living_on("sod2").await;
    Mock::given(method("POST"))
        .and(path(CONTACT_SVC))
        .and(header(
            "SOAPAction",
            format!("\"{SERVICES88_NS}/Contact/CreateDefaultContactEntity\"").as_str(),
        ))
        .and(header("content-type", "text/xml;charset=UTF-8"))
        .respond_with(soap_ok(&format!(
            r#"<c:CreateDefaultContactEntityResponse xmlns:c="{SERVICES88_NS}"><c:Response>
<c:ContactId>0</c:ContactId><c:Name/><c:Department>Sales &amp; Co</c:Department>
<c:Associate><c:AssociateId>9000</c:AssociateId><c:FullName>System</c:FullName></c:Associate>
</c:Response></c:CreateDefaultContactEntityResponse>"#
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(CONTACT_SVC))
        .and(header_exists("SOAPAction"))
        .and(header(
            "SOAPAction",
            format!("\"{SERVICES88_NS}/Contact/SaveContactEntity\"").as_str(),
        ))
        .respond_with(soap_ok(&format!(
            r#"<SaveContactEntityResponse xmlns="{SERVICES88_NS}"><Response><ContactId>12</ContactId>
<Name>Acme &lt;AS&gt;</Name><Department>Sales &amp; Co</Department></Response></SaveContactEntityResponse>"#
        )))
        .expect(1)
        .mount(&server)
        .await;
    let (_, soap, _) = clients(&server);
    let company = soap
        .create_company(
            &support::ctx(),
            &Ticket::parse(TICKET).unwrap(),
            "Acme <AS>",
        )
        .await
        .unwrap();
    assert_eq!(company.contact_id, 12);
    assert_eq!(company.name, "Acme <AS>");
    assert_eq!(company.department.as_deref(), Some("Sales & Co"));

    let requests = server.received_requests().await.unwrap();
    let sent: Vec<String> = requests
        .iter()
        .filter(|r| r.url.path() == CONTACT_SVC)
        .map(|r| String::from_utf8(r.body.clone()).unwrap())
        .collect();
    for body in &sent {
        assert!(body.contains(&format!(
            "<ApplicationToken xmlns=\"{SERVICES88_NS}\">{APP_TOKEN}</ApplicationToken>"
        )));
        assert!(body.contains(&format!(
            "<Credentials xmlns=\"{SERVICES88_NS}\"><Ticket>{TICKET}</Ticket></Credentials>"
        )));
    }
    assert!(sent[1].contains("<ContactEntity><ContactId>0</ContactId><Name>Acme &lt;AS&gt;</Name><Department>Sales &amp; Co</Department>"), "{}", sent[1]);
}

#[tokio::test]
async fn soap_faults_are_typed_as_ticket_or_other() {
    let server = tenant_living_on("sod2").await;
    let fault = |exception: &str, message: &str| {
        ResponseTemplate::new(500).set_body_raw(
            format!(
                r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header>
<ExceptionInfo xmlns="{SERVICES88_NS}"><Message>{message}</Message><ExceptionType>{exception}</ExceptionType></ExceptionInfo>
<Succeeded xmlns="{SERVICES88_NS}">false</Succeeded></s:Header><s:Body><s:Fault><faultcode>s:Client</faultcode>
<faultstring>{message}</faultstring></s:Fault></s:Body></s:Envelope>"#
            ),
            "text/xml",
        )
    };
    Mock::given(method("POST"))
        .respond_with(fault("SoSecurityException", "Ticket is not valid"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(fault("SoValidationException", "Name is required"))
        .mount(&server)
        .await;
    let (_, soap, _) = clients(&server);
    let ticket = Ticket::parse(TICKET).unwrap();
    let error = soap
        .create_default_contact(&support::ctx(), &ticket)
        .await
        .unwrap_err();
    assert_is!(error, TenantError::TicketRejected { .. });
    let error = soap
        .create_default_contact(&support::ctx(), &ticket)
        .await
        .unwrap_err();
    assert_is!(&error, TenantError::Fault { exception, message, .. }
            if exception == "SoValidationException" && message == "Name is required");
}
