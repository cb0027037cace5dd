//! The instance's row in `service_instances`, written every few seconds, so the operator console lists
//! running instances with their host, last beat and circuit state (and shows one that stopped beating
//! as stale).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use shared::db;
use shared::db::operator::CircuitState;
use tokio_util::sync::CancellationToken;

use super::circuit::Circuit;

/// How often an instance writes its heartbeat; the console calls an instance stale after
/// `shared::db::operator::STALE_AFTER_SECS`.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// Rows of instances not seen for this long are removed by the next instance that stops cleanly.
const FORGET_AFTER_SECS: i64 = 24 * 3600;

/// Beats until `cancel` fires, then removes the instance's row.
pub async fn run(pool: db::Pool, owner: String, circuit: Arc<Circuit>, cancel: CancellationToken) {
    let host = super::context::host_name();
    let started_at = Utc::now();
    loop {
        let circuit_state = if circuit.open_reason().is_some() {
            CircuitState::Open
        } else {
            CircuitState::Closed
        };
        match pool.get().await {
            Ok(mut conn) => {
                if let Err(e) =
                    db::operator::heartbeat(&mut conn, &owner, &host, started_at, circuit_state)
                        .await
                {
                    tracing::warn!(error = %e, "writing the instance heartbeat failed");
                }
            }
            Err(e) => tracing::warn!(error = %e, "no connection for the instance heartbeat"),
        }
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(HEARTBEAT_EVERY) => {}
        }
    }
    if let Ok(mut conn) = pool.get().await
        && let Err(e) = db::operator::remove_instance(&mut conn, &owner, FORGET_AFTER_SECS).await
    {
        tracing::warn!(error = %e, "removing the instance heartbeat failed");
    }
}
