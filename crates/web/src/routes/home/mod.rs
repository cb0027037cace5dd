//! `GET /`: what the app is and a sign-in button; signed in, the user, the tenant and the two actions.

use actix_web::web;
use askama::Template;
use askama_web::WebTemplate;

use crate::errors::WebError;
use crate::routes::views::{TenantView, WorkView};
use crate::session::{CreatedCompany, SessionUser, TypedSession};
use crate::state::AppState;

#[derive(Template, WebTemplate)]
#[template(path = "home/home.html")]
pub struct HomePage {
    user: Option<SessionUser>,
    tenant: Option<TenantView>,
    work: Vec<WorkView>,
    csrf: String,
    created: Option<CreatedCompany>,
    default_company_name: String,
    /// Why the signed-in user may not use the system user, when they may not.
    system_user_refusal: Option<&'static str>,
    /// The user is listed in `web.operators`: the page links to the operator console.
    operator: bool,
}

pub async fn get(session: TypedSession, state: web::Data<AppState>) -> Result<HomePage, WebError> {
    let user = session
        .user()
        .map_err(|e| WebError::Unexpected(anyhow::anyhow!("reading the session: {e}")))?;
    let csrf = session
        .csrf_token()
        .map_err(|e| WebError::Unexpected(anyhow::anyhow!("writing the session: {e}")))?;
    let created = session.take_flash_created();
    let (tenant, work) = match &user {
        Some(user) => {
            let mut conn = state.conn().await?;
            let tenant = shared::db::tenants::find(&mut conn, &user.tenant.context_id).await?;
            let ticket = match tenant {
                Some(_) => shared::db::tickets::find(&mut conn, &user.tenant.context_id).await?,
                None => None,
            };
            let work =
                shared::db::work::recent_for_tenant(&mut conn, &user.tenant.context_id, 5).await?;
            (
                tenant.map(|t| TenantView::new(&t, ticket.as_ref())),
                work.iter().map(WorkView::new).collect(),
            )
        }
        None => (None, Vec::new()),
    };
    let system_user_refusal = user.as_ref().and_then(|user| {
        crate::routes::companies::system_user_refusal(state.system_user_actions, user)
    });
    let operator = user.as_ref().is_some_and(|user| {
        state.operators.iter().any(|op| {
            op.matches(
                &user.tenant.context_id,
                &user.subject,
                user.email.as_deref(),
            )
        })
    });
    Ok(HomePage {
        system_user_refusal,
        operator,
        user,
        tenant,
        work,
        csrf,
        created,
        default_company_name: default_company_name(),
    })
}

/// "SuperId-<unix seconds>", as in SuperOffice's own sample.
pub fn default_company_name() -> String {
    format!("SuperId-{}", chrono::Utc::now().timestamp())
}
