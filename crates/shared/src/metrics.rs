//! The Prometheus recorder of a process, installed once.
//!
//! Every latency is exported as a Prometheus histogram (`_bucket`, `_sum`, `_count`), never as a summary,
//! so the figures of several instances can be added up and their quantiles computed in Prometheus with
//! `histogram_quantile`. The buckets of each histogram are chosen here, from what the value measures.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Binds the listener of a `/metrics` server at `bind`, the value of configuration key `key`; the
/// listener and the port it got (the configured one, or the one chosen for port 0).
pub fn bind_listener(key: &str, bind: &str) -> anyhow::Result<(std::net::TcpListener, u16)> {
    use anyhow::Context as _;
    let listener =
        std::net::TcpListener::bind(bind).with_context(|| format!("binding {key} {bind}"))?;
    let port = listener
        .local_addr()
        .context("reading the bound address")?
        .port();
    Ok((listener, port))
}

/// Serves the routes `routes` adds (`/metrics` and its like) on their own listener at `bind`, the value of
/// configuration key `key`: one worker, no signal handling of its own (the process stops it through the
/// returned handle). Returns the handle and the port it got.
pub fn serve<F>(
    key: &str,
    bind: &str,
    routes: F,
) -> anyhow::Result<(actix_web::dev::ServerHandle, u16)>
where
    F: Fn(&mut actix_web::web::ServiceConfig) + Clone + Send + 'static,
{
    use anyhow::Context as _;
    let (listener, port) = bind_listener(key, bind)?;
    let server =
        actix_web::HttpServer::new(move || actix_web::App::new().configure(routes.clone()))
            .workers(1)
            .disable_signals()
            .listen(listener)
            .context("starting the metrics server")?
            .run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok((handle, port))
}

/// The Prometheus text exposition of everything `handle` recorded, as a `/metrics` response.
pub fn exposition(handle: &PrometheusHandle) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(handle.render())
}

/// Creates the counter `name` at zero for each value of `label` (without a label when `label` is
/// empty: one counter per name in `values`), so dashboards and alerts see every series before its
/// first event.
pub fn register_counters(name: &'static str, label: &'static str, values: &[&'static str]) {
    for value in values {
        if label.is_empty() {
            metrics::counter!(*value).increment(0);
        } else {
            metrics::counter!(name, label => *value).increment(0);
        }
    }
}

/// How often recorded histogram samples are folded into their buckets.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Buckets, in seconds, of each histogram; a histogram not named here gets [`DEFAULT_BUCKETS`].
pub const HISTOGRAM_BUCKETS: &[(&str, &[f64])] = &[
    // One HTTP request of partner-web: pages answer in milliseconds; a sign-in callback waits on SuperID.
    (
        "partner_web_request_seconds",
        &[
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ],
    ),
    // "Create company with login user": one or two calls to the tenant's API, bounded by the HTTP timeout.
    (
        "partner_web_create_company_seconds",
        &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0],
    ),
    // A work request from queued to finished: seconds when the tenant has a ticket, up to the backoff's
    // maximum (15 minutes by default) and beyond when the tenant or SuperOffice is in trouble.
    (
        "partner_service_work_seconds",
        &[
            0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0,
        ],
    ),
    // A captured token to its first ticket: well under a second when the service is idle (BENCHMARKS.md),
    // minutes behind a backlog or a backoff.
    (
        "partner_service_capture_to_ticket_seconds",
        &[
            0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
        ],
    ),
];

/// Buckets of any other histogram: from 5 ms to 5 minutes.
pub const DEFAULT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

fn builder() -> Result<PrometheusBuilder, BuildError> {
    let mut builder = PrometheusBuilder::new().set_buckets(DEFAULT_BUCKETS)?;
    for (name, buckets) in HISTOGRAM_BUCKETS {
        builder = builder.set_buckets_for_metric(Matcher::Full((*name).to_owned()), buckets)?;
    }
    Ok(builder)
}

/// The process's Prometheus handle; the first call installs the global recorder.
///
/// The recorder keeps every histogram sample until it is folded into the histogram's buckets, which
/// happens on a scrape or an upkeep. Without a scraper the samples would pile up for the life of the
/// process, so a background thread runs the upkeep every five seconds.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = match builder() {
                Ok(builder) => builder.build_recorder(),
                Err(error) => {
                    // Only an empty bucket list fails, and the lists above are not empty.
                    tracing::warn!(%error, "histogram buckets refused; latencies are exported as summaries");
                    PrometheusBuilder::new().build_recorder()
                }
            };
            let handle = recorder.handle();
            // Fails only if another recorder is installed already; metrics then go there.
            let _ = metrics::set_global_recorder(recorder);
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(error) = spawned {
                tracing::warn!(%error, "cannot start the metrics upkeep thread; histogram samples are folded only when /metrics is scraped");
            }
            handle
        })
        .clone()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn bucket_lists_are_sorted_and_positive() {
        for (name, buckets) in HISTOGRAM_BUCKETS
            .iter()
            .copied()
            .chain([("default", DEFAULT_BUCKETS)])
        {
            assert!(!buckets.is_empty(), "{name}");
            assert!(buckets.iter().all(|b| *b > 0.0), "{name}");
            assert!(
                buckets.windows(2).all(|w| w[0] < w[1]),
                "{name} not ascending"
            );
        }
    }

    #[test]
    fn latencies_are_exported_as_histograms_with_their_buckets() {
        let recorder = builder().unwrap().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            metrics::histogram!("partner_service_work_seconds", "outcome" => "done").record(0.3);
            metrics::histogram!("some_other_seconds").record(0.02);
        });
        let text = handle.render();
        assert!(
            text.contains("# TYPE partner_service_work_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains(r#"partner_service_work_seconds_bucket{outcome="done",le="0.25"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"partner_service_work_seconds_bucket{outcome="done",le="0.5"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"partner_service_work_seconds_bucket{outcome="done",le="21600"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("# TYPE some_other_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains(r#"some_other_seconds_bucket{le="0.025"} 1"#),
            "{text}"
        );
        assert!(!text.contains("summary"), "{text}");
    }
}
