//! `GET /tenant`: the signed-in user's tenant: token, ticket, recent work and the last error.

use actix_web::web;
use askama::Template;
use askama_web::WebTemplate;

use crate::errors::WebError;
use crate::routes::views::{TenantView, WorkView};
use crate::session::{SessionUser, TypedSession};
use crate::state::AppState;

#[derive(Template, WebTemplate)]
#[template(path = "tenant/tenant.html")]
pub struct TenantPage {
    user: SessionUser,
    tenant: Option<TenantView>,
    work: Vec<WorkView>,
    events: Vec<EventView>,
    csrf: String,
}

struct EventView {
    at: String,
    action: String,
    actor: String,
}

pub async fn get(
    user: SessionUser,
    session: TypedSession,
    state: web::Data<AppState>,
) -> Result<TenantPage, WebError> {
    let csrf = session
        .csrf_token()
        .map_err(|e| WebError::Unexpected(anyhow::anyhow!("writing the session: {e}")))?;
    let mut conn = state.conn().await?;
    let tenant = shared::db::tenants::find(&mut conn, &user.tenant.context_id).await?;
    let ticket = shared::db::tickets::find(&mut conn, &user.tenant.context_id).await?;
    let work = shared::db::work::recent_for_tenant(&mut conn, &user.tenant.context_id, 20).await?;
    let events =
        shared::db::audit::recent_for_tenant(&mut conn, &user.tenant.context_id, 20).await?;
    Ok(TenantPage {
        tenant: tenant.map(|t| TenantView::new(&t, ticket.as_ref())),
        work: work.iter().map(WorkView::new).collect(),
        events: events
            .into_iter()
            .map(|e| EventView {
                at: crate::routes::views::format_time(e.created_at),
                action: e.action.as_str().replace('_', " "),
                actor: e.actor,
            })
            .collect(),
        user,
        csrf,
    })
}
