//! `GET /api/state/{ctx}`: the tenant status API (unauthenticated).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::context::SimContext;
use crate::modes::StateApi;

pub async fn tenant_state(ctx: web::Data<SimContext>, path: web::Path<String>) -> HttpResponse {
    let now = ctx.clock.now();
    let store = ctx.store();
    let Some(tenant) = store.tenants.get(path.as_str()) else {
        return HttpResponse::NotFound()
            .json(json!({ "Message": format!("Unknown tenant {}", path.as_str()) }));
    };
    let (state, is_running) = match store.modes.of(path.as_str()).state_api {
        StateApi::Normal => (tenant.state.name(), tenant.state.is_running()),
        StateApi::NotFound => {
            return HttpResponse::NotFound()
                .json(json!({ "Message": format!("Unknown tenant {}", path.as_str()) }));
        }
        StateApi::UnknownState => ("Hibernating", false),
    };
    let endpoint = ctx.tenant_endpoint(tenant);
    HttpResponse::Ok().json(json!({
        "ContextIdentifier": tenant.context_id,
        "Endpoint": endpoint,
        "State": state,
        "IsRunning": is_running,
        "ValidUntil": dotnet_utc(now + ctx.superid.state_valid_for),
        "Api": format!("{endpoint}/api"),
        "Version": tenant.version.version_name,
    }))
}

/// `2026-02-23T09:52:01.9342965Z`: seven fractional digits, as .NET writes UTC times.
fn dotnet_utc(t: DateTime<Utc>) -> String {
    format!(
        "{}.{:07}Z",
        t.format("%Y-%m-%dT%H:%M:%S"),
        t.timestamp_subsec_nanos() / 100
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_dotnet() {
        let t = DateTime::parse_from_rfc3339("2026-02-23T09:52:01.934296512Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(dotnet_utc(t), "2026-02-23T09:52:01.9342965Z");
    }
}
