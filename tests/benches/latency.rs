//! Capture-to-ticket latency of one tenant through the whole system: superoffice-sim, partner-web and
//! partner-service as release processes (the e2e `Stack`). Each sample: the simulator re-approves the
//! application on Cust10001 (a new system user token), the administrator signs in through the web
//! (capture, NOTIFY), and the bench waits for the new ticket; latency = the `ticket_obtained` audit
//! event's created_at − tenants.token_captured_at (tickets.issued_at is the JWT's iat, whole seconds).
//!
//! cargo build --release -p service -p web -p superoffice-sim --bins
//! cargo bench -p e2e --bench latency -- --samples 30
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use e2e::bench::{self, Args};
use e2e::{CLIENT_ID, Stack, WebUser};
use shared::db::schema::{audit_events, tenants, tickets};
use testkit::TestDatabase;

const TENANT: &str = "Cust10001";
const ADMIN: &str = "admin@northwind.example";

/// `(token_generation, token_captured_at)` of the tenant.
async fn captured(conn: &mut AsyncPgConnection) -> Option<(i32, DateTime<Utc>)> {
    let (generation, at) = tenants::table
        .filter(tenants::context_id.eq(TENANT))
        .select((tenants::token_generation, tenants::token_captured_at))
        .first::<(i32, Option<DateTime<Utc>>)>(conn)
        .await
        .optional()
        .unwrap()?;
    Some((generation, at?))
}

/// When the ticket of token generation `generation` was stored: the `ticket_obtained` audit event's
/// `created_at` (Postgres `now()`, microseconds). `tickets.issued_at` is the JWT's `iat`, whole seconds
/// on SuperID's clock, too coarse to measure a fraction of a second.
async fn stored(conn: &mut AsyncPgConnection, generation: i32) -> Option<DateTime<Utc>> {
    let events: Vec<(DateTime<Utc>, serde_json::Value)> = audit_events::table
        .filter(audit_events::context_id.eq(TENANT))
        .filter(audit_events::action.eq("ticket_obtained"))
        .select((audit_events::created_at, audit_events::detail))
        .load(conn)
        .await
        .unwrap();
    events
        .into_iter()
        .find(|(_, detail)| detail["token_generation"] == generation)
        .map(|(at, _)| at)
}

/// The ticket row for `generation`, to check that the event's ticket really is the stored one.
async fn has_ticket(conn: &mut AsyncPgConnection, generation: i32) -> bool {
    tickets::table
        .filter(tickets::context_id.eq(TENANT))
        .filter(tickets::token_generation.eq(generation))
        .count()
        .get_result::<i64>(conn)
        .await
        .unwrap()
        == 1
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(args) = Args::for_bench(&["samples"]) else {
        return;
    };
    let samples: usize = args.get("samples", 30);
    println!("machine: {}", bench::machine());
    let database = TestDatabase::create().await.unwrap();
    let mut stack = Stack::start("bench-latency", database.url()).await;
    let mut conn = database.connect().await.unwrap();
    let http = reqwest::Client::new();
    let mut latencies = Vec::new();
    let mut failures = 0;
    // The first sign-in creates the tenant; every later one replaces its token.
    for sample in 0..=samples {
        if sample > 0 {
            let reapproved = http
                .post(format!(
                    "{}/admin/tenants/{TENANT}/apps/{CLIENT_ID}/reapprove",
                    stack.superid_url
                ))
                .send()
                .await
                .unwrap();
            assert!(reapproved.status().is_success());
        }
        assert_eq!(
            WebUser::new(&stack.web_url).sign_in(ADMIN).await,
            303,
            "sign-in failed"
        );
        let (generation, at) = captured(&mut conn)
            .await
            .expect("the sign-in captured no token");
        let deadline = Instant::now() + Duration::from_secs(30);
        let ticket = loop {
            if let Some(at) = stored(&mut conn, generation).await {
                assert!(has_ticket(&mut conn, generation).await);
                break Some(at);
            }
            if Instant::now() > deadline {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        match ticket {
            // The first sample warms connections and caches; it is not counted.
            Some(ticket) if sample > 0 => {
                let ms = (ticket - at).num_microseconds().unwrap_or(0) as f64 / 1000.0;
                println!("sample {sample}: {ms:.1} ms");
                latencies.push(ms);
            }
            Some(_) => {}
            None => {
                failures += 1;
                println!(
                    "sample {sample}: no ticket for token generation {generation} within 30 s"
                );
                if failures >= 3 {
                    println!(
                        "giving up: the service issues no tickets; see {}",
                        stack.log_dir.display()
                    );
                    break;
                }
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "\ncapture→ticket, one tenant: median {:.1} ms, p90 {:.1} ms, min {:.1} ms, max {:.1} ms (n={}); target median < 250 ms; load {}",
        bench::median(&latencies),
        bench::percentile(&latencies, 90.0),
        latencies.iter().copied().next().unwrap_or(f64::NAN),
        latencies.last().copied().unwrap_or(f64::NAN),
        latencies.len(),
        bench::load()
    );
    stack.stop();
}
