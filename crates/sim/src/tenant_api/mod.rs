//! The tenant side, served on every API host: `/{ctx}/api/...` (REST) and
//! `/{ctx}/Remote/Services88/Contact.svc` (SOAP). Paths are case-insensitive after the tenant.
//!
//! Before any route: an unknown tenant is 404, a tenant living on another host is 421
//! "Wrong subdomain used to access tenant", a tenant that is not running is 503.

pub mod auth;
pub mod contacts;
pub mod rest;
pub mod soap;

use actix_web::http::{Method, StatusCode};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::context::SimContext;
use crate::request::plain;

/// The name of the API host a listener serves.
#[derive(Debug, Clone)]
pub struct ApiHostName(pub String);

/// Routes every request on an API host.
pub async fn dispatch(
    ctx: web::Data<SimContext>,
    host: web::Data<ApiHostName>,
    req: HttpRequest,
    body: Bytes,
) -> HttpResponse {
    let segments: Vec<&str> = req.path().split('/').filter(|s| !s.is_empty()).collect();
    let Some((tenant_id, rest)) = segments.split_first() else {
        return plain(StatusCode::NOT_FOUND, "Not found");
    };
    {
        let store = ctx.store();
        let Some(tenant) = store.tenants.get(*tenant_id) else {
            return plain(
                StatusCode::NOT_FOUND,
                &format!("Unknown tenant {tenant_id}"),
            );
        };
        if tenant.host != host.0 {
            return plain(
                StatusCode::MISDIRECTED_REQUEST,
                "Wrong subdomain used to access tenant",
            );
        }
        if !tenant.state.is_running() {
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("Tenant {tenant_id} is not running (state {})", tenant.state),
            );
        }
    }
    let lower: Vec<String> = rest.iter().map(|s| s.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    let method = req.method();
    match (method, lower.as_slice()) {
        (&Method::GET, ["api"]) => rest::api_info(&ctx, tenant_id),
        (&Method::GET, ["api", "v1", "contact", "default"]) => {
            rest::default_contact(&ctx, &req, tenant_id)
        }
        (&Method::GET, ["api", "v1", "contact"]) => rest::query_contacts(&ctx, &req, tenant_id),
        (&Method::POST, ["api", "v1", "contact"]) => {
            rest::save_contact(&ctx, &req, tenant_id, &body)
        }
        (&Method::GET, ["api", "v1", "contact", id]) => {
            rest::get_contact(&ctx, &req, tenant_id, id)
        }
        (&Method::GET, ["api", "v1", "user", "currentprincipal"]) => {
            rest::current_principal(&ctx, &req, tenant_id)
        }
        (&Method::POST, ["remote", "services88", "contact.svc"]) => {
            soap::contact_service(&ctx, &req, tenant_id, &body)
        }
        _ => plain(StatusCode::NOT_FOUND, "Not found"),
    }
}
