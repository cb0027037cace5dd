//! What both exchange variants share (re-exported by `superid::exchange`).

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::clock::Clock;
use crate::crypto::partner_key::PartnerKey;
use crate::crypto::system_user_token::sign_system_user_token;
use crate::domain::{ContextId, SignedSystemToken, SystemUserToken, Ticket};
use crate::environment::SuperIdEnvironment;
use crate::http::{self, SuperOfficeHttp, TransportError, is_transient_status, scrub};
use crate::jwt::claims::TenantUrls;
use crate::jwt::{Expectation, JwtError};
use crate::superid::validation::{SuperIdValidator, ValidationError};

/// How the daemon obtains a system user ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExchangeKind {
    Rest,
    Soap,
}

impl ExchangeKind {
    /// The word that configures it (`superoffice.exchange`), also used in logs and audit events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rest => "rest",
            Self::Soap => "soap",
        }
    }
}

/// A system user ticket just obtained, from a validated JWT. `Debug` redacts the ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedTicket {
    pub ticket: Ticket,
    /// The JWT's `iat`, or the local time of receipt when it has none.
    pub issued_at: DateTime<Utc>,
    /// Where the tenant's APIs are, as the JWT says.
    pub urls: TenantUrls,
}

/// Obtains system user tickets. Implemented over REST and SOAP today; an OAuth client-credentials flow
/// can implement it later. Object safe: hold an `Arc<dyn TicketExchange>`.
pub trait TicketExchange: Send + Sync + fmt::Debug {
    /// Signs `token` now, exchanges it for tenant `ctx` and validates the answer against the tenant's
    /// stored `serial` (the JWT's audience must be `spn:{serial}`).
    fn exchange<'a>(
        &'a self,
        ctx: &'a ContextId,
        token: &'a SystemUserToken,
        serial: &'a str,
    ) -> BoxFuture<'a, Result<IssuedTicket, ExchangeError>>;
}

/// Why no ticket was obtained. `is_retryable` says whether trying again later can help;
/// `tenant_state_hint` what the tenant's row should become when it cannot.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error(
        "tenant {tenant}: the application's access was revoked (SuperID: {message}); \
         a tenant administrator must sign in and approve the app again"
    )]
    Revoked { tenant: ContextId, message: String },
    #[error(
        "tenant {tenant}: the application's authorization expired (SuperID: {message}); \
         a tenant administrator must sign in again"
    )]
    Expired { tenant: ContextId, message: String },
    #[error(
        "tenant {tenant}: SuperID denied the system user (SuperID: {message}); \
         check the application token (superoffice.client_secret) and that the app is installed on the tenant"
    )]
    Denied { tenant: ContextId, message: String },
    #[error(
        "tenant {tenant}: the application needs re-approval (SuperID: {message}); \
         a tenant administrator must sign in and approve it"
    )]
    NeedsReapproval { tenant: ContextId, message: String },
    #[error(
        "tenant {tenant}: SuperID refused the exchange with an answer this service does not recognise \
         (SuperID: {message}); the tenant keeps its state and is tried again later; an operator should look at it"
    )]
    Rejected { tenant: ContextId, message: String },
    #[error(
        "tenant {tenant}: SuperID rejected the signed token's timestamp twice (SuperID: {message}); \
         this host's clock differs from SuperID's by {}: synchronise the clock (NTP)",
        describe_skew(*.skew_secs)
    )]
    InvalidTimestamp {
        tenant: ContextId,
        skew_secs: Option<i64>,
        message: String,
    },
    #[error(
        "tenant {tenant}: SuperID could not verify the signed token (SuperID: {message}); the configured \
         private key (superoffice.private_key_file) is not the one registered for the application"
    )]
    InvalidSignature { tenant: ContextId, message: String },
    #[error("tenant {tenant}: PartnerSystemUserService answered HTTP {status}{}", status_advice(*.status))]
    Status { tenant: ContextId, status: u16 },
    #[error("tenant {tenant}: PartnerSystemUserService returned a SOAP fault {code}: {message}")]
    Fault {
        tenant: ContextId,
        code: String,
        message: String,
    },
    #[error(
        "tenant {tenant}: the answer of PartnerSystemUserService cannot be read ({reason}); try again later"
    )]
    Malformed { tenant: ContextId, reason: String },
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(
        "tenant {tenant}: {error}; if the audience differs, the stored serial is stale and an \
         administrator signing in again refreshes it"
    )]
    Token {
        tenant: ContextId,
        error: ValidationError,
    },
}

