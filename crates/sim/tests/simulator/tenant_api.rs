//! The tenant REST and SOAP APIs, the state API, hosts and ticket lifetime.

use serde_json::{Value, json};
use superoffice_sim::{TEST_CLIENT_ID, TEST_CLIENT_SECRET, TenantState};

use crate::support::*;

const NS88: &str = "http://www.superoffice.net/ws/crm/NetServer/Services88";

fn contact_soap(app_token: &str, ticket: &str, body: &str) -> String {
    format!(
        r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">
  <s:Header>
    <ApplicationToken xmlns="{NS88}">{app_token}</ApplicationToken>
    <Credentials xmlns="{NS88}"><Ticket>{ticket}</Ticket></Credentials>
  </s:Header>
  <s:Body>{body}</s:Body>
</s:Envelope>"#
    )
}

/// Posts to Cust10001's contact agent on sod2.
async fn post_soap(t: &TestSim, method: &str, quoted: bool, xml: String) -> reqwest::Response {
    let action = format!("{NS88}/Contact/{method}");
    let action = if quoted {
        format!("\"{action}\"")
    } else {
        action
    };
    t.http
        .post(t.api("sod2", "/Cust10001/Remote/Services88/Contact.svc"))
        .header("Content-Type", "text/xml; charset=utf-8")
        .header("SOAPAction", action)
        .body(xml)
        .fetch()
        .await
}

/// A URL of Cust10001's REST API on its host, sod2.
fn rest(t: &TestSim, path: &str) -> String {
    t.api("sod2", &format!("/Cust10001/api/v1{path}"))
}

/// Saves a contact entity through the REST API with a system user ticket.
async fn save_contact(t: &TestSim, ticket: &str, entity: &Value) -> reqwest::Response {
    let request = t.http.post(rest(t, "/Contact")).with_ticket(ticket);
    request.json(entity).fetch().await
}

/// Saves a contact entity through the REST API with a user's bearer token.
async fn save_contact_as_user(t: &TestSim, token: &str, entity: &Value) -> reqwest::Response {
    let request = t.http.post(rest(t, "/Contact")).bearer_auth(token);
    request.json(entity).fetch().await
}

/// The answer of a tenant API host the tenant is not on.
async fn assert_wrong_host(response: reqwest::Response) {
    assert_eq!(response.status(), 421);
    assert_eq!(
        response.body_text().await,
        "Wrong subdomain used to access tenant"
    );
}

#[tokio::test]
async fn rest_creates_a_company_with_the_system_user_ticket() {
    let (t, ticket) = spawn_with_ticket().await;
    let default = t
        .json_with_ticket(&rest(&t, "/Contact/default"), &ticket)
        .await;
    for field in [
        "ContactId",
        "Name",
        "Department",
        "OrgNr",
        "Number1",
        "Number2",
        "CreatedDate",
        "UpdatedDate",
        "Associate",
        "Category",
        "Business",
        "Country",
    ] {
        assert!(default.get(field).is_some(), "{field}");
    }
    assert_eq!(default["ContactId"], 0);
    let mut entity = default.clone();
    entity["Name"] = json!("SuperId-1700000000");
    entity["Department"] = json!("Sales");
    let response = save_contact(&t, &ticket, &entity).await;
    assert_eq!(response.status(), 200);
    let saved: Value = response.body_json().await;
    let id = saved["ContactId"].as_i64().unwrap();
    assert!(id > 0);
    assert_eq!(saved["Name"], "SuperId-1700000000");
    assert_eq!(saved["Associate"]["FullName"], "System User");
    assert_ne!(saved["CreatedDate"], "0001-01-01T00:00:00");

    let fetched = t
        .json_with_ticket(&rest(&t, &format!("/Contact/{id}")), &ticket)
        .await;
    assert_eq!(fetched, saved);
    let missing = rest(&t, "/Contact/999");
    assert_eq!(t.status_with_ticket(&missing, &ticket).await, 404);

    let me = t
        .json_with_ticket(&rest(&t, "/User/currentPrincipal"), &ticket)
        .await;
    assert_eq!(me["IsSystemUser"], true);
    assert_eq!(me["DatabaseContextIdentifier"], "Cust10001");

    let records = t.admin_get("/records").await;
    let company = &records["companies"][0];
    assert_eq!(company["credential"], "system_user_ticket");
    assert_eq!(company["via"], "rest");
    assert_eq!(company["context_id"], "Cust10001");
    assert_eq!(company["contact_id"], id);
}

