//! Builds the HTTP server from the configuration.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_session::SessionMiddleware;
use actix_session::config::{BrowserSession, CookieContentSecurity};
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::Service as _;
use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::DefaultHeaders;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::ExposeSecret;
use shared::clients::SuperOfficeClients;
use shared::clock::SystemClock;
use shared::config::Settings;
use shared::crypto::at_rest::Cipher;
use shared::db;
use shared::db::sessions::Lifetime;
use shared::db::work_limits::WorkLimits;
use tracing_actix_web::TracingLogger;

use crate::request_log::RedactedRootSpan;
use crate::session_store::PgSessionStore;

use crate::limiter::NotificationLimits;
use crate::routes;
use crate::state::AppState;

/// The running server: bound, not yet awaited.
pub struct Application {
    port: u16,
    metrics_port: u16,
    server: Server,
    metrics: ServerHandle,
}

/// The name of the session cookie. `__Host-` makes browsers insist on Secure, path `/` and no domain, so
/// neither a sibling domain nor plain http can set or shadow it; browsers refuse the prefix without Secure.
pub fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-partner_session"
    } else {
        "partner_session"
    }
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
        let metrics_handle = shared::metrics::handle();
        register_metrics();
        let (metrics, metrics_port) =
            start_metrics_server(&settings.web.metrics_bind, metrics_handle, pool.clone())?;
        let lifetime = Lifetime {
            idle: settings.web.session_idle(),
            max_age: settings.web.session_max_age(),
        };
        let store = PgSessionStore::new(pool.clone(), Arc::clone(&cipher), lifetime);
        store.clone().spawn_purge();
        let state = AppState {
            pool,
            clients,
            cipher,
            client_id: settings.superoffice.application.client_id.clone(),
            environment: settings.superoffice.superid.environment,
            system_user_actions: settings.web.system_user_actions,
            work_limits: WorkLimits {
                per_user_per_minute: settings.web.work_per_user_per_minute,
                per_tenant_per_minute: settings.web.work_per_tenant_per_minute,
                open_per_tenant: settings.web.open_work_per_tenant,
            },
            trusted_proxies: Arc::new(settings.web.trusted_proxies.clone()),
            legacy_sign_in: settings.web.legacy_sign_in,
            state_change_audience_required: settings.superoffice.state_change_audience_required(),
            notification_limits: Arc::new(NotificationLimits::new(
                settings.web.state_change_limit_per_tenant,
                settings.web.state_change_limit_per_address,
            )),
            operators: Arc::new(settings.web.operators.clone()),
        };
        // The cookie carries only the session's random id, signed so a forged one is dropped unread.
        let session_key = Key::from(settings.web.session_key()?.expose_secret());
        let secure = settings.web.secure_cookies;
        let server = HttpServer::new(move || {
            let sessions = SessionMiddleware::builder(store.clone(), session_key.clone())
                .cookie_name(session_cookie_name(secure).to_owned())
                .cookie_secure(secure)
                .cookie_http_only(true)
                .cookie_same_site(SameSite::Lax)
                .cookie_path("/".to_owned())
                .cookie_domain(None)
                .cookie_content_security(CookieContentSecurity::Signed)
                .session_lifecycle(BrowserSession::default())
                .build();
            App::new()
                .wrap(security_headers(secure))
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
                .configure(routes::configure_probes)
                .service(web::scope("").wrap(sessions).configure(routes::configure))
        })
        .shutdown_timeout(Duration::from_secs(10).as_secs())
        .listen(listener)
        .context("starting the HTTP server")?
        .run();
        tracing::info!(port, metrics_port, public_url = %settings.web.public_url, "partner-web listening");
        Ok(Self {
            port,
            metrics_port,
            server,
            metrics,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of `/metrics` (`web.metrics_bind`).
    pub fn metrics_port(&self) -> u16 {
        self.metrics_port
    }

    /// Serves until SIGTERM or SIGINT, then stops accepting and drains requests in flight.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        self.metrics.stop(true).await;
        served
    }
}

/// Exports the counters whose label sets are known at 0 from the start, so rates and ratios (and the
/// shipped dashboard and alerts) see a series before its first event.
fn register_metrics() {
    use shared::metrics::register_counters;
    register_counters(
        "partner_web_sign_ins_total",
        "outcome",
        &["started", "succeeded", "failed", "legacy_disabled"],
    );
    register_counters(
        "partner_web_work_refused_total",
        "reason",
        &["not_allowed", "limit"],
    );
    register_counters(
        "partner_web_state_changes_refused_total",
        "status",
        &["400", "401", "413", "415", "429", "503"],
    );
    register_counters(
        "",
        "",
        &[
            "partner_web_work_queued_total",
            "partner_web_csrf_rejected_total",
        ],
    );
}

/// How long a scrape waits for the database before `partner_web_ready` says 0.
const READY_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// `/metrics` on its own listener, so the public port never shows them. Each scrape first checks what
/// `/readyz` checks (`partner_web_ready`, 1 or 0) and reads the database pool's state, so both are as
/// fresh as the scrape.
fn start_metrics_server(
    bind: &str,
    handle: PrometheusHandle,
    pool: db::Pool,
) -> anyhow::Result<(ServerHandle, u16)> {
    shared::metrics::serve("web.metrics_bind", bind, move |cfg| {
        let handle = handle.clone();
        let pool = pool.clone();
        cfg.route(
            "/metrics",
            web::get().to(move || {
                let handle = handle.clone();
                let pool = pool.clone();
                async move {
                    let ready = matches!(
                        tokio::time::timeout(READY_CHECK_TIMEOUT, db::ping(&pool)).await,
                        Ok(Ok(()))
                    );
                    metrics::gauge!("partner_web_ready").set(if ready { 1.0 } else { 0.0 });
                    db::export_pool_gauges(&pool);
                    shared::metrics::exposition(&handle)
                }
            }),
        );
    })
}

/// Headers on every response: no framing, no sniffing, no referrer leaks, scripts only from here; with
/// Secure cookies (so the site is served over https) browsers are told to use https only.
fn security_headers(secure: bool) -> DefaultHeaders {
    let headers = if secure {
        DefaultHeaders::new().add((
            "Strict-Transport-Security",
            "max-age=31536000; includeSubDomains",
        ))
    } else {
        DefaultHeaders::new()
    };
    headers
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "no-referrer"))
        .add((
            "Content-Security-Policy",
            "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .add(("Cache-Control", "no-store"))
}
