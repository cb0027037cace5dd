//! Builds the HTTP server from the configuration.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_session::SessionMiddleware;
use actix_session::config::{CookieContentSecurity, PersistentSession};
use actix_session::storage::CookieSessionStore;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::Server;
use actix_web::dev::Service as _;
use actix_web::middleware::DefaultHeaders;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use secrecy::ExposeSecret;
use shared::clients::SuperOfficeClients;
use shared::clock::SystemClock;
use shared::config::Settings;
use shared::crypto::at_rest::Cipher;
use shared::db;
use shared::environment::Environment;
use tracing_actix_web::TracingLogger;

use crate::request_log::RedactedRootSpan;

use crate::routes;
use crate::routes::superoffice::limiter::NotificationLimits;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: db::Pool,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Every SuperOffice client: sign-in, the JWT validator (pinned certificate plus the JWKS that
    /// discovery names), tenant status and the tenant's REST API.
    pub clients: SuperOfficeClients,
    /// Encrypts captured system user tokens at rest.
    pub cipher: Arc<Cipher>,
    /// `superoffice.client_id`: the audience of id_tokens and (as `spn:{client_id}`) of notifications.
    pub client_id: String,
    /// `superoffice.environment`, stored with each tenant.
    pub environment: Environment,
    /// `web.legacy_sign_in`: whether `POST /callback` exists.
    pub legacy_sign_in: bool,
    /// Whether notifications must carry the audience `spn:{client_id}`.
    pub state_change_audience_required: bool,
    /// Notifications per tenant and per source address.
    pub notification_limits: Arc<NotificationLimits>,
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
        let clients = SuperOfficeClients::from_settings(&settings, Arc::new(SystemClock))
            .context("building the SuperOffice clients")?;
        let cipher = Arc::new(
            Cipher::from_settings(&settings.encryption).context("loading encryption.key")?,
        );
        let listener = TcpListener::bind(&settings.web.bind)
            .with_context(|| format!("binding web.bind {}", settings.web.bind))?;
        let port = listener
            .local_addr()
            .context("reading the bound address")?
            .port();
        let state = AppState {
            pool,
            metrics: shared::metrics::handle(),
            clients,
            cipher,
            client_id: settings.superoffice.client_id.clone(),
            environment: settings.superoffice.environment,
            legacy_sign_in: settings.web.legacy_sign_in,
            state_change_audience_required: settings.superoffice.state_change_audience_required(),
            notification_limits: Arc::new(NotificationLimits::new(
                settings.web.state_change_limit_per_tenant,
                settings.web.state_change_limit_per_address,
            )),
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
                .wrap_fn(|request, service| {
                    // Latency per route pattern (never the raw path: ids would explode the label set).
                    let route = request
                        .match_pattern()
                        .unwrap_or_else(|| "unmatched".to_owned());
                    let method = request.method().to_string();
                    let started = std::time::Instant::now();
                    let response = service.call(request);
                    async move {
                        let response = response.await?;
                        metrics::histogram!(
                            "partner_web_request_seconds",
                            "route" => route,
                            "method" => method,
                            "status" => response.status().as_u16().to_string()
                        )
                        .record(started.elapsed().as_secs_f64());
                        Ok(response)
                    }
                })
                .wrap(TracingLogger::<RedactedRootSpan>::new())
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