#[tokio::test]
async fn a_user_bearer_token_creates_companies_as_that_user() {
    let t = spawn().await;
    let tokens = t.tokens_for(ADA_ADMIN).await;
    let token = tokens["access_token"].text();
    let entity = json!({ "ContactId": 0, "Name": "As user AS", "Department": "" });
    let response = save_contact_as_user(&t, token, &entity).await;
    assert_eq!(response.status(), 200);
    let saved: Value = response.body_json().await;
    assert_eq!(saved["Associate"]["AssociateId"], 5);
    let records = t.sim.admin().records();
    assert_eq!(records.records.companies[0].credential, "user_bearer");
    let empty_name = json!({ "ContactId": 0, "Name": "" });
    let empty_name = save_contact_as_user(&t, token, &empty_name).await;
    assert_eq!(empty_name.status(), 400);
}

#[tokio::test]
async fn only_sotickets_with_the_app_token_or_bearer_tokens_are_accepted() {
    let (t, ticket) = spawn_with_ticket().await;
    let url = rest(&t, "/User/currentPrincipal");
    let other_tenant = t.api("sod2", "/Cust10002/api/v1/User/currentPrincipal");
    let soticket = format!("SOTicket {ticket}");
    // (what is sent, Authorization, SO-AppToken, URL, expected status)
    let cases = [
        (
            "a lower-case scheme",
            Some(format!("soticket {ticket}")),
            Some(TEST_CLIENT_SECRET),
            &url,
            200,
        ),
        (
            "no application token",
            Some(soticket.clone()),
            None,
            &url,
            401,
        ),
        (
            "a wrong application token",
            Some(soticket.clone()),
            Some("nope"),
            &url,
            401,
        ),
        (
            "the ticket as a bearer token",
            Some(format!("Bearer {ticket}")),
            None,
            &url,
            401,
        ),
        (
            "basic authentication",
            Some("Basic YTpi".to_owned()),
            None,
            &url,
            401,
        ),
        ("no credential", None, None, &url, 401),
        // A ticket is only valid for its own tenant.
        (
            "another tenant's URL",
            Some(soticket),
            Some(TEST_CLIENT_SECRET),
            &other_tenant,
            401,
        ),
    ];
    for (what, authorization, app_token, url, expected) in cases {
        let mut request = t.http.get(url);
        if let Some(authorization) = authorization {
            request = request.header("Authorization", authorization);
        }
        if let Some(app_token) = app_token {
            request = request.header("SO-AppToken", app_token);
        }
        let response = request.fetch().await;
        assert_eq!(response.status(), expected, "{what}");
        if expected == 401 {
            let body = response.body_json().await;
            assert!(body["Error"].is_string(), "{what}: {body}");
        }
    }
}

#[tokio::test]
async fn tickets_expire_six_hours_after_last_use() {
    let (t, ticket) = spawn_with_ticket().await;
    let url = rest(&t, "/User/currentPrincipal");
    // Used at +5h, so still valid at +10h: the window slides.
    for (advance, expected) in [(5 * 3600, 200), (5 * 3600, 200), (6 * 3600 + 1, 401)] {
        t.sim.admin().advance_clock(advance);
        let status = t.status_with_ticket(&url, &ticket).await;
        assert_eq!(status, expected, "after another {advance}s");
    }
}

#[tokio::test]
async fn revoking_the_app_invalidates_its_tickets() {
    let (t, ticket) = spawn_with_ticket().await;
    let url = rest(&t, "/Contact/default");
    assert_eq!(t.status_with_ticket(&url, &ticket).await, 200);
    t.sim.admin().revoke("Cust10001", TEST_CLIENT_ID).unwrap();
    assert_eq!(t.status_with_ticket(&url, &ticket).await, 401);
}

#[tokio::test]
async fn rest_paths_after_the_tenant_are_case_insensitive() {
    let (t, ticket) = spawn_with_ticket().await;
    let url = t.api("sod2", "/Cust10001/API/V1/contact/DEFAULT");
    assert_eq!(t.status_with_ticket(&url, &ticket).await, 200);
    let info: Value = t
        .http
        .get(t.api("sod2", "/Cust10001/api"))
        .fetch_json()
        .await;
    assert_eq!(info["ServicesCurrent"], "Services88");
}

