//! Sign-in through the simulator: capture of the system user token, re-approval, ordinary users, and every
//! callback failure (each leaving the database unchanged).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use secrecy::ExposeSecret;
use shared::crypto::at_rest::{Cipher, SecretKind};
use shared::db::models::Tenant;
use shared::db::schema::{audit_events, tenants};
use shared::domain::ContextId;

use testkit::{TestApp, WebUser, location};

const NORTHWIND: &str = "Cust10001";
const ADMIN: &str = "admin@cust10001.example";
const USER: &str = "user@cust10001.example";

async fn tenant_rows(app: &TestApp) -> Vec<Tenant> {
    let mut conn = app.pool.get().await.unwrap();
    tenants::table
        .select(Tenant::as_select())
        .load(&mut conn)
        .await
        .unwrap()
}

async fn audit_count(app: &TestApp) -> i64 {
    let mut conn = app.pool.get().await.unwrap();
    audit_events::table
        .count()
        .get_result(&mut conn)
        .await
        .unwrap()
}

fn cipher() -> Cipher {
    let settings = shared::config::Settings::from_sources(&shared::config::Sources {
        file: None,
        env: [(
            "PARTNER_ENCRYPTION__KEY".to_owned(),
            testkit::ENCRYPTION_KEY.to_owned(),
        )]
        .into(),
    })
    .unwrap();
    Cipher::from_settings(&settings.encryption).unwrap()
}

