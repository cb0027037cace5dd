//! `POST /companies/as-system-user`: queues the work for partner-service; never done in this request.
//! Only users `web.system_user_actions` allows may ask, and only within `web.work_per_*` and
//! `web.open_work_per_tenant`; a refused request queues nothing.

use actix_web::{HttpResponse, web};

use super::CompanyForm;
use crate::errors::WebError;
use shared::config::SystemUserActions;

use crate::session::{SessionUser, TypedSession};
use crate::state::AppState;

pub async fn post(
    session: TypedSession,
    state: web::Data<AppState>,
    form: web::Form<CompanyForm>,
) -> Result<HttpResponse, WebError> {
    let user = crate::session::require_user(&session)?;
    crate::session::require_csrf(&session, &form.csrf_token)?;
    if let Some(reason) = system_user_refusal(state.system_user_actions, &user) {
        metrics::counter!("partner_web_work_refused_total", "reason" => "not_allowed").increment(1);
        return Err(WebError::Forbidden(reason.to_owned()));
    }
    let name = form.company_name()?;
    let mut conn = state.conn().await?;
    let tenant = shared::db::tenants::find(&mut conn, &user.tenant.context_id).await?;
    let can_work = tenant
        .as_ref()
        .is_some_and(|t| t.system_token.is_some() && t.state.allows_work());
    if !can_work {
        return Err(WebError::BadRequest(
            "The system user cannot work in this tenant yet: an administrator must sign in and approve the application."
                .into(),
        ));
    }
    let queued = shared::db::work_limits::enqueue_create_company_within(
        &mut conn,
        &user.tenant.context_id,
        &name,
        &user.subject,
        state.work_limits,
    )
    .await?;
    let request = match queued {
        Ok(request) => request,
        Err(exceeded) => {
            metrics::counter!("partner_web_work_refused_total", "reason" => "limit").increment(1);
            tracing::warn!(tenant = %user.tenant.context_id, limit = ?exceeded, "work refused: over a limit");
            return Err(WebError::TooManyRequests(exceeded.to_string()));
        }
    };
    metrics::counter!("partner_web_work_queued_total").increment(1);
    tracing::info!(tenant = %user.tenant.context_id, work_request = request.id, "company creation queued for the system user");
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", format!("/companies/requests/{}", request.id)))
        .finish())
}

/// Why `user` may not ask for work with the system user, in words for the page; `None` when they may.
pub fn system_user_refusal(policy: SystemUserActions, user: &SessionUser) -> Option<&'static str> {
    match policy {
        SystemUserActions::AllUsers => None,
        SystemUserActions::Administrators if user.is_administrator => None,
        SystemUserActions::Administrators => Some(
            "Only administrators of your tenant may ask the system user to create companies: it acts with the rights of the whole tenant. Ask an administrator, or create the company with your own login.",
        ),
    }
}
