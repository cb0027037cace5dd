//! Capture → ticket → company; one exchange per ticket lifetime; refresh after idling and after a refusal.

use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::json;
use shared::db::schema::tickets;
use shared::domain::ContextId;

use super::support::{World, seeded, world};

const CTX: &str = "Cust10001";

#[tokio::test]
async fn a_captured_token_becomes_a_ticket_and_the_company_is_created() {
    let w = world().await;
    let metrics = shared::metrics::handle();
    w.seed(CTX).await;
    let request = w.enqueue(CTX, "Made by the daemon AS").await;
    let daemon = w.daemon();
    daemon.run_once().await.unwrap();

    let done = w.request(request.id).await;
    assert_eq!(done.state, "done", "{:?}", done.error);
    let companies = w.companies(CTX);
    assert_eq!(companies.len(), 1);
    assert_eq!(companies[0].credential, "system_user_ticket");
    assert_eq!(
        done.result.unwrap(),
        json!({"contact_id": companies[0].contact_id, "name": "Made by the daemon AS"})
    );
    assert_eq!(w.tickets_issued(CTX), 1);
    let tenant = w.tenant(CTX).await.unwrap();
    assert_eq!(tenant.state, "active");
    assert!(tenant.last_success_at.is_some());
    assert_eq!(tenant.next_attempt_at, None, "nothing left to do");
    assert_eq!(tenant.lease_owner, None);
    let ticket = w.ticket(CTX).await.unwrap();
    assert_eq!(ticket.token_generation, tenant.token_generation);

    let audit = w.audit(CTX).await;
    let actions: Vec<&str> = audit.iter().map(|(a, _)| a.as_str()).collect();
    for expected in ["token_captured", "ticket_obtained", "company_created"] {
        assert!(actions.contains(&expected), "{actions:?}");
    }
    let token = w.sim.admin().tenant(CTX).unwrap().system_token.unwrap();
    let trail = serde_json::to_string(&audit).unwrap();
    assert!(!trail.contains(&token) && !trail.contains("7T:"), "{trail}");

    // Due again with a valid ticket and nothing to do: no SuperOffice call at all.
    let calls_before = w.sim.admin().records().records.superid.exchanges.len();
    w.due_now(CTX).await;
    daemon.run_once().await.unwrap();
    assert_eq!(
        w.sim.admin().records().records.superid.exchanges.len(),
        calls_before
    );
    assert_eq!(w.tenant(CTX).await.unwrap().next_attempt_at, None);

    let rendered = metrics.render();
    assert!(
        rendered.contains("partner_service_exchanges_total{outcome=\"success\"}"),
        "{rendered}"
    );
    assert!(rendered.contains("partner_service_capture_to_ticket_seconds"));
    // Every state is exported (a state with no tenant reads 0 rather than a stale count).
    for state in shared::db::models::TenantState::ALL {
        assert!(
            rendered.contains(&format!("partner_tenants{{state=\"{}\"}}", state.as_str())),
            "{state:?} missing:\n{rendered}"
        );
    }
    w.sim.stop().await;
}

#[tokio::test]
async fn one_ticket_serves_many_work_items() {
    let (w, daemon) = seeded(CTX).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(w.enqueue(CTX, &format!("First batch {n}")).await.id);
    }
    daemon.run_once().await.unwrap();
    for n in 0..10 {
        ids.push(w.enqueue(CTX, &format!("Second batch {n}")).await.id);
    }
    daemon.run_once().await.unwrap();
    for id in ids {
        assert_eq!(w.request(id).await.state, "done");
    }
    assert_eq!(w.companies(CTX).len(), 15);
    assert_eq!(w.tickets_issued(CTX), 1, "exactly one exchange");
    assert!(
        shared::metrics::handle()
            .render()
            .contains("partner_service_ticket_reuse_total")
    );
    w.sim.stop().await;
}

