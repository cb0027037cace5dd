//! The one HTTP client of a process, the per-tenant rate limiter and the retry policy, shared by every
//! SuperOffice client (SuperID sign-in and exchange, tenant status, tenant REST and SOAP).
//!
//! Timeouts are always set (connect and total, from `superoffice.http_timeout_secs`); redirects are not
//! followed, so the `SO-AppToken` header never reaches another host. Retries with exponential backoff and
//! jitter are for operations that are safe to repeat only: the callers decide (GETs, the state API,
//! discovery), never a company save or a ticket exchange.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::domain::ContextId;

/// Sent with every request, so SuperOffice's operators can tell who is calling.
pub const USER_AGENT: &str = concat!(
    "superoffice-partner-integration/",
    env!("CARGO_PKG_VERSION")
);

/// The largest response body read from SuperOffice; anything larger is refused.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The connect timeout never exceeds this, even with a long total timeout.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client for SuperOffice: {0}")]
pub struct ClientBuildError(String);

/// Why a request got no usable answer. None of these carries a header or a body, so none carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error(
        "{what}: no answer within the timeout; SuperOffice is slow or unreachable, try again later"
    )]
    Timeout { what: &'static str },
    #[error(
        "{what}: cannot connect ({reason}); check the network and the configured URL, try again later"
    )]
    Connect { what: &'static str, reason: String },
    #[error("{what}: the connection failed or the body was cut short ({reason}); try again later")]
    Interrupted { what: &'static str, reason: String },
    #[error("{what}: the response body is larger than {cap} bytes and was refused")]
    TooLarge { what: &'static str, cap: usize },
}

impl TransportError {
    /// Classifies a reqwest error for the operation `what`.
    pub fn from_reqwest(what: &'static str, error: reqwest::Error) -> Self {
        if error.is_timeout() {
            Self::Timeout { what }
        } else if error.is_connect() {
            Self::Connect {
                what,
                reason: describe(error),
            }
        } else {
            Self::Interrupted {
                what,
                reason: describe(error),
            }
        }
    }

    /// A timeout, a refused connection or a cut body may go away; an oversized body will not.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::TooLarge { .. })
    }
}

/// The message of a reqwest error and its sources, without the URL (callers log the operation instead).
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// Whether an HTTP status says "not now" rather than "no": 5xx, 408 Request Timeout, 429 Too Many Requests.
pub fn is_transient_status(status: u16) -> bool {
    status >= 500 || status == 408 || status == 429
}

/// A message from SuperOffice, shortened to 500 characters, with any of our secrets it might echo
/// replaced by `[REDACTED]`, so it can be logged and put in an error.
pub(crate) fn scrub(message: &str, secrets: &[&str]) -> String {
    let mut text: String = message.trim().chars().take(500).collect();
    for secret in secrets {
        if secret.len() >= 4 {
            text = text.replace(secret, "[REDACTED]");
        }
    }
    text
}

/// Reads a response body of at most `cap` bytes. A body cut short is an `Interrupted` error.
pub async fn read_body(
    what: &'static str,
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, TransportError> {
    if response
        .content_length()
        .is_some_and(|length| length > cap as u64)
    {
        return Err(TransportError::TooLarge { what, cap });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| TransportError::from_reqwest(what, e))?
    {
        if body.len() + chunk.len() > cap {
            return Err(TransportError::TooLarge { what, cap });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// An answer read whole. No `Debug`: the body may carry a token.
pub struct Answer {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    /// At most `MAX_BODY_BYTES`.
    pub body: Vec<u8>,
}

/// Sends a request and reads its answer whole (see `send` and `read_body`).
pub async fn fetch(
    what: &'static str,
    request: reqwest::RequestBuilder,
) -> Result<Answer, TransportError> {
    let response = send(what, request).await?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = read_body(what, response, MAX_BODY_BYTES).await?;
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// Sends a request, classifying failures as `TransportError`s.
pub async fn send(
    what: &'static str,
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, TransportError> {
    request
        .send()
        .await
        .map_err(|e| TransportError::from_reqwest(what, e))
}

/// Builds the process's HTTP client: connect and total timeouts, a user agent, no redirects.
pub fn build_client(timeout: Duration) -> Result<reqwest::Client, ClientBuildError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(MAX_CONNECT_TIMEOUT))
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ClientBuildError(describe(e)))
}

/// Everything the SuperOffice clients share: the client, the per-tenant limiter and the retry policy.
/// Cheap to clone; build one per process.
#[derive(Debug, Clone)]
pub struct SuperOfficeHttp {
    client: reqwest::Client,
    limiter: Arc<TenantRateLimiter>,
    retry: RetryPolicy,
}

impl SuperOfficeHttp {
    pub fn new(client: reqwest::Client, limiter: TenantRateLimiter, retry: RetryPolicy) -> Self {
        Self {
            client,
            limiter: Arc::new(limiter),
            retry,
        }
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// Waits until a request to this tenant is allowed.
    pub async fn throttle(&self, tenant: &ContextId) {
        self.limiter.acquire(tenant).await;
    }
}

/// A token bucket per tenant: at most `rate` requests per second with bursts of `rate`. Callers wait
/// for their turn rather than fail; turns are handed out in the order they were asked for.
#[derive(Debug)]
pub struct TenantRateLimiter {
    rate: f64,
    buckets: Mutex<HashMap<ContextId, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Tokens available at `at`; negative when callers are already queued for future tokens.
    tokens: f64,
    at: Instant,
}

/// Buckets idle this long are full again and are dropped, so the map stays small.
const BUCKET_IDLE: Duration = Duration::from_secs(60);
const BUCKET_PRUNE_ABOVE: usize = 1024;

impl TenantRateLimiter {
    /// `per_second` of 0 is treated as 1 (the configuration refuses 0).
    pub fn new(per_second: u32) -> Self {
        Self {
            rate: f64::from(per_second.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `tenant`, waiting for it if the bucket is empty.
    pub async fn acquire(&self, tenant: &ContextId) {
        let wait = self.reserve(tenant, Instant::now());
        if !wait.is_zero() {
            tracing::debug!(tenant = %tenant, wait_ms = wait.as_millis() as u64, "rate limited");
            tokio::time::sleep(wait).await;
        }
    }

    /// Reserves the next token and says how long to wait for it.
    fn reserve(&self, tenant: &ContextId, now: Instant) -> Duration {
        let mut buckets = match self.buckets.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if buckets.len() > BUCKET_PRUNE_ABOVE {
            buckets.retain(|_, bucket| now.duration_since(bucket.at) < BUCKET_IDLE);
        }
        let bucket = buckets.entry(tenant.clone()).or_insert(Bucket {
            tokens: self.rate,
            at: now,
        });
        let elapsed = now.duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.rate) - 1.0;
        bucket.at = now;
        if bucket.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-bucket.tokens / self.rate)
        }
    }
}

/// Whether an error may go away when the same request is sent again.
pub trait Retryable {
    fn is_retryable(&self) -> bool;
}

/// Exponential backoff with full jitter, for operations that are safe to repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 means no retry.
    pub attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// One attempt only.
    pub const NONE: Self = Self {
        attempts: 1,
        base_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
    };

    /// This policy for an operation that is safe to repeat, `NONE` for one that is not.
    pub fn if_repeatable(self, repeatable: bool) -> Self {
        if repeatable { self } else { Self::NONE }
    }

    /// The pause before retry number `retry` (1-based): a random duration up to `base · 2^(retry-1)`,
    /// capped at `max_delay`.
    pub fn delay(&self, retry: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
            .min(self.max_delay);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        if millis == 0 {
            return Duration::ZERO;
        }
        Duration::from_millis(rand::random_range(millis / 2..=millis))
    }

    /// Runs `operation` until it succeeds, fails with an error that is not retryable, or the attempts
    /// are used up. Use only for operations that are safe to repeat.
    pub async fn run<T, E, F, Fut>(&self, what: &'static str, operation: F) -> Result<T, E>
    where
        E: Retryable + std::fmt::Display,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.run_while(what, operation, E::is_retryable).await
    }

    /// As `run`, retrying only the errors `retry` accepts.
    pub async fn run_while<T, E, F, Fut, R>(
        &self,
        what: &'static str,
        mut operation: F,
        retry: R,
    ) -> Result<T, E>
    where
        E: std::fmt::Display,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        R: Fn(&E) -> bool,
    {
        let mut attempt = 1;
        loop {
            match operation().await {
                Ok(value) => return Ok(value),
                Err(error) if retry(&error) && attempt < self.attempts => {
                    let delay = self.delay(attempt);
                    tracing::warn!(
                        operation = what,
                        attempt,
                        delay_ms = delay.as_millis() as u64,
                        error = %error,
                        "retrying"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn ctx(value: &str) -> ContextId {
        ContextId::parse(value).unwrap()
    }

    /// A local server answering `GET /answer` with `answer`.
    async fn answering(answer: wiremock::ResponseTemplate) -> wiremock::MockServer {
        let server = wiremock::MockServer::start().await;
        wiremock::Mock::given(wiremock::matchers::path("/answer"))
            .respond_with(answer)
            .mount(&server)
            .await;
        server
    }

    #[tokio::test]
    async fn fetch_reads_the_status_headers_and_body_whole() {
        let server = answering(
            wiremock::ResponseTemplate::new(418)
                .insert_header("x-served-by", "teapot")
                .set_body_string("short and stout"),
        )
        .await;
        let client = build_client(Duration::from_secs(5)).unwrap();
        let request = client.get(format!("{}/answer", server.uri()));
        let Ok(answer) = fetch("the test call", request).await else {
            panic!("the answer was not read");
        };
        assert_eq!(answer.status, reqwest::StatusCode::IM_A_TEAPOT);
        assert_eq!(answer.headers["x-served-by"], "teapot");
        assert_eq!(answer.body, b"short and stout");
    }

    #[tokio::test]
    async fn fetch_refuses_a_body_over_the_limit_and_names_the_call() {
        let server =
            answering(
                wiremock::ResponseTemplate::new(200).set_body_bytes(vec![b'x'; MAX_BODY_BYTES + 1]),
            )
            .await;
        let client = build_client(Duration::from_secs(5)).unwrap();
        let request = client.get(format!("{}/answer", server.uri()));
        let Err(error) = fetch("the test call", request).await else {
            panic!("a body over the limit was accepted");
        };
        assert!(
            matches!(
                error,
                TransportError::TooLarge {
                    what: "the test call",
                    cap: MAX_BODY_BYTES
                }
            ),
            "{error}"
        );
        assert!(!error.is_retryable(), "{error}");
    }

    #[test]
    fn bucket_allows_a_burst_then_spaces_requests() {
        let limiter = TenantRateLimiter::new(10);
        let now = Instant::now();
        let tenant = ctx("Cust1");
        for _ in 0..10 {
            assert_eq!(limiter.reserve(&tenant, now), Duration::ZERO);
        }
        let eleventh = limiter.reserve(&tenant, now);
        let twelfth = limiter.reserve(&tenant, now);
        assert!((eleventh.as_secs_f64() - 0.1).abs() < 1e-6, "{eleventh:?}");
        assert!((twelfth.as_secs_f64() - 0.2).abs() < 1e-6, "{twelfth:?}");
        // Another tenant has its own bucket.
        assert_eq!(limiter.reserve(&ctx("Cust2"), now), Duration::ZERO);
        // A second later the first tenant has refilled (minus what was queued).
        let later = now + Duration::from_secs(2);
        assert_eq!(limiter.reserve(&tenant, later), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_waits_instead_of_failing() {
        let limiter = TenantRateLimiter::new(5);
        let tenant = ctx("Cust9");
        let start = Instant::now();
        for _ in 0..15 {
            limiter.acquire(&tenant).await;
        }
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(1990) && elapsed < Duration::from_millis(2100),
            "{elapsed:?}"
        );
    }

    #[test]
    fn echoed_secrets_are_scrubbed() {
        let message = scrub(
            "bad token My App-abc.202601011200.c2ln for app-secret",
            &["My App-abc.202601011200.c2ln", "app-secret", ""],
        );
        assert_eq!(message, "bad token [REDACTED] for [REDACTED]");
        assert_eq!(scrub(&"x".repeat(900), &[]).len(), 500);
    }

    #[test]
    fn delays_grow_and_are_capped() {
        let policy = RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
        };
        for _ in 0..50 {
            let first = policy.delay(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = policy.delay(3);
            assert!(third >= Duration::from_millis(150) && third <= Duration::from_millis(300));
            assert!(policy.delay(30) <= Duration::from_millis(300));
        }
        assert_eq!(RetryPolicy::NONE.delay(1), Duration::ZERO);
        let policy = RetryPolicy::default();
        assert_eq!(policy.if_repeatable(true), policy);
        assert_eq!(policy.if_repeatable(false), RetryPolicy::NONE);
    }

    #[derive(Debug)]
    struct Flaky(bool);
    impl std::fmt::Display for Flaky {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "flaky({})", self.0)
        }
    }
    impl Retryable for Flaky {
        fn is_retryable(&self) -> bool {
            self.0
        }
    }

    /// Runs `outcome` (given the attempt's index from 0) under the default policy: the result and the
    /// number of attempts made.
    async fn run_counted(outcome: fn(u32) -> Result<u32, Flaky>) -> (Result<u32, Flaky>, u32) {
        let calls = AtomicU32::new(0);
        let result = RetryPolicy::default()
            .run("test", || {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move { outcome(n) }
            })
            .await;
        (result, calls.load(Ordering::SeqCst))
    }

    #[tokio::test(start_paused = true)]
    async fn retries_only_retryable_errors_up_to_the_limit() {
        let (result, calls) = run_counted(|_| Err(Flaky(true))).await;
        assert!(result.is_err());
        assert_eq!(calls, 3, "a retryable error is tried up to the limit");

        let (result, calls) = run_counted(|_| Err(Flaky(false))).await;
        assert!(result.is_err());
        assert_eq!(calls, 1, "a permanent error is not repeated");

        let (result, calls) = run_counted(|n| if n == 0 { Err(Flaky(true)) } else { Ok(n) }).await;
        assert_eq!(result.unwrap(), 1);
        assert_eq!(calls, 2, "a success ends the retries");
    }
}
