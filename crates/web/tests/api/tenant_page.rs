//! The tenant page: the header of every signed-in page, "last error" only while it is the latest outcome, and
//! what partner-service learnt of the tenant (its state in SuperOffice, whether it needs attention).

use testkit::TestApp;

/// The lease owner the test writes outcomes as.
const OWNER: &str = "page-test";
const TENANT: &str = "Cust10001";

async fn tenant_page(app: &TestApp) -> String {
    let response = app.get("/tenant").await;
    assert_eq!(response.status().as_u16(), 200);
    response.text().await.unwrap()
}

/// The text of the "Last error" line.
fn last_error(page: &str) -> String {
    let marker = "<dt>Last error</dt><dd>";
    let start = page.find(marker).expect("no last error line") + marker.len();
    let end = start + page[start..].find("</dd>").unwrap();
    page[start..end].to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tenant_page_shows_the_last_error_only_after_a_failure() {
    let app = crate::support::admin_signed_in().await;
    let page = tenant_page(&app).await;
    assert!(
        page.contains("action=\"/logout\"") && page.contains("Sign out"),
        "the header with sign-out is missing: {page}"
    );
    let mut conn = app.pool.get().await.unwrap();
    let earlier = chrono::Utc::now() - chrono::Duration::minutes(5);
    // Outcomes are recorded only under the tenant's lease, as partner-service holds it.
    crate::support::execute(&mut conn, "UPDATE tenants SET lease_owner = 'page-test', lease_expires_at = now() + interval '1 hour'").await;
    shared::db::tenants::record_outcome(
        &mut conn,
        TENANT,
        OWNER,
        Some("tenant timed out"),
        earlier,
    )
    .await
    .unwrap();
    assert!(
        last_error(&tenant_page(&app).await).starts_with("tenant timed out"),
        "a failure with no success after it is shown"
    );
    // The service obtains a ticket: the tenant is active, its reason a success message.
    crate::support::execute_with(
        &mut conn,
        "UPDATE tenants SET state = $1, state_reason = 'system user ticket obtained'",
        shared::db::models::TenantState::Active.as_str(),
    )
    .await;
    shared::db::tenants::record_outcome(&mut conn, TENANT, OWNER, None, chrono::Utc::now())
        .await
        .unwrap();
    let page = tenant_page(&app).await;
    assert_eq!(last_error(&page), "none", "{page}");
    assert!(!page.contains("system user ticket obtained"), "{page}");
    shared::db::tenants::record_outcome(
        &mut conn,
        TENANT,
        OWNER,
        Some("SuperOffice answered 503"),
        chrono::Utc::now() + chrono::Duration::seconds(1),
    )
    .await
    .unwrap();
    assert!(last_error(&tenant_page(&app).await).starts_with("SuperOffice answered 503"));
}

/// The text of the line after `<dt>{term}</dt>`, if the page has it.
fn definition(page: &str, term: &str) -> Option<String> {
    let marker = format!("<dt>{term}</dt><dd>");
    let start = page.find(&marker)? + marker.len();
    let end = start + page[start..].find("</dd>")?;
    Some(page[start..end].to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tenant_page_shows_the_state_in_superoffice_and_why_the_tenant_needs_attention() {
    let app = crate::support::admin_signed_in().await;
    let page = tenant_page(&app).await;
    assert_eq!(
        definition(&page, "State in SuperOffice").as_deref(),
        Some("not checked yet"),
        "{page}"
    );
    assert_eq!(definition(&page, "Needs attention"), None, "{page}");
    let mut conn = app.pool.get().await.unwrap();
    // What partner-service writes when the state API says Suspended and SuperOffice answered unknown words.
    crate::support::execute(&mut conn, "UPDATE tenants SET so_state = 'Suspended', so_state_checked_at = now(), \
             needs_attention = true, attention_reason = 'SuperOffice answered: Zugriff verweigert', \
             attention_at = now()").await;
    let page = tenant_page(&app).await;
    let so_state = definition(&page, "State in SuperOffice").unwrap();
    assert!(so_state.starts_with("Suspended (checked "), "{so_state}");
    let attention = definition(&page, "Needs attention").unwrap();
    assert!(
        attention.starts_with("SuperOffice answered: Zugriff verweigert (since "),
        "{attention}"
    );
}
