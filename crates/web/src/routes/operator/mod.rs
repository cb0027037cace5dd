//! The operator console, `/operator`: every tenant with its state and what needs attention, one tenant's
//! detail with the operator's actions, charts from the audit trail and the running partner-service
//! instances. Only identities listed in `web.operators` get in; everyone else (signed in or not) gets 404
//! on every `/operator` URL, so the console's existence is not shown. Actions are POST forms with the
//! session's CSRF token, each audited with the actor `operator:{email}`; they call the same functions as
//! `partner-service tenants …`.

mod access;
pub mod charts;

pub use self::access::SignedInOperator;
use self::access::not_found;

use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{Duration, Utc};
use serde::Deserialize;
use shared::db::DbError;
use shared::db::models::TenantState;
use shared::db::operator::{
    self, ByOperator, EnableOutcome, QueryCounter, TenantFilter, TenantRow,
};
use shared::domain::ContextId;

use crate::errors::WebError;
use crate::routes::views::{TICKET_LIFETIME_HOURS, TenantView, WorkView, format_time};
use crate::session::SessionUser;
use crate::state::AppState;

/// The response header that says how many database queries a console page took.
pub const QUERY_COUNT_HEADER: &str = "x-db-queries";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/operator", web::get().to(list))
        .route("/operator/charts/{name}", web::get().to(charts::get))
        .route("/operator/tenants/{ctx}", web::get().to(tenant))
        .route(
            "/operator/tenants/{ctx}/purge",
            web::get().to(confirm_purge),
        )
        .route("/operator/tenants/{ctx}/{action}", web::post().to(act))
        // Anything else under /operator is as absent as the console is to a non-operator.
        .route("/operator/{tail:.*}", web::route().to(unknown));
}

async fn unknown(_operator: SignedInOperator) -> Result<HttpResponse, WebError> {
    Err(not_found())
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    state: String,
    #[serde(default)]
    attention: String,
    #[serde(default)]
    q: String,
    after: Option<String>,
    before: Option<String>,
    purged: Option<String>,
}

/// A row of the tenant table, in words.
pub struct RowView {
    context_id: String,
    company: String,
    state: String,
    attention: Option<String>,
    so_state: String,
    ticket: String,
    last_success: String,
    last_error: String,
    open_work: i64,
}

impl RowView {
    fn new(row: &TenantRow) -> Self {
        let t = &row.tenant;
        let now = Utc::now();
        let ticket = match (
            row.ticket_last_used_at,
            row.ticket_rejected,
            row.ticket_generation,
        ) {
            (_, true, _) => "rejected".to_owned(),
            (Some(_), _, Some(g)) if g != t.token_generation => "refreshing".to_owned(),
            (Some(used), _, _) => {
                let until = used + Duration::hours(TICKET_LIFETIME_HOURS);
                if until > now {
                    format_time(until)
                } else {
                    "expired".to_owned()
                }
            }
            (None, _, _) => "none".to_owned(),
        };
        Self {
            context_id: t.context_id.to_string(),
            company: t.company_name.clone().unwrap_or_default(),
            state: t.state.as_str().replace('_', " "),
            attention: t.needs_attention.then(|| {
                t.attention_reason
                    .clone()
                    .unwrap_or_else(|| "no reason recorded".to_owned())
            }),
            so_state: t
                .so_state
                .clone()
                .unwrap_or_else(|| "not checked".to_owned()),
            ticket,
            last_success: t
                .last_success_at
                .map_or_else(|| "never".to_owned(), format_time),
            last_error: t
                .current_error()
                .map_or_else(|| "none".to_owned(), |(error, _)| error.to_owned()),
            open_work: row.open_work,
        }
    }
}

pub struct CountView {
    state: String,
    label: String,
    count: i64,
    attention: i64,
}

pub struct InstanceView {
    id: String,
    host: String,
    started: String,
    last_seen: String,
    stale: bool,
    circuit: String,
    tenants: String,
    lease_count: i64,
}

pub struct ChartView {
    name: &'static str,
    title: &'static str,
}

