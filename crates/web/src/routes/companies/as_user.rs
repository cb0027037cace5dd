//! `POST /companies/as-user`: creates a company now, with the signed-in user's own credentials.

use actix_web::{HttpResponse, web};
use chrono::{TimeDelta, Utc};
use secrecy::ExposeSecret;
use shared::domain::Ticket;
use shared::tenant::{TenantCredentials, TenantError};

use super::CompanyForm;
use crate::errors::WebError;

use crate::session::{CreatedCompany, SessionUser, TypedSession};
use crate::state::AppState;

/// Renew the access token when it has less than this many seconds left.
const RENEW_MARGIN_SECS: i64 = 30;

pub async fn post(
    session: TypedSession,
    state: web::Data<AppState>,
    form: web::Form<CompanyForm>,
) -> Result<HttpResponse, WebError> {
    let mut user = crate::session::require_user(&session)?;
    crate::session::require_csrf(&session, &form.csrf_token)?;
    let name = form.company_name()?;
    let ctx = user.tenant.context_id.clone();
    if user.credentials.access_token.is_some()
        && user.credentials.access_expires_at - Utc::now() < TimeDelta::seconds(RENEW_MARGIN_SECS)
    {
        renew(&state, &session, &mut user).await?;
    }
    let started = std::time::Instant::now();
    let mut result = state
        .clients
        .tenants
        .rest
        .create_company(&ctx, &credentials(&user)?, &name)
        .await;
    if matches!(result, Err(TenantError::AccessTokenRejected { .. }))
        && user.credentials.refresh_token.is_some()
    {
        renew(&state, &session, &mut user).await?;
        result = state
            .clients
            .tenants
            .rest
            .create_company(&ctx, &credentials(&user)?, &name)
            .await;
    }
    metrics::histogram!("partner_web_create_company_seconds")
        .record(started.elapsed().as_secs_f64());
    let company = result.map_err(|e| match e {
        TenantError::AccessTokenRejected { .. } | TenantError::TicketRejected { .. } => {
            WebError::SignIn(
                "SuperOffice no longer accepts your sign-in for this tenant; sign in again".into(),
            )
        }
        TenantError::NotRunning { .. } => WebError::Upstream(e.to_string()),
        other => WebError::Upstream(other.to_string()),
    })?;
    tracing::info!(tenant = %ctx, contact_id = company.contact_id, "company created with the login user");
    session
        .set_flash_created(&CreatedCompany {
            contact_id: company.contact_id,
            name: company.name,
        })
        .map_err(|e| WebError::Unexpected(anyhow::anyhow!("writing the session: {e}")))?;
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", "/"))
        .finish())
}

/// The user's own credentials: the access token of the code flow, or the ticket of a legacy sign-in.
fn credentials(user: &SessionUser) -> Result<TenantCredentials, WebError> {
    if let Some(token) = &user.credentials.access_token {
        return Ok(TenantCredentials::User(token.secret().clone()));
    }
    match &user.credentials.user_ticket {
        Some(ticket) => Ticket::parse(ticket.secret().expose_secret())
            .map(TenantCredentials::SystemUser)
            .map_err(|e| WebError::Unexpected(e.into())),
        None => Err(WebError::SignIn(
            "your sign-in carries no credentials for the tenant; sign in again".into(),
        )),
    }
}

/// Renews the access token with the refresh token and keeps the new one in the session.
async fn renew(
    state: &AppState,
    session: &TypedSession,
    user: &mut SessionUser,
) -> Result<(), WebError> {
    let Some(refresh) = user.credentials.refresh_token.clone() else {
        return Err(WebError::SignIn(
            "your sign-in has expired; sign in again".into(),
        ));
    };
    let tokens = state
        .clients
        .superid
        .oidc
        .refresh(refresh.secret())
        .await
        .map_err(|e| {
            if e.is_invalid_grant() {
                WebError::SignIn("your sign-in has expired; sign in again".into())
            } else {
                WebError::Upstream(e.to_string())
            }
        })?;
    user.credentials.renew(tokens);
    session
        .update_user(user)
        .map_err(|e| WebError::Unexpected(anyhow::anyhow!("writing the session: {e}")))
}
