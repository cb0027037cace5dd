//! Rotating the encryption key re-encrypts every stored token and ticket.

use chrono::Utc;
use secrecy::{ExposeSecret, SecretBox};
use shared::config::KeyMaterial;
use shared::crypto::at_rest::{Cipher, Encrypted, SecretKind};

const TOKEN: SecretKind = SecretKind::SystemUserToken;
const TICKET: SecretKind = SecretKind::Ticket;
use shared::db::tenants::{TokenCapture, capture_token};
use shared::db::{rotation, tickets};
use shared::domain::ContextId;
use testkit::TestDatabase;

fn key(version: i16, fill: u8) -> KeyMaterial {
    KeyMaterial {
        version,
        bytes: SecretBox::new(Box::new([fill; 32])),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_reencrypts_tokens_and_tickets_under_the_new_key() {
    let (_db, mut conn) = TestDatabase::connected().await;
    let old = Cipher::new(&key(1, 7), None);
    for ctx in ["Cust1", "Cust2"] {
        let id = ContextId::parse(ctx).unwrap();
        let token = old
            .encrypt(&id, TOKEN, format!("App-{ctx}").as_bytes())
            .unwrap();
        capture_token(
            &mut conn,
            TokenCapture {
                context_id: ctx,
                details: testkit::seed::DETAILS,
                token,
                captured_by: "admin",
                same_token: &|_| false,
                token_issued_at: None,
            },
        )
        .await
        .unwrap();
    }
    let id = ContextId::parse("Cust1").unwrap();
    let ticket = old.encrypt(&id, TICKET, b"7T:ticket").unwrap();
    tickets::store(
        &mut conn,
        tickets::NewTicket {
            context_id: "Cust1",
            ciphertext: ticket.bytes,
            key_version: ticket.key_version,
            token_generation: 1,
            issued_at: Utc::now(),
        },
    )
    .await
    .unwrap();

    let rotating = Cipher::new(&key(2, 9), Some(&key(1, 7)));
    let report = rotation::reencrypt_all(&mut conn, &rotating, "ops")
        .await
        .unwrap();
    assert_eq!((report.tokens, report.tickets), (2, 1));
    // A second run finds nothing left to do.
    let again = rotation::reencrypt_all(&mut conn, &rotating, "ops")
        .await
        .unwrap();
    assert_eq!((again.tokens, again.tickets), (0, 0));

    // Only the new key is needed from now on.
    let new_only = Cipher::new(&key(2, 9), None);
    let tenant = shared::db::tenants::find(&mut conn, "Cust2")
        .await
        .unwrap()
        .unwrap();
    let token = tenant.system_token.unwrap();
    let plain = new_only
        .decrypt_string(&ContextId::parse("Cust2").unwrap(), TOKEN, &token)
        .unwrap();
    assert_eq!(plain.expose_secret(), "App-Cust2");
    let stored = tickets::find(&mut conn, "Cust1").await.unwrap().unwrap();
    assert_eq!(stored.encrypted.key_version, 2);
    let plain = new_only
        .decrypt_string(
            &id,
            TICKET,
            &Encrypted {
                key_version: 2,
                bytes: stored.encrypted.bytes,
            },
        )
        .unwrap();
    assert_eq!(plain.expose_secret(), "7T:ticket");
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_without_the_old_key_stops_naming_the_tenant() {
    let (_db, mut conn) = TestDatabase::connected().await;
    let old = Cipher::new(&key(1, 7), None);
    let token = old
        .encrypt(&ContextId::parse("Cust9").unwrap(), TOKEN, b"x")
        .unwrap();
    capture_token(
        &mut conn,
        TokenCapture {
            context_id: "Cust9",
            details: testkit::seed::DETAILS,
            token: Encrypted {
                key_version: 1,
                bytes: token.bytes.clone(),
            },
            captured_by: "admin",
            same_token: &|_| false,
            token_issued_at: None,
        },
    )
    .await
    .unwrap();
    let err = rotation::reencrypt_all(&mut conn, &Cipher::new(&key(2, 9), None), "ops")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("Cust9"), "{err}");
    let tenant = shared::db::tenants::find(&mut conn, "Cust9")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        tenant.system_token.map(|stored| stored.bytes),
        Some(token.bytes),
        "left unchanged"
    );
}
