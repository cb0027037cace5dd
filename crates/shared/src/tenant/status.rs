//! The tenant status API (protocol §7.1): `GET {superid}/api/state/{ctx}`, no authentication. It says
//! where the tenant lives now (`Endpoint`, `Api`: these hosts move) and whether work may be done
//! (`IsRunning`). Answers are cached per tenant until their `ValidUntil`, clamped to at most an hour.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;

use crate::clock::Clock;
use crate::domain::ContextId;
use crate::environment::{Environment, SuperIdEnvironment};
use crate::http::{self, Retryable, SuperOfficeHttp, TransportError, is_transient_status};

const WHAT: &str = "tenant status";

/// Longest time an answer is used, whatever its `ValidUntil` says.
pub const MAX_CACHE: Duration = Duration::from_secs(3600);
/// Shortest time an answer is used, so a `ValidUntil` in the past does not mean a request per call.
pub const MIN_CACHE: Duration = Duration::from_secs(10);
/// Most answers kept at once. Above it, expired answers are dropped, and if half of the limit is
/// still held, all of them: a tenant asked for again then costs one more request, and the memory of
/// a process serving 100,000 tenants stays flat instead of holding an answer for each of them.
pub const MAX_CACHED: usize = 8192;

/// A tenant's state as the state API names it (protocol §7.1). `Unknown` holds anything else,
/// including SuperOffice's own `Unknown`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantRunState {
    Provisioning,
    Running,
    Deleted,
    Suspended,
    OnlineMaintenance,
    OfflineMaintenance,
    ProvisioningFailed,
    Deleting,
    DeleteFailed,
    MigrationPending,
    Unknown(String),
}

impl TenantRunState {
    pub fn parse(name: &str) -> Self {
        match name.trim() {
            "Provisioning" => Self::Provisioning,
            "Running" => Self::Running,
            "Deleted" => Self::Deleted,
            "Suspended" => Self::Suspended,
            "OnlineMaintenance" => Self::OnlineMaintenance,
            "OfflineMaintenance" => Self::OfflineMaintenance,
            "ProvisioningFailed" => Self::ProvisioningFailed,
            "Deleting" => Self::Deleting,
            "DeleteFailed" => Self::DeleteFailed,
            "MigrationPending" => Self::MigrationPending,
            other => Self::Unknown(other.chars().take(64).collect()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Provisioning => "Provisioning",
            Self::Running => "Running",
            Self::Deleted => "Deleted",
            Self::Suspended => "Suspended",
            Self::OnlineMaintenance => "OnlineMaintenance",
            Self::OfflineMaintenance => "OfflineMaintenance",
            Self::ProvisioningFailed => "ProvisioningFailed",
            Self::Deleting => "Deleting",
            Self::DeleteFailed => "DeleteFailed",
            Self::MigrationPending => "MigrationPending",
            Self::Unknown(name) => name,
        }
    }
}

impl fmt::Display for TenantRunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One answer of the state API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantStatus {
    pub context_id: ContextId,
    /// The tenant's current host and path, e.g. `https://online2.superoffice.com/Cust12345`.
    pub endpoint: Option<Url>,
    pub state: TenantRunState,
    /// Whether work may be done now (true for `Running` and `OnlineMaintenance`).
    pub is_running: bool,
    /// When to ask again.
    pub valid_until: Option<DateTime<Utc>>,
    /// The REST base, e.g. `https://online2.superoffice.com/Cust12345/api`.
    pub api: Option<Url>,
    pub version: Option<String>,
}

/// Why the state API gave no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(
        "tenant {0} is unknown to SuperOffice (state API answered 404); check the context identifier"
    )]
    UnknownTenant(ContextId),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("the state API answered HTTP {status} for tenant {tenant}; try again later")]
    Status { tenant: ContextId, status: u16 },
    #[error("the state API's answer for tenant {tenant} cannot be read: {reason}")]
    Invalid { tenant: ContextId, reason: String },
    #[error(
        "the state API places tenant {tenant} on {url}, which is not an allowed tenant host \
         (https under superoffice.com, or superoffice.allowed_tenant_hosts for `custom`); nothing is sent there"
    )]
    HostNotAllowed { tenant: ContextId, url: String },
}

impl Retryable for StatusError {
    fn is_retryable(&self) -> bool {
        match self {
            Self::UnknownTenant(_) | Self::HostNotAllowed { .. } => false,
            Self::Transport(e) => e.is_retryable(),
            Self::Status { status, .. } => is_transient_status(*status),
            Self::Invalid { .. } => true,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StateBody {
    context_identifier: Option<String>,
    endpoint: Option<String>,
    state: Option<String>,
    #[serde(default)]
    is_running: bool,
    valid_until: Option<String>,
    api: Option<String>,
    version: Option<String>,
}

/// Reads `ValidUntil`: RFC 3339 (`2026-02-23T09:52:01.9342965Z`), or the same without an offset, as UTC.
fn parse_valid_until(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|t| t.and_utc())
        })
}

