//! The SuperID side: OpenID Connect discovery, authorize (with the sign-in page), tokens and JWKS.

pub mod authorize;
pub mod discovery;
pub mod jwks;
pub mod token;

use actix_web::web;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        discovery::PATH,
        web::get().to(discovery::openid_configuration),
    )
    .route(jwks::PATH, web::get().to(jwks::jwks))
    .route(authorize::PATH, web::get().to(authorize::show_sign_in))
    .route(authorize::PATH, web::post().to(authorize::sign_in))
    .route(token::PATH, web::post().to(token::tokens));
}