fn describe_skew(skew: Option<i64>) -> String {
    match skew {
        Some(secs) if secs >= 0 => format!("about {secs} s (SuperID ahead)"),
        Some(secs) => format!("about {} s (SuperID behind)", -secs),
        None => "an unknown amount (no Date header)".to_owned(),
    }
}

fn status_advice(status: u16) -> &'static str {
    if is_transient_status(status) {
        "; try again later"
    } else {
        "; check superoffice.superid_url and superoffice.client_secret"
    }
}

/// An unambiguous refusal of the tenant's authorization, as SuperID words it (`lifecycle` says what
/// state the tenant takes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Revoked,
    Expired,
    NeedsReapproval,
}

impl StopReason {
    /// A short word for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::NeedsReapproval => "needs_reapproval",
        }
    }
}

/// What a failed exchange means for the tenant and the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// An unambiguous refusal of the tenant's authorization: the tenant stops.
    Stop(StopReason),
    /// A passing failure (network, SuperOffice unavailable): retry with the usual backoff.
    Transient,
    /// A refusal that is not unambiguous about the tenant (an unknown answer, an HTTP or SOAP
    /// refusal, `Denied`, a wrong key or clock): retry after a long backoff and flag the tenant for an
    /// operator. The same one for several tenants at once points at this instance (the circuit).
    Suspect,
}

impl ExchangeError {
    /// Whether the same exchange may succeed later (with backoff). Only an unambiguous refusal of the
    /// tenant's authorization will not fix itself.
    pub fn is_retryable(&self) -> bool {
        !matches!(self.verdict(), Verdict::Stop(_))
    }

    /// What the failure means: stop the tenant, retry soon, or retry late and tell an operator.
    pub fn verdict(&self) -> Verdict {
        match self {
            Self::Revoked { .. } => Verdict::Stop(StopReason::Revoked),
            Self::Expired { .. } => Verdict::Stop(StopReason::Expired),
            Self::NeedsReapproval { .. } => Verdict::Stop(StopReason::NeedsReapproval),
            Self::Denied { .. }
            | Self::Rejected { .. }
            | Self::InvalidTimestamp { .. }
            | Self::InvalidSignature { .. } => Verdict::Suspect,
            Self::Status { status, .. } if is_transient_status(*status) => Verdict::Transient,
            Self::Status { .. } => Verdict::Suspect,
            Self::Fault { code, .. } if is_server_fault(code) => Verdict::Transient,
            Self::Fault { .. } => Verdict::Suspect,
            Self::Malformed { .. } => Verdict::Transient,
            Self::Transport(error) if error.is_retryable() => Verdict::Transient,
            Self::Transport(_) => Verdict::Suspect,
            Self::Token { error, .. } if error.is_retryable() => Verdict::Transient,
            Self::Token { .. } => Verdict::Suspect,
        }
    }

    /// A short name of the kind of failure, the same for every tenant (metrics, the circuit).
    pub fn kind(&self) -> String {
        match self {
            Self::Revoked { .. } => "revoked".into(),
            Self::Expired { .. } => "expired".into(),
            Self::Denied { .. } => "denied".into(),
            Self::NeedsReapproval { .. } => "needs_reapproval".into(),
            Self::Rejected { .. } => "unrecognised".into(),
            Self::InvalidTimestamp { .. } => "invalid_timestamp".into(),
            Self::InvalidSignature { .. } => "invalid_signature".into(),
            Self::Status { status, .. } => format!("http_{status}"),
            Self::Fault { code, .. } => {
                format!("fault_{}", code.rsplit(':').next().unwrap_or(code))
            }
            Self::Malformed { .. } => "malformed".into(),
            Self::Transport(_) => "transport".into(),
            Self::Token { .. } => "token".into(),
        }
    }
}