#[tokio::test]
async fn a_ticket_unused_for_too_long_is_refreshed_before_use() {
    let (w, daemon) = seeded(CTX).await;
    w.pass(&daemon, CTX, "Before the pause").await;
    assert_eq!(w.tickets_issued(CTX), 1);

    let refresh = Duration::seconds(w.settings.service.ticket_refresh_after_secs as i64);
    diesel::update(tickets::table.find(CTX))
        .set(tickets::last_used_at.eq(Utc::now() - refresh - Duration::seconds(1)))
        .execute(&mut *w.conn().await)
        .await
        .unwrap();
    let request = w.pass(&daemon, CTX, "After the pause").await;
    assert_eq!(w.request(request.id).await.state, "done");
    assert_eq!(w.tickets_issued(CTX), 2, "a fresh ticket before the work");
    let ticket = w.ticket(CTX).await.unwrap();
    assert!(Utc::now() - ticket.last_used_at < Duration::minutes(5));
    w.sim.stop().await;
}

#[tokio::test]
async fn a_refused_ticket_is_replaced_once_and_the_work_retried() {
    let (w, daemon) = seeded(CTX).await;
    w.pass(&daemon, CTX, "With the first ticket").await;

    // The tenant no longer knows the cached ticket (as after SuperOffice dropped it).
    w.store_refused_ticket(CTX).await;
    let request = w.pass(&daemon, CTX, "After the refusal").await;
    let done = w.request(request.id).await;
    assert_eq!(done.state, "done", "{:?}", done.error);
    assert_eq!(w.tickets_issued(CTX), 2);
    assert_eq!(w.companies(CTX).len(), 2);
    let ticket = w.ticket(CTX).await.unwrap();
    assert_eq!(ticket.rejected_at, None);
    w.sim.stop().await;
}

/// Runs the built `partner-service` with the world's configuration (off the runtime's threads, so the
/// in-process simulator keeps answering).
async fn partner_service(w: &World, args: &[&str]) -> std::process::Output {
    let env = w.env.clone();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        crate::binary::partner_service()
            .args(&args)
            .envs(env)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// The operator's `exchange CTX` against the database and the simulator: it signs and exchanges the
/// stored token, stores the ticket as the daemon does (encrypted, audited, the tenant activated), and
/// prints the ticket's metadata but never the ticket. An unknown tenant is one clear line.
#[tokio::test(flavor = "multi_thread")]
async fn the_exchange_command_stores_the_ticket_and_prints_no_secret() {
    let w = world().await;
    w.seed(CTX).await;
    let output = partner_service(&w, &["exchange", CTX]).await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let shown: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(shown["context_id"], CTX);
    assert_eq!(shown["stored"], true);
    assert_eq!(shown["token_generation"], 1);
    assert!(shown["ticket_length"].as_u64().unwrap() > 20, "{shown}");
    assert_eq!(w.tickets_issued(CTX), 1);
    let issued = w.sim.admin().issued_credentials().tickets;
    assert_eq!(issued.len(), 1);
    assert!(!stdout.contains(&issued[0]) && !stderr.contains(&issued[0]));

    let stored = w.ticket(CTX).await.expect("the ticket is stored");
    assert_eq!(stored.token_generation, 1);
    let plain =
        service::tickets::decrypt_ticket(&w.cipher, &ContextId::parse(CTX).unwrap(), &stored)
            .unwrap();
    assert_eq!(
        plain.expose(),
        issued[0],
        "stored encrypted, and it is the issued ticket"
    );
    let tenant = w.tenant(CTX).await.unwrap();
    assert_eq!(tenant.state, "active");
    let actions: Vec<String> = w.audit(CTX).await.into_iter().map(|(a, _)| a).collect();
    assert!(
        actions.iter().any(|a| a == "ticket_obtained")
            && actions.iter().any(|a| a == "state_changed"),
        "{actions:?}"
    );

    // The daemon then finds the ticket usable: no second exchange.
    w.daemon().run_once().await.unwrap();
    assert_eq!(w.tickets_issued(CTX), 1);

    let unknown = partner_service(&w, &["exchange", "Cust99999"]).await;
    assert!(!unknown.status.success());
    let message = String::from_utf8_lossy(&unknown.stderr);
    assert!(message.contains("no tenant Cust99999"), "{message}");
    w.sim.stop().await;
}
