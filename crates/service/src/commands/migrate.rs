//! `partner-service migrate`.

use anyhow::Context;
use shared::config::{Settings, redact_url};

/// Applies pending migrations and says what it did.
pub async fn run(settings: &Settings) -> anyhow::Result<()> {
    let url = settings.database.url();
    tracing::info!(database = %redact_url(url), "applying migrations");
    let applied = shared::db::migrate::run_pending(url)
        .await
        .with_context(|| format!("migrating {}", redact_url(url)))?;
    if applied.is_empty() {
        println!("database schema is up to date");
    } else {
        for version in &applied {
            println!("applied migration {version}");
        }
    }
    Ok(())
}
