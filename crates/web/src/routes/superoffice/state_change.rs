//! `POST /superoffice/state-change`: SuperOffice's tenant state-change notification (protocol §8).
//!
//! SuperOffice posts `{ChangeType, ContextIdentifier, VersionName, FileVersion, Token[, PublicEndpoint]}` to
//! the application's State Change URL. The `Token` is a JWT signed by SuperID (issuer `SuperOffice AS`, the
//! tenant in its `ctx` claim, the audience `spn:{client_id}`); it is checked by the same validator as every
//! other SuperOffice JWT before anything is stored, and a token issued for something else (one with a ticket,
//! a nonce or a system user token) is refused. What each `ChangeType` does is in
//! `shared::db::state_changes`; a Suspend or Delete takes effect only once the state API confirms it, because
//! nothing signs the change type.
//!
//! A notification is the same notification when its tenant, change type and what its token's signature
//! covers are (`jwt::fingerprint`), however the token is spelled. Notifications are limited per source
//! address (before anything is read) and per tenant (once the token is valid, so forged ones cannot use up a
//! tenant's allowance), in this process.
//!
//! Answers (JSON):
//! - 200 `{"outcome": …}` for a notification applied, one already applied (`duplicate`), a Suspend or Delete
//!   the state API did not confirm (`unconfirmed`), and one for a tenant we do not know (`unknown_tenant`: no
//!   tenant is created, only the record and an audit event; 200 rather than 404 so SuperOffice does not
//!   retry for ever);
//! - 400 malformed body or a `ChangeType` this application does not know, 401 token refused (nothing
//!   stored), 413 body over 32 KiB, 415 not JSON, 429 over a limit (nothing stored), 503 SuperID's keys
//!   unavailable or the database down (SuperOffice may retry).

use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde_json::{Map, Value, json};
use shared::db::state_changes::{self, ChangeType, Notification, Outcome};
use shared::domain::ContextId;
use shared::jwt::{Expectation, JwtError};
use shared::superid::validation::ValidationError;
use shared::tenant::status::StatusError;

use crate::state::AppState;

/// Real notifications are well under 4 KiB; the token alone is 1–3 KiB.
pub const MAX_BODY_BYTES: usize = 32 * 1024;
/// Longest text kept of `VersionName`, `FileVersion` and `PublicEndpoint`.
const MAX_FIELD_CHARS: usize = 200;

/// Why a notification was refused.
#[derive(Debug, thiserror::Error)]
pub enum StateChangeError {
    #[error("the notification must be JSON (Content-Type: application/json)")]
    NotJson,
    #[error("the notification is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("the notification is malformed: {0}")]
    Malformed(String),
    #[error("the notification has no Token")]
    MissingToken,
    #[error("the notification's Token was refused: {0}")]
    Token(JwtError),
    #[error("SuperID's signing keys are unavailable; try again later")]
    KeysUnavailable,
    #[error("too many notifications {0}; try again in a minute")]
    TooMany(&'static str),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<shared::db::DbError> for StateChangeError {
    fn from(e: shared::db::DbError) -> Self {
        Self::Unexpected(anyhow::Error::new(e).context("recording a state-change notification"))
    }
}

impl ResponseError for StateChangeError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotJson => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::MissingToken | Self::Token(_) => StatusCode::UNAUTHORIZED,
            Self::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::KeysUnavailable | Self::Unexpected(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let message = match self {
            Self::Unexpected(e) => {
                tracing::error!(error = %format!("{e:#}"), "state-change notification failed");
                "the notification could not be recorded; try again later".to_owned()
            }
            other => {
                tracing::warn!(error = %other, "state-change notification refused");
                other.to_string()
            }
        };
        metrics::counter!("partner_web_state_changes_refused_total",
            "status" => self.status_code().as_str().to_owned())
        .increment(1);
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, Self::TooMany(_)) {
            response.insert_header(("Retry-After", "60"));
        }
        response.json(json!({ "error": message }))
    }
}

/// The notification as posted, read tolerantly: property names in any case, extra properties ignored,
/// `ChangeType` as a number or its name.
#[derive(Debug)]
struct StateChangeBody {
    change: ChangeType,
    context_id: ContextId,
    token: Option<String>,
    version_name: Option<String>,
    file_version: Option<String>,
    public_endpoint: Option<String>,
}