/// SOAP 1.1 `Server` (1.2 `Receiver`) faults are SuperID's own trouble; others are about the request.
fn is_server_fault(code: &str) -> bool {
    let local = code.rsplit(':').next().unwrap_or(code);
    local.eq_ignore_ascii_case("Server") || local.eq_ignore_ascii_case("Receiver")
}

/// The documented `AuthorizeErrorCode`s (protocol §5.3) that can come back in `ErrorMessage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Revoked,
    Expired,
    Denied,
    NeedsReapproval,
    InvalidTimestamp,
    InvalidSignature,
    Other,
}

impl Refusal {
    /// Each code with its name and, where SuperOffice documents one, its description.
    const DOCUMENTED: [(Refusal, &'static str, Option<&'static str>); 6] = [
        (
            Refusal::Revoked,
            "Revoked",
            Some("Application's access to the tenant has been revoked"),
        ),
        (
            Refusal::Expired,
            "Expired",
            Some("The application authorization on this tenant has expired"),
        ),
        (Refusal::Denied, "Denied", None),
        (Refusal::NeedsReapproval, "NeedsReapproval", None),
        (
            Refusal::InvalidTimestamp,
            "InvalidTimestamp",
            Some("The supplied timestamp is invalid"),
        ),
        (
            Refusal::InvalidSignature,
            "InvalidSignature",
            Some("Calculated signature is invalid"),
        ),
    ];

    /// Reads the code from an `ErrorMessage` conservatively: the exact strings are undocumented, so
    /// only an unambiguous answer names a code. That is a message which is a code name alone, or
    /// starts with one as a whole token followed by `:` (`"Revoked: …"`), or is exactly a documented
    /// description; the compound names (`NeedsReapproval`, `InvalidTimestamp`, `InvalidSignature`),
    /// which no sentence contains by chance, also count as a whole token anywhere. Letter case is
    /// ignored. A code word inside a sentence (`"access was denied"`) is `Other`.
    pub(crate) fn classify(message: &str) -> Self {
        let trimmed = message.trim().trim_end_matches('.').trim();
        let head = trimmed
            .split_once(':')
            .map_or(trimmed, |(head, _)| head)
            .trim();
        let tokens: Vec<&str> = trimmed
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        Self::DOCUMENTED
            .iter()
            .find(|(_, name, description)| {
                head.eq_ignore_ascii_case(name)
                    || description.is_some_and(|d| trimmed.eq_ignore_ascii_case(d))
                    || (name.len() > 8 && tokens.iter().any(|t| t.eq_ignore_ascii_case(name)))
            })
            .map_or(Self::Other, |(refusal, _, _)| *refusal)
    }
}

/// What PartnerSystemUserService answered, whichever variant carried it.
#[derive(Debug, Default)]
pub struct ServiceAnswer {
    pub is_successful: bool,
    /// The JWT (secret: it carries the ticket).
    pub token: Option<SecretString>,
    pub error_message: Option<String>,
    /// The server's `Date` header, to estimate clock skew.
    pub server_date: Option<DateTime<Utc>>,
}

/// The server's `Date` header (RFC 7231 IMF-fixdate), if any.
pub(crate) fn server_date(headers: &reqwest::header::HeaderMap) -> Option<DateTime<Utc>> {
    headers
        .get(reqwest::header::DATE)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| DateTime::parse_from_rfc2822(text).ok())
        .map(|date| date.with_timezone(&Utc))
}

