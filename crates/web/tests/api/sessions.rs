//! Sessions live on the server: the cookie is only an id, and a session that ended is dead everywhere at
//! once, whoever holds a copy of its cookie.

use std::sync::Arc;
use std::time::Duration;

use diesel::sql_types::{Bytea, Text};
use diesel_async::RunQueryDsl;
use secrecy::ExposeSecret;
use shared::crypto::at_rest::{Cipher, Encrypted};
use shared::db::operator::ByOperator;
use shared::db::sessions::Lifetime;
use web::session_store::PgSessionStore;

use testkit::snapshot::{ALL_SESSIONS, Snapshot, unchanged};
use testkit::{TestApp, bare_client, session_cookie};

const ADMIN: &str = "admin@cust10001.example";
const TENANT: &str = "Cust10001";

/// Signs in as the administrator and returns the session cookie the sign-in set.
async fn signed_in(app: &TestApp) -> String {
    let callback = app.sign_in_as(ADMIN).await;
    assert_eq!(callback.status().as_u16(), 303);
    session_cookie(&callback).expect("the sign-in set no session cookie")
}

/// What a replayed cookie gets: the tenant page and a system user request.
async fn replay(app: &TestApp, cookie: &str) -> (u16, u16) {
    let client = bare_client();
    let tenant = client
        .get(app.url("/tenant"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    let queue = client
        .post(app.url("/companies/as-system-user"))
        .header("cookie", cookie)
        .form(&[("csrf_token", "0".repeat(64)), ("name", "Stolen AS".into())])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    (tenant, queue)
}

async fn execute(app: &TestApp, sql: &str) {
    let mut conn = app.pool.get().await.unwrap();
    diesel::sql_query(sql).execute(&mut conn).await.unwrap();
}

fn cipher() -> Cipher {
    testkit::cipher()
}

#[derive(diesel::QueryableByName)]
struct SessionRow {
    #[diesel(sql_type = Bytea)]
    id_hash: Vec<u8>,
    #[diesel(sql_type = Bytea)]
    state_ciphertext: Vec<u8>,
    #[diesel(sql_type = diesel::sql_types::SmallInt)]
    key_version: i16,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    context_id: Option<String>,
}

async fn session_rows(pool: &shared::db::Pool) -> Vec<SessionRow> {
    let mut conn = pool.get().await.unwrap();
    diesel::sql_query("SELECT id_hash, state_ciphertext, key_version, context_id FROM web_sessions")
        .load(&mut conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn attack_stolen_cookie_replayed_after_logout_is_refused() {
    let app = TestApp::with_sim(&[]).await;
    let stolen = signed_in(&app).await;
    assert_eq!(replay(&app, &stolen).await.0, 200, "the copy works before");
    let csrf = app.csrf().await;
    let logout = app
        .client
        .post(app.url("/logout"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status().as_u16(), 303);
    let before = Snapshot::take(&app.pool, &ALL_SESSIONS).await;
    assert!(before.contains("web_sessions: (none)"), "{before}");
    assert_eq!(replay(&app, &stolen).await, (401, 401));
    assert_eq!(Snapshot::take(&app.pool, &ALL_SESSIONS).await, before);
}

/// A cookie stolen from a session of an app configured with `setting`, replayed once `aging` (SQL) has
/// aged the session: refused, and no row changes.
async fn aged_cookie_is_refused(setting: (&str, &str), aging: &str) {
    let app = TestApp::with_sim(&[setting]).await;
    let stolen = signed_in(&app).await;
    execute(&app, aging).await;
    let answer = unchanged(&app.pool, &ALL_SESSIONS, replay(&app, &stolen)).await;
    assert_eq!(answer, (401, 401));
}

#[tokio::test(flavor = "multi_thread")]
async fn attack_stolen_cookie_replayed_after_the_idle_timeout_is_refused() {
    // 31 minutes without a request.
    aged_cookie_is_refused(
        ("PARTNER_WEB__SESSION_MINUTES", "30"),
        "UPDATE web_sessions SET last_seen_at = now() - interval '31 minutes'",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn attack_stolen_cookie_replayed_after_the_absolute_timeout_is_refused() {
    // Signed in over two hours ago, in use all along.
    aged_cookie_is_refused(
        ("PARTNER_WEB__SESSION_MAX_HOURS", "2"),
        "UPDATE web_sessions SET created_at = now() - interval '121 minutes', last_seen_at = now()",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn attack_stolen_cookie_replayed_after_end_sessions_is_refused() {
    let app = TestApp::with_sim(&[]).await;
    let stolen = signed_in(&app).await;
    let mut conn = app.pool.get().await.unwrap();
    let ended = shared::db::sessions::end_for_tenant(
        &mut conn,
        ByOperator {
            context_id: TENANT,
            actor: "operator:test",
        },
    )
    .await
    .unwrap();
    assert_eq!(ended, 1);
    let before = Snapshot::take(&app.pool, &ALL_SESSIONS).await;
    assert!(before.contains("sessions_ended"), "{before}");
    assert_eq!(replay(&app, &stolen).await, (401, 401));
    // The user's own browser is signed out too.
    let own = app.get("/tenant").await;
    assert_eq!(own.status().as_u16(), 401);
    assert_eq!(Snapshot::take(&app.pool, &ALL_SESSIONS).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cookie_holds_only_a_signed_random_id() {
    let app = TestApp::with_sim(&[]).await;
    let cookie = signed_in(&app).await;
    // A signed cookie is the base64 HMAC (44 characters) followed by the value, percent-encoded.
    let value = cookie
        .strip_prefix("partner_session=")
        .unwrap()
        .replace("%2F", "/")
        .replace("%2B", "+")
        .replace("%3D", "=");
    assert_eq!(value.len(), 44 + 64, "{value}");
    let id = &value[44..];
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    let rows = session_rows(&app.pool).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].id_hash,
        shared::db::sessions::id_hash(id).to_vec(),
        "the row is keyed by the id's hash"
    );
    assert_eq!(rows[0].context_id.as_deref(), Some(TENANT));
    // The same id with another signature is refused.
    let forged = format!("partner_session={}{id}", "A".repeat(44));
    assert_eq!(replay(&app, &forged).await.0, 401);
    // Signing in again issues a new id.
    let again = signed_in(&app).await;
    assert_ne!(again, cookie);
    assert_eq!(replay(&app, &cookie).await.0, 401);
    assert_eq!(replay(&app, &again).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn session_rows_hold_no_plaintext_token() {
    let app = TestApp::with_sim(&[]).await;
    signed_in(&app).await;
    let rows = session_rows(&app.pool).await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    let mut associated = b"partner-web session ".to_vec();
    associated.extend_from_slice(&row.id_hash);
    let state = cipher()
        .decrypt_bound(
            &associated,
            &Encrypted {
                key_version: row.key_version,
                bytes: row.state_ciphertext.clone(),
            },
        )
        .unwrap();
    let state: std::collections::HashMap<String, String> =
        serde_json::from_slice(state.expose_secret()).unwrap();
    let user: serde_json::Value = serde_json::from_str(&state["user"]).unwrap();
    let access_token = user["access_token"].as_str().unwrap();
    assert!(access_token.len() > 8, "{access_token}");
    let stored = String::from_utf8_lossy(&row.state_ciphertext);
    assert!(!stored.contains(access_token));
    assert!(!stored.contains(ADMIN));
    assert!(!stored.contains("csrf"));
    // The ciphertext is bound to its row: under another row's id it does not decrypt.
    let mut elsewhere = b"partner-web session ".to_vec();
    elsewhere.extend_from_slice(&shared::db::sessions::id_hash("another"));
    assert!(
        cipher()
            .decrypt_bound(
                &elsewhere,
                &Encrypted {
                    key_version: row.key_version,
                    bytes: row.state_ciphertext.clone(),
                },
            )
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_on_one_database_share_a_session() {
    let app = TestApp::with_sim(&[]).await;
    signed_in(&app).await;
    let other = app.another_instance().await;
    // The client's cookie is for 127.0.0.1, whatever the port: the other instance gets it too.
    let page = app
        .client
        .get(format!("{other}/tenant"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains(TENANT));
    // Signed out on the other instance, signed out on the first.
    let csrf = app.csrf().await;
    let logout = app
        .client
        .post(format!("{other}/logout"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status().as_u16(), 303);
    let first = app.get("/tenant").await;
    assert_eq!(first.status().as_u16(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_sessions_are_purged_and_live_ones_kept() {
    let app = TestApp::spawn().await;
    // Three anonymous sessions (the home page starts one for its CSRF token).
    for _ in 0..3 {
        let response = bare_client().get(app.url("/")).send().await.unwrap();
        assert!(session_cookie(&response).is_some());
    }
    let mut conn = app.pool.get().await.unwrap();
    diesel::sql_query(
        "UPDATE web_sessions SET last_seen_at = now() - interval '2 hours' \
         WHERE id_hash = (SELECT id_hash FROM web_sessions ORDER BY id_hash LIMIT 1)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    diesel::sql_query(
        "UPDATE web_sessions SET created_at = now() - interval '13 hours' \
         WHERE id_hash = (SELECT id_hash FROM web_sessions ORDER BY id_hash DESC LIMIT 1)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let store = PgSessionStore::new(
        app.pool.clone(),
        Arc::new(cipher()),
        Lifetime {
            idle: Duration::from_secs(60 * 60),
            max_age: Duration::from_secs(12 * 3600),
        },
    );
    assert_eq!(store.purge_expired().await.unwrap(), 2);
    assert_eq!(session_rows(&app.pool).await.len(), 1);
    assert_eq!(store.purge_expired().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn secure_cookies_use_the_host_prefix_and_hsts() {
    let app = TestApp::with_sim(&[("PARTNER_WEB__SECURE_COOKIES", "true")]).await;
    let response = app.get("/").await;
    let hsts = response.headers()["strict-transport-security"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(hsts.starts_with("max-age="), "{hsts}");
    let cookie = testkit::user::set_cookie(&response);
    assert!(cookie.starts_with("__Host-partner_session="), "{cookie}");
    assert!(
        cookie.contains("Secure") && cookie.contains("Path=/") && !cookie.contains("Domain"),
        "{cookie}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_gets_no_hsts() {
    let app = TestApp::spawn().await;
    let response = app.get("/").await;
    assert!(!response.headers().contains_key("strict-transport-security"));
    let cookie = session_cookie(&response).unwrap();
    assert!(cookie.starts_with("partner_session="), "{cookie}");
}
