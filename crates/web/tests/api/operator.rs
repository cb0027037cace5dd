//! The operator console: who gets in (everyone else gets 404), each action with its audit row, and the
//! tenant table's filters and paging over 10,000 tenants with a fixed number of queries per page.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use shared::db::models::TenantState;
use shared::db::schema::{audit_events, tenants};

use testkit::TestApp;
use testkit::snapshot::{ALL_SESSIONS, Snapshot};

const OPERATOR: &str = "admin@cust10001.example";
const OPERATORS: &str = "Cust10001:admin@cust10001.example";
const ACTOR: &str = "operator:admin@cust10001.example";

/// partner-web with the console for Cust10001's administrator, who is signed in.
async fn operator_signed_in() -> TestApp {
    let app = TestApp::with_sim(&[("PARTNER_WEB__OPERATORS", OPERATORS)]).await;
    app.sign_in_as(OPERATOR).await;
    app
}

async fn status(app: &TestApp, path: &str) -> u16 {
    app.get(path).await.status().as_u16()
}

/// Runs a statement of SQL on partner-web's database.
async fn execute(app: &TestApp, statement: &str) {
    crate::support::execute(&mut app.pool.get().await.unwrap(), statement).await;
}

async fn page(app: &TestApp, path: &str) -> (String, usize) {
    let response = app.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "GET {path}");
    let queries = response
        .headers()
        .get("x-db-queries")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("no x-db-queries header");
    (response.text().await.unwrap(), queries)
}

