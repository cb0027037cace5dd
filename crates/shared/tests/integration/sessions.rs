//! partner-web's session rows against a real Postgres: schema, lifetimes, ending a tenant's sessions, purge.

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use shared::db::operator::ByOperator;
use shared::db::schema::web_sessions;
use shared::db::sessions::{self, Lifetime, SessionRow};
use testkit::TestDatabase;

const LIFETIME: Lifetime = Lifetime {
    idle: Duration::from_secs(3600),
    max_age: Duration::from_secs(12 * 3600),
};
const RESOLUTION: Duration = Duration::from_secs(15);

fn row<'a>(hash: &'a [u8; 32], context_id: Option<&'a str>) -> SessionRow<'a> {
    SessionRow {
        id_hash: hash,
        context_id,
        subject: context_id.map(|_| "someone"),
        state_ciphertext: b"sealed",
        key_version: 1,
    }
}

/// Runs an update of the session row `hash` (the statement's `$1`).
async fn update_session(conn: &mut AsyncPgConnection, sql: &str, hash: &[u8; 32]) {
    diesel::sql_query(sql)
        .bind::<diesel::sql_types::Bytea, _>(hash.as_slice())
        .execute(conn)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn web_sessions_match_schema_rs() {
    let (_database, mut conn) = TestDatabase::connected().await;
    let hash = sessions::id_hash("one");
    sessions::insert(&mut conn, row(&hash, Some("Cust1")))
        .await
        .unwrap();
    let stored: (Vec<u8>, Option<String>, Option<String>, Vec<u8>, i16) = web_sessions::table
        .select((
            web_sessions::id_hash,
            web_sessions::context_id,
            web_sessions::subject,
            web_sessions::state_ciphertext,
            web_sessions::key_version,
        ))
        .first(&mut conn)
        .await
        .unwrap();
    assert_eq!(stored.0, hash.to_vec());
    assert_eq!(stored.1.as_deref(), Some("Cust1"));
    assert_eq!(crate::db::column_count(&mut conn, "web_sessions").await, 7);
    let short = diesel::sql_query(
        "INSERT INTO web_sessions (id_hash, state_ciphertext, key_version) VALUES ('\\x01', '', 1)",
    )
    .execute(&mut conn)
    .await;
    assert!(short.is_err(), "an id hash is 32 bytes");
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_live_until_idle_or_too_old_and_are_not_revived() {
    let (_database, mut conn) = TestDatabase::connected().await;
    let (idle, old, live) = (
        sessions::id_hash("idle"),
        sessions::id_hash("old"),
        sessions::id_hash("live"),
    );
    for hash in [&idle, &old, &live] {
        sessions::insert(&mut conn, row(hash, None)).await.unwrap();
    }
    let backdate =
        "UPDATE web_sessions SET last_seen_at = now() - interval '61 minutes' WHERE id_hash = $1";
    update_session(&mut conn, backdate, &idle).await;
    let backdate =
        "UPDATE web_sessions SET created_at = now() - interval '13 hours' WHERE id_hash = $1";
    update_session(&mut conn, backdate, &old).await;
    for hash in [&idle, &old] {
        assert!(
            sessions::load_live(&mut conn, hash, LIFETIME, RESOLUTION)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            !sessions::update(&mut conn, row(hash, Some("Cust1")), LIFETIME)
                .await
                .unwrap(),
            "an expired session is not revived by an update"
        );
    }
    let loaded = sessions::load_live(&mut conn, &live, LIFETIME, RESOLUTION)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(loaded.state_ciphertext, b"sealed");
    assert!(
        sessions::update(&mut conn, row(&live, Some("Cust1")), LIFETIME)
            .await
            .unwrap()
    );
    sessions::delete(&mut conn, &live).await.unwrap();
    assert!(
        !sessions::update(&mut conn, row(&live, Some("Cust1")), LIFETIME)
            .await
            .unwrap(),
        "a signed-out session is not revived by an update"
    );
    assert_eq!(
        sessions::purge_expired(&mut conn, LIFETIME, 1)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        sessions::purge_expired(&mut conn, LIFETIME, 1)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        sessions::purge_expired(&mut conn, LIFETIME, 1)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ending_a_tenants_sessions_leaves_the_others_and_is_audited() {
    let (_database, mut conn) = TestDatabase::connected().await;
    let hashes = [
        sessions::id_hash("a1"),
        sessions::id_hash("a2"),
        sessions::id_hash("b1"),
        sessions::id_hash("anonymous"),
    ];
    for (hash, ctx) in hashes
        .iter()
        .zip([Some("Cust1"), Some("Cust1"), Some("Cust2"), None])
    {
        sessions::insert(&mut conn, row(hash, ctx)).await.unwrap();
    }
    assert_eq!(
        sessions::end_for_tenant(
            &mut conn,
            ByOperator {
                context_id: "Cust1",
                actor: "operator:test"
            }
        )
        .await
        .unwrap(),
        2
    );
    let event =
        testkit::db::assert_sessions_ended(&mut conn, "Cust1", "operator:test", "Cust2").await;
    assert_eq!(event.detail["sessions"], 2);
}
