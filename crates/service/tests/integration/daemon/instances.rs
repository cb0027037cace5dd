//! Several instances on one database, an instance that dies holding a lease, NOTIFY wake-ups and
//! graceful shutdown.

use std::time::Duration;

use service::tickets::decrypt_ticket;
use shared::clients::SuperOfficeClients;
use shared::clock::SystemClock;
use shared::db::{queue, work};
use shared::domain::ContextId;
use shared::tenant::TenantCredentials;
use superoffice_sim::config::{TenantConfig, TenantVersion};
use superoffice_sim::{Fault, Group, TEST_CLIENT_ID, TenantState};
use tokio_util::sync::CancellationToken;

use super::support::{seeded, world, world_with};

const CTX: &str = "Cust10001";
const MANY: u32 = 200;

/// Starts `daemon.run` as a task; cancel the token to stop it.
fn run_daemon(
    daemon: service::daemon::Daemon,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let cancel = CancellationToken::new();
    let running = tokio::spawn({
        let cancel = cancel.clone();
        async move { daemon.run(cancel).await }
    });
    (cancel, running)
}

fn many(n: u32) -> String {
    format!("Cust{}", 20_000 + n)
}

/// The running tenant [`many`]`(n)` on `host`, with the test application installed.
fn many_tenant(n: u32, host: &str) -> TenantConfig {
    TenantConfig {
        context_id: many(n),
        company_name: format!("Tenant {n} AS"),
        serial: format!("77{n:05}"),
        host: host.to_owned(),
        state: TenantState::Running,
        installed_apps: vec![TEST_CLIENT_ID.to_owned()],
        version: TenantVersion {
            version_name: "Release 11".to_owned(),
            file_version: "11.0".to_owned(),
        },
    }
}

#[tokio::test]
async fn two_instances_share_200_tenants_without_doing_any_twice() {
    let w = world_with(|config| {
        for n in 0..MANY {
            let host = if n % 2 == 0 { "sod2" } else { "sod3" };
            config.tenants.push(many_tenant(n, host));
        }
    })
    .await;
    let mut requests = Vec::new();
    for n in 0..MANY {
        w.seed(&many(n)).await;
        requests.push(w.enqueue(&many(n), &format!("Company of {n}")).await.id);
    }
    let (a, b) = (
        w.daemon().with_owner("instance-a"),
        w.daemon().with_owner("instance-b"),
    );
    let (ra, rb) = tokio::join!(a.run_once(), b.run_once());
    ra.unwrap();
    rb.unwrap();

    let records = w.sim.admin().records();
    for n in 0..MANY {
        let ctx = many(n);
        assert_eq!(records.tickets_issued[&ctx], 1, "{ctx} exchanged once");
        let companies = records
            .records
            .companies
            .iter()
            .filter(|c| c.context_id == ctx)
            .count();
        assert_eq!(companies, 1, "{ctx}");
    }
    for id in requests {
        assert_eq!(w.request(id).await.state, "done");
    }
    let audit_actors = {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use shared::db::schema::audit_events;
        audit_events::table
            .filter(audit_events::action.eq("ticket_obtained"))
            .count()
            .get_result::<i64>(&mut *w.conn().await)
            .await
            .unwrap()
    };
    assert_eq!(audit_actors, i64::from(MANY));
    assert_eq!(
        w.leased_by("instance-a").await + w.leased_by("instance-b").await,
        0
    );
    w.sim.stop().await;
}

