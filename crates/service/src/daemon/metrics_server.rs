//! `/metrics` and `/healthz` on `service.metrics_bind`.

use std::sync::Arc;

use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;

use super::circuit::Circuit;

/// Starts the server; it stops when the returned handle is stopped. `/healthz` answers 200 while the
/// process lives; its `status` is `degraded`, with the reason, while the circuit is open.
pub fn start(
    bind: &str,
    handle: PrometheusHandle,
    pool: shared::db::Pool,
    circuit: Arc<Circuit>,
) -> anyhow::Result<(actix_web::dev::ServerHandle, u16)> {
    let (listener, port) = shared::metrics::bind_listener("service.metrics_bind", bind)?;
    let server = HttpServer::new(move || {
        let handle = handle.clone();
        let pool = pool.clone();
        let circuit = Arc::clone(&circuit);
        App::new()
            .route(
                "/healthz",
                web::get().to(move || {
                    let body = match circuit.open_reason() {
                        None => serde_json::json!({"status": "ok"}),
                        Some(reason) => serde_json::json!({
                            "status": "degraded",
                            "circuit": "open",
                            "reason": reason,
                        }),
                    };
                    async move { HttpResponse::Ok().json(body) }
                }),
            )
            .route(
                "/metrics",
                web::get().to(move || {
                    // The pool's state as of this scrape.
                    shared::db::export_pool_gauges(&pool);
                    let body = handle.render();
                    async move {
                        HttpResponse::Ok()
                            .content_type("text/plain; version=0.0.4")
                            .body(body)
                    }
                }),
            )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .context("starting the metrics server")?
    .run();
    let server_handle = server.handle();
    tokio::spawn(server);
    Ok((server_handle, port))
}
