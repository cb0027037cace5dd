//! The operator console's aggregates over the audit trail, against a real Postgres.

use chrono::{Duration, DurationRound, Utc};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use shared::db::operator::{
    self, Bucket, QueryCounter, TenantFilter, capture_latency, exchanges_per_hour,
    tenants_per_state, work_per_hour,
};
use testkit::TestDatabase;

async fn run(conn: &mut AsyncPgConnection, sql: &str) {
    diesel::sql_query(sql).execute(conn).await.unwrap();
}

/// A fresh database with the rows `insert` writes.
async fn database_with(insert: &str) -> (TestDatabase, AsyncPgConnection) {
    let (db, mut conn) = TestDatabase::connected().await;
    run(&mut conn, insert).await;
    (db, conn)
}

fn count(buckets: &[Bucket], hours_ago: i64, series: &str) -> i64 {
    let hour = Utc::now().duration_trunc(Duration::hours(1)).unwrap() - Duration::hours(hours_ago);
    buckets
        .iter()
        .find(|b| b.at == hour && b.series == series)
        .map_or(0, |b| b.count)
}

#[tokio::test]
async fn chart_aggregates_count_what_the_audit_trail_says() {
    // Two hours ago: 3 tickets, 2 transient failures, 1 refusal; now: 1 ticket. Work: 4 done, 1 failed
    // (counted as failed whatever outcome its detail names).
    // Events older than the window do not count.
    let (_db, mut conn) = database_with(
        "INSERT INTO audit_events (context_id, action, actor, detail, created_at) VALUES
         ('Cust1', 'ticket_obtained', 's', '{}', date_trunc('hour', now()) - interval '2 hours' + interval '1 minute'),
         ('Cust1', 'ticket_obtained', 's', '{}', date_trunc('hour', now()) - interval '2 hours' + interval '2 minutes'),
         ('Cust2', 'ticket_obtained', 's', '{}', date_trunc('hour', now()) - interval '2 hours' + interval '3 minutes'),
         ('Cust2', 'exchange_failed', 's', '{\"outcome\": \"transient\"}', date_trunc('hour', now()) - interval '2 hours'),
         ('Cust2', 'exchange_failed', 's', '{\"outcome\": \"transient\"}', date_trunc('hour', now()) - interval '2 hours'),
         ('Cust3', 'exchange_failed', 's', '{\"outcome\": \"refused\"}', date_trunc('hour', now()) - interval '2 hours'),
         ('Cust3', 'ticket_obtained', 's', '{}', now()),
         ('Cust3', 'ticket_obtained', 's', '{}', now() - interval '3 days'),
         ('Cust1', 'company_created', 's', '{}', now()),
         ('Cust1', 'company_created', 's', '{}', now()),
         ('Cust1', 'company_created', 's', '{}', now()),
         ('Cust2', 'company_created', 's', '{}', now()),
         ('Cust2', 'work_failed', 's', '{\"outcome\": \"transient\"}', now())",
    )
    .await;
    let since = Utc::now().duration_trunc(Duration::hours(1)).unwrap() - Duration::hours(23);
    let exchanges = exchanges_per_hour(&mut conn, since).await.unwrap();
    assert_eq!(count(&exchanges, 2, "obtained"), 3);
    assert_eq!(count(&exchanges, 2, "transient"), 2);
    assert_eq!(count(&exchanges, 2, "refused"), 1);
    assert_eq!(count(&exchanges, 0, "obtained"), 1);
    assert_eq!(
        exchanges.iter().map(|b| b.count).sum::<i64>(),
        7,
        "the one 3 days ago is outside"
    );
    let work = work_per_hour(&mut conn, since).await.unwrap();
    assert_eq!((count(&work, 0, "done"), count(&work, 0, "failed")), (4, 1));
}

