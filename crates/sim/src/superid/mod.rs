//! The SuperID side: OpenID Connect discovery, authorize (with the sign-in page), tokens and JWKS.

pub mod authorize;
pub mod discovery;
pub mod jwks;
pub mod token;

use actix_web::web;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/login/.well-known/openid-configuration",
        web::get().to(discovery::openid_configuration),
    )
    .route("/login/.well-known/jwks", web::get().to(jwks::jwks))
    .route(
        "/login/{tenant}/oauth/authorize",
        web::get().to(authorize::show_sign_in),
    )
    .route(
        "/login/{tenant}/oauth/authorize",
        web::post().to(authorize::sign_in),
    )
    .route("/login/common/oauth/tokens", web::post().to(token::tokens));
}