/// One way of sending the signed token: REST or SOAP. The variant is a marker type (`Rest`, `Soap`); the
/// state both variants need is the [`ExchangeCore`] held by [`VariantExchange`], whose shared flow sends
/// the variant's request and gives it the answer, read whole.
pub(crate) trait ExchangeVariant: Send + Sync + 'static {
    /// The variant's name in the exchange's trace span and `Debug`: `rest` or `soap`.
    const VIA: &'static str;
    /// What the variant's transport errors name.
    const WHAT: &'static str;

    /// The request that carries the attempt's signed token.
    fn request(attempt: &Attempt<'_>) -> reqwest::RequestBuilder;

    /// What PartnerSystemUserService answered, or why the answer is not one.
    // The error is every exchange's `ExchangeError`, as `soap::read_response` returns it.
    #[allow(clippy::result_large_err)]
    fn read(attempt: &Attempt<'_>, answer: &http::Answer) -> Result<ServiceAnswer, ExchangeError>;
}

/// One sending of a freshly signed token for a tenant.
pub(crate) struct Attempt<'a> {
    pub(crate) core: &'a ExchangeCore,
    pub(crate) ctx: &'a ContextId,
    pub(crate) signed: &'a SignedSystemToken,
}

impl Attempt<'_> {
    /// What a message from SuperID must not echo: the signed token and the application token.
    pub(crate) fn secrets(&self) -> [&str; 2] {
        [
            self.signed.expose(),
            self.core.application_token.expose_secret(),
        ]
    }
}

/// An exchange over one variant: `RestExchange` or `SoapExchange`.
#[derive(Clone)]
pub struct VariantExchange<V> {
    core: ExchangeCore,
    variant: PhantomData<fn() -> V>,
}

impl<V> VariantExchange<V> {
    pub fn new(core: ExchangeCore) -> Self {
        Self {
            core,
            variant: PhantomData,
        }
    }
}

impl<V: ExchangeVariant> fmt::Debug for VariantExchange<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VariantExchange")
            .field("via", &V::VIA)
            .field("core", &self.core)
            .finish()
    }
}

/// Every variant exchanges through the shared flow.
impl<V: ExchangeVariant> TicketExchange for VariantExchange<V> {
    fn exchange<'a>(
        &'a self,
        ctx: &'a ContextId,
        token: &'a SystemUserToken,
        serial: &'a str,
    ) -> BoxFuture<'a, Result<IssuedTicket, ExchangeError>> {
        Box::pin(self.core.run::<V>(ctx, token, serial))
    }
}

/// What both variants need: the HTTP stack, SuperID's URLs, the application token, the partner key,
/// the clock the signature's timestamp comes from, and the validator of the returned JWT.
#[derive(Clone)]
pub struct ExchangeCore {
    pub(crate) http: SuperOfficeHttp,
    pub(crate) environment: SuperIdEnvironment,
    pub(crate) application_token: SecretString,
    key: Arc<PartnerKey>,
    clock: Arc<dyn Clock>,
    validator: Arc<SuperIdValidator>,
}

