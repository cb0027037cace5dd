//! `POST /superoffice/state-change`: the in-process simulator sends real notifications to partner-web, and
//! forged ones are posted by hand. Effects are checked in the database: tenant state, ticket, URLs, the
//! notification record, audit events, and the NOTIFYs a LISTEN connection receives.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use shared::db::models::{AuditEvent, Tenant};
use shared::db::schema::{audit_events, state_change_notifications, tenants};
use shared::db::{WORK_CHANNEL, tickets};
use superoffice_sim::TenantState;
use superoffice_sim::admin::{Admin, ChangeView};
use superoffice_sim::keys::SigningKey;

use testkit::{CLIENT_ID, TestApp};

const CTX_CLAIM: &str = "http://schemes.superoffice.net/identity/ctx";
const NORTHWIND: &str = "Cust10001";
const FJORD: &str = "Cust10002";

/// SuperID's signing key in the simulator (the committed test key), to sign notifications by hand.
fn superid_key() -> SigningKey {
    SigningKey::from_pem(&testkit::read(&testkit::superid_signing_key_file())).unwrap()
}

/// partner-web, the simulator notifying it, and a LISTEN connection on the work channel.
struct Lifecycle {
    app: TestApp,
    listener: AsyncPgConnection,
}

impl std::ops::Deref for Lifecycle {
    type Target = TestApp;

    fn deref(&self) -> &TestApp {
        &self.app
    }
}

impl Lifecycle {
    /// Northwind (Cust10001) is known and active with a ticket; Fjord (Cust10002) is installed in the
    /// simulator but unknown to partner-web.
    async fn start() -> Self {
        let app = TestApp::builder().notify_state_changes().start().await;
        known(NORTHWIND)
            .insert(&mut app.pool.get().await.unwrap())
            .await;
        let mut listener = app.database.connect().await.unwrap();
        diesel::sql_query(format!("LISTEN {WORK_CHANNEL}"))
            .execute(&mut listener)
            .await
            .unwrap();
        let mut lifecycle = Self { app, listener };
        lifecycle.notifications().await;
        lifecycle
    }

    async fn conn(&self) -> shared::db::Connection {
        self.pool.get().await.unwrap()
    }

    async fn tenant(&self, ctx: &str) -> Option<Tenant> {
        tenants::table
            .filter(tenants::context_id.eq(ctx))
            .select(Tenant::as_select())
            .first(&mut self.conn().await)
            .await
            .optional()
            .unwrap()
    }

    async fn has_ticket(&self, ctx: &str) -> bool {
        let mut conn = self.conn().await;
        tickets::find(&mut conn, ctx).await.unwrap().is_some()
    }

    /// Audit events written by notifications (actor `superoffice`), oldest first.
    async fn superoffice_events(&self) -> Vec<AuditEvent> {
        audit_events::table
            .filter(audit_events::actor.eq("superoffice"))
            .order(audit_events::id.asc())
            .select(AuditEvent::as_select())
            .load(&mut self.conn().await)
            .await
            .unwrap()
    }

    /// The one audit event a notification wrote, which must be `action`.
    async fn single_event(&self, action: &str) -> AuditEvent {
        let mut events = self.superoffice_events().await;
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].action, action);
        events.remove(0)
    }

    /// The simulator's admin API, where SuperOffice's side of a change is made.
    fn admin(&self) -> Admin {
        self.sim().admin()
    }

    /// The tenant after the simulator's change reached partner-web and woke the service for it.
    async fn after(&mut self, change: &ChangeView, ctx: &str) -> Tenant {
        delivered(change);
        wakes(&self.notifications().await, ctx);
        self.tenant(ctx).await.unwrap()
    }

    /// SuperOffice changes a known tenant's state in the simulator. The tenant afterwards.
    async fn sim_sets_state(&mut self, ctx: &str, state: TenantState) -> Tenant {
        let change = self.admin().set_state(ctx, state).await.unwrap();
        self.after(&change, ctx).await
    }

    async fn recorded_notifications(&self) -> Vec<(String, String, String)> {
        state_change_notifications::table
            .order(state_change_notifications::id.asc())
            .select((
                state_change_notifications::context_id,
                state_change_notifications::change_type,
                state_change_notifications::outcome,
            ))
            .load(&mut self.conn().await)
            .await
            .unwrap()
    }

    /// The payloads NOTIFYed on the work channel since the last call.
    async fn notifications(&mut self) -> Vec<String> {
        let mut stream = std::pin::pin!(self.listener.notifications_stream());
        let mut payloads = Vec::new();
        while let Ok(Some(Ok(notification))) =
            tokio::time::timeout(Duration::from_millis(500), stream.next()).await
        {
            payloads.push(notification.payload);
        }
        payloads
    }

    async fn post(&self, body: &Value) -> (u16, Value) {
        crate::support::post_state_change(&self.app, body).await
    }
}