#[tokio::test]
async fn soap_contact_agent_creates_default_and_saves_with_escaping() {
    let (t, ticket) = spawn_with_ticket().await;
    let xml = contact_soap(
        TEST_CLIENT_SECRET,
        &ticket,
        &format!("<CreateDefaultContactEntity xmlns=\"{NS88}\"/>"),
    );
    let response = post_soap(&t, "CreateDefaultContactEntity", true, xml).await;
    assert_eq!(response.status(), 200);
    let doc = parse_xml(&response.body_text().await);
    let succeeded = doc.find("Succeeded").unwrap();
    assert_eq!(
        (succeeded.ns.as_str(), succeeded.text.as_str()),
        (NS88, "true")
    );
    assert!(doc.find("ExceptionInfo").unwrap().nil);
    let wrapper = doc.find("CreateDefaultContactEntityResponse").unwrap();
    assert_eq!(wrapper.ns, NS88);
    assert_eq!(wrapper.child("Response").child("ContactId").text, "0");

    // Prefixed elements, as a generated client would send them.
    let body = format!(
        r#"<c:SaveContactEntity xmlns:c="{NS88}"><c:ContactEntity><c:ContactId>0</c:ContactId><c:Name>Smith &amp; Sons &lt;AS&gt;</c:Name><c:Department>Ops</c:Department></c:ContactEntity></c:SaveContactEntity>"#
    );
    let xml = contact_soap(TEST_CLIENT_SECRET, &ticket, &body);
    let response = post_soap(&t, "SaveContactEntity", false, xml).await;
    assert_eq!(response.status(), 200);
    let raw = response.body_text().await;
    assert!(raw.contains("Smith &amp; Sons &lt;AS&gt;"), "{raw}");
    let doc = parse_xml(&raw);
    let saved = doc
        .find("SaveContactEntityResponse")
        .unwrap()
        .child("Response");
    assert_eq!(saved.child("Name").text, "Smith & Sons <AS>");
    assert_eq!(saved.child("Department").text, "Ops");
    let id: i64 = saved.child("ContactId").text.parse().unwrap();
    assert!(id > 0);
    let records = t.sim.admin().records();
    let company = &records.records.companies[0];
    assert_eq!(
        (company.credential, company.via),
        ("system_user_ticket", "soap")
    );
    assert_eq!(company.name, "Smith & Sons <AS>");
}

