//! Routes, one module per area, each page's template beside it.

pub mod companies;
pub mod health;
pub mod home;
pub mod logout;
pub mod operator;
pub mod signin;
pub mod superoffice;
pub mod tenant;
pub mod views;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home::get))
        .route("/tenant", web::get().to(tenant::get))
        .route("/logout", web::post().to(logout::post))
        .route("/login", web::get().to(signin::login))
        .route("/callback", web::get().to(signin::callback_get))
        .route("/callback", web::post().to(signin::callback_post))
        .route(
            "/companies/as-user",
            web::post().to(companies::post_as_user),
        )
        .route(
            "/companies/as-system-user",
            web::post().to(companies::post_as_system_user),
        )
        .route(
            "/companies/requests/{id}",
            web::get().to(companies::get_request),
        )
        .route(
            "/superoffice/state-change",
            web::post().to(superoffice::state_change::post),
        )
        .configure(operator::configure);
}

/// Liveness and readiness: served without the session middleware, so they answer (and readiness says 503)
/// while the database that holds the sessions is down.
pub fn configure_probes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz));
}