/// Every console URL a visitor could try, by GET and by POST.
async fn assert_console_hidden(app: &TestApp) {
    for path in [
        "/operator",
        "/operator?state=active",
        "/operator/tenants/Cust10001",
        "/operator/tenants/Cust10001?history_before=not-a-number",
        "/operator/tenants/Cust10001/purge",
        "/operator/charts/exchanges-24h.svg",
        "/operator/anything",
    ] {
        assert_eq!(status(app, path).await, 404, "GET {path}");
    }
    let before = Snapshot::take(&app.pool, &ALL_SESSIONS).await;
    for action in ["retry", "disable", "enable", "purge", "end-sessions"] {
        let response = act(app, "x", "Cust10001", action, &[("confirm", "Cust10001")]).await;
        assert_eq!(response.status().as_u16(), 404, "POST {action}");
        let path = format!("/operator/tenants/Cust10001/{action}");
        let bare = crate::support::post_body(app, &path, "application/json", "{}").await;
        assert_eq!(bare.status().as_u16(), 404, "POST {action} without a form");
    }
    assert_eq!(
        before,
        Snapshot::take(&app.pool, &ALL_SESSIONS).await,
        "a refused console request changed something"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_operators_configured_the_console_is_absent() {
    let app = TestApp::with_sim(&[]).await;
    assert_console_hidden(&app).await;
    app.sign_in_as(OPERATOR).await;
    assert_console_hidden(&app).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_not_listed_gets_404() {
    let app = TestApp::with_sim(&[("PARTNER_WEB__OPERATORS", OPERATORS)]).await;
    assert_console_hidden(&app).await;
    app.sign_in_as("user@cust10001.example").await;
    assert_console_hidden(&app).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_listed_for_another_tenant_gets_404() {
    let app = TestApp::with_sim(&[(
        "PARTNER_WEB__OPERATORS",
        "Cust10002:admin@cust10001.example",
    )])
    .await;
    app.sign_in_as(OPERATOR).await;
    assert_console_hidden(&app).await;
}

async fn home(app: &TestApp) -> String {
    let response = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "GET /");
    response.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn only_an_operator_gets_a_link_to_the_console_on_the_home_page() {
    let app = TestApp::with_sim(&[("PARTNER_WEB__OPERATORS", OPERATORS)]).await;
    let link = "href=\"/operator\"";
    assert!(!home(&app).await.contains(link), "signed out");
    app.sign_in_as("user@cust10001.example").await;
    let page = home(&app).await;
    assert!(page.contains("Cust10001"), "signed in: {page}");
    assert!(!page.contains(link), "a user not listed: {page}");

    let app = operator_signed_in().await;
    assert!(home(&app).await.contains(link), "the listed operator");

    let app = TestApp::with_sim(&[(
        "PARTNER_WEB__OPERATORS",
        "Cust10002:admin@cust10001.example",
    )])
    .await;
    app.sign_in_as(OPERATOR).await;
    let page = home(&app).await;
    assert!(page.contains("Cust10001"), "signed in: {page}");
    assert!(!page.contains(link), "listed for another tenant: {page}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_sees_the_console() {
    let app = operator_signed_in().await;
    // Three partner-service instances: one beating, one silent for a minute and holding Cust10001's
    // lease, and one of a newer version reporting a circuit word this one does not know.
    execute(
        &app,
        "INSERT INTO service_instances (id, host, started_at, last_seen_at, circuit_state) VALUES \
         ('alive-1', 'host-a', now() - interval '1 hour', now(), 'closed'), \
         ('silent-2', 'host-b', now() - interval '2 hours', now() - interval '1 minute', 'open'), \
         ('newer-3', 'host-c', now() - interval '1 minute', now(), 'half_open')",
    )
    .await;
    execute(
        &app,
        "UPDATE tenants SET lease_owner = 'silent-2', lease_expires_at = now() + interval '5 minutes'",
    )
    .await;
    let (list, _) = page(&app, "/operator").await;
    assert!(list.contains("<h1>Operator console</h1>"), "{list}");
    assert_eq!(
        list.matches("stale: no heartbeat recently").count(),
        1,
        "{list}"
    );
    let silent = &list[list.find("silent-2").unwrap()..];
    let silent = &silent[..silent.find("</tr>").unwrap()];
    assert!(
        silent.contains("stale") && silent.contains("open") && silent.contains("1: Cust10001"),
        "{silent}"
    );
    let alive = &list[list.find("alive-1").unwrap()..];
    let alive = &alive[..alive.find("</tr>").unwrap()];
    assert!(
        alive.contains("closed") && alive.contains("none"),
        "{alive}"
    );
    let newer = &list[list.find("newer-3").unwrap()..];
    let newer = &newer[..newer.find("</tr>").unwrap()];
    assert!(newer.contains("unknown (half_open)"), "{newer}");
    assert!(
        list.contains("href=\"/operator/tenants/Cust10001\""),
        "{list}"
    );
    assert!(list.contains("Northwind") || list.contains("Cust10001"));
    let (detail, _) = page(&app, "/operator/tenants/Cust10001").await;
    assert!(detail.contains("token captured"), "{detail}");
    assert!(detail.contains("generation 1"), "{detail}");
    assert!(detail.contains("action=\"/operator/tenants/Cust10001/retry\""));
    for chart in [
        "exchanges-24h",
        "exchanges-7d",
        "work-24h",
        "states-7d",
        "latency-7d",
    ] {
        let response = app
            .client
            .get(app.url(&format!("/operator/charts/{chart}.svg")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{chart}");
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "image/svg+xml"
        );
        let svg = response.text().await.unwrap();
        assert!(svg.contains("<svg") && svg.contains("<desc>"), "{chart}");
    }
    assert_eq!(status(&app, "/operator/charts/nothing.svg").await, 404);
    assert_eq!(status(&app, "/operator/tenants/Cust99999").await, 404);
    assert_eq!(status(&app, "/operator?state=nonsense").await, 400);
}

/// The latest audit event of a tenant: (action, actor, detail).
async fn last_event(app: &TestApp, ctx: &str) -> (String, String, serde_json::Value) {
    let mut conn = app.pool.get().await.unwrap();
    audit_events::table
        .filter(audit_events::context_id.eq(ctx))
        .order(audit_events::id.desc())
        .select((
            audit_events::action,
            audit_events::actor,
            audit_events::detail,
        ))
        .first(&mut conn)
        .await
        .unwrap()
}

async fn tenant_state(app: &TestApp, ctx: &str) -> Option<String> {
    let mut conn = app.pool.get().await.unwrap();
    tenants::table
        .filter(tenants::context_id.eq(ctx))
        .select(tenants::state)
        .first(&mut conn)
        .await
        .optional()
        .unwrap()
}

/// Posts an action on a tenant with this CSRF token and the `more` form fields.
async fn act(
    app: &TestApp,
    csrf: &str,
    ctx: &str,
    action: &str,
    more: &[(&str, &str)],
) -> reqwest::Response {
    app.post(&format!("/operator/tenants/{ctx}/{action}"), csrf, more)
        .await
}

/// The detail of a tenant's latest audit event, which must be `action` by the operator.
async fn audited(app: &TestApp, ctx: &str, action: &str) -> serde_json::Value {
    let (logged, actor, detail) = last_event(app, ctx).await;
    assert_eq!((logged.as_str(), actor.as_str()), (action, ACTOR));
    detail
}

#[tokio::test(flavor = "multi_thread")]
async fn each_action_does_what_the_cli_does_and_is_audited() {
    let app = operator_signed_in().await;
    // A second tenant, as its administrator's sign-in stores it.
    let mut conn = app.pool.get().await.unwrap();
    crate::support::capture_token(
        &mut conn,
        "Cust10002",
        Some("Fjord"),
        Some("1"),
        vec![1, 2, 3],
        "admin@cust10002.example",
    )
    .await;
    drop(conn);
    let csrf = app.csrf().await;

    // Without the CSRF token nothing happens.
    let before = Snapshot::take(&app.pool, &ALL_SESSIONS).await;
    let refused = act(&app, "wrong", "Cust10002", "disable", &[]).await;
    assert_eq!(refused.status().as_u16(), 403);
    assert_eq!(before, Snapshot::take(&app.pool, &ALL_SESSIONS).await);

    // Disable.
    let done = act(&app, &csrf, "Cust10002", "disable", &[]).await;
    assert_eq!(done.status().as_u16(), 303);
    assert_eq!(
        testkit::location(&done),
        "/operator/tenants/Cust10002?done=disable"
    );
    assert_eq!(
        tenant_state(&app, "Cust10002").await.as_deref(),
        Some("disabled")
    );
    let detail = audited(&app, "Cust10002", "state_changed").await;
    assert_eq!(detail["state"], "disabled");
    let (detail_page, _) = page(&app, "/operator/tenants/Cust10002?done=disable").await;
    assert!(
        detail_page.contains("Disabled: no work runs"),
        "{detail_page}"
    );
    assert!(detail_page.contains("/operator/tenants/Cust10002/enable"));

    // Enable: back to pending; enabling a tenant that is not disabled is refused.
    let done = act(&app, &csrf, "Cust10002", "enable", &[]).await;
    assert_eq!(done.status().as_u16(), 303);
    assert_eq!(
        tenant_state(&app, "Cust10002").await.as_deref(),
        Some("pending")
    );
    let detail = audited(&app, "Cust10002", "state_changed").await;
    assert_eq!(
        (detail["state"].as_str(), detail["from"].as_str()),
        (Some("pending"), Some("disabled"))
    );
    let again = act(&app, &csrf, "Cust10002", "enable", &[]).await;
    assert_eq!(again.status().as_u16(), 400);
    assert!(again.text().await.unwrap().contains("not disabled"));

    // Retry.
    let done = act(&app, &csrf, "Cust10002", "retry", &[]).await;
    assert_eq!(done.status().as_u16(), 303);
    audited(&app, "Cust10002", "operator_retry").await;

    // Purge needs the context id typed again.
    assert_eq!(status(&app, "/operator/tenants/Cust10002/purge").await, 200);
    for confirm in [None, Some(("confirm", "Cust10001"))] {
        let refused = act(&app, &csrf, "Cust10002", "purge", confirm.as_slice()).await;
        assert_eq!(refused.status().as_u16(), 400, "{confirm:?}");
        assert!(tenant_state(&app, "Cust10002").await.is_some());
    }
    let done = act(
        &app,
        &csrf,
        "Cust10002",
        "purge",
        &[("confirm", "Cust10002")],
    )
    .await;
    assert_eq!(done.status().as_u16(), 303);
    assert_eq!(testkit::location(&done), "/operator?purged=Cust10002");
    assert!(tenant_state(&app, "Cust10002").await.is_none());
    audited(&app, "Cust10002", "tenant_purged").await;
    assert_eq!(
        act(&app, &csrf, "Cust10002", "retry", &[])
            .await
            .status()
            .as_u16(),
        404
    );

    // Ending the sessions of the operator's own tenant ends the operator's session too.
    let done = act(&app, &csrf, "Cust10001", "end-sessions", &[]).await;
    assert_eq!(done.status().as_u16(), 303);
    let detail = audited(&app, "Cust10001", "sessions_ended").await;
    assert_eq!(detail["sessions"], 1);
    let mut conn = app.pool.get().await.unwrap();
    assert_eq!(
        shared::db::sessions::count_for_tenant(&mut conn, "Cust10001")
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        status(&app, "/operator").await,
        404,
        "signed out, so no console"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn filters_and_pages_over_ten_thousand_tenants_in_a_fixed_number_of_queries() {
    let app = operator_signed_in().await;
    let mut conn = app.pool.get().await.unwrap();
    diesel::sql_query(
        "INSERT INTO tenants (context_id, environment, company_name, state, needs_attention, attention_reason) \
         SELECT 'Cust' || (20000 + n), 'custom', 'Company ' || n, \
                ($1::text[])[1 + n % 5], \
                n % 50 = 0, CASE WHEN n % 50 = 0 THEN 'refused: check the key' END \
         FROM generate_series(1, 10000) AS n",
    )
    .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(
        [
            TenantState::Pending,
            TenantState::Active,
            TenantState::Suspended,
            TenantState::Revoked,
            TenantState::Disabled,
        ]
        .map(TenantState::as_str)
        .to_vec(),
    )
    .execute(&mut conn)
    .await
    .unwrap();
    drop(conn);

    let (first, first_queries) = page(&app, "/operator").await;
    assert!(first.contains("Tenants: 10001"), "counts on top");
    // 10000 / 5 = 2000 per seeded state; the operator's own tenant is pending too.
    assert!(first.contains("<strong>2000</strong> active"), "{first}");
    assert!(first.contains("<strong>2001</strong> pending"), "{first}");
    assert!(first.contains("<strong>200</strong> need attention"));

    // Every page of the active tenants, in order, without overlap; each page costs the same queries.
    let mut seen: Vec<String> = Vec::new();
    let mut path = "/operator?state=active".to_owned();
    let mut pages = 0;
    let mut query_counts = vec![first_queries];
    loop {
        let (html, queries) = page(&app, &path).await;
        query_counts.push(queries);
        let rows = row_ids(&html);
        assert!(rows.len() <= 50);
        seen.extend(rows);
        pages += 1;
        // Enough to show paging holds; the last page is checked from the other end.
        if pages == 5 {
            break;
        }
        let next = next_link(&html).expect("no next page");
        assert_ne!(next, path);
        path = next;
    }
    assert_eq!(pages, 5);
    assert_eq!(seen.len(), 250);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "pages are in order and do not overlap");
    // Back one page from the fifth gives the fourth.
    let (fifth, _) = page(&app, &path).await;
    let previous = previous_link(&fifth).expect("no previous link");
    let (fourth, _) = page(&app, &previous).await;
    assert_eq!(row_ids(&fourth), seen[150..200].to_vec());
    // The last page of everything: no next link.
    let (last, _) = page(&app, "/operator?after=Cust29990").await;
    assert_eq!(row_ids(&last).len(), 10);
    assert!(next_link(&last).is_none());
    assert!(
        query_counts.iter().all(|&q| q == first_queries) && first_queries <= 4,
        "queries per page: {query_counts:?}"
    );

    // Needs attention, with a state: every 50th seeded tenant, all pending (n % 5 == 0).
    let (flagged, queries) = page(&app, "/operator?state=pending&attention=1").await;
    assert_eq!(queries, first_queries);
    let rows = row_ids(&flagged);
    assert_eq!(rows.len(), 50);
    assert_eq!(rows[0], "Cust20050");
    assert!(flagged.contains("refused: check the key"));

    // Search by company or context id prefix, any case.
    let (found, _) = page(&app, "/operator?q=company%20123").await;
    let mut expected: Vec<String> = std::iter::once(123)
        .chain(1230..1240)
        .map(|n| format!("Cust{}", 20000 + n))
        .collect();
    expected.sort();
    assert_eq!(row_ids(&found), expected);
    let (found, _) = page(&app, "/operator?q=cust2999").await;
    assert_eq!(row_ids(&found).len(), 10, "Cust29990..Cust29999");
    let (none, _) = page(&app, "/operator?q=%25").await;
    assert!(row_ids(&none).is_empty(), "% is taken literally");
}

fn row_ids(html: &str) -> Vec<String> {
    let marker = "<th scope=\"row\"><a href=\"/operator/tenants/";
    html.match_indices(marker)
        .map(|(at, _)| {
            let rest = &html[at + marker.len()..];
            rest[..rest.find('"').unwrap()].to_owned()
        })
        .collect()
}

fn link(html: &str, rel: &str) -> Option<String> {
    let marker = format!("\" rel=\"{rel}\"");
    let end = html.find(&marker)?;
    let start = html[..end].rfind("href=\"")? + 6;
    Some(html[start..end].replace("&#38;", "&").replace("&amp;", "&"))
}

fn next_link(html: &str) -> Option<String> {
    link(html, "next")
}

fn previous_link(html: &str) -> Option<String> {
    link(html, "prev")
}