impl StateChangeBody {
    fn parse(bytes: &[u8]) -> Result<Self, StateChangeError> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|_| StateChangeError::Malformed("the body is not valid JSON".into()))?;
        let Value::Object(body) = value else {
            return Err(StateChangeError::Malformed(
                "the body is not a JSON object".into(),
            ));
        };
        let context_id = match property(&body, "ContextIdentifier") {
            Some(Value::String(ctx)) => ContextId::parse(ctx).map_err(|_| {
                StateChangeError::Malformed(
                    "ContextIdentifier is not a context identifier (CustNNNNN)".into(),
                )
            })?,
            Some(_) => {
                return Err(StateChangeError::Malformed(
                    "ContextIdentifier is not a string".into(),
                ));
            }
            None => {
                return Err(StateChangeError::Malformed(
                    "ContextIdentifier is missing".into(),
                ));
            }
        };
        let change = match property(&body, "ChangeType") {
            Some(Value::Number(n)) => n.as_i64().map(ChangeType::from_code).ok_or_else(|| {
                StateChangeError::Malformed("ChangeType is not a whole number".into())
            })?,
            Some(Value::String(name)) if !name.trim().is_empty() => ChangeType::from_name(name),
            Some(_) => {
                return Err(StateChangeError::Malformed(
                    "ChangeType is neither a number nor a name".into(),
                ));
            }
            None => return Err(StateChangeError::Malformed("ChangeType is missing".into())),
        };
        if let ChangeType::Unsupported(raw) = &change {
            return Err(StateChangeError::Malformed(format!(
                "ChangeType {raw:?} is not one this application knows (0 Upgrade, 1 BackupRestored, 2 Suspend, \
                 3 Resume, 4 Delete, 5 Move)"
            )));
        }
        let token = match property(&body, "Token") {
            Some(Value::String(token)) if !token.trim().is_empty() => Some(token.trim().to_owned()),
            _ => None,
        };
        Ok(Self {
            change,
            context_id,
            token,
            version_name: text(&body, "VersionName"),
            file_version: text(&body, "FileVersion"),
            public_endpoint: text(&body, "PublicEndpoint"),
        })
    }
}

/// A property by name: the exact spelling first, then any case. `null` counts as absent.
fn property<'a>(body: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    body.get(name)
        .or_else(|| {
            body.iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value)
        })
        .filter(|value| !value.is_null())
}

/// An optional informational property: a string (or a number, written out), cut to a sane length.
fn text(body: &Map<String, Value>, name: &str) -> Option<String> {
    let value = match property(body, name)? {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!value.is_empty()).then(|| value.chars().take(MAX_FIELD_CHARS).collect())
}

