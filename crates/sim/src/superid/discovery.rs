//! `GET /login/.well-known/openid-configuration`.
//!
//! `issuer` and `authorization_endpoint` use the configured public URL (what a browser reaches).
//! `token_endpoint` and `jwks_uri` are built from the request's own scheme and Host, so a client in a
//! container that reached the simulator under another name keeps using that name for back-channel calls.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::{jwks, token};
use crate::context::SimContext;

pub const PATH: &str = "/login/.well-known/openid-configuration";

pub async fn openid_configuration(ctx: web::Data<SimContext>, req: HttpRequest) -> HttpResponse {
    ctx.store().records.superid.fetches.discovery += 1;
    let issuer = &ctx.superid.url;
    let info = req.connection_info();
    let base = format!("{}://{}", info.scheme(), info.host());
    HttpResponse::Ok().json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/login/common/oauth/authorize"),
        "token_endpoint": format!("{base}{}", token::PATH),
        "jwks_uri": format!("{base}{}", jwks::PATH),
        "scopes_supported": ["openid"],
        "response_modes_supported": ["form_post", "fragment", "query"],
        "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "grant_types_supported": ["implicit", "authorization_code", "refresh_token"],
    }))
}