/// A tenant partner-web knows, active with a ticket (the URLs are Northwind's, at an address nobody
/// listens on).
fn known(ctx: &str) -> testkit::seed::Seed {
    testkit::seed::tenant(ctx)
        .company("Northwind Traders AS")
        .serial("1801510001")
        .urls(
            "http://127.0.0.1:1/Cust10001/api/",
            Some("http://127.0.0.1:1/Cust10001/Remote/Services88/"),
        )
        .captured_by("admin@cust10001.example")
        .token(b"not a real ciphertext")
        .with_ticket(b"not a real ticket")
        .active()
}

async fn set_state(conn: &mut AsyncPgConnection, ctx: &str, state: &str) {
    diesel::update(tenants::table.filter(tenants::context_id.eq(ctx)))
        .set((
            tenants::state.eq(state),
            tenants::next_attempt_at.eq(None::<chrono::DateTime<Utc>>),
        ))
        .execute(conn)
        .await
        .unwrap();
}

/// The simulator's change went out once and partner-web answered 200.
fn delivered(change: &ChangeView) {
    assert_eq!(change.notifications.len(), 1, "{:?}", change.notifications);
    let sent = &change.notifications[0];
    assert!(sent.delivered, "{sent:?}");
    assert_eq!(sent.status, Some(200));
}

/// The tenant is in `state`, for a reason that mentions `because`.
fn in_state(tenant: &Tenant, state: &str, because: &str) {
    assert_eq!(tenant.state, state);
    let reason = tenant.state_reason.as_deref().unwrap_or_default();
    assert!(reason.contains(because), "{reason}");
}