/// A URL from the answer; an empty string is no URL.
fn parse_url(
    tenant: &ContextId,
    field: &str,
    value: Option<String>,
) -> Result<Option<Url>, StatusError> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => Url::parse(text)
            .map(Some)
            .map_err(|e| StatusError::Invalid {
                tenant: tenant.clone(),
                reason: format!("{field} is not a URL: {e}"),
            }),
    }
}

fn parse_status(tenant: &ContextId, body: &[u8]) -> Result<TenantStatus, StatusError> {
    let body: StateBody = serde_json::from_slice(body).map_err(|e| StatusError::Invalid {
        tenant: tenant.clone(),
        reason: e.to_string(),
    })?;
    if let Some(answered) = body.context_identifier.as_deref()
        && !answered.trim().eq_ignore_ascii_case(tenant.as_str())
    {
        return Err(StatusError::Invalid {
            tenant: tenant.clone(),
            reason: format!(
                "it is about another tenant ({})",
                answered.chars().take(20).collect::<String>()
            ),
        });
    }
    Ok(TenantStatus {
        context_id: tenant.clone(),
        endpoint: parse_url(tenant, "Endpoint", body.endpoint)?,
        state: TenantRunState::parse(body.state.as_deref().unwrap_or("Unknown")),
        is_running: body.is_running,
        valid_until: body.valid_until.as_deref().and_then(parse_valid_until),
        api: parse_url(tenant, "Api", body.api)?,
        version: body.version,
    })
}

/// Asks the state API and caches its answers. Share one per process.
#[derive(Debug)]
pub struct TenantStatusClient {
    http: SuperOfficeHttp,
    environment: SuperIdEnvironment,
    clock: Arc<dyn Clock>,
    cache: Mutex<HashMap<ContextId, (Instant, Arc<TenantStatus>)>>,
    allowed_hosts: Vec<String>,
}

/// Whether a tenant URL the state API named may receive tickets and the application token: in the
/// named environments an https host under `superoffice.com`; in `custom` a host of `allowed` (`host`
/// matches any port, `host:port` that port), or any host when the list is empty (a local simulator).
pub fn host_allowed(environment: Environment, allowed: &[String], url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.to_ascii_lowercase();
    match environment {
        Environment::Custom => {
            allowed.is_empty()
                || allowed.iter().any(|entry| {
                    let entry = entry.trim().to_ascii_lowercase();
                    match url.port_or_known_default() {
                        Some(port) => entry == host || entry == format!("{host}:{port}"),
                        None => entry == host,
                    }
                })
        }
        _ => {
            url.scheme() == "https"
                && (host == "superoffice.com" || host.ends_with(".superoffice.com"))
        }
    }
}

