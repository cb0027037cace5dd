//! `partner-service tenant-status CTX` and `partner-service exchange CTX`: SuperOffice calls an operator
//! makes by hand. Neither prints a secret: the exchange uses the tenant's stored token and serial,
//! stores the ticket it obtains and shows the ticket's metadata, never the ticket.

use std::sync::Arc;

use anyhow::Context;
use serde_json::json;
use shared::clients::SuperOfficeClients;
use shared::clock::{Clock, SystemClock};
use shared::config::Settings;
use shared::crypto::at_rest::Cipher;
use shared::crypto::partner_key::PartnerKey;
use shared::domain::ContextId;
use shared::environment::SuperIdEnvironment;
use shared::http::SuperOfficeHttp;
use shared::tenant::status::TenantStatusClient;

use crate::commands::tenants::operator;
use crate::tickets::{store_issued, stored_credentials};

/// Prints the tenant's state from the state API as JSON.
pub async fn tenant_status(settings: &Settings, ctx: &str) -> anyhow::Result<()> {
    let tenant = ContextId::parse(ctx)?;
    let http = SuperOfficeHttp::from_settings(&settings.superoffice.http)?;
    let environment = SuperIdEnvironment::from_settings(&settings.superoffice.superid)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let status = TenantStatusClient::new(http, environment, clock)
        .status(&tenant)
        .await
        .with_context(|| format!("asking the state API about {tenant}"))?;
    let shown = json!({
        "context_id": status.context_id.as_str(),
        "state": status.state.as_str(),
        "is_running": status.is_running,
        "endpoint": status.endpoint.as_ref().map(url::Url::as_str),
        "api": status.api.as_ref().map(url::Url::as_str),
        "valid_until": status.valid_until.map(|t| t.to_rfc3339()),
        "version": status.version,
    });
    println!("{}", serde_json::to_string_pretty(&shown)?);
    Ok(())
}

/// Reads the tenant's stored system user token and serial, signs the token, exchanges it and validates
/// the answer now, stores the ticket (encrypted, with an audit event) and prints its metadata.
pub async fn exchange(settings: &Settings, ctx: &str) -> anyhow::Result<()> {
    let tenant = ContextId::parse(ctx)?;
    let cipher = Cipher::from_settings(&settings.encryption)
        .context("loading encryption.key and encryption.previous_key")?;
    let pool = shared::db::pool(&settings.database).context("building the database pool")?;
    let mut conn = pool.get().await.context("connecting to the database")?;
    let row = shared::db::tenants::find(&mut conn, tenant.as_str())
        .await?
        .with_context(|| format!("no tenant {tenant}: a tenant administrator has not signed in"))?;
    let credentials = stored_credentials(&cipher, &row)?;
    let key = PartnerKey::from_source(&settings.superoffice.application.private_key_source()?)
        .context("reading the partner private key")?;
    let clients = SuperOfficeClients::from_settings(settings, Arc::new(SystemClock))?;
    let via = settings.superoffice.exchange.as_str();
    let exchanged = clients
        .exchange(Arc::new(key))
        .exchange(&tenant, &credentials.token, &credentials.serial)
        .await;
    match exchanged {
        Ok(issued) => {
            store_issued(
                &mut conn,
                &cipher,
                &tenant,
                row.token_generation,
                &issued,
                via,
                &operator(),
            )
            .await?;
            let shown = json!({
                "context_id": tenant.as_str(),
                "via": via,
                "serial": credentials.serial,
                "token_generation": row.token_generation,
                "issued_at": issued.issued_at.to_rfc3339(),
                "webapi_url": issued.urls.webapi_url.as_ref().map(url::Url::as_str),
                "netserver_url": issued.urls.netserver_url.as_ref().map(url::Url::as_str),
                "ticket_length": issued.ticket.expose().chars().count(),
                "stored": true,
            });
            println!("{}", serde_json::to_string_pretty(&shown)?);
            Ok(())
        }
        Err(error) => {
            let retry = if error.is_retryable() {
                "retrying later may help"
            } else {
                "retrying will not help"
            };
            let state = error
                .tenant_state_hint()
                .map(|s| format!("; the tenant's state would become {s}"))
                .unwrap_or_default();
            Err(anyhow::Error::new(error).context(format!(
                "exchanging the system user token of {tenant} ({retry}{state})"
            )))
        }
    }
}
