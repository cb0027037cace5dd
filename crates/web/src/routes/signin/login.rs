//! The OpenID Connect code flow with state, nonce and PKCE, and the legacy federated form post.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use shared::domain::ContextId;
use shared::jwt::{Expectation, SuperOfficeClaims};
use shared::superid::oidc::{CallbackParams, OidcError, PendingSignIn, UserTokens};
use shared::superid::validation::ValidationError;

use super::capture::capture_if_administrator;
use crate::errors::WebError;
use crate::session::{SessionTenant, SessionUser, TypedSession, UserCredentials};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    ctx: Option<String>,
}

/// `GET /login[?ctx=CustNNNNN]`: a fresh authorization request; its secrets wait in the session.
pub async fn login(
    session: TypedSession,
    state: web::Data<AppState>,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, WebError> {
    let tenant = match query.ctx.as_deref().filter(|c| !c.trim().is_empty()) {
        Some(ctx) => Some(ContextId::parse(ctx).map_err(|e| WebError::BadRequest(e.to_string()))?),
        None => None,
    };
    let request = state
        .clients
        .superid
        .oidc
        .authorization_request(tenant.as_ref())
        .await
        .map_err(|e| WebError::Upstream(e.to_string()))?;
    session
        .start_login(&request.pending)
        .map_err(|e| WebError::Unexpected(anyhow::anyhow!("writing the session: {e}")))?;
    metrics::counter!("partner_web_sign_ins_total", "outcome" => "started").increment(1);
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", request.url.as_str()))
        .finish())
}

/// `GET /callback`: checks the state, exchanges the code, validates the id_token, captures the tenant's
/// system user token when an administrator signed in, and signs the user in under a new session id.
pub async fn callback_get(
    session: TypedSession,
    state: web::Data<AppState>,
    query: web::Query<CallbackParams>,
) -> Result<HttpResponse, WebError> {
    let result = complete_code_flow(&session, &state, &query).await;
    finish(&session, &state, result).await
}

async fn complete_code_flow(
    session: &TypedSession,
    state: &AppState,
    query: &CallbackParams,
) -> Result<(SuperOfficeClaims, Credentials), WebError> {
    let pending = take_pending(session, "link")?;
    let signed_in = state
        .clients
        .superid
        .oidc
        .complete(&pending, query)
        .await
        .map_err(sign_in_error)?;
    if let Some(tenant) = &pending.tenant
        && *tenant != signed_in.claims.tenant.context_id
    {
        tracing::info!(asked = %tenant, got = %signed_in.claims.tenant.context_id, "user signed in to another tenant than preselected");
    }
    Ok((signed_in.claims, Credentials::Tokens(signed_in.tokens)))
}

/// The sign-in this browser started, taken so it is used once: a replayed `used` (the callback link, the
/// legacy form) finds none.
fn take_pending(session: &TypedSession, used: &str) -> Result<PendingSignIn, WebError> {
    session
        .take_login()
        .map_err(|e| WebError::Unexpected(anyhow::anyhow!("reading the session: {e}")))?
        .ok_or_else(|| {
            WebError::SignIn(format!(
                "no sign-in is in progress in this browser (it may have expired, or the {used} was used already)"
            ))
        })
}

/// The legacy SuperID form post: a `jwt` field (any letter case) with a `SuperOffice AS` token. Off unless
/// `web.legacy_sign_in` (404, nothing read or stored). On, it completes only a sign-in this browser started
/// (`GET /login`), with a token naming this application in its audience and carrying no other browser's
/// nonce; it signs the user in with their own ticket and never captures a system user token.
pub async fn callback_post(
    session: TypedSession,
    state: web::Data<AppState>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, WebError> {
    if !state.legacy_sign_in {
        metrics::counter!("partner_web_sign_ins_total", "outcome" => "legacy_disabled")
            .increment(1);
        return Err(WebError::NotFound(
            "This application does not accept the legacy sign-in post. Sign in through /login."
                .into(),
        ));
    }
    let result = async {
        let token = form
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("jwt"))
            .map(|(_, value)| value.trim())
            .filter(|value| !value.is_empty())
            .ok_or_else(|| WebError::SignIn("the sign-in form carries no jwt field".into()))?;
        let pending = take_pending(&session, "form")?;
        let expectation = Expectation::LegacySignIn {
            client_id: state.client_id.clone(),
            nonce: pending.nonce().to_owned(),
        };
        let claims = state
            .clients
            .validator
            .validate(token, &expectation)
            .await
            .map_err(|e| sign_in_error(OidcError::IdToken(e)))?;
        let ticket = claims
            .credentials
            .ticket
            .as_ref()
            .map(|t| t.expose().to_owned());
        Ok((claims, Credentials::LegacyTicket(ticket)))
    }
    .await;
    finish(&session, &state, result).await
}