impl TenantStatusClient {
    pub fn new(
        http: SuperOfficeHttp,
        environment: SuperIdEnvironment,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            http,
            environment,
            clock,
            cache: Mutex::new(HashMap::new()),
            allowed_hosts: Vec::new(),
        }
    }

    /// The tenant hosts allowed in `custom` (`superoffice.allowed_tenant_hosts`).
    pub fn with_allowed_hosts(mut self, hosts: Vec<String>) -> Self {
        self.allowed_hosts = hosts;
        self
    }

    /// The tenant's status: cached until its `ValidUntil` (at least `MIN_CACHE`, at most `MAX_CACHE`),
    /// asked for otherwise. GETs that fail for a passing reason are retried with backoff.
    #[tracing::instrument(skip_all, fields(tenant = %tenant), err)]
    pub async fn status(&self, tenant: &ContextId) -> Result<Arc<TenantStatus>, StatusError> {
        if let Some((until, status)) = self.cache.lock().await.get(tenant)
            && Instant::now() < *until
        {
            return Ok(Arc::clone(status));
        }
        let status = Arc::new(
            self.http
                .retry_policy()
                .run(WHAT, || self.fetch(tenant))
                .await?,
        );
        let lifetime = self.cache_lifetime(&status);
        {
            let mut cache = self.cache.lock().await;
            let now = Instant::now();
            if cache.len() >= MAX_CACHED && !cache.contains_key(tenant) {
                cache.retain(|_, (until, _)| now < *until);
                if cache.len() >= MAX_CACHED / 2 {
                    cache.clear();
                }
                cache.shrink_to(MAX_CACHED);
            }
            cache.insert(tenant.clone(), (now + lifetime, Arc::clone(&status)));
        }
        tracing::debug!(
            state = %status.state,
            is_running = status.is_running,
            cached_secs = lifetime.as_secs(),
            "tenant status"
        );
        Ok(status)
    }

    /// Forgets the cached answer (after a 421 from the tenant's host, or a state-change notification).
    pub async fn invalidate(&self, tenant: &ContextId) {
        self.cache.lock().await.remove(tenant);
    }

    fn cache_lifetime(&self, status: &TenantStatus) -> Duration {
        status
            .valid_until
            .and_then(|until| (until - self.clock.now()).to_std().ok())
            .unwrap_or(MIN_CACHE)
            .clamp(MIN_CACHE, MAX_CACHE)
    }

    async fn fetch(&self, tenant: &ContextId) -> Result<TenantStatus, StatusError> {
        self.http.throttle(tenant).await;
        let request = self
            .http
            .client()
            .get(self.environment.tenant_state_url(tenant))
            .header(reqwest::header::ACCEPT, "application/json");
        let response = http::send(WHAT, request).await?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(StatusError::UnknownTenant(tenant.clone()));
        }
        if !status.is_success() {
            return Err(StatusError::Status {
                tenant: tenant.clone(),
                status: status.as_u16(),
            });
        }
        let body = http::read_body(WHAT, response, http::MAX_BODY_BYTES).await?;
        let status = parse_status(tenant, &body)?;
        for url in [&status.endpoint, &status.api].into_iter().flatten() {
            if !host_allowed(self.environment.environment(), &self.allowed_hosts, url) {
                return Err(StatusError::HostNotAllowed {
                    tenant: tenant.clone(),
                    url: format!(
                        "{}://{}",
                        url.scheme(),
                        url.host_str().unwrap_or("(no host)")
                    ),
                });
            }
        }
        Ok(status)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn ctx() -> ContextId {
        ContextId::parse("Cust12345").unwrap()
    }

    #[test]
    fn the_documented_answer_is_read() {
        let body = br#"{
            "ContextIdentifier": "Cust12345",
            "Endpoint": "https://online2.superoffice.com/Cust12345",
            "State": "Running",
            "IsRunning": true,
            "ValidUntil": "2026-02-23T09:52:01.9342965Z",
            "Api": "https://online2.superoffice.com/Cust12345/api",
            "Version": "Release_11.10_2026.02.24-02"
        }"#;
        let status = parse_status(&ctx(), body).unwrap();
        assert_eq!(status.state, TenantRunState::Running);
        assert!(status.is_running);
        assert_eq!(
            status.api.as_ref().unwrap().as_str(),
            "https://online2.superoffice.com/Cust12345/api"
        );
        assert_eq!(
            status.valid_until.unwrap().to_rfc3339(),
            "2026-02-23T09:52:01.934296500+00:00"
        );
        assert_eq!(
            status.version.as_deref(),
            Some("Release_11.10_2026.02.24-02")
        );
    }

    #[test]
    fn sparse_and_new_answers_are_tolerated() {
        let status = parse_status(
            &ctx(),
            br#"{"State":"Hibernating","IsRunning":false,"Endpoint":"","ValidUntil":"2026-02-23T09:52:01"}"#,
        )
        .unwrap();
        assert_eq!(status.state, TenantRunState::Unknown("Hibernating".into()));
        assert!(!status.is_running);
        assert_eq!(status.endpoint, None);
        assert!(status.valid_until.is_some());
        let status = parse_status(&ctx(), br#"{"State":"Suspended"}"#).unwrap();
        assert_eq!(status.state, TenantRunState::Suspended);
        assert!(!status.is_running);
    }

    #[test]
    fn an_answer_about_another_tenant_or_garbage_is_refused() {
        assert!(matches!(
            parse_status(
                &ctx(),
                br#"{"ContextIdentifier":"Cust1","State":"Running"}"#
            ),
            Err(StatusError::Invalid { .. })
        ));
        assert!(matches!(
            parse_status(&ctx(), br#"{"State":"Running","Api":"not a url"}"#),
            Err(StatusError::Invalid { .. })
        ));
        assert!(matches!(
            parse_status(&ctx(), br#"{"State":"#),
            Err(StatusError::Invalid { .. })
        ));
    }

    #[test]
    fn only_superoffice_hosts_over_https_are_allowed_in_named_environments() {
        let url = |text: &str| Url::parse(text).unwrap();
        for good in [
            "https://online2.superoffice.com/Cust1",
            "https://SOD.superoffice.com/Cust1/api",
        ] {
            assert!(host_allowed(Environment::Online, &[], &url(good)), "{good}");
        }
        for bad in [
            "http://online2.superoffice.com/Cust1",
            "https://superoffice.com.evil.example/Cust1",
            "https://evilsuperoffice.com/Cust1",
            "https://127.0.0.1/Cust1",
        ] {
            assert!(!host_allowed(Environment::Sod, &[], &url(bad)), "{bad}");
        }
        let allowed = vec!["127.0.0.1".to_owned(), "sim.local:9200".to_owned()];
        assert!(host_allowed(
            Environment::Custom,
            &allowed,
            &url("http://127.0.0.1:9200/C")
        ));
        assert!(host_allowed(
            Environment::Custom,
            &allowed,
            &url("http://sim.local:9200/C")
        ));
        assert!(!host_allowed(
            Environment::Custom,
            &allowed,
            &url("http://sim.local:9300/C")
        ));
        assert!(!host_allowed(
            Environment::Custom,
            &allowed,
            &url("http://other:9200/C")
        ));
        assert!(host_allowed(
            Environment::Custom,
            &[],
            &url("http://other:9200/C")
        ));
    }
}