impl fmt::Debug for ExchangeCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExchangeCore")
            .field("superid", &self.environment.base_url().as_str())
            .field("application_token", &"[REDACTED]")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl ExchangeCore {
    /// `application_token` is `superoffice.client_secret`.
    pub fn new(
        http: SuperOfficeHttp,
        environment: SuperIdEnvironment,
        application_token: SecretString,
        key: Arc<PartnerKey>,
        clock: Arc<dyn Clock>,
        validator: Arc<SuperIdValidator>,
    ) -> Self {
        Self {
            http,
            environment,
            application_token,
            key,
            clock,
            validator,
        }
    }

    /// The shared flow: sign now, send, on `InvalidTimestamp` sign again and send once more, then
    /// validate the JWT and take the ticket out of it.
    #[tracing::instrument(name = "exchange", skip_all, fields(tenant = %ctx, via = V::VIA), err(Display))]
    async fn run<V: ExchangeVariant>(
        &self,
        ctx: &ContextId,
        token: &SystemUserToken,
        serial: &str,
    ) -> Result<IssuedTicket, ExchangeError> {
        let mut retried = false;
        loop {
            self.http.throttle(ctx).await;
            let signed_at = self.clock.now();
            let signed = sign_system_user_token(&self.key, token, signed_at);
            let attempt = Attempt {
                core: self,
                ctx,
                signed: &signed,
            };
            let answer = http::fetch(V::WHAT, V::request(&attempt)).await?;
            let answer = V::read(&attempt, &answer)?;
            if answer.is_successful {
                let jwt = answer.token.ok_or_else(|| ExchangeError::Malformed {
                    tenant: ctx.clone(),
                    reason: "IsSuccessful is true but there is no Token".into(),
                })?;
                return self.accept(ctx, serial, jwt.expose_secret()).await;
            }
            let message = scrub(
                answer
                    .error_message
                    .as_deref()
                    .unwrap_or("(no ErrorMessage)"),
                &[
                    signed.expose(),
                    token.expose(),
                    self.application_token.expose_secret(),
                ],
            );
            let skew_secs = answer
                .server_date
                .map(|date| (date - signed_at).num_seconds());
            let refusal = Refusal::classify(&message);
            if refusal == Refusal::InvalidTimestamp && !retried {
                tracing::warn!(
                    tenant = %ctx,
                    skew_secs = ?skew_secs,
                    superid_message = %message,
                    "SuperID rejected the signed token's timestamp; signing again once"
                );
                retried = true;
                continue;
            }
            return Err(refused(refusal, ctx.clone(), message, skew_secs));
        }
    }

    async fn accept(
        &self,
        ctx: &ContextId,
        serial: &str,
        jwt: &str,
    ) -> Result<IssuedTicket, ExchangeError> {
        let expectation = Expectation::SystemUser {
            serial: serial.to_owned(),
            context_id: ctx.clone(),
        };
        let claims = self
            .validator
            .validate(jwt, &expectation)
            .await
            .map_err(|error| ExchangeError::Token {
                tenant: ctx.clone(),
                error,
            })?;
        let ticket = claims
            .credentials
            .ticket
            .ok_or_else(|| ExchangeError::Token {
                tenant: ctx.clone(),
                error: ValidationError::Jwt(JwtError::MissingClaim("ticket")),
            })?;
        Ok(IssuedTicket {
            ticket,
            issued_at: claims.token.issued_at.unwrap_or_else(|| self.clock.now()),
            urls: claims.tenant.urls,
        })
    }
}

