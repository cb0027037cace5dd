//! The request log: one span per request, as tracing-actix-web's default, but with the values of the
//! query string left out. The sign-in callback carries the authorization code and the state in its
//! query, and an authorization code is a credential: it must not reach the logs. The client's address is
//! `client_ip`'s: `X-Forwarded-For` counts only from `web.trusted_proxies`.

use std::fmt::Write as _;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RequestId, RootSpanBuilder};

/// Builds each request's root span with `http.target` redacted (see `redacted_target`).
pub struct RedactedRootSpan;

impl RootSpanBuilder for RedactedRootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let route = request.match_pattern().unwrap_or_else(|| "default".into());
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        let client_ip = crate::client_ip::client_ip(request.request())
            .map(|ip| ip.to_string())
            .unwrap_or_default();
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = %route,
            http.target = %redacted_target(request.uri()),
            http.client_ip = %client_ip,
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            request_id = %request_id,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// The path and the query's parameter names, each value replaced by `…`:
/// `/callback?code=…&state=…`.
pub fn redacted_target(uri: &actix_web::http::Uri) -> String {
    let mut target = uri.path().to_owned();
    if let Some(query) = uri.query().filter(|q| !q.is_empty()) {
        for (n, pair) in query.split('&').enumerate() {
            let name = pair.split_once('=').map_or(pair, |(name, _)| name);
            let _ = write!(target, "{}{name}=…", if n == 0 { '?' } else { '&' });
        }
    }
    target
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_left_out() {
        let uri: actix_web::http::Uri =
            "/callback?code=8A%3Asecret&state=abc&flag".parse().unwrap();
        assert_eq!(redacted_target(&uri), "/callback?code=…&state=…&flag=…");
        let plain: actix_web::http::Uri = "/requests/42".parse().unwrap();
        assert_eq!(redacted_target(&plain), "/requests/42");
    }
}
