//! Attacks on partner-web's trust boundaries, one test each: genuine SuperOffice-signed tokens issued for
//! something else (a system-user JWT, another application's id_token) at the sign-in and the state-change
//! webhook, replays, an unconfirmed Suspend, an unknown change type, a flood, and tokens naming made-up keys.
//! Each asserts the answer and that the tables a successful attack would change are as they were
//! (`testkit::snapshot`). The simulator issues the tokens (`POST /admin/tokens`), signed by its SuperID key.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use shared::db::{WORK_CHANNEL, tickets};
use superoffice_sim::admin::{TokenKind, TokenRequest};
use superoffice_sim::keys::SigningKey;

use testkit::snapshot::{SIGNED_IN_SESSIONS, Snapshot};
use testkit::{CLIENT_ID, TestApp};

use crate::support::{error_of, post_state_change, send_state_change};

const NORTHWIND: &str = "Cust10001";
const FJORD: &str = "Cust10002";
const OTHER_APP: &str = "ffffffffffffffffffffffffffffffff";

/// partner-web over the simulator, Northwind known and active with a token and a ticket.
async fn target(overrides: &[(&str, &str)]) -> TestApp {
    let app = TestApp::with_sim(overrides).await;
    testkit::seed::tenant(NORTHWIND)
        .company("Northwind Traders AS")
        .serial("1801510001")
        .token(b"not a real ciphertext")
        .with_ticket(b"not a real ticket")
        .active()
        .insert(&mut app.pool.get().await.unwrap())
        .await;
    app
}

fn issue(app: &TestApp, request: TokenRequest) -> String {
    app.sim().admin().issue_token(&request).unwrap().token
}

fn request(kind: TokenKind, ctx: &str) -> TokenRequest {
    TokenRequest::new(kind, ctx)
}

/// Genuine SuperOffice-signed tokens for Northwind that were issued for something else.
fn foreign_tokens(app: &TestApp) -> Vec<(&'static str, String)> {
    let mut other_id_token = request(TokenKind::IdToken, NORTHWIND);
    other_id_token.client_id = Some(OTHER_APP.into());
    let mut ours_for_another = request(TokenKind::StateChange, NORTHWIND);
    ours_for_another.client_id = Some(OTHER_APP.into());
    vec![
        (
            "a system-user JWT",
            issue(app, request(TokenKind::SystemUser, NORTHWIND)),
        ),
        ("another application's id_token", issue(app, other_id_token)),
        (
            "another application's notification token",
            issue(app, ours_for_another),
        ),
    ]
}

async fn post_legacy(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .post(app.url("/callback"))
        .form(&[("jwt", token)])
        .send()
        .await
        .unwrap()
}

/// A notification of no change for Northwind, signed by `token`, is accepted and keeps it active.
async fn assert_kept_active(app: &TestApp, token: &str) {
    let (status, answer) = post_state_change(app, &notification(json!(0), NORTHWIND, token)).await;
    assert_eq!(
        (status, &answer["outcome"]),
        (200, &json!("kept_active")),
        "{answer}"
    );
}

fn notification(change: Value, ctx: &str, token: &str) -> Value {
    json!({
        "ChangeType": change,
        "ContextIdentifier": ctx,
        "VersionName": "Release 11.1",
        "FileVersion": "11.1.0.2026",
        "Token": token,
    })
}

async fn signed_in(app: &TestApp) -> bool {
    app.home().await.contains("action=\"/logout\"")
}