/// How the signed-in user calls the tenant's API themselves.
enum Credentials {
    Tokens(UserTokens),
    LegacyTicket(Option<String>),
}

async fn finish(
    session: &TypedSession,
    state: &AppState,
    result: Result<(SuperOfficeClaims, Credentials), WebError>,
) -> Result<HttpResponse, WebError> {
    let (claims, credentials) = match result {
        Ok(ok) => ok,
        Err(e) => {
            metrics::counter!("partner_web_sign_ins_total", "outcome" => "failed").increment(1);
            tracing::warn!(error = %e, "sign-in failed");
            return Err(e);
        }
    };
    // Only an OpenID Connect id_token, from the code flow this browser started, may capture a token.
    if matches!(credentials, Credentials::Tokens(_)) {
        capture_if_administrator(state, &claims).await?;
    }
    let user = session_user(&claims, credentials);
    session
        .sign_in(&user)
        .map_err(|e| WebError::Unexpected(anyhow::anyhow!("writing the session: {e}")))?;
    metrics::counter!("partner_web_sign_ins_total", "outcome" => "succeeded").increment(1);
    tracing::info!(tenant = %claims.tenant.context_id, administrator = claims.associate.is_administrator, "user signed in");
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", "/"))
        .finish())
}

fn session_user(claims: &SuperOfficeClaims, credentials: Credentials) -> SessionUser {
    let display_name = claims
        .associate
        .name
        .full()
        .or_else(|| claims.user.login_name().map(str::to_owned))
        .unwrap_or_else(|| "SuperOffice user".to_owned());
    let credentials = match credentials {
        Credentials::Tokens(tokens) => UserCredentials::from_tokens(tokens),
        Credentials::LegacyTicket(ticket) => {
            UserCredentials::legacy(ticket, claims.token.expires_at)
        }
    };
    SessionUser {
        subject: claims
            .user
            .subject
            .clone()
            .or_else(|| claims.user.upn.clone())
            .unwrap_or_else(|| display_name.clone()),
        display_name,
        email: claims.user.email.clone(),
        is_administrator: claims.associate.is_administrator,
        associate_id: claims.associate.id.map(|id| id.to_string()),
        tenant: SessionTenant {
            context_id: claims.tenant.context_id.clone(),
            company_name: claims.tenant.company_name.clone(),
            webapi_url: claims
                .tenant
                .urls
                .webapi_url
                .as_ref()
                .map(ToString::to_string),
        },
        credentials,
    }
}

/// A sign-in failure in plain words; nothing of the token is echoed.
fn sign_in_error(error: OidcError) -> WebError {
    match &error {
        OidcError::Discovery(_) | OidcError::Transport(_) | OidcError::Status { .. } => {
            WebError::Upstream(error.to_string())
        }
        OidcError::IdToken(ValidationError::Discovery(_)) => WebError::Upstream(error.to_string()),
        OidcError::IdToken(ValidationError::Jwt(reason)) => WebError::SignIn(format!(
            "the identity token from SuperID was refused ({reason})"
        )),
        OidcError::TokenEndpoint { .. } if error.is_invalid_grant() => WebError::SignIn(
            "SuperID refused the authorization code: it expired or was used already".into(),
        ),
        _ => WebError::SignIn(error.to_string()),
    }
}