#[tokio::test]
async fn a_dead_instances_lease_is_taken_over_without_losing_or_duplicating_the_company() {
    let (w, daemon) = seeded(CTX).await;
    w.pass(&daemon, CTX, "Earlier").await;

    // Another instance claims the tenant, starts the request, saves the company, and dies.
    let request = w.enqueue(CTX, "Saved by the dead instance").await;
    let claimed = queue::claim_due(&mut *w.conn().await, "dead-instance", 1, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    work::mark_running(&mut *w.conn().await, request.id, "dead-instance")
        .await
        .unwrap();
    let id = ContextId::parse(CTX).unwrap();
    let ticket = decrypt_ticket(&w.cipher, &id, &w.ticket(CTX).await.unwrap()).unwrap();
    let clients =
        SuperOfficeClients::from_settings(&w.settings, std::sync::Arc::new(SystemClock)).unwrap();
    let saved = clients
        .rest
        .create_marked_company(
            &id,
            &TenantCredentials::SystemUser(ticket),
            "Saved by the dead instance",
            &request.idempotency_key.to_string(),
        )
        .await
        .unwrap();

    // While the lease lives, nobody else touches the tenant.
    daemon.run_once().await.unwrap();
    assert_eq!(w.request(request.id).await.state, "running");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    daemon.run_once().await.unwrap();
    let done = w.request(request.id).await;
    assert_eq!(done.state, "done", "{:?}", done.error);
    assert_eq!(done.result.unwrap()["contact_id"], saved.contact_id);
    assert_eq!(
        w.companies(CTX).len(),
        2,
        "the earlier one and this one, once"
    );
    assert_eq!(w.tickets_issued(CTX), 1);
    assert_eq!(w.tenant(CTX).await.unwrap().lease_owner, None);
    w.sim.stop().await;
}

#[tokio::test]
async fn the_running_daemon_wakes_on_notify_and_gives_work_back_on_shutdown() {
    let mut w = world().await;
    w.settings.service.poll_interval_secs = 60;
    let (cancel, running) = run_daemon(w.daemon().with_owner("graceful"));
    // Wait for the listener, then capture and queue: done long before the 60 s poll.
    tokio::time::sleep(Duration::from_millis(300)).await;
    w.seed(CTX).await;
    let first = w.enqueue(CTX, "Woken by NOTIFY").await;
    w.eventually(Duration::from_secs(10), || async {
        w.request(first.id).await.state == "done"
    })
    .await;

    // Work that cannot finish within the grace: the tenant API answers after 5 s.
    w.sim.admin().set_fault(
        Group::Api,
        Fault {
            latency_ms: 5_000,
            ..Fault::default()
        },
    );
    w.seed("Cust10002").await;
    let second = w.enqueue("Cust10002", "Interrupted").await;
    w.eventually(Duration::from_secs(10), || async {
        w.request(second.id).await.state == "running"
    })
    .await;
    assert_eq!(w.leased_by("graceful").await, 1);
    let stopping = tokio::time::Instant::now();
    cancel.cancel();
    running.await.unwrap().unwrap();
    assert!(
        stopping.elapsed() < Duration::from_secs(4),
        "{:?}",
        stopping.elapsed()
    );
    assert_eq!(w.leased_by("graceful").await, 0, "leases released");
    let given_back = w.request(second.id).await;
    assert_eq!(given_back.state, "queued");
    assert_eq!(given_back.attempts, 1);

    // Another instance finishes it; the lookup first finds nothing and the company is made once.
    w.sim.admin().clear_faults(None);
    w.daemon().run_once().await.unwrap();
    assert_eq!(w.request(second.id).await.state, "done");
    assert_eq!(w.companies("Cust10002").len(), 1);
    w.sim.stop().await;
}

/// A steady pass: every tenant due again with a valid ticket. The running daemon gives them back in
/// batches without exchanging (claim after claim, not one claim per poll interval), and the one
/// tenant with new work still gets it done.
#[tokio::test]
async fn idle_tenants_are_given_back_in_batches_and_new_work_is_still_done() {
    const IDLE: u32 = 30;
    let mut w = world_with(|config| {
        for n in 0..IDLE {
            config.tenants.push(many_tenant(n, "sod2"));
        }
    })
    .await;
    for n in 0..IDLE {
        w.seed(&many(n)).await;
    }
    w.daemon().run_once().await.unwrap();
    for n in 0..IDLE {
        assert_eq!(w.tickets_issued(&many(n)), 1);
    }

    // Far from the next poll: only NOTIFY and the daemon's own loop can move anything.
    w.settings.service.poll_interval_secs = 60;
    let (cancel, running) = run_daemon(w.daemon().with_owner("steady"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use shared::db::schema::tenants;
        let mut conn = w.conn().await;
        diesel::update(tenants::table)
            .set(tenants::next_attempt_at.eq(chrono::Utc::now()))
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    let busy = many(IDLE / 2);
    let request = w.enqueue(&busy, "Work among idle tenants").await;
    let idle_left = || async {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use shared::db::schema::tenants;
        tenants::table
            .filter(
                tenants::next_attempt_at
                    .is_not_null()
                    .or(tenants::lease_owner.is_not_null()),
            )
            .count()
            .get_result::<i64>(&mut *w.conn().await)
            .await
            .unwrap()
    };
    w.eventually(Duration::from_secs(10), || async {
        w.request(request.id).await.state == "done" && idle_left().await == 0
    })
    .await;
    for n in 0..IDLE {
        assert_eq!(w.tickets_issued(&many(n)), 1, "{} exchanged again", many(n));
    }
    assert_eq!(w.companies(&busy).len(), 1);
    cancel.cancel();
    running.await.unwrap().unwrap();
    w.sim.stop().await;
}
