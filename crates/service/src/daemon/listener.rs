//! `LISTEN partner_work`: wakes the daemon as soon as partner-web records new work, and forgets a
//! tenant's cached status when a payload `state-change:{ctx}` says SuperOffice changed it.

use std::sync::Arc;
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use shared::db::WORK_CHANNEL;
use shared::db::state_changes::STATUS_INVALIDATION_PREFIX;
use shared::domain::ContextId;
use shared::tenant::status::TenantStatusClient;

/// Keeps one LISTEN connection open, reconnecting with backoff, and signals `wake` on every notification.
pub async fn listen(
    url: String,
    wake: Arc<Notify>,
    statuses: Arc<TenantStatusClient>,
    cancel: CancellationToken,
) {
    let mut backoff = Duration::from_millis(250);
    while !cancel.is_cancelled() {
        match listen_once(&url, &wake, &statuses, &cancel).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64,
                    "LISTEN connection lost; polling continues meanwhile");
                // Something may have been notified while we were disconnected.
                wake.notify_one();
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

async fn listen_once(
    url: &str,
    wake: &Notify,
    statuses: &TenantStatusClient,
    cancel: &CancellationToken,
) -> Result<(), String> {
    let mut conn = AsyncPgConnection::establish(url)
        .await
        .map_err(|e| e.to_string())?;
    diesel::sql_query(format!("LISTEN {WORK_CHANNEL}"))
        .execute(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(channel = WORK_CHANNEL, "listening for work");
    let mut stream = std::pin::pin!(conn.notifications_stream());
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            item = stream.next() => match item {
                Some(Ok(notification)) => {
                    tracing::debug!(payload = %notification.payload, "work notification");
                    if let Some(ctx) = notification.payload.strip_prefix(STATUS_INVALIDATION_PREFIX)
                        && let Ok(tenant) = ContextId::parse(ctx)
                    {
                        statuses.invalidate(&tenant).await;
                        tracing::debug!(tenant = %tenant, "cached tenant status dropped");
                    }
                    wake.notify_one();
                }
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("notification stream ended".to_owned()),
            }
        }
    }
}