fn is_json(req: &HttpRequest) -> bool {
    let Some(content_type) = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Validates the notification's token, then applies its effect once.
#[tracing::instrument(skip_all, fields(tenant, change))]
pub async fn post(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, StateChangeError> {
    // The client's address: the peer, or what a trusted proxy (`web.trusted_proxies`) says it forwarded.
    let address =
        crate::client_ip::client_ip(&req).map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    if !state.notification_limits.per_address.allow(&address) {
        return Err(StateChangeError::TooMany("from this address"));
    }
    if !is_json(&req) {
        return Err(StateChangeError::NotJson);
    }
    let bytes = payload
        .to_bytes_limited(MAX_BODY_BYTES)
        .await
        .map_err(|_| StateChangeError::TooLarge)?
        .map_err(|e| StateChangeError::Malformed(format!("the body could not be read: {e}")))?;
    let body = StateChangeBody::parse(&bytes)?;
    let span = tracing::Span::current();
    span.record("tenant", body.context_id.as_str());
    span.record("change", body.change.as_str());

    let token = body
        .token
        .as_deref()
        .ok_or(StateChangeError::MissingToken)?;
    let expectation = Expectation::StateChange {
        context_id: body.context_id.clone(),
        client_id: state.client_id.clone(),
        audience_required: state.state_change_audience_required,
    };
    let claims = state
        .clients
        .validator
        .validate(token, &expectation)
        .await
        .map_err(|e| match e {
            ValidationError::Jwt(JwtError::KeysUnavailable) | ValidationError::Discovery(_) => {
                StateChangeError::KeysUnavailable
            }
            ValidationError::Jwt(other) => StateChangeError::Token(other),
        })?;

    if !state
        .notification_limits
        .per_tenant
        .allow(body.context_id.as_str())
    {
        return Err(StateChangeError::TooMany("for this tenant"));
    }
    let fingerprint = shared::jwt::fingerprint(token).map_err(StateChangeError::Token)?;
    let key = state_changes::idempotency_key(body.context_id.as_str(), &body.change, &fingerprint);
    let unconfirmed = match body.change {
        ChangeType::Suspend | ChangeType::Delete => {
            !confirmed_not_running(&state, &body.context_id).await
        }
        _ => false,
    };
    let mut conn = state.conn().await?;
    let outcome = state_changes::apply(
        &mut conn,
        Notification {
            context_id: body.context_id.as_str(),
            change: &body.change,
            idempotency_key: &key,
            token_issued_at: claims.token.issued_at,
            version_name: body.version_name.as_deref(),
            file_version: body.file_version.as_deref(),
            public_endpoint: body.public_endpoint.as_deref(),
            unconfirmed,
        },
    )
    .await?;
    let summary = outcome.summary();
    match &outcome {
        Outcome::Duplicate => tracing::info!("state-change notification already processed"),
        Outcome::Unconfirmed { .. } => tracing::warn!(
            "the state API does not confirm the notification; recorded only, partner-service checks the tenant"
        ),
        Outcome::UnknownTenant => {
            tracing::warn!("state-change notification for a tenant we do not know; recorded only")
        }
        Outcome::Applied { .. } => {
            tracing::info!(outcome = %summary, "state-change notification applied")
        }
    }
    metrics::counter!("partner_web_state_changes_total",
        "change" => body.change.as_str().to_owned(), "outcome" => summary.clone())
    .increment(1);
    Ok(HttpResponse::Ok().json(json!({
        "context_id": body.context_id.as_str(),
        "change_type": body.change.as_str(),
        "outcome": summary,
    })))
}

/// Whether the state API, asked afresh, says the tenant is not running or is gone. An answer that it runs,
/// or no answer, is no confirmation.
async fn confirmed_not_running(state: &AppState, tenant: &ContextId) -> bool {
    let statuses = &state.clients.tenants.statuses;
    statuses.invalidate(tenant).await;
    match statuses.status(tenant).await {
        Ok(status) => !status.is_running,
        Err(StatusError::UnknownTenant(_)) => true,
        Err(error) => {
            tracing::warn!(%error, "the state API could not confirm a state-change notification");
            false
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn parse(body: Value) -> Result<StateChangeBody, StateChangeError> {
        StateChangeBody::parse(body.to_string().as_bytes())
    }

    #[test]
    fn the_documented_payloads_parse() {
        let upgrade = parse(json!({
            "ChangeType": 0,
            "ContextIdentifier": "Cust12345",
            "VersionName": "Release 8.4 R08",
            "FileVersion": "8.4.12.1234",
            "Token": "eyJ234ASD...1234#"
        }))
        .unwrap();
        assert_eq!(upgrade.change, ChangeType::Upgrade);
        assert_eq!(upgrade.context_id.as_str(), "Cust12345");
        assert_eq!(upgrade.version_name.as_deref(), Some("Release 8.4 R08"));
        assert_eq!(upgrade.file_version.as_deref(), Some("8.4.12.1234"));
        assert_eq!(upgrade.public_endpoint, None);
        let moved = parse(json!({
            "ChangeType": 5,
            "ContextIdentifier": "Cust12345",
            "VersionName": "Release_10.3.8_2024.08.30-01",
            "FileVersion": "10.3.8.2024",
            "Token": "eyJ....",
            "PublicEndpoint": "sod3.superoffice.com"
        }))
        .unwrap();
        assert_eq!(moved.change, ChangeType::Move);
        assert_eq!(
            moved.public_endpoint.as_deref(),
            Some("sod3.superoffice.com")
        );
    }

    #[test]
    fn names_any_case_and_extra_properties_are_tolerated() {
        let body = parse(json!({
            "changeType": "suspend",
            "contextidentifier": "Cust1",
            "token": "t",
            "Something": {"new": true}
        }))
        .unwrap();
        assert_eq!(body.change, ChangeType::Suspend);
        assert_eq!(body.token.as_deref(), Some("t"));
        assert_eq!(
            parse(json!({"ChangeType": "3", "ContextIdentifier": "Cust1"}))
                .unwrap()
                .change,
            ChangeType::Resume
        );
        for unknown in [json!(42), json!("Rename"), json!(-1)] {
            let err =
                parse(json!({"ChangeType": unknown, "ContextIdentifier": "Cust1"})).unwrap_err();
            assert!(matches!(err, StateChangeError::Malformed(_)), "{err}");
            assert!(
                err.to_string().contains("not one this application knows"),
                "{err}"
            );
        }
        assert!(
            parse(json!({"ChangeType": 2, "ContextIdentifier": "Cust1", "Token": null}))
                .unwrap()
                .token
                .is_none()
        );
    }

    #[test]
    fn malformed_bodies_say_what_is_wrong() {
        let cases = [
            (json!([]), "not a JSON object"),
            (json!({"ChangeType": 2}), "ContextIdentifier is missing"),
            (
                json!({"ChangeType": 2, "ContextIdentifier": "Customer1"}),
                "not a context identifier",
            ),
            (
                json!({"ChangeType": 2, "ContextIdentifier": 5}),
                "ContextIdentifier is not a string",
            ),
            (
                json!({"ContextIdentifier": "Cust1"}),
                "ChangeType is missing",
            ),
            (
                json!({"ChangeType": 2.5, "ContextIdentifier": "Cust1"}),
                "not a whole number",
            ),
            (
                json!({"ChangeType": [2], "ContextIdentifier": "Cust1"}),
                "neither a number nor a name",
            ),
        ];
        for (body, expected) in cases {
            let err = parse(body.clone()).unwrap_err();
            assert!(
                matches!(err, StateChangeError::Malformed(_)),
                "{body}: {err}"
            );
            assert!(err.to_string().contains(expected), "{body}: {err}");
        }
        assert!(matches!(
            StateChangeBody::parse(b"{not json"),
            Err(StateChangeError::Malformed(_))
        ));
    }

    #[test]
    fn informational_fields_are_cut() {
        let body = parse(json!({
            "ChangeType": 0,
            "ContextIdentifier": "Cust1",
            "VersionName": "v".repeat(1000),
            "FileVersion": 10.3,
            "PublicEndpoint": {"host": "x"}
        }))
        .unwrap();
        assert_eq!(body.version_name.unwrap().len(), MAX_FIELD_CHARS);
        assert_eq!(body.file_version.as_deref(), Some("10.3"));
        assert_eq!(body.public_endpoint, None);
    }
}
