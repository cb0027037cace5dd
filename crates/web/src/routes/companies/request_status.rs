//! `GET /companies/requests/{id}`: a queued request's outcome; refreshes itself while it is open.

use actix_web::web;
use askama::Template;
use askama_web::WebTemplate;

use crate::errors::WebError;
use crate::routes::views::WorkView;
use crate::session::SessionUser;
use crate::state::AppState;

#[derive(Template, WebTemplate)]
#[template(path = "companies/request.html")]
pub struct RequestPage {
    item: WorkView,
}

pub async fn get(
    state: web::Data<AppState>,
    path: web::Path<i64>,
    user: SessionUser,
) -> Result<RequestPage, WebError> {
    let mut conn = state.conn().await?;
    // Scoped to the user's own tenant: another tenant's request id is simply not found.
    let request =
        shared::db::work::find_for_tenant(&mut conn, &user.tenant.context_id, path.into_inner())
            .await?
            .ok_or_else(|| {
                WebError::NotFound("There is no such request for your tenant.".into())
            })?;
    Ok(RequestPage {
        item: WorkView::new(&request),
    })
}
