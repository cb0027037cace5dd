//! Tenant state-change notifications POSTed to each installed application's `state_change_url`.

use serde_json::{Value, json};

use crate::claims::{SUPEROFFICE_ISSUER, claim};
use crate::context::SimContext;
use crate::store::NotificationRecord;

/// `ChangeType` values of the notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    Upgrade = 0,
    BackupRestored = 1,
    Suspend = 2,
    Resume = 3,
    Delete = 4,
    Move = 5,
}

/// Notifies every application installed on the tenant that has a `state_change_url`, and records
/// each delivery. Failures are recorded, never returned.
pub async fn notify(
    ctx: &SimContext,
    context_id: &str,
    change: ChangeType,
    public_endpoint: Option<String>,
) -> Vec<NotificationRecord> {
    let now = ctx.clock.now();
    let deliveries: Vec<(String, String, Value)> = {
        let store = ctx.store();
        let Some(tenant) = store.tenants.get(context_id) else {
            return Vec::new();
        };
        tenant
            .grants
            .keys()
            .filter_map(|client_id| {
                let app = ctx.application(client_id)?;
                let url = app.state_change_url.clone()?;
                let iat = now.timestamp();
                let token = store
                    .signing_key
                    .sign(&json!({
                        "sub": context_id,
                        claim("ctx"): context_id,
                        "iss": SUPEROFFICE_ISSUER,
                        "aud": format!("spn:{client_id}"),
                        "iat": iat,
                        "nbf": iat,
                        "exp": iat + 300,
                    }))
                    .ok()?;
                let mut body = json!({
                    "ChangeType": change as u8,
                    "ContextIdentifier": context_id,
                    "VersionName": tenant.version.version_name,
                    "FileVersion": tenant.version.file_version,
                    "Token": token,
                });
                if let Some(endpoint) = &public_endpoint {
                    body["PublicEndpoint"] = json!(endpoint);
                }
                Some((client_id.clone(), url, body))
            })
            .collect()
    };
    let mut records = Vec::new();
    for (client_id, url, body) in deliveries {
        let result = ctx.http.post(&url).json(&body).send().await;
        let (delivered, status, error) = match result {
            Ok(response) => {
                let status = response.status();
                let error = (!status.is_success()).then(|| format!("HTTP {status}"));
                (status.is_success(), Some(status.as_u16()), error)
            }
            Err(e) => (false, None, Some(e.to_string())),
        };
        tracing::info!(tenant = context_id, %url, delivered, "state-change notification");
        records.push(NotificationRecord {
            at: now,
            context_id: context_id.to_owned(),
            client_id,
            url,
            change_type: change as u8,
            delivered,
            status,
            error,
        });
    }
    ctx.store()
        .records
        .notifications
        .extend(records.iter().cloned());
    records
}
