//! The clients end to end against the in-process SuperOffice simulator: sign-in, exchange (REST and
//! SOAP), companies (REST and SOAP) with the ticket and with a user's Bearer token, revocation, a move.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use shared::clients::SuperOfficeClients;
use shared::clock::SystemClock;
use shared::config::{ExchangeKind, Settings, Sources};
use shared::domain::{ContextId, SystemUserToken, Ticket};
use shared::superid::exchange::{ExchangeError, IssuedTicket};
use shared::superid::oidc::{CallbackParams, OAuthError, SignIn};
use shared::tenant::rest::{Principal, TenantRestClient};
use shared::tenant::{Company, TenantCredentials, TenantError};
use superoffice_sim::{RunningSim, SimConfig, Simulator, TEST_CLIENT_ID, TEST_CLIENT_SECRET};

use crate::support;

const TENANT: &str = "Cust10001";
/// The simulator's administrator and ordinary user of `TENANT`.
const ADMIN: &str = "admin@cust10001.example";
const USER: &str = "user@cust10001.example";

/// A simulator and the clients configured against it, exchanging over `exchange`.
async fn start(exchange: ExchangeKind) -> (RunningSim, SuperOfficeClients) {
    let key = support::partner_key();
    let sim = Simulator::start(SimConfig::for_tests(key.public_key_pem()))
        .await
        .unwrap();
    let clients = clients(&sim, exchange);
    (sim, clients)
}

