//! `/metrics` and `/healthz` on `service.metrics_bind`.

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use metrics_exporter_prometheus::PrometheusHandle;
use shared::db::operator::CircuitState;

use super::circuit::Circuit;

/// Starts the server; it stops when the returned handle is stopped. `/healthz` answers 200 while the
/// process lives; its `status` is `degraded`, with the reason, while the circuit is open.
pub fn start(
    bind: &str,
    handle: PrometheusHandle,
    pool: shared::db::Pool,
    circuit: Arc<Circuit>,
) -> anyhow::Result<(actix_web::dev::ServerHandle, u16)> {
    shared::metrics::serve("service.metrics_bind", bind, move |cfg| {
        let handle = handle.clone();
        let pool = pool.clone();
        let circuit = Arc::clone(&circuit);
        cfg.route(
            "/healthz",
            web::get().to(move || {
                let body = match circuit.open_reason() {
                    None => serde_json::json!({"status": "ok"}),
                    Some(reason) => serde_json::json!({
                        "status": "degraded",
                        "circuit": CircuitState::Open,
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
                let response = shared::metrics::exposition(&handle);
                async move { response }
            }),
        );
    })
}
