//! The operator console in headless Chromium, against real processes: an operator signs in through the
//! simulator, filters the tenant table to their tenant, retries it, waits for partner-service to make it
//! active again, and sees the charts. Screenshots: target/browser/operator*.png (operator.png is the one
//! in the README, docs/operator-console.png).
//!
//! Needs Debian's `chromium` and `tests/browser/node_modules` (`npm ci --prefix tests/browser`).

use diesel_async::RunQueryDsl;
use e2e::{Stack, repo_root};
use testkit::TestDatabase;

/// A week of history for the charts and a few hundred tenants for the table, none of them with a token
/// (so partner-service leaves them alone).
const HISTORY: &str = "
INSERT INTO tenants (context_id, environment, company_name, state, needs_attention, attention_reason,
                     last_success_at, so_state)
SELECT 'Cust' || (30000 + n), 'custom', (ARRAY['Aurora', 'Birch', 'Cobalt', 'Delta', 'Elm'])[1 + n % 5] || ' ' || n || ' AS',
       (ARRAY['active', 'active', 'active', 'pending', 'suspended', 'revoked', 'disabled'])[1 + n % 7],
       n % 23 = 0, CASE WHEN n % 23 = 0 THEN 'SuperID refused the signed token: invalid signature' END,
       now() - n * interval '7 minutes', 'Running'
FROM generate_series(1, 300) AS n;
INSERT INTO audit_events (context_id, action, actor, detail, created_at)
SELECT 'Cust' || (30000 + n % 300), 'token_captured', 'admin@example.com', '{}', now() - n * interval '40 minutes'
FROM generate_series(1, 250) AS n;
INSERT INTO audit_events (context_id, action, actor, detail, created_at)
SELECT 'Cust' || (30000 + n % 300), 'state_changed', 'partner-service',
       jsonb_build_object('state', (ARRAY['active', 'active', 'active', 'suspended', 'revoked', 'disabled'])[1 + n % 6]),
       now() - n * interval '40 minutes' + interval '3 minutes'
FROM generate_series(1, 250) AS n;
INSERT INTO audit_events (context_id, action, actor, detail, created_at)
SELECT 'Cust' || (30000 + n % 300), 'ticket_obtained', 'partner-service', '{}',
       now() - n * interval '40 minutes' + (4 + (n * 37) % 23 + (n * 11) % 7 * (n % 3)) * interval '1 second'
FROM generate_series(1, 250) AS n;
INSERT INTO audit_events (context_id, action, actor, detail, created_at)
SELECT 'Cust' || (30000 + n % 300), 'ticket_obtained', 'partner-service', '{}',
       now() - n * interval '9 minutes'
FROM generate_series(1, 1100) AS n;
INSERT INTO audit_events (context_id, action, actor, detail, created_at)
SELECT 'Cust' || (30000 + n % 300), 'exchange_failed', 'partner-service',
       jsonb_build_object('outcome', (ARRAY['transient', 'transient', 'transient', 'suspect', 'refused'])[1 + n % 5]),
       now() - n * interval '31 minutes'
FROM generate_series(1, 320) AS n;
INSERT INTO audit_events (context_id, action, actor, detail, created_at)
SELECT 'Cust' || (30000 + n % 300), CASE WHEN n % 9 = 0 THEN 'work_failed' ELSE 'company_created' END,
       'partner-service', '{}', now() - n * interval '4 minutes' - (n % 17) * interval '1 minute'
FROM generate_series(1, 360) AS n;
";

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_filters_retries_and_sees_the_charts_in_headless_chromium() {
    let root = repo_root();
    // Without Chromium, fail before the stack starts.
    super::browser::chromium();
    let database = TestDatabase::create().await.unwrap();
    let mut conn = database.connect().await.unwrap();
    for statement in HISTORY.split(';').filter(|s| !s.trim().is_empty()) {
        diesel::sql_query(statement)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    drop(conn);
    let mut stack = Stack::start_with(
        "operator-console",
        database.url(),
        &[(
            "PARTNER_WEB__OPERATORS",
            "Cust10001:admin@northwind.example".to_owned(),
        )],
    )
    .await;
    let screenshots = root.join("target/browser");
    let stdout = super::browser::run_flow(
        &stack,
        "operator.mjs",
        &screenshots,
        &[("OPERATOR_NAME", "Ada Admin"), ("TENANT", "Cust10001")],
    );
    assert!(stdout.contains("ok: 5 charts"), "{stdout}");
    super::browser::assert_screenshots(
        &screenshots,
        &["operator", "operator-phone", "operator-tenant"],
    );
    let statuses = stack.stop();
    assert!(statuses.iter().all(|s| s.success()), "{statuses:?}");
}