fn clients(sim: &RunningSim, exchange: ExchangeKind) -> SuperOfficeClients {
    let env: BTreeMap<String, String> = [
        ("PARTNER_SUPEROFFICE__ENVIRONMENT", "custom"),
        ("PARTNER_SUPEROFFICE__SUPERID_URL", sim.superid_url()),
        ("PARTNER_SUPEROFFICE__CLIENT_ID", TEST_CLIENT_ID),
        ("PARTNER_SUPEROFFICE__CLIENT_SECRET", TEST_CLIENT_SECRET),
        ("PARTNER_SUPEROFFICE__EXCHANGE", exchange.as_str()),
        ("PARTNER_WEB__PUBLIC_URL", "http://127.0.0.1:8080"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let settings = Settings::from_sources(&Sources { file: None, env }).unwrap();
    SuperOfficeClients::from_settings(&settings, Arc::new(SystemClock)).unwrap()
}

fn tenant() -> ContextId {
    ContextId::parse(TENANT).unwrap()
}

async fn principal(
    clients: &SuperOfficeClients,
    credentials: &TenantCredentials,
) -> Result<Principal, TenantError> {
    clients
        .tenants
        .rest
        .current_principal(&tenant(), credentials)
        .await
}

async fn create_company(
    clients: &SuperOfficeClients,
    credentials: &TenantCredentials,
    name: &str,
) -> Result<Company, TenantError> {
    clients
        .tenants
        .rest
        .create_company(&tenant(), credentials, name)
        .await
}

async fn create_marked(
    rest: &TenantRestClient,
    credentials: &TenantCredentials,
    name: &str,
    marker: &str,
) -> Company {
    rest.create_marked_company(&tenant(), credentials, name, marker)
        .await
        .unwrap()
}

async fn find_marked(
    rest: &TenantRestClient,
    credentials: &TenantCredentials,
    marker: &str,
) -> Option<Company> {
    rest.find_company_by_marker(&tenant(), credentials, marker)
        .await
        .unwrap()
}

/// Drives the sign-in: the authorization request, the simulator's sign-in form submitted as
/// `username`, the redirect back with the code, the code exchange and validation.
async fn sign_in(clients: &SuperOfficeClients, username: &str) -> SignIn {
    let request = clients
        .superid
        .oidc
        .authorization_request(Some(&tenant()))
        .await
        .unwrap();
    let mut form: Vec<(String, String)> = request.url.query_pairs().into_owned().collect();
    form.push(("username".into(), username.into()));
    let mut action = request.url.clone();
    action.set_query(None);
    let response = clients
        .http
        .client()
        .post(action)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        302,
        "the sign-in form did not redirect"
    );
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert!(
        location
            .as_str()
            .starts_with("http://127.0.0.1:8080/callback?")
    );
    let query: HashMap<String, String> = location.query_pairs().into_owned().collect();
    let callback = CallbackParams {
        code: query.get("code").cloned(),
        state: query.get("state").cloned(),
        error: query.get("error").map(|error| OAuthError {
            error: error.clone(),
            description: query.get("error_description").cloned(),
        }),
    };
    clients
        .superid
        .oidc
        .complete(&request.pending, &callback)
        .await
        .unwrap()
}

/// The administrator signs in and the system user token from the sign-in is exchanged: the ticket.
async fn system_user_ticket(clients: &SuperOfficeClients) -> Ticket {
    let admin = sign_in(clients, ADMIN).await;
    exchange_for(clients, &admin).await.unwrap().ticket
}

async fn exchange_for(
    clients: &SuperOfficeClients,
    admin: &SignIn,
) -> Result<IssuedTicket, ExchangeError> {
    let token: &SystemUserToken = admin.claims.credentials.system_token.as_ref().unwrap();
    let serial = admin.claims.tenant.serial.as_deref().unwrap();
    clients
        .exchange(support::partner_key())
        .exchange(&tenant(), token, serial)
        .await
}

#[tokio::test]
async fn an_administrator_signs_in_and_the_system_user_creates_companies_over_rest() {
    let (sim, clients) = start(ExchangeKind::Rest).await;
    let admin = sign_in(&clients, ADMIN).await;
    assert_eq!(admin.claims.tenant.context_id, tenant());
    assert!(admin.claims.associate.is_administrator);
    assert!(admin.claims.credentials.system_token.is_some());
    assert!(admin.claims.tenant.serial.is_some());
    assert!(admin.tokens.refresh_token.is_some());

    let issued = exchange_for(&clients, &admin).await.unwrap();
    assert!(issued.ticket.expose().starts_with("7T:"));
    let credentials = TenantCredentials::SystemUser(issued.ticket.clone());
    let company = create_company(&clients, &credentials, "Made by the system user")
        .await
        .unwrap();
    assert!(company.contact_id > 0);
    let read = clients
        .tenants
        .rest
        .company(&tenant(), &credentials, company.contact_id)
        .await
        .unwrap();
    assert_eq!(read.name, "Made by the system user");
    let principal = principal(&clients, &credentials).await.unwrap();
    assert_eq!(principal.user_type.as_deref(), Some("SystemAssociate"));
    let records = sim.admin().records();
    assert_eq!(records.records.companies.len(), 1);
    sim.stop().await;
}

#[tokio::test]
async fn the_soap_exchange_and_soap_company_creation_work_together() {
    let (sim, clients) = start(ExchangeKind::Soap).await;
    let ticket = system_user_ticket(&clients).await;
    let company = clients
        .tenants
        .soap
        .create_company(&tenant(), &ticket, "Made over SOAP & <escaped>")
        .await
        .unwrap();
    assert!(company.contact_id > 0);
    assert_eq!(company.name, "Made over SOAP & <escaped>");
    let read = clients
        .tenants
        .rest
        .company(
            &tenant(),
            &TenantCredentials::SystemUser(ticket),
            company.contact_id,
        )
        .await
        .unwrap();
    assert_eq!(read.name, "Made over SOAP & <escaped>");
    sim.stop().await;
}

#[tokio::test]
async fn an_ordinary_user_gets_no_system_token_but_creates_a_company_with_its_bearer_token() {
    let (sim, clients) = start(ExchangeKind::Rest).await;
    let user = sign_in(&clients, USER).await;
    assert!(!user.claims.associate.is_administrator);
    assert!(user.claims.credentials.system_token.is_none());
    let credentials = TenantCredentials::User(user.tokens.access_token.clone());
    let principal = principal(&clients, &credentials).await.unwrap();
    assert_eq!(principal.user_type.as_deref(), Some("InternalAssociate"));
    let company = create_company(&clients, &credentials, "Made by a user")
        .await
        .unwrap();
    assert_eq!(company.name, "Made by a user");
    let refreshed = clients
        .superid
        .oidc
        .refresh(user.tokens.refresh_token.as_ref().unwrap())
        .await
        .unwrap();
    assert!(refreshed.refresh_token.is_some());
    sim.stop().await;
}

#[tokio::test]
async fn a_revoked_application_is_a_permanent_failure_and_a_bad_ticket_is_rejected() {
    let (sim, clients) = start(ExchangeKind::Rest).await;
    let admin = sign_in(&clients, ADMIN).await;
    sim.admin().revoke(TENANT, TEST_CLIENT_ID).unwrap();
    let error = exchange_for(&clients, &admin).await.unwrap_err();
    assert_is!(error, ExchangeError::Revoked { .. });
    assert!(!error.is_retryable());
    let forged = TenantCredentials::SystemUser(Ticket::parse("7T:not-a-ticket").unwrap());
    let error = principal(&clients, &forged).await.unwrap_err();
    assert_is!(error, TenantError::TicketRejected { .. });
    let error = clients
        .tenants
        .soap
        .create_default_contact(&tenant(), &Ticket::parse("7T:not-a-ticket").unwrap())
        .await
        .unwrap_err();
    assert_is!(error, TenantError::TicketRejected { .. });
    sim.stop().await;
}

#[tokio::test]
async fn a_moved_tenant_is_found_again_after_a_421() {
    let (sim, clients) = start(ExchangeKind::Rest).await;
    let credentials = TenantCredentials::SystemUser(system_user_ticket(&clients).await);
    principal(&clients, &credentials).await.unwrap();
    let before = clients.tenants.statuses.status(&tenant()).await.unwrap();
    sim.admin().move_tenant(TENANT, "sod3").await.unwrap();
    let company = create_company(&clients, &credentials, "After the move")
        .await
        .unwrap();
    assert_eq!(company.name, "After the move");
    let after = clients.tenants.statuses.status(&tenant()).await.unwrap();
    assert_ne!(before.api, after.api);
    sim.stop().await;
}

#[tokio::test]
async fn a_marked_company_is_found_by_its_marker() {
    let (sim, clients) = start(ExchangeKind::Rest).await;
    let token =
        SystemUserToken::parse(sim.admin().tenant(TENANT).unwrap().system_token.unwrap()).unwrap();
    let issued = clients
        .exchange(support::partner_key())
        .exchange(
            &tenant(),
            &token,
            &sim.admin().tenant(TENANT).unwrap().serial,
        )
        .await
        .unwrap();
    let credentials = TenantCredentials::SystemUser(issued.ticket);
    let rest = &clients.tenants.rest;
    assert_eq!(find_marked(rest, &credentials, "it's-1").await, None);
    let created = create_marked(rest, &credentials, "Marked AS", "it's-1").await;
    create_marked(rest, &credentials, "Other AS", "it's-2").await;
    let found = find_marked(rest, &credentials, "it's-1").await.unwrap();
    assert_eq!(found.contact_id, created.contact_id);
    assert_eq!(found.name, "Marked AS");

    // Another marker field (service.idempotency_field): the marker goes there and is found there.
    let by_org = rest.clone().with_marker_field("OrgNr");
    assert_eq!(
        find_marked(&by_org, &credentials, "it's-1").await,
        None,
        "the Number2 marker is not an OrgNr marker"
    );
    let in_org = create_marked(&by_org, &credentials, "Org marked AS", "key-3").await;
    let found = find_marked(&by_org, &credentials, "key-3").await.unwrap();
    assert_eq!(found.contact_id, in_org.contact_id);
    let stored = sim
        .admin()
        .records()
        .records
        .companies
        .into_iter()
        .filter(|c| c.contact_id == in_org.contact_id)
        .count();
    assert_eq!(stored, 1);
    sim.stop().await;
}