#[tokio::test]
async fn soap_errors_are_faults_with_succeeded_false() {
    let (t, ticket) = spawn_with_ticket().await;
    let create = format!("<CreateDefaultContactEntity xmlns=\"{NS88}\"/>");
    let cases = [
        (
            "bad ticket",
            contact_soap(TEST_CLIENT_SECRET, "7T:bogus", &create),
            "CreateDefaultContactEntity",
        ),
        (
            "bad app token",
            contact_soap("wrong", &ticket, &create),
            "CreateDefaultContactEntity",
        ),
        (
            "bad xml",
            "<s:Envelope".to_owned(),
            "CreateDefaultContactEntity",
        ),
        (
            "doctype",
            format!(
                "<!DOCTYPE s [<!ENTITY x \"y\">]>{}",
                contact_soap(TEST_CLIENT_SECRET, &ticket, &create)
            ),
            "CreateDefaultContactEntity",
        ),
        (
            "action mismatch",
            contact_soap(TEST_CLIENT_SECRET, &ticket, &create),
            "SaveContactEntity",
        ),
        (
            "no headers",
            format!(
                "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>{create}</s:Body></s:Envelope>"
            ),
            "CreateDefaultContactEntity",
        ),
    ];
    for (case, xml, method) in cases {
        let response = post_soap(&t, method, false, xml).await;
        assert_eq!(response.status(), 500, "{case}");
        let doc = parse_xml(&response.body_text().await);
        assert!(doc.find("Fault").is_some(), "{case}");
        assert_eq!(doc.find("Succeeded").unwrap().text, "false", "{case}");
        assert!(
            !doc.find("ExceptionInfo")
                .unwrap()
                .child("Message")
                .text
                .is_empty(),
            "{case}"
        );
    }
    let huge = contact_soap(TEST_CLIENT_SECRET, &ticket, &"x".repeat(1024 * 1024 + 10));
    let response = post_soap(&t, "CreateDefaultContactEntity", false, huge).await;
    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn state_api_reports_the_documented_fields() {
    let t = spawn().await;
    let response = t.http.get(t.url("/api/state/Cust10003")).fetch().await;
    assert_eq!(response.status(), 200);
    let state: Value = response.body_json().await;
    let sod3 = t.sim.api_host_url("sod3").unwrap();
    assert_eq!(state["ContextIdentifier"], "Cust10003");
    assert_eq!(state["Endpoint"], format!("{sod3}/Cust10003"));
    assert_eq!(state["Api"], format!("{sod3}/Cust10003/api"));
    assert_eq!(state["State"], "Running");
    assert_eq!(state["IsRunning"], true);
    assert!(state["Version"].is_string());
    let valid_until = chrono::DateTime::parse_from_rfc3339(state["ValidUntil"].text()).unwrap();
    let ahead = valid_until.with_timezone(&chrono::Utc) - t.now();
    assert!((250..=300).contains(&ahead.num_seconds()), "{ahead}");
    assert_eq!(t.get_status(t.url("/api/state/Cust55555")).await, 404);

    for (state_name, running) in [
        ("OnlineMaintenance", true),
        ("Suspended", false),
        ("OfflineMaintenance", false),
        ("Deleted", false),
    ] {
        t.admin_set_state("Cust10003", state_name).await;
        let state: Value = t.http.get(t.url("/api/state/Cust10003")).fetch_json().await;
        assert_eq!(state["State"], state_name);
        assert_eq!(state["IsRunning"], running, "{state_name}");
    }
}

#[tokio::test]
async fn a_state_no_documentation_names_is_answered_as_given_and_not_running() {
    let (t, ticket) = spawn_with_ticket().await;
    let url = rest(&t, "/Contact/default");
    let change = t.admin_set_state("Cust10001", "Hibernating").await;
    assert_eq!(change["tenant"]["state"], "Hibernating");
    assert_eq!(change["tenant"]["is_running"], false);
    let state: Value = t.http.get(t.url("/api/state/Cust10001")).fetch_json().await;
    assert_eq!(state["State"], "Hibernating");
    assert_eq!(state["IsRunning"], false);
    assert_eq!(t.status_with_ticket(&url, &ticket).await, 503);

    t.admin_set_state("Cust10001", "Running").await;
    assert_eq!(t.status_with_ticket(&url, &ticket).await, 200);
}

#[tokio::test]
async fn the_state_valid_for_is_configurable() {
    let t = spawn_with(|c| c.superid.state_valid_for_secs = 30).await;
    let state: Value = t.http.get(t.url("/api/state/Cust10001")).fetch_json().await;
    let valid_until = chrono::DateTime::parse_from_rfc3339(state["ValidUntil"].text()).unwrap();
    assert!((valid_until.with_timezone(&chrono::Utc) - t.now()).num_seconds() <= 30);
}

#[tokio::test]
async fn a_tenant_that_is_not_running_answers_503() {
    let (t, ticket) = spawn_with_ticket().await;
    let url = rest(&t, "/Contact/default");
    for (state, expected) in [(TenantState::Suspended, 503), (TenantState::Running, 200)] {
        t.sim
            .admin()
            .set_state("Cust10001", state.clone())
            .await
            .unwrap();
        let status = t.status_with_ticket(&url, &ticket).await;
        assert_eq!(status, expected, "{state:?}");
    }
}

#[tokio::test]
async fn the_wrong_host_answers_421_also_after_a_move() {
    let (t, ticket) = spawn_with_ticket().await;
    let default = "/Cust10001/api/v1/Contact/default";
    assert_wrong_host(t.http.get(t.api("sod3", default)).fetch().await).await;

    let moved: Value = t
        .admin_post("/tenants/Cust10001/move", json!({ "host": "sod3" }))
        .await
        .body_json()
        .await;
    assert_eq!(moved["tenant"]["host"], "sod3");
    assert_wrong_host(t.get_with_ticket(&t.api("sod2", default), &ticket).await).await;
    assert_eq!(
        t.status_with_ticket(&t.api("sod3", default), &ticket).await,
        200
    );
    let soap_old = post_soap(&t, "CreateDefaultContactEntity", false, String::new()).await;
    assert_eq!(soap_old.status(), 421);

    let state: Value = t.http.get(t.url("/api/state/Cust10001")).fetch_json().await;
    let sod3 = t.sim.api_host_url("sod3").unwrap();
    assert_eq!(state["Endpoint"], format!("{sod3}/Cust10001"));
    // New exchanges and sign-ins point at the new host.
    let signed = t.sign(&t.system_token("Cust10001"));
    let body = t
        .exchange_rest("Cust10001", &signed, TEST_CLIENT_SECRET)
        .await;
    let claims = t.verify(body["Token"].text(), None).await;
    assert_eq!(
        claims[format!("{CLAIM}webapi_url")],
        format!("{sod3}/Cust10001/api/")
    );
}

#[tokio::test]
async fn rest_contact_query_filters_on_number2() {
    let (t, ticket) = spawn_with_ticket().await;
    for (name, marker) in [
        ("Alpha AS", "key-1"),
        ("Beta AS", "key-2"),
        ("Gamma AS", ""),
    ] {
        let entity = json!({"ContactId": 0, "Name": name, "Number2": marker});
        let response = save_contact(&t, &ticket, &entity).await;
        assert_eq!(response.status(), 200, "{name}");
    }
    let query = |filter: &str| {
        t.http
            .get(rest(&t, "/Contact"))
            .query(&[("$select", "ContactId,Name,Number2"), ("$filter", filter)])
            .with_ticket(&ticket)
            .send()
    };
    let found: Value = query("number2 eq 'key-2'").await.unwrap().body_json().await;
    assert_eq!(
        found["value"],
        json!([{"ContactId": 2, "Name": "Beta AS", "Number2": "key-2"}])
    );
    let none: Value = query("number2 eq 'key-3'").await.unwrap().body_json().await;
    assert_eq!(none["value"], json!([]));
    assert_eq!(query("number2 gt 'x'").await.unwrap().status(), 400);
    assert_eq!(t.get_status(rest(&t, "/Contact")).await, 401);
}