#[tokio::test]
async fn tenants_per_state_replays_the_moves_and_capture_latency_pairs_each_capture_with_its_ticket()
 {
    // Cust1: captured 5 h ago, active 4 h ago, suspended 1 h ago. Cust2: captured 10 days ago, active, purged 2 h ago.
    // Cust3: captured 3 h ago, never a ticket.
    let (_db, mut conn) = database_with(
        "INSERT INTO audit_events (context_id, action, actor, detail, created_at) VALUES
         ('Cust1', 'token_captured', 'a', '{}', now() - interval '5 hours'),
         ('Cust1', 'ticket_obtained', 's', '{}', now() - interval '5 hours' + interval '42 seconds'),
         ('Cust1', 'state_changed', 's', '{\"state\": \"active\"}', now() - interval '4 hours'),
         ('Cust1', 'superoffice_suspend', 'w', '{\"effect\": {\"from\": \"active\", \"to\": \"suspended\"}}', now() - interval '1 hour'),
         ('Cust2', 'token_captured', 'a', '{}', now() - interval '10 days'),
         ('Cust2', 'state_changed', 's', '{\"state\": \"active\"}', now() - interval '10 days'),
         ('Cust2', 'tenant_purged', 'o', '{}', now() - interval '2 hours'),
         ('Cust3', 'token_captured', 'a', '{}', now() - interval '3 hours')",
    )
    .await;
    // The tenants as those events left them (Cust2's row went with its purge).
    run(
        &mut conn,
        "INSERT INTO tenants (context_id, environment, company_name, state) VALUES
         ('Cust1', 'custom', 'One AS', 'suspended'), ('Cust3', 'custom', 'Three AS', 'pending')",
    )
    .await;
    let since = Utc::now().duration_trunc(Duration::hours(1)).unwrap() - Duration::hours(167);
    let states = tenants_per_state(&mut conn, since).await.unwrap();
    // The running total of a state at the latest bucket that names it.
    let latest = |state: &str| {
        states
            .iter()
            .rfind(|b| b.series == state)
            .map_or(0, |b| b.count)
    };
    assert_eq!(latest("active"), 0, "Cust2 purged, Cust1 suspended");
    assert_eq!(latest("suspended"), 1);
    assert_eq!(latest("pending"), 1, "Cust3");
    // A week ago Cust2 was already active (its move 10 days ago falls in the first hour).
    let first = &states[0];
    assert_eq!((first.series.as_str(), first.count), ("active", 1));

    let latency = capture_latency(&mut conn, since).await.unwrap();
    assert_eq!(latency.len(), 2, "the capture 10 days ago is outside");
    assert!(
        (latency[0].seconds.unwrap() - 42.0).abs() < 1.0,
        "{latency:?}"
    );
    assert_eq!(latency[1].seconds, None);
}

/// What an audit event does to its tenant's state in a replay from the start of the history.
fn replay(state: Option<&str>, action: &str, detail: &serde_json::Value) -> Option<Option<String>> {
    let named = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_owned);
    match action {
        "token_captured" => Some(Some("pending".to_owned())),
        "state_changed" => named(detail.get("state")).map(Some),
        "operator_retry" => named(detail.get("to")).map(Some),
        "tenant_purged" => Some(None),
        "token_replaced" => Some(Some(
            state
                .filter(|s| matches!(*s, "suspended" | "deleted" | "disabled"))
                .unwrap_or("pending")
                .to_owned(),
        )),
        a if a.starts_with("superoffice_") => {
            named(detail.get("effect").and_then(|e| e.get("to"))).map(Some)
        }
        _ => None,
    }
}