#[tokio::test(flavor = "multi_thread")]
async fn attack_foreign_tokens_at_the_callback_with_the_legacy_post_off() {
    let app = target(&[]).await;
    let own_id_token = issue(&app, request(TokenKind::IdToken, NORTHWIND));
    let before = Snapshot::take(&app.pool, &SIGNED_IN_SESSIONS).await;
    app.get("/login").await;
    let mut tokens = foreign_tokens(&app);
    tokens.push(("our own id_token, outside the code flow", own_id_token));
    for (what, token) in tokens {
        let response = post_legacy(&app, &token).await;
        assert_eq!(response.status().as_u16(), 404, "{what}");
    }
    assert!(!signed_in(&app).await);
    assert_eq!(Snapshot::take(&app.pool, &SIGNED_IN_SESSIONS).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn attack_foreign_tokens_at_the_callback_with_the_legacy_post_on() {
    let app = target(&[("PARTNER_WEB__LEGACY_SIGN_IN", "true")]).await;
    let mut own_id_token = request(TokenKind::IdToken, NORTHWIND);
    own_id_token.nonce = Some("a nonce this browser never sent".into());
    let own_id_token = issue(&app, own_id_token);
    let before = Snapshot::take(&app.pool, &SIGNED_IN_SESSIONS).await;
    let mut tokens = foreign_tokens(&app);
    tokens.push(("our id_token with another browser's nonce", own_id_token));
    for (what, token) in tokens {
        // Whether or not this browser started a sign-in.
        for started in [false, true] {
            if started {
                app.get("/login").await;
            }
            let response = post_legacy(&app, &token).await;
            assert_eq!(
                response.status().as_u16(),
                400,
                "{what} (started: {started})"
            );
            let page = response.text().await.unwrap();
            assert!(page.contains("Sign-in failed"), "{what}: {page}");
            assert!(!page.contains(&token), "{what}: the token is echoed");
        }
    }
    assert!(!signed_in(&app).await);
    assert_eq!(Snapshot::take(&app.pool, &SIGNED_IN_SESSIONS).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn attack_foreign_tokens_as_a_state_change_notification() {
    let app = target(&[]).await;
    let mut tokens = foreign_tokens(&app);
    tokens.push((
        "our own id_token",
        issue(&app, request(TokenKind::IdToken, NORTHWIND)),
    ));
    let mut without_audience = request(TokenKind::StateChange, NORTHWIND);
    without_audience.audience = false;
    tokens.push((
        "a notification token without audience",
        issue(&app, without_audience),
    ));
    let mut with_nonce = request(TokenKind::StateChange, NORTHWIND);
    with_nonce.nonce = Some("n-1".into());
    tokens.push(("a notification token with a nonce", issue(&app, with_nonce)));
    let before = Snapshot::take(&app.pool, &SIGNED_IN_SESSIONS).await;
    for (what, token) in tokens {
        for change in [json!(2), json!(4), json!(3)] {
            let (status, answer) =
                post_state_change(&app, &notification(change.clone(), NORTHWIND, &token)).await;
            assert_eq!(status, 401, "{what} {change}: {answer}");
            assert!(
                !error_of(&answer).contains(&token),
                "{what}: the token is echoed"
            );
        }
    }
    assert_eq!(Snapshot::take(&app.pool, &SIGNED_IN_SESSIONS).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn attack_a_replayed_notification_re_encoded() {
    let app = target(&[]).await;
    let token = issue(&app, request(TokenKind::StateChange, NORTHWIND));
    assert_kept_active(&app, &token).await;
    let before = Snapshot::take(&app.pool, &SIGNED_IN_SESSIONS).await;

    let parts: Vec<&str> = token.split('.').collect();
    let padding = "=".repeat((4 - parts[2].len() % 4) % 4);
    assert!(!padding.is_empty(), "this signature's base64 needs padding");
    let padded = format!("{}.{}.{}{padding}", parts[0], parts[1], parts[2]);
    let replays = [
        notification(json!(0), NORTHWIND, &token),
        notification(json!("upgrade"), NORTHWIND, &padded),
        notification(json!("0"), NORTHWIND, &format!("  {token}\n")),
        json!({"changetype": 0, "contextidentifier": NORTHWIND, "token": padded, "VersionName": "other"}),
    ];
    for replay in replays {
        let (status, answer) = post_state_change(&app, &replay).await;
        assert_eq!(status, 200, "{replay}: {answer}");
        assert_eq!(answer["outcome"], "duplicate", "{replay}");
    }
    // Changing what the signature covers is no replay but a forgery.
    let payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let mut altered = payload.clone();
    altered["exp"] = json!(payload["exp"].as_i64().unwrap() + 1);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(altered.to_string()),
        parts[2]
    );
    let (status, answer) =
        post_state_change(&app, &notification(json!(0), NORTHWIND, &forged)).await;
    assert_eq!(status, 401, "{answer}");
    assert_eq!(Snapshot::take(&app.pool, &SIGNED_IN_SESSIONS).await, before);
}

/// The payloads NOTIFYed on the work channel within half a second of quiet.
async fn notified(listener: &mut AsyncPgConnection) -> Vec<String> {
    let mut stream = std::pin::pin!(listener.notifications_stream());
    let mut payloads = Vec::new();
    while let Ok(Some(Ok(notification))) =
        tokio::time::timeout(Duration::from_millis(500), stream.next()).await
    {
        payloads.push(notification.payload);
    }
    payloads
}

#[tokio::test(flavor = "multi_thread")]
async fn attack_a_suspend_or_delete_for_a_tenant_that_is_running() {
    let app = target(&[]).await;
    let mut listener = app.database.connect().await.unwrap();
    diesel::sql_query(format!("LISTEN {WORK_CHANNEL}"))
        .execute(&mut listener)
        .await
        .unwrap();
    notified(&mut listener).await;
    let tenant_before = tenant_row(&app).await;
    for (change, action) in [(2, "superoffice_suspend"), (4, "superoffice_delete")] {
        let token = issue(&app, request(TokenKind::StateChange, NORTHWIND));
        let (status, answer) =
            post_state_change(&app, &notification(json!(change), NORTHWIND, &token)).await;
        assert_eq!(
            (status, &answer["outcome"]),
            (200, &json!("unconfirmed")),
            "{answer}"
        );
        // Nothing changed, and the service is woken to ask the state API itself.
        assert_eq!(tenant_row(&app).await, tenant_before);
        let mut conn = app.pool.get().await.unwrap();
        assert!(tickets::find(&mut conn, NORTHWIND).await.unwrap().is_some());
        let payloads = notified(&mut listener).await;
        assert!(payloads.iter().any(|p| p == NORTHWIND), "{payloads:?}");
        assert!(
            payloads.contains(&format!("state-change:{NORTHWIND}")),
            "{payloads:?}"
        );
        let (recorded_action, outcome): (String, String) = diesel::sql_query(
            "SELECT a.action AS action, n.outcome AS outcome FROM audit_events a, state_change_notifications n \
             WHERE a.actor = 'superoffice' AND (a.detail->>'notification_id')::bigint = n.id \
             ORDER BY a.id DESC LIMIT 1",
        )
        .get_result::<ActionOutcome>(&mut conn)
        .await
        .map(|r| (r.action, r.outcome))
        .unwrap();
        assert_eq!(
            (recorded_action.as_str(), outcome.as_str()),
            (action, "unconfirmed")
        );
    }
}

#[derive(QueryableByName)]
struct ActionOutcome {
    #[diesel(sql_type = Text)]
    action: String,
    #[diesel(sql_type = Text)]
    outcome: String,
}

#[derive(QueryableByName, Debug, PartialEq, Eq)]
struct TenantRow {
    #[diesel(sql_type = Text)]
    row: String,
}

async fn tenant_row(app: &TestApp) -> TenantRow {
    let mut conn = app.pool.get().await.unwrap();
    diesel::sql_query(format!(
        "SELECT t::text AS row FROM tenants t WHERE context_id = '{NORTHWIND}'"
    ))
    .get_result(&mut conn)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn attack_an_unknown_change_type() {
    let app = target(&[]).await;
    let token = issue(&app, request(TokenKind::StateChange, NORTHWIND));
    let before = Snapshot::take(&app.pool, &SIGNED_IN_SESSIONS).await;
    for change in [json!(9), json!(-1), json!("Rename"), json!("Suspended")] {
        let (status, answer) =
            post_state_change(&app, &notification(change.clone(), NORTHWIND, &token)).await;
        assert_eq!(status, 400, "{change}: {answer}");
        assert!(
            error_of(&answer).contains("not one this application knows"),
            "{answer}"
        );
    }
    assert_eq!(Snapshot::take(&app.pool, &SIGNED_IN_SESSIONS).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn attack_a_notification_flood_over_the_limits() {
    let app = target(&[
        ("PARTNER_WEB__STATE_CHANGE_LIMIT_PER_TENANT", "3"),
        ("PARTNER_WEB__STATE_CHANGE_LIMIT_PER_ADDRESS", "4"),
    ])
    .await;
    // Distinct genuine notifications (the simulator's clock moves, so each token is another).
    let mut tokens = Vec::new();
    for _ in 0..6 {
        tokens.push(issue(&app, request(TokenKind::StateChange, NORTHWIND)));
        app.sim().admin().advance_clock(1);
    }
    for token in &tokens[..3] {
        assert_kept_active(&app, token).await;
    }
    let before = Snapshot::take(&app.pool, &SIGNED_IN_SESSIONS).await;
    // Over the tenant's allowance.
    let (status, answer) =
        post_state_change(&app, &notification(json!(0), NORTHWIND, &tokens[3])).await;
    assert_eq!(status, 429, "{answer}");
    assert!(error_of(&answer).contains("for this tenant"), "{answer}");
    // Over the address's allowance, whatever the tenant.
    let fjord = issue(&app, request(TokenKind::StateChange, FJORD));
    let response = send_state_change(&app, &notification(json!(0), FJORD, &fjord)).await;
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"].to_str().unwrap(), "60");
    let answer: Value = response.json().await.unwrap();
    assert!(error_of(&answer).contains("from this address"), "{answer}");
    for token in &tokens[4..] {
        let (status, _) = post_state_change(&app, &notification(json!(0), NORTHWIND, token)).await;
        assert_eq!(status, 429);
    }
    assert_eq!(Snapshot::take(&app.pool, &SIGNED_IN_SESSIONS).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn attack_tokens_with_made_up_kids() {
    let app = target(&[("PARTNER_WEB__LEGACY_SIGN_IN", "true")]).await;
    let forger =
        SigningKey::from_pem(&testkit::read(&testkit::data("service-console-key.pem"))).unwrap();
    let now = Utc::now().timestamp();
    let claims = json!({
        "sub": NORTHWIND,
        "http://schemes.superoffice.net/identity/ctx": NORTHWIND,
        "iss": "SuperOffice AS",
        "aud": format!("spn:{CLIENT_ID}"),
        "iat": now, "nbf": now, "exp": now + 300,
    });
    let before = Snapshot::take(&app.pool, &SIGNED_IN_SESSIONS).await;
    let fetched = |app: &TestApp| {
        let fetches = app.sim().admin().records().records.superid.fetches;
        (fetches.discovery, fetches.jwks)
    };
    assert_eq!(fetched(&app), (0, 0));
    app.get("/login").await;
    for i in 0..40 {
        let forged = forger.sign_as(&format!("made-up-{i}"), &claims).unwrap();
        let (status, answer) =
            post_state_change(&app, &notification(json!(0), NORTHWIND, &forged)).await;
        assert_eq!(status, 401, "{answer}");
        assert!(error_of(&answer).contains("unknown key"), "{answer}");
        assert_eq!(post_legacy(&app, &forged).await.status().as_u16(), 400);
    }
    // One discovery and one key-set fetch to start, then one refetch of each for the first unknown key;
    // the other 79 tokens cost SuperID nothing.
    let (discovery, jwks) = fetched(&app);
    assert!(
        discovery <= 2 && jwks <= 2,
        "discovery {discovery}, jwks {jwks}"
    );
    assert_eq!(Snapshot::take(&app.pool, &SIGNED_IN_SESSIONS).await, before);

    // A genuine token under a name the key set does not know is still SuperID's: every known key is tried.
    let mut renamed = request(TokenKind::StateChange, NORTHWIND);
    renamed.unknown_kid = true;
    let token = issue(&app, renamed);
    assert_kept_active(&app, &token).await;
    assert_eq!(
        fetched(&app),
        (discovery, jwks),
        "the fallback fetched nothing"
    );
    // Real sign-ins did not queue behind the flood.
    let response = app.sign_in_as("user@cust10001.example").await;
    assert_eq!(response.status().as_u16(), 303);
}
