//! Two administrators of one tenant signing in at once: the capture is decided under the tenant's row lock,
//! so the token issued last is kept, whichever transaction commits last, and no ticket from another token
//! survives.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use shared::crypto::at_rest::Encrypted;
use shared::db::schema::tenants;
use shared::db::tenants::{CaptureOutcome, TokenCapture, capture_token};
use shared::db::tickets;
use testkit::TestDatabase;

/// Captures `token` (its "ciphertext" is the token itself: the database never decrypts).
async fn capture(
    conn: &mut AsyncPgConnection,
    ctx: &str,
    token: &'static [u8],
    issued_at: DateTime<Utc>,
) -> CaptureOutcome {
    let same = move |stored: &Encrypted| stored.bytes == token;
    capture_token(
        conn,
        TokenCapture {
            context_id: ctx,
            details: testkit::seed::DETAILS,
            token: Encrypted {
                key_version: 1,
                bytes: token.to_vec(),
            },
            captured_by: "admin@example.com",
            same_token: &same,
            token_issued_at: Some(issued_at),
        },
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_captures_keep_the_newest_token_and_no_ticket_from_another() {
    let db = TestDatabase::create().await.unwrap();
    let start = Utc::now() - Duration::minutes(5);
    for round in 0..4 {
        let ctx = format!("Cust{}", 100 + round);
        let mut conn = db.connect().await.unwrap();
        assert_eq!(
            capture(&mut conn, &ctx, b"token-1", start).await,
            CaptureOutcome::Created
        );
        tickets::store(
            &mut conn,
            tickets::NewTicket {
                context_id: &ctx,
                ciphertext: b"ticket from token-1".to_vec(),
                key_version: 1,
                token_generation: 1,
                issued_at: Utc::now(),
            },
        )
        .await
        .unwrap();

        // Hold the row so both sign-ins queue on it, then let them race for it.
        diesel::sql_query("BEGIN").execute(&mut conn).await.unwrap();
        diesel::sql_query(format!(
            "SELECT id FROM tenants WHERE context_id = '{ctx}' FOR UPDATE"
        ))
        .execute(&mut conn)
        .await
        .unwrap();
        let newer = {
            let (db_url, ctx) = (db.url().to_owned(), ctx.clone());
            tokio::spawn(async move {
                let mut conn = AsyncPgConnection::establish(&db_url).await.unwrap();
                capture(&mut conn, &ctx, b"token-3", start + Duration::seconds(20)).await
            })
        };
        let older = {
            let (db_url, ctx) = (db.url().to_owned(), ctx.clone());
            tokio::spawn(async move {
                let mut conn = AsyncPgConnection::establish(&db_url).await.unwrap();
                capture(&mut conn, &ctx, b"token-2", start + Duration::seconds(10)).await
            })
        };
        if round % 2 == 0 {
            tokio::task::yield_now().await;
        }
        diesel::sql_query("COMMIT")
            .execute(&mut conn)
            .await
            .unwrap();
        let outcomes = [newer.await.unwrap(), older.await.unwrap()];

        let (token, generation, issued_at): (Option<Vec<u8>>, i32, Option<DateTime<Utc>>) =
            tenants::table
                .filter(tenants::context_id.eq(&ctx))
                .select((
                    tenants::system_token_ciphertext,
                    tenants::token_generation,
                    tenants::token_issued_at,
                ))
                .first(&mut conn)
                .await
                .unwrap();
        assert_eq!(token.as_deref(), Some(&b"token-3"[..]), "{outcomes:?}");
        assert_eq!(
            issued_at.map(|t| t.timestamp()),
            Some((start + Duration::seconds(20)).timestamp())
        );
        let replaced = outcomes
            .iter()
            .filter(|o| **o == CaptureOutcome::Replaced)
            .count();
        assert!(
            outcomes == [CaptureOutcome::Replaced, CaptureOutcome::Superseded]
                || outcomes == [CaptureOutcome::Replaced, CaptureOutcome::Replaced],
            "{outcomes:?}"
        );
        assert_eq!(generation, 1 + i32::try_from(replaced).unwrap());
        assert!(
            tickets::find(&mut conn, &ctx).await.unwrap().is_none(),
            "the ticket from token-1 survived a token change"
        );

        // The older token arriving again later changes nothing.
        assert_eq!(
            capture(&mut conn, &ctx, b"token-2", start + Duration::seconds(10)).await,
            CaptureOutcome::Superseded
        );
        // The newest one again is the same token.
        assert_eq!(
            capture(&mut conn, &ctx, b"token-3", start + Duration::seconds(20)).await,
            CaptureOutcome::Unchanged
        );
    }
}
