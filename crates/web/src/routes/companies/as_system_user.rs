//! `POST /companies/as-system-user`: queues the work for partner-service; never done in this request.

use actix_web::{HttpResponse, web};

use super::CompanyForm;
use crate::errors::WebError;
use crate::session::TypedSession;
use crate::startup::AppState;

pub async fn post(
    session: TypedSession,
    state: web::Data<AppState>,
    form: web::Form<CompanyForm>,
) -> Result<HttpResponse, WebError> {
    let user = crate::routes::require_user(&session)?;
    crate::routes::require_csrf(&session, &form.csrf_token)?;
    let name = form.company_name()?;
    let mut conn = state.pool.get().await.map_err(shared::db::DbError::from)?;
    let tenant = shared::db::tenants::find(&mut conn, &user.context_id).await?;
    let can_work = tenant.as_ref().is_some_and(|t| {
        t.system_token_ciphertext.is_some() && t.lifecycle().is_ok_and(|s| s.allows_work())
    });
    if !can_work {
        return Err(WebError::BadRequest(
            "The system user cannot work in this tenant yet: an administrator must sign in and approve the application."
                .into(),
        ));
    }
    let request =
        shared::db::work::enqueue_create_company(&mut conn, &user.context_id, &name, &user.subject)
            .await?;
    metrics::counter!("partner_web_work_queued_total").increment(1);
    tracing::info!(tenant = %user.context_id, work_request = request.id, "company creation queued for the system user");
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", format!("/companies/requests/{}", request.id)))
        .finish())
}