#[tokio::test]
async fn tenants_per_state_from_the_window_matches_a_replay_of_the_whole_history() {
    use diesel::ExpressionMethods;
    use shared::db::schema::{audit_events, tenants};
    use std::collections::BTreeMap;
    let (_db, mut conn) = TestDatabase::connected().await;
    let now = Utc::now();
    let start = now.duration_trunc(Duration::hours(1)).unwrap() - Duration::hours(71);
    // A seeded history of 40 tenants over 12 days: captures, every kind of move, replaced tokens,
    // purges and recaptures, and events that move nothing, before and inside the 72-hour window.
    let mut seed: u64 = 0x5eed;
    let mut next = move |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let mut events: Vec<(String, &str, serde_json::Value, chrono::DateTime<Utc>)> = Vec::new();
    for tenant in 0..40 {
        let ctx = format!("Cust{tenant}");
        let mut at =
            now - Duration::days(12) + Duration::minutes(i64::try_from(next(600)).unwrap());
        events.push((ctx.clone(), "token_captured", serde_json::json!({}), at));
        loop {
            at += Duration::minutes(1 + i64::try_from(next(1800)).unwrap());
            if at >= now {
                break;
            }
            let state = ["active", "revoked", "expired", "disabled", "pending"]
                [usize::try_from(next(5)).unwrap()];
            let (action, detail) = match next(10) {
                0 => ("state_changed", serde_json::json!({ "state": state })),
                1 => ("state_changed", serde_json::json!({ "state": "active" })),
                2 => (
                    "operator_retry",
                    serde_json::json!({ "from": "revoked", "to": "pending" }),
                ),
                3 => (
                    "superoffice_suspend",
                    serde_json::json!({ "effect": { "to": "suspended" } }),
                ),
                4 => (
                    "superoffice_resume",
                    serde_json::json!({ "effect": { "to": "active" } }),
                ),
                5 => ("token_replaced", serde_json::json!({})),
                6 => ("ticket_obtained", serde_json::json!({})),
                7 => ("superoffice_upgrade", serde_json::json!({ "effect": null })),
                8 => ("tenant_purged", serde_json::json!({})),
                _ => ("token_captured", serde_json::json!({})),
            };
            events.push((ctx.clone(), action, detail, at));
        }
    }
    events.sort_by_key(|e| e.3);
    for (ctx, action, detail, at) in &events {
        diesel::insert_into(audit_events::table)
            .values((
                audit_events::context_id.eq(Some(ctx.as_str())),
                audit_events::action.eq(*action),
                audit_events::actor.eq("seed"),
                audit_events::detail.eq(detail),
                audit_events::created_at.eq(*at),
            ))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    assert!(events.iter().any(|e| e.3 < start) && events.iter().any(|e| e.3 >= start));

    // The whole history replayed: each tenant's state at the end of every hour of the window.
    let hours: Vec<_> = (0..72).map(|h| start + Duration::hours(h)).collect();
    let mut expected: BTreeMap<(chrono::DateTime<Utc>, String), i64> = BTreeMap::new();
    let mut last: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut pending_events = events.iter().peekable();
    for hour in &hours {
        while let Some((ctx, action, detail, _)) =
            pending_events.next_if(|e| e.3 < *hour + Duration::hours(1))
        {
            let before = last.get(ctx).cloned().flatten();
            if let Some(after) = replay(before.as_deref(), action, detail) {
                last.insert(ctx.clone(), after);
            }
        }
        for state in last.values().flatten() {
            *expected.entry((*hour, state.clone())).or_default() += 1;
        }
    }
    for (ctx, state) in &last {
        if let Some(state) = state {
            diesel::insert_into(tenants::table)
                .values((
                    tenants::context_id.eq(ctx),
                    tenants::environment.eq("custom"),
                    tenants::company_name.eq(ctx),
                    tenants::state.eq(state),
                ))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }

    let buckets = tenants_per_state(&mut conn, start + Duration::minutes(17))
        .await
        .unwrap();
    assert!(buckets.iter().all(|b| b.at >= start), "{buckets:?}");
    let mut got: BTreeMap<(chrono::DateTime<Utc>, String), i64> = BTreeMap::new();
    for hour in &hours {
        for bucket in &buckets {
            if bucket.at <= *hour {
                got.insert((*hour, bucket.series.clone()), bucket.count);
            }
        }
    }
    got.retain(|_, n| *n != 0);
    assert!(
        expected.len() > 72,
        "the seeded history moves tenants around"
    );
    assert_eq!(got, expected);
}

#[tokio::test]
async fn a_page_of_tenants_is_one_query_and_a_search_takes_its_text_literally() {
    let (_db, mut conn) = database_with(
        "INSERT INTO tenants (context_id, environment, company_name) VALUES
         ('Cust1', 'custom', '100% Juice AS'), ('Cust2', 'custom', '1000 Lakes AS'),
         ('Cust3', 'custom', 'Under_score AS'), ('Cust4', 'custom', 'Underwood AS')",
    )
    .await;
    let counter = QueryCounter::install(&mut conn);
    assert_eq!(search(&mut conn, "100%").await, ["Cust1"]);
    assert_eq!(counter.count(), 1);
    assert_eq!(search(&mut conn, "under_").await, ["Cust3"]);
    assert_eq!(counter.finish(&mut conn), 2);
}

/// The context ids on the first page of a search.
async fn search(conn: &mut AsyncPgConnection, text: &str) -> Vec<String> {
    let filter = TenantFilter {
        search: Some(text.to_owned()),
        ..TenantFilter::default()
    };
    let page = operator::tenant_page(conn, &filter, 50).await.unwrap();
    page.rows
        .into_iter()
        .map(|r| r.tenant.context_id.to_string())
        .collect()
}