fn refused(
    refusal: Refusal,
    tenant: ContextId,
    message: String,
    skew_secs: Option<i64>,
) -> ExchangeError {
    match refusal {
        Refusal::Revoked => ExchangeError::Revoked { tenant, message },
        Refusal::Expired => ExchangeError::Expired { tenant, message },
        Refusal::Denied => ExchangeError::Denied { tenant, message },
        Refusal::NeedsReapproval => ExchangeError::NeedsReapproval { tenant, message },
        Refusal::InvalidTimestamp => ExchangeError::InvalidTimestamp {
            tenant,
            skew_secs,
            message,
        },
        Refusal::InvalidSignature => ExchangeError::InvalidSignature { tenant, message },
        Refusal::Other => ExchangeError::Rejected { tenant, message },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn an_exchange_kind_is_named_by_the_word_that_configures_it() {
        for kind in [ExchangeKind::Rest, ExchangeKind::Soap] {
            let read: ExchangeKind = serde_json::from_value(kind.as_str().into()).unwrap();
            assert_eq!(read, kind);
        }
    }

    /// `testdata/refusal-wording.toml`: messages with the refusal each reads as.
    #[derive(serde::Deserialize)]
    struct Wording {
        codes: Vec<Code>,
        not_codes: Vec<String>,
    }

    /// A message and the name of the [`Refusal`] it reads as.
    #[derive(serde::Deserialize)]
    struct Code {
        message: String,
        refusal: String,
    }

    fn wording() -> Wording {
        toml::from_str(include_str!("../../../testdata/refusal-wording.toml"))
            .unwrap_or_else(|error| panic!("testdata/refusal-wording.toml: {error}"))
    }

    #[test]
    fn only_unambiguous_codes_are_read() {
        let codes = wording().codes;
        assert!(!codes.is_empty());
        for code in codes {
            let refusal = Refusal::classify(&code.message);
            assert_eq!(format!("{refusal:?}"), code.refusal, "{:?}", code.message);
        }
    }

    #[test]
    fn code_words_inside_sentences_are_not_codes() {
        let messages = wording().not_codes;
        assert!(!messages.is_empty());
        for message in messages {
            assert_eq!(Refusal::classify(&message), Refusal::Other, "{message:?}");
        }
    }

    #[test]
    fn a_leading_code_wins_over_words_in_the_detail() {
        assert_eq!(
            Refusal::classify("Denied: Access to the tenant was denied (timestamp had expired)"),
            Refusal::Denied
        );
        assert_eq!(
            Refusal::classify("Revoked: InvalidSignature was not the reason"),
            Refusal::Revoked
        );
    }

    #[test]
    fn only_tenant_specific_codes_stop_a_tenant() {
        let ctx = ContextId::parse("Cust1").unwrap();
        let revoked = refused(Refusal::Revoked, ctx.clone(), "Revoked".into(), None);
        assert!(!revoked.is_retryable());
        assert_eq!(revoked.verdict(), Verdict::Stop(StopReason::Revoked));
        for refusal in [Refusal::Expired, Refusal::NeedsReapproval] {
            assert!(refused(refusal, ctx.clone(), "x".into(), None).verdict() != Verdict::Suspect);
        }
        for refusal in [
            Refusal::Other,
            Refusal::Denied,
            Refusal::InvalidSignature,
            Refusal::InvalidTimestamp,
        ] {
            let error = refused(refusal, ctx.clone(), "odd".into(), Some(-400));
            assert_eq!(error.verdict(), Verdict::Suspect, "{refusal:?}");
            assert!(error.is_retryable());
            assert!(!matches!(error.verdict(), Verdict::Stop(_)));
        }
        let clock = refused(
            Refusal::InvalidTimestamp,
            ctx.clone(),
            "x".into(),
            Some(-400),
        );
        assert!(
            clock.to_string().contains("about 400 s (SuperID behind)"),
            "{clock}"
        );
        let key = refused(Refusal::InvalidSignature, ctx.clone(), "x".into(), None);
        assert!(key.to_string().contains("private_key_file"));
        assert_eq!(key.kind(), "invalid_signature");
        let status = |status| ExchangeError::Status {
            tenant: ctx.clone(),
            status,
        };
        assert_eq!(status(503).verdict(), Verdict::Transient);
        assert_eq!(status(400).verdict(), Verdict::Suspect);
        assert_eq!(status(403).kind(), "http_403");
        assert_eq!(
            ExchangeError::Malformed {
                tenant: ctx.clone(),
                reason: "cut".into()
            }
            .verdict(),
            Verdict::Transient
        );
        let fault = |code: &str| ExchangeError::Fault {
            tenant: ctx.clone(),
            code: code.into(),
            message: String::new(),
        };
        assert_eq!(fault("s:Server").verdict(), Verdict::Transient);
        assert_eq!(fault("s:Client").verdict(), Verdict::Suspect);
        assert_eq!(fault("s:Client").kind(), "fault_Client");
    }

    #[test]
    fn the_date_header_is_read() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::DATE,
            "Sun, 01 Mar 2026 10:05:00 GMT".parse().unwrap(),
        );
        assert_eq!(
            server_date(&headers).unwrap().to_rfc3339(),
            "2026-03-01T10:05:00+00:00"
        );
        assert_eq!(server_date(&reqwest::header::HeaderMap::new()), None);
    }
}