fn stored_token(tenant: &Tenant) -> String {
    let ctx = ContextId::parse(&tenant.context_id).unwrap();
    cipher()
        .decrypt_string(
            &ctx,
            SecretKind::SystemUserToken,
            tenant.system_token.as_ref().unwrap(),
        )
        .unwrap()
        .expose_secret()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_administrator_sign_in_captures_the_encrypted_token() {
    let app = TestApp::with_sim(&[]).await;
    let response = app.sign_in_as(ADMIN).await;
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(location(&response), "/");
    let cookie = testkit::user::set_cookie(&response);
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );

    let rows = tenant_rows(&app).await;
    assert_eq!(rows.len(), 1);
    let tenant = &rows[0];
    assert_eq!(tenant.context_id, NORTHWIND);
    assert_eq!(tenant.state, "pending");
    assert_eq!(tenant.company_name.as_deref(), Some("Northwind Traders AS"));
    assert_eq!(tenant.token_captured_by.as_deref(), Some(ADMIN));
    let sim_token = app
        .sim()
        .admin()
        .tenant(NORTHWIND)
        .unwrap()
        .system_token
        .unwrap();
    let ciphertext = tenant.system_token.clone().unwrap().bytes;
    assert!(
        !ciphertext
            .windows(sim_token.len())
            .any(|w| w == sim_token.as_bytes()),
        "stored in clear"
    );
    assert_eq!(stored_token(tenant), sim_token);

    let home = app.home().await;
    assert!(home.contains("Create company with system user"), "{home}");
    assert!(home.contains("Northwind Traders AS"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ordinary_user_never_changes_the_stored_token() {
    let app = TestApp::with_sim(&[]).await;
    let response = app.sign_in_as(USER).await;
    assert_eq!(response.status().as_u16(), 303);
    assert!(
        tenant_rows(&app).await.is_empty(),
        "an ordinary user's sign-in stored a token"
    );
    let home = app.home().await;
    assert!(
        home.contains("must sign in here once and approve"),
        "{home}"
    );
    assert!(!home.contains("action=\"/companies/as-system-user\""));

    // After an administrator's capture, an ordinary user's sign-in leaves it as it is.
    let admin = TestApp::with_sim(&[]).await;
    admin.sign_in_as(ADMIN).await;
    let before = tenant_rows(&admin).await;
    WebUser::new(&admin.address).sign_in_as(USER).await;
    let after = tenant_rows(&admin).await;
    assert_eq!(before[0].system_token, after[0].system_token);
    assert_eq!(before[0].token_generation, after[0].token_generation);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reapproval_replaces_the_token_and_drops_the_ticket() {
    let app = crate::support::admin_signed_in().await;
    let first = tenant_rows(&app).await.remove(0);
    {
        let mut conn = app.pool.get().await.unwrap();
        shared::db::tickets::store(
            &mut conn,
            shared::db::tickets::NewTicket {
                context_id: NORTHWIND,
                ciphertext: vec![1],
                key_version: 1,
                token_generation: first.token_generation,
                issued_at: chrono::Utc::now(),
            },
        )
        .await
        .unwrap();
    }
    // The same token again: details refreshed, ticket kept.
    app.sign_in_as(ADMIN).await;
    let mut conn = app.pool.get().await.unwrap();
    assert!(
        shared::db::tickets::find(&mut conn, NORTHWIND)
            .await
            .unwrap()
            .is_some()
    );
    // Re-approval in SuperOffice issues a new token.
    app.sim()
        .admin()
        .reapprove(NORTHWIND, superoffice_sim::TEST_CLIENT_ID)
        .unwrap();
    app.sign_in_as(ADMIN).await;
    let second = tenant_rows(&app).await.remove(0);
    assert_eq!(second.token_generation, first.token_generation + 1);
    assert_ne!(stored_token(&second), stored_token(&first));
    assert!(
        shared::db::tickets::find(&mut conn, NORTHWIND)
            .await
            .unwrap()
            .is_none(),
        "ticket kept"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn callback_failures_show_an_error_page_and_store_nothing() {
    let app = TestApp::with_sim(&[]).await;
    let events_before = audit_count(&app).await;

    // No sign-in in progress.
    let response = app.get("/callback?code=x&state=y").await;
    assert_eq!(response.status().as_u16(), 400);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("no sign-in is in progress") && page.contains("href=\"/login\""),
        "{page}"
    );

    // Missing and mismatched state.
    for tamper in [("state=", "state=forged"), ("state=", "nostate=")] {
        let callback = app.authorize_as(ADMIN).await;
        let forged = callback.replacen(tamper.0, tamper.1, 1);
        let response = app.follow(&forged).await;
        assert_eq!(response.status().as_u16(), 400, "{tamper:?}");
        let page = response.text().await.unwrap();
        assert!(page.contains("state does not match"), "{tamper:?}: {page}");
    }

    // An error from SuperID.
    app.get("/login").await;
    let callback = app.authorize_as(ADMIN).await;
    let state = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let denied = app
        .get(&format!(
            "/callback?error=access_denied&error_description=User+cancelled&state={state}"
        ))
        .await;
    assert_eq!(denied.status().as_u16(), 400);
    assert!(denied.text().await.unwrap().contains("access_denied"));

    // A replayed code: the first use signs in, the second finds the sign-in used up, and a fresh sign-in
    // that presents the old code is refused by SuperID.
    let callback = app.authorize_as(USER).await;
    assert_eq!(app.follow(&callback).await.status().as_u16(), 303);
    assert_eq!(app.follow(&callback).await.status().as_u16(), 400);
    let fresh = app.authorize_as(USER).await;
    let old_code = crate::support::code_of(&callback);
    let new_code = crate::support::code_of(&fresh);
    let replay = app.follow(&fresh.replace(&new_code, &old_code)).await;
    assert_eq!(replay.status().as_u16(), 400);
    let page = replay.text().await.unwrap();
    assert!(page.contains("expired or was used already"), "{page}");

    assert!(
        tenant_rows(&app).await.is_empty(),
        "a failed sign-in stored a tenant"
    );
    assert_eq!(audit_count(&app).await, events_before);
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_legacy_posts_are_refused_and_store_nothing() {
    let bodies = [
        "jwt=not.a.token",
        "JWT=eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
        "saml=abc",
        "",
    ];
    // Off by default: the route answers 404 whatever is posted.
    let off = TestApp::with_sim(&[]).await;
    // On: refused as a failed sign-in, with or without a sign-in in progress.
    let on = TestApp::with_sim(&[("PARTNER_WEB__LEGACY_SIGN_IN", "true")]).await;
    for (app, status) in [(&off, 404), (&on, 400)] {
        for started in [false, true] {
            for body in bodies {
                if started {
                    app.get("/login").await;
                }
                let response = crate::support::post_body(
                    app,
                    "/callback",
                    "application/x-www-form-urlencoded",
                    body,
                )
                .await;
                assert_eq!(
                    response.status().as_u16(),
                    status,
                    "{body} (started: {started})"
                );
            }
        }
        assert!(tenant_rows(app).await.is_empty());
        assert_eq!(audit_count(app).await, 0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_pkce_the_sign_in_sends_no_challenge_and_still_completes() {
    let app = TestApp::with_sim(&[("PARTNER_SUPEROFFICE__PKCE", "false")]).await;
    let login = app.get("/login").await;
    let target = location(&login);
    assert!(
        !target.contains("code_challenge") && target.contains("nonce="),
        "{target}"
    );
    let response = app.sign_in_as(ADMIN).await;
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(location(&response), "/");
    assert_eq!(tenant_rows(&app).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn login_preselects_a_tenant_and_refuses_a_malformed_one() {
    let app = TestApp::with_sim(&[]).await;
    let response = app.get("/login?ctx=Cust10002").await;
    assert_eq!(response.status().as_u16(), 303);
    let target = location(&response);
    assert!(
        target.contains("/login/Cust10002/oauth/authorize"),
        "{target}"
    );
    assert!(
        target.contains("code_challenge_method=S256") && target.contains("nonce="),
        "{target}"
    );
    let bad = app.get("/login?ctx=../x").await;
    assert_eq!(bad.status().as_u16(), 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn session_cookies_are_secure_where_configured() {
    let app = TestApp::with_sim(&[("PARTNER_WEB__SECURE_COOKIES", "true")]).await;
    // The first response that starts a session carries the cookie's attributes.
    let login = app.get("/login").await;
    let cookie = testkit::user::set_cookie(&login);
    assert!(cookie.contains("Secure"), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
}