fn wakes(payloads: &[String], ctx: &str) {
    assert!(payloads.iter().any(|p| p == ctx), "{payloads:?}");
    assert!(
        payloads.contains(&format!("state-change:{ctx}")),
        "{payloads:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn suspend_stops_work_and_resume_lets_it_continue_after_a_fresh_check() {
    let mut t = Lifecycle::start().await;

    let tenant = t.sim_sets_state(NORTHWIND, TenantState::Suspended).await;
    in_state(&tenant, "suspended", "suspended");
    assert_eq!(tenant.next_attempt_at, None);
    assert!(t.has_ticket(NORTHWIND).await);

    let before = Utc::now();
    let tenant = t.sim_sets_state(NORTHWIND, TenantState::Running).await;
    in_state(&tenant, "pending", "checked afresh");
    let due = tenant.next_attempt_at.expect("due now");
    assert!(due >= before - chrono::Duration::seconds(1) && due <= Utc::now());

    let events = t.superoffice_events().await;
    let actions: Vec<_> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["superoffice_suspend", "superoffice_resume"]);
    assert_eq!(events[0].detail["effect"]["from"], "active");
    assert_eq!(events[0].detail["effect"]["to"], "suspended");
    assert_eq!(events[1].detail["effect"]["to"], "pending");
    assert!(events[0].detail["token_issued_at"].is_string());
    assert_eq!(
        t.recorded_notifications().await,
        [
            (NORTHWIND.into(), "Suspend".into(), "suspended".into()),
            (NORTHWIND.into(), "Resume".into(), "pending".into()),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_stops_work_and_drops_the_ticket_but_keeps_the_tenant() {
    let mut t = Lifecycle::start().await;
    let tenant = t.sim_sets_state(NORTHWIND, TenantState::Deleted).await;
    in_state(&tenant, "deleted", "purges");
    assert!(tenant.system_token.is_some(), "data is kept");
    assert!(!t.has_ticket(NORTHWIND).await);
    let event = t.single_event("superoffice_delete").await;
    assert_eq!(event.detail["effect"]["ticket_dropped"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_restored_revives_a_deleted_tenant_but_not_a_revoked_one() {
    let mut t = Lifecycle::start().await;
    let mut conn = t.conn().await;
    known(FJORD).insert(&mut conn).await;
    set_state(&mut conn, NORTHWIND, "deleted").await;
    set_state(&mut conn, FJORD, "revoked").await;
    t.notifications().await;

    delivered(&t.admin().backup_restored(NORTHWIND).await.unwrap());
    delivered(&t.admin().backup_restored(FJORD).await.unwrap());

    let northwind = t.tenant(NORTHWIND).await.unwrap();
    in_state(&northwind, "pending", "backup");
    assert!(northwind.next_attempt_at.is_some());
    let fjord = t.tenant(FJORD).await.unwrap();
    assert_eq!(
        fjord.state, "revoked",
        "an administrator must approve again"
    );
    assert_eq!(fjord.next_attempt_at, None);
    let payloads = t.notifications().await;
    wakes(&payloads, NORTHWIND);
    wakes(&payloads, FJORD);
    let events = t.superoffice_events().await;
    assert_eq!(events.len(), 2);
    assert!(
        events
            .iter()
            .all(|e| e.action == "superoffice_backup_restored")
    );
    assert_eq!(events[1].detail["outcome"], "kept_revoked");
}

#[tokio::test(flavor = "multi_thread")]
async fn move_clears_the_cached_urls_and_invalidates_the_tenant_status() {
    let mut t = Lifecycle::start().await;
    let change = t.admin().move_tenant(NORTHWIND, "sod3").await.unwrap();
    let tenant = t.after(&change, NORTHWIND).await;
    assert_eq!(tenant.webapi_url, None);
    assert_eq!(tenant.netserver_url, None);
    assert_eq!(tenant.state, "active");
    assert!(tenant.next_attempt_at.is_some(), "due now");
    assert!(t.has_ticket(NORTHWIND).await);

    let sod3 = t.sim().api_host_url("sod3").unwrap().to_owned();
    let endpoint = sod3.trim_start_matches("http://");
    let event = t.single_event("superoffice_move").await;
    assert_eq!(event.detail["public_endpoint"], endpoint);
    assert_eq!(event.detail["effect"]["urls_cleared"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn upgrade_is_recorded_with_its_version() {
    let mut t = Lifecycle::start().await;
    let change = t
        .admin()
        .upgrade(
            NORTHWIND,
            Some("Release 11.1".into()),
            Some("11.1.0.2026".into()),
        )
        .await
        .unwrap();
    let tenant = t.after(&change, NORTHWIND).await;
    assert_eq!(tenant.state, "active");
    assert!(tenant.webapi_url.is_some());
    assert!(t.has_ticket(NORTHWIND).await);
    let event = t.single_event("superoffice_upgrade").await;
    assert_eq!(event.detail["version_name"], "Release 11.1");
    assert_eq!(event.detail["file_version"], "11.1.0.2026");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_we_do_not_know_is_answered_200_and_only_audited() {
    let mut t = Lifecycle::start().await;
    delivered(
        &t.admin()
            .set_state(FJORD, TenantState::Suspended)
            .await
            .unwrap(),
    );
    assert!(t.tenant(FJORD).await.is_none());
    assert_eq!(t.tenant(NORTHWIND).await.unwrap().state, "active");
    assert_eq!(t.notifications().await, Vec::<String>::new());
    let event = t
        .single_event("superoffice_state_change_unknown_tenant")
        .await;
    assert_eq!(event.context_id.as_deref(), Some(FJORD));
}

/// A notification body for Northwind with a token of these claims, signed by `key`.
fn notification(change: Value, token: &str) -> Value {
    json!({
        "ChangeType": change,
        "ContextIdentifier": NORTHWIND,
        "VersionName": "Release 10.3",
        "FileVersion": "10.3.8.2024",
        "Token": token,
    })
}

/// A notification token's claims, issued half a minute ago (so never the very token the simulator sends).
fn claims(ctx: &str) -> Value {
    let now = Utc::now().timestamp() - 30;
    json!({
        "sub": ctx,
        CTX_CLAIM: ctx,
        "iss": "SuperOffice AS",
        "aud": format!("spn:{CLIENT_ID}"),
        "iat": now,
        "nbf": now,
        "exp": now + 300,
    })
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims[name] = value;
    claims
}

/// RS256 with `key`, naming `kid`: a signature by the wrong key under the right name.
fn sign_as(kid: &str, key_pem: &str, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(key_pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_and_mismatched_tokens_are_refused_and_change_nothing() {
    let mut t = Lifecycle::start().await;
    let superid = superid_key();
    let other_pem = testkit::read(&testkit::data("service-console-key.pem"));
    let other = SigningKey::from_pem(&other_pem).unwrap();
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": superid.kid()}).to_string()),
        URL_SAFE_NO_PAD.encode(claims(NORTHWIND).to_string())
    );
    let past = Utc::now().timestamp() - 3600;
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "another key",
            json!(other.sign(&claims(NORTHWIND)).unwrap()),
            "unknown key",
        ),
        (
            "another key under SuperID's kid",
            json!(sign_as(superid.kid(), &other_pem, &claims(NORTHWIND))),
            "signature",
        ),
        (
            "another issuer",
            json!(
                superid
                    .sign(&with(
                        claims(NORTHWIND),
                        "iss",
                        json!("https://evil.example")
                    ))
                    .unwrap()
            ),
            "issuer",
        ),
        (
            "another application",
            json!(
                superid
                    .sign(&with(claims(NORTHWIND), "aud", json!("spn:other-app")))
                    .unwrap()
            ),
            "audience",
        ),
        (
            "another tenant",
            json!(superid.sign(&claims(FJORD)).unwrap()),
            "tenant Cust10002",
        ),
        (
            "expired",
            json!(
                superid
                    .sign(&with(
                        with(claims(NORTHWIND), "exp", json!(past)),
                        "iat",
                        json!(past - 300)
                    ))
                    .unwrap()
            ),
            "expired",
        ),
        ("alg none", json!(unsigned), "algorithm"),
        ("no token", Value::Null, "no Token"),
        ("garbage", json!("garbage"), "malformed"),
    ];
    for (case, token, reason) in cases {
        let mut body = notification(json!(2), "");
        body["Token"] = token.clone();
        let (status, answer) = t.post(&body).await;
        assert_eq!(status, 401, "{case}: {answer}");
        let message = crate::support::error_of(&answer);
        assert!(message.contains(reason), "{case}: {message}");
        if let Some(token) = token.as_str() {
            assert!(!message.contains(token), "{case}: the token is echoed");
        }
    }
    let tenant = t.tenant(NORTHWIND).await.unwrap();
    assert_eq!(tenant.state, "active");
    assert!(tenant.webapi_url.is_some());
    assert!(t.has_ticket(NORTHWIND).await);
    assert!(t.recorded_notifications().await.is_empty());
    assert!(t.superoffice_events().await.is_empty());
    assert_eq!(t.notifications().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_notification_changes_nothing_the_second_time() {
    let mut t = Lifecycle::start().await;
    let superid = superid_key();
    let suspend = notification(json!("Suspend"), &superid.sign(&claims(NORTHWIND)).unwrap());

    // Signed by SuperID, but the state API says the tenant runs: recorded, nothing changes, the service is
    // woken to check for itself.
    let (status, answer) = t.post(&suspend).await;
    assert_eq!((status, &answer["outcome"]), (200, &json!("unconfirmed")));
    assert_eq!(t.tenant(NORTHWIND).await.unwrap().state, "active");
    wakes(&t.notifications().await, NORTHWIND);

    // SuperOffice suspends the tenant: its own notification is confirmed by the state API.
    let tenant = t.sim_sets_state(NORTHWIND, TenantState::Suspended).await;
    in_state(&tenant, "suspended", "suspended");

    // Resumed in between: a replay of the suspension must not stop the tenant again.
    let resume = notification(json!(3), &superid.sign(&claims(NORTHWIND)).unwrap());
    let (status, answer) = t.post(&resume).await;
    assert_eq!((status, &answer["outcome"]), (200, &json!("pending")));
    t.notifications().await;

    let (status, answer) = t.post(&suspend).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "duplicate");
    assert_eq!(t.tenant(NORTHWIND).await.unwrap().state, "pending");
    assert_eq!(t.notifications().await, Vec::<String>::new());
    let actions: Vec<_> = t
        .superoffice_events()
        .await
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        [
            "superoffice_suspend",
            "superoffice_suspend",
            "superoffice_resume"
        ]
    );
    let outcomes: Vec<_> = t
        .recorded_notifications()
        .await
        .into_iter()
        .map(|(_, _, outcome)| outcome)
        .collect();
    assert_eq!(outcomes, ["unconfirmed", "suspended", "pending"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_that_are_not_json_notifications_are_refused() {
    let t = Lifecycle::start().await;
    let token = superid_key().sign(&claims(NORTHWIND)).unwrap();
    let body = notification(json!(2), &token).to_string();

    let post = |content_type, body: String| {
        crate::support::post_body(&t, "/superoffice/state-change", content_type, body)
    };
    let plain = post("text/plain", body).await;
    assert_eq!(plain.status().as_u16(), 415);
    let pad = format!("{{\"pad\": \"{}\"}}", "x".repeat(40 * 1024));
    let huge = post("application/json", pad).await;
    assert_eq!(huge.status().as_u16(), 413);
    let truncated = "{\"ChangeType\": 2,".to_owned();
    let broken = post("application/json; charset=utf-8", truncated).await;
    assert_eq!(broken.status().as_u16(), 400);
    let answer: Value = broken.json().await.unwrap();
    assert!(crate::support::error_of(&answer).contains("not valid JSON"));

    assert_eq!(t.tenant(NORTHWIND).await.unwrap().state, "active");
    assert!(t.recorded_notifications().await.is_empty());
}
