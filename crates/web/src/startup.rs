//! Builds the HTTP server from the configuration.

use std::net::TcpListener;
use std::time::Duration;

use actix_session::SessionMiddleware;
use actix_session::config::{CookieContentSecurity, PersistentSession};
use actix_session::storage::CookieSessionStore;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::Server;
use actix_web::middleware::DefaultHeaders;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use secrecy::ExposeSecret;
use shared::config::{Settings, SuperOfficeSettings};
use shared::db;
use shared::jwt::JwtValidator;
use tracing_actix_web::TracingLogger;

use crate::{routes, superid};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: db::Pool,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Checks every SuperOffice JWT the web receives (pinned certificate plus SuperID's JWKS).
    pub jwt: JwtValidator,
    /// `superoffice.client_id`: the audience of id_tokens and (as `spn:{client_id}`) of notifications.
    pub client_id: String,
}

/// The running server: bound, not yet awaited.
pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Validates what partner-web needs, binds `web.bind` (port 0 picks a free port) and builds the server.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.require_web()?;
        let pool = db::pool(&settings.database).context("building the database pool")?;
        let http = http_client(&settings.superoffice)?;
        let jwt = superid::jwt_validator(&settings.superoffice, &http)
            .context("building the JWT validator")?;
        let listener = TcpListener::bind(&settings.web.bind)
            .with_context(|| format!("binding web.bind {}", settings.web.bind))?;
        let port = listener
            .local_addr()
            .context("reading the bound address")?
            .port();
        let state = AppState {
            pool,
            metrics: shared::metrics::handle(),
            jwt,
            client_id: settings.superoffice.client_id.clone(),
        };
        let session_key = Key::from(settings.web.session_key()?.expose_secret());
        let secure = settings.web.secure_cookies;
        let session_ttl = actix_web::cookie::time::Duration::minutes(
            i64::try_from(settings.web.session_minutes).unwrap_or(60),
        );
        let server = HttpServer::new(move || {
            let sessions =
                SessionMiddleware::builder(CookieSessionStore::default(), session_key.clone())
                    .cookie_name("partner_session".to_owned())
                    .cookie_secure(secure)
                    .cookie_http_only(true)
                    .cookie_same_site(SameSite::Lax)
                    .cookie_content_security(CookieContentSecurity::Private)
                    .session_lifecycle(PersistentSession::default().session_ttl(session_ttl))
                    .build();
            App::new()
                .wrap(sessions)
                .wrap(security_headers())
                .wrap(TracingLogger::default())
                .app_data(web::Data::new(state.clone()))
                .app_data(web::FormConfig::default().limit(16 * 1024))
                .app_data(web::JsonConfig::default().limit(64 * 1024))
                .configure(routes::configure)
        })
        .shutdown_timeout(Duration::from_secs(10).as_secs())
        .listen(listener)
        .context("starting the HTTP server")?
        .run();
        tracing::info!(port, public_url = %settings.web.public_url, "partner-web listening");
        Ok(Self { port, server })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM or SIGINT, then stops accepting and drains requests in flight.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// The process's one HTTP client for SuperOffice, with `superoffice.http_timeout_secs` on every call.
fn http_client(settings: &SuperOfficeSettings) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(settings.http_timeout())
        .connect_timeout(settings.http_timeout())
        .user_agent(concat!("partner-web/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the HTTP client")
}

/// Headers on every response: no framing, no sniffing, no referrer leaks, scripts only from here.
fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "no-referrer"))
        .add((
            "Content-Security-Policy",
            "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .add(("Cache-Control", "no-store"))
}
