//! Each running instance keeps a heartbeat row for the operator console, and removes it when it stops.

use std::time::Duration;

use shared::db::operator::{self, CircuitState, ReportedCircuit};
use tokio_util::sync::CancellationToken;

use super::support::world;

const CTX: &str = "Cust10001";

#[tokio::test]
async fn a_running_instance_beats_and_lists_its_leases_and_its_row_goes_when_it_stops() {
    let w = world().await;
    let cancel = CancellationToken::new();
    let daemon = w.daemon().with_owner("beating");
    let running = tokio::spawn({
        let cancel = cancel.clone();
        async move { daemon.run(cancel).await }
    });
    w.eventually(Duration::from_secs(10), || async {
        let listed = operator::instances(&mut *w.conn().await).await.unwrap();
        listed.iter().any(|i| {
            i.instance.id == "beating"
                && i.instance.circuit_state == ReportedCircuit::Known(CircuitState::Closed)
        })
    })
    .await;
    let first = operator::instances(&mut *w.conn().await).await.unwrap();
    let beat = first[0].instance.last_seen_at;
    assert!(!first[0].instance.host.is_empty());
    // The next beat moves "last seen" on.
    w.eventually(Duration::from_secs(15), || async {
        let listed = operator::instances(&mut *w.conn().await).await.unwrap();
        listed[0].instance.last_seen_at > beat
    })
    .await;
    // A lease this instance holds is listed with it (a tenant without a token, which no pass touches).
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query(
            "INSERT INTO tenants (context_id, environment, lease_owner, lease_expires_at) \
             VALUES ('Cust10001', 'custom', 'beating', now() + interval '1 hour')",
        ),
        &mut *w.conn().await,
    )
    .await
    .unwrap();
    let listed = operator::instances(&mut *w.conn().await).await.unwrap();
    assert_eq!(listed[0].tenants, vec![CTX.to_owned()]);
    assert_eq!(listed[0].lease_count, 1);
    cancel.cancel();
    running.await.unwrap().unwrap();
    assert!(
        operator::instances(&mut *w.conn().await)
            .await
            .unwrap()
            .is_empty(),
        "a cleanly stopped instance removes its row"
    );
}