#[derive(Template)]
#[template(path = "operator/list.html")]
pub struct ListPage {
    user: SessionUser,
    csrf: String,
    counts: Vec<CountView>,
    total: i64,
    needing_attention: i64,
    rows: Vec<RowView>,
    states: Vec<&'static str>,
    selected_state: String,
    attention: bool,
    q: String,
    previous_link: Option<String>,
    next_link: Option<String>,
    instances: Vec<InstanceView>,
    charts: Vec<ChartView>,
    purged: Option<String>,
}

/// A query string with the filters and one paging key.
fn page_link(query: &ListQuery, key: &str, value: &str) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    if !query.state.is_empty() {
        out.append_pair("state", &query.state);
    }
    if !query.attention.is_empty() {
        out.append_pair("attention", "1");
    }
    if !query.q.trim().is_empty() {
        out.append_pair("q", query.q.trim());
    }
    out.append_pair(key, value);
    format!("/operator?{}", out.finish())
}

/// `GET /operator`: counts per state, the tenant table (filters, keyset paging), charts, instances.
/// A fixed number of queries whatever the number of tenants; the `x-db-queries` header says how many.
pub async fn list(
    operator: SignedInOperator,
    state: web::Data<AppState>,
    query: Option<web::Query<ListQuery>>,
) -> Result<HttpResponse, WebError> {
    let query = query.map(web::Query::into_inner).unwrap_or_default();
    let csrf = operator.csrf()?;
    let state_filter = if query.state.is_empty() {
        None
    } else {
        Some(query.state.parse::<TenantState>().map_err(|_| {
            WebError::BadRequest(format!("{:?} is not a tenant state", query.state))
        })?)
    };
    let filter = TenantFilter {
        state: state_filter,
        attention: !query.attention.is_empty(),
        search: Some(query.q.clone()).filter(|q| !q.trim().is_empty()),
        after: query.after.clone().filter(|s| !s.is_empty()),
        before: query.before.clone().filter(|s| !s.is_empty()),
    };
    let mut conn = state.conn().await?;
    let counter = QueryCounter::install(&mut conn);
    let loaded = async {
        let counts = operator::state_counts(&mut conn).await?;
        let page = operator::tenant_page(&mut conn, &filter, operator::PAGE_SIZE).await?;
        let instances = operator::instances(&mut conn).await?;
        Ok::<_, DbError>((counts, page, instances))
    }
    .await;
    let queries = counter.finish(&mut conn);
    drop(conn);
    let (counts, page, instances) = loaded?;
    let now = Utc::now();
    let previous_link = page
        .has_previous
        .then(|| page.rows.first())
        .flatten()
        .map(|row| page_link(&query, "before", &row.tenant.context_id));
    let next_link = page
        .has_next
        .then(|| page.rows.last())
        .flatten()
        .map(|row| page_link(&query, "after", &row.tenant.context_id));
    ListPage {
        csrf,
        total: counts.total(),
        needing_attention: counts.needing_attention(),
        counts: counts
            .states
            .iter()
            .map(|(state, count, attention)| CountView {
                state: state.clone(),
                label: state.replace('_', " "),
                count: *count,
                attention: *attention,
            })
            .collect(),
        rows: page.rows.iter().map(RowView::new).collect(),
        states: TenantState::ALL.iter().map(|s| s.as_str()).collect(),
        selected_state: query.state.clone(),
        attention: filter.attention,
        q: query.q.clone(),
        previous_link,
        next_link,
        instances: instances
            .into_iter()
            .map(|i| {
                let stale =
                    now - i.instance.last_seen_at > Duration::seconds(operator::STALE_AFTER_SECS);
                let mut tenants = i.tenants.join(", ");
                if i.lease_count > i.tenants.len() as i64 {
                    tenants.push_str(&format!(
                        " and {} more",
                        i.lease_count - i.tenants.len() as i64
                    ));
                }
                InstanceView {
                    id: i.instance.id,
                    host: i.instance.host,
                    started: format_time(i.instance.started_at),
                    last_seen: format_time(i.instance.last_seen_at),
                    stale,
                    circuit: i.instance.circuit_state.to_string(),
                    tenants,
                    lease_count: i.lease_count,
                }
            })
            .collect(),
        charts: charts::CHARTS
            .iter()
            .map(|(name, title, _)| ChartView { name, title })
            .collect(),
        purged: query.purged.clone(),
        user: operator.user,
    }
    .counted("the console", queries)
}

