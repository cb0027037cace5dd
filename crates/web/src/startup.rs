//! Builds the HTTP server from the configuration.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use shared::config::Settings;
use shared::db;
use tracing_actix_web::TracingLogger;

use crate::routes;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: db::Pool,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
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
        let listener = TcpListener::bind(&settings.web.bind)
            .with_context(|| format!("binding web.bind {}", settings.web.bind))?;
        let port = listener
            .local_addr()
            .context("reading the bound address")?
            .port();
        let state = AppState {
            pool,
            metrics: shared::metrics::handle(),
        };
        let server = HttpServer::new(move || {
            App::new()
                .wrap(TracingLogger::default())
                .app_data(web::Data::new(state.clone()))
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
