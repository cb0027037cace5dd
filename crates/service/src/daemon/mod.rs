//! The daemon: waits for work (NOTIFY or the poll interval) and processes what is due.

mod listener;
mod metrics_server;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use shared::config::Settings;
use shared::db;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Runs until `cancel` fires (or, with `once`, after one pass), then returns.
pub async fn run(settings: Settings, once: bool, cancel: CancellationToken) -> anyhow::Result<()> {
    settings.require_service()?;
    let pool = db::pool(&settings.database).context("building the database pool")?;
    db::ping(&pool).await.context(
        "connecting to the database (is it running, and migrated with `partner-service migrate`?)",
    )?;
    tracing::info!(database = %shared::config::redact_url(settings.database.url()), "connected to the database");

    if once {
        process_due(&pool).await?;
        return Ok(());
    }

    let (metrics, metrics_port) =
        metrics_server::start(&settings.service.metrics_bind, shared::metrics::handle())?;
    tracing::info!(port = metrics_port, "metrics and health endpoint listening");

    let wake = Arc::new(Notify::new());
    let listener = tokio::spawn(listener::listen(
        settings.database.url().to_owned(),
        wake.clone(),
        cancel.clone(),
    ));
    let poll = Duration::from_secs(settings.service.poll_interval_secs);
    loop {
        if let Err(e) = process_due(&pool).await {
            tracing::error!(error = %format!("{e:#}"), "processing failed; retrying at the next wake-up");
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
        }
    }
    tracing::info!("stopping: no new work is claimed");
    let _ = listener.await;
    metrics.stop(true).await;
    Ok(())
}

/// One pass over what is due: publishes how many tenants are in each state.
async fn process_due(pool: &db::Pool) -> anyhow::Result<()> {
    let mut conn = pool.get().await.context("taking a database connection")?;
    let counts = db::tenants::count_by_state(&mut conn)
        .await
        .context("counting tenants by state")?;
    for (state, count) in &counts {
        metrics::gauge!("partner_tenants", "state" => state.clone()).set(*count as f64);
    }
    let pending = counts
        .iter()
        .find(|(state, _)| state == "pending")
        .map_or(0, |(_, count)| *count);
    tracing::debug!(pending, "pass complete");
    Ok(())
}