/// A console page as HTML, with the header that says how many database queries it took.
trait CountedPage: Template {
    fn counted(&self, what: &str, queries: usize) -> Result<HttpResponse, WebError> {
        let body = self
            .render()
            .map_err(|e| WebError::Unexpected(anyhow::anyhow!("rendering {what}: {e}")))?;
        Ok(HttpResponse::Ok()
            .content_type(ContentType::html())
            .insert_header((QUERY_COUNT_HEADER, queries.to_string()))
            .body(body))
    }
}

impl<T: Template> CountedPage for T {}

fn context_id(raw: &str) -> Result<ContextId, WebError> {
    ContextId::parse(raw).map_err(|_| not_found())
}

pub struct EventView {
    at: String,
    action: String,
    actor: String,
    detail: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct TenantQuery {
    history_before: Option<i64>,
    done: Option<String>,
}

#[derive(Template)]
#[template(path = "operator/tenant.html")]
pub struct TenantPage {
    user: SessionUser,
    csrf: String,
    context_id: String,
    company: String,
    state: String,
    view: TenantView,
    token_generation: i32,
    lease: String,
    open_work: Vec<WorkView>,
    recent_work: Vec<WorkView>,
    events: Vec<EventView>,
    older_link: Option<String>,
    sessions: i64,
    notice: Option<String>,
    disabled: bool,
}

/// `GET /operator/tenants/{ctx}`: the tenant's detail, its work, its audit history (paged) and the actions.
pub async fn tenant(
    operator: SignedInOperator,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: Option<web::Query<TenantQuery>>,
) -> Result<HttpResponse, WebError> {
    let query = query.map(web::Query::into_inner).unwrap_or_default();
    let ctx = context_id(&path)?;
    let csrf = operator.csrf()?;
    let mut conn = state.conn().await?;
    let counter = QueryCounter::install(&mut conn);
    let loaded = async {
        let Some(tenant) = shared::db::tenants::find(&mut conn, ctx.as_str()).await? else {
            return Ok(None);
        };
        let ticket = shared::db::tickets::find(&mut conn, ctx.as_str()).await?;
        let open = shared::db::work::open_for_tenant(&mut conn, ctx.as_str()).await?;
        let recent = shared::db::work::recent_for_tenant(&mut conn, ctx.as_str(), 20).await?;
        let history = operator::history_page(
            &mut conn,
            ctx.as_str(),
            query.history_before,
            operator::HISTORY_PAGE_SIZE,
        )
        .await?;
        let sessions = shared::db::sessions::count_for_tenant(&mut conn, ctx.as_str()).await?;
        Ok::<_, DbError>(Some((tenant, ticket, open, recent, history, sessions)))
    }
    .await;
    let queries = counter.finish(&mut conn);
    drop(conn);
    let Some((tenant, ticket, open, recent, (events, more), sessions)) = loaded? else {
        return Err(WebError::NotFound(format!("There is no tenant {ctx}.")));
    };
    let lease = match (&tenant.lease_owner, tenant.lease_expires_at) {
        (Some(owner), Some(until)) if until > Utc::now() => {
            format!("held by {owner} until {}", format_time(until))
        }
        _ => "not held".to_owned(),
    };
    let older_link = more.then(|| events.last()).flatten().map(|e| {
        format!(
            "/operator/tenants/{}?history_before={}#history",
            ctx.as_str(),
            e.id
        )
    });
    let notice = query.done.as_deref().and_then(|done| match done {
        "retry" => Some("Retried: the tenant is due now and partner-service picks it up at once."),
        "disable" => Some("Disabled: no work runs for this tenant until it is enabled."),
        "enable" => Some("Enabled: the tenant is pending until partner-service obtains a ticket."),
        "end-sessions" => Some("Sessions ended: the tenant's users must sign in again."),
        _ => None,
    });
    TenantPage {
        csrf,
        context_id: ctx.as_str().to_owned(),
        company: tenant.company_name.clone().unwrap_or_default(),
        state: tenant.state.as_str().replace('_', " "),
        view: TenantView::new(&tenant, ticket.as_ref()),
        token_generation: tenant.token_generation,
        lease,
        open_work: open.iter().map(WorkView::new).collect(),
        recent_work: recent.iter().map(WorkView::new).collect(),
        events: events
            .into_iter()
            .map(|e| EventView {
                at: format_time(e.created_at),
                action: e.action.as_str().replace('_', " "),
                actor: e.actor,
                detail: if e.detail.is_null() {
                    String::new()
                } else {
                    e.detail.to_string()
                },
            })
            .collect(),
        older_link,
        sessions,
        notice: notice.map(str::to_owned),
        disabled: tenant.state == TenantState::Disabled.as_str(),
        user: operator.user,
    }
    .counted("the tenant page", queries)
}

#[derive(Template, askama_web::WebTemplate)]
#[template(path = "operator/purge.html")]
pub struct PurgePage {
    user: SessionUser,
    csrf: String,
    context_id: String,
    company: String,
}

/// `GET /operator/tenants/{ctx}/purge`: the confirmation step before a purge.
pub async fn confirm_purge(
    operator: SignedInOperator,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<PurgePage, WebError> {
    let ctx = context_id(&path)?;
    let mut conn = state.conn().await?;
    let Some(tenant) = shared::db::tenants::find(&mut conn, ctx.as_str()).await? else {
        return Err(WebError::NotFound(format!("There is no tenant {ctx}.")));
    };
    Ok(PurgePage {
        csrf: operator.csrf()?,
        context_id: tenant.context_id.to_string(),
        company: tenant.company_name.unwrap_or_default(),
        user: operator.user,
    })
}

#[derive(Debug, Deserialize)]
pub struct ActionForm {
    csrf_token: String,
    /// The purge confirmation: the tenant's context id, typed again.
    #[serde(default)]
    confirm: String,
}

/// `POST /operator/tenants/{ctx}/{retry|disable|enable|purge|end-sessions}`.
pub async fn act(
    operator: SignedInOperator,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    // Read leniently, so a body that is not a form gets the same 404 as everything else from a
    // non-operator, rather than a 400 that would show the route exists.
    form: Option<web::Form<ActionForm>>,
) -> Result<HttpResponse, WebError> {
    let Some(form) = form else {
        return Err(WebError::BadRequest(
            "The action needs the form of the tenant's page; go back and try again.".to_owned(),
        ));
    };
    let (raw_ctx, action) = path.into_inner();
    if !matches!(
        action.as_str(),
        "retry" | "disable" | "enable" | "purge" | "end-sessions"
    ) {
        return Err(not_found());
    }
    let ctx = context_id(&raw_ctx)?;
    operator.require_csrf(&form.csrf_token)?;
    let actor = operator.actor.as_str();
    let by = ByOperator::new(&ctx, actor);
    let mut conn = state.conn().await?;
    let missing = || WebError::NotFound(format!("There is no tenant {ctx}."));
    match action.as_str() {
        "retry" => {
            if !shared::db::tenants::operator_retry(&mut conn, by).await? {
                return Err(missing());
            }
        }
        "disable" => {
            if !shared::db::tenants::disable(&mut conn, by).await? {
                return Err(missing());
            }
        }
        "enable" => match operator::enable(&mut conn, by).await? {
            EnableOutcome::Enabled => {}
            EnableOutcome::NotDisabled(now) => {
                return Err(WebError::BadRequest(format!(
                    "{ctx} is {now}, not disabled: there is nothing to enable."
                )));
            }
            EnableOutcome::NoTenant => return Err(missing()),
        },
        "purge" => {
            if form.confirm.trim() != ctx.as_str() {
                return Err(WebError::BadRequest(format!(
                    "To purge, type the context id {ctx} in the confirmation field; nothing was removed."
                )));
            }
            if !shared::db::tenants::purge(&mut conn, by).await? {
                return Err(missing());
            }
            tracing::info!(tenant = %ctx, actor, "tenant purged from the operator console");
            return Ok(see_other(&format!("/operator?purged={}", ctx.as_str())));
        }
        _ => {
            shared::db::sessions::end_for_tenant(&mut conn, by).await?;
        }
    }
    tracing::info!(tenant = %ctx, actor, action, "operator action");
    Ok(see_other(&format!(
        "/operator/tenants/{}?done={action}",
        ctx.as_str()
    )))
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", location))
        .finish()
}
