//! `partner-service tenant-status CTX` and `partner-service exchange CTX`: SuperOffice calls an operator
//! makes by hand. Neither prints a secret: the exchange shows the ticket's metadata, never the ticket.

use std::sync::Arc;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use shared::clients::SuperOfficeClients;
use shared::clock::{Clock, SystemClock};
use shared::config::Settings;
use shared::crypto::partner_key::PartnerKey;
use shared::domain::{ContextId, SystemUserToken};
use shared::http::SuperOfficeHttp;
use shared::superid::environment::SuperIdEnvironment;
use shared::tenant::status::TenantStatusClient;

/// Prints the tenant's state from the state API as JSON.
pub async fn tenant_status(settings: &Settings, ctx: &str) -> anyhow::Result<()> {
    let tenant = ContextId::parse(ctx)?;
    let http = SuperOfficeHttp::from_settings(&settings.superoffice)?;
    let environment = SuperIdEnvironment::from_settings(&settings.superoffice)?;
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

/// Signs the tenant's system user token, exchanges it and validates the answer now; prints the ticket's
/// metadata. The token and serial come from the command line until the daemon reads stored ones.
pub async fn exchange(
    settings: &Settings,
    ctx: &str,
    token: &SecretString,
    serial: &str,
) -> anyhow::Result<()> {
    let tenant = ContextId::parse(ctx)?;
    let token = SystemUserToken::parse(token.expose_secret())?;
    let key = PartnerKey::from_source(&settings.superoffice.private_key_source()?)
        .context("reading the partner private key")?;
    let clients = SuperOfficeClients::from_settings(settings, Arc::new(SystemClock))?;
    let exchange = clients.exchange(Arc::new(key));
    match exchange.exchange(&tenant, &token, serial).await {
        Ok(issued) => {
            let shown = json!({
                "context_id": tenant.as_str(),
                "via": format!("{:?}", settings.superoffice.exchange).to_lowercase(),
                "issued_at": issued.issued_at.to_rfc3339(),
                "webapi_url": issued.webapi_url.as_ref().map(url::Url::as_str),
                "netserver_url": issued.netserver_url.as_ref().map(url::Url::as_str),
                "ticket_length": issued.ticket.expose().chars().count(),
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
