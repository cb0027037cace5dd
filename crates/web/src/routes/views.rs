//! What pages show of stored rows, in plain words.

use chrono::{DateTime, Duration, Utc};
use shared::db::models::{StoredTicket, Tenant, TenantState, WorkRequest, WorkState};
use shared::db::work::{CreateCompany, Work};

/// SuperOffice's ticket lifetime: six hours after the last use.
pub const TICKET_LIFETIME_HOURS: i64 = 6;

/// A tenant as the pages show it.
#[derive(Debug, Clone)]
pub struct TenantView {
    pub state_text: String,
    pub ticket_text: String,
    pub can_queue: bool,
    pub blocked_reason: String,
    pub token_captured: String,
    pub last_success: String,
    pub last_error: String,
    /// What SuperOffice's state API said of the tenant last, and when.
    pub so_state: String,
    /// Why the partner's operator has to look at the tenant, when partner-service flagged it.
    pub attention: Option<String>,
}

impl TenantView {
    pub fn new(tenant: &Tenant, ticket: Option<&StoredTicket>) -> Self {
        let state = tenant.state;
        let state_text = match state {
            TenantState::Pending => {
                "Approved; the partner service is obtaining a system user ticket".to_owned()
            }
            TenantState::Active => "Active".to_owned(),
            TenantState::Suspended => {
                "Suspended by SuperOffice; work waits until it resumes".to_owned()
            }
            TenantState::Revoked => "The application's access was revoked".to_owned(),
            TenantState::Expired => "The application's authorization expired".to_owned(),
            TenantState::Denied => "SuperOffice denied the system user".to_owned(),
            TenantState::NeedsReapproval => "The application needs to be approved again".to_owned(),
            TenantState::Deleted => "The tenant was deleted in SuperOffice".to_owned(),
            TenantState::Disabled => "Disabled by the partner's operator".to_owned(),
        };
        let can_queue = state.allows_work() && tenant.system_token.is_some();
        let blocked_reason = match state {
            TenantState::Revoked | TenantState::Expired | TenantState::Denied | TenantState::NeedsReapproval => {
                "The system user cannot work in this tenant until an administrator signs in here and approves the application again.".to_owned()
            }
            TenantState::Suspended | TenantState::Deleted => {
                "SuperOffice has stopped this tenant; the system user waits until it runs again.".to_owned()
            }
            TenantState::Disabled => "The partner's operator has disabled this tenant.".to_owned(),
            _ => "This tenant has no system user token yet. An administrator must sign in and approve the application.".to_owned(),
        };
        Self {
            state_text,
            ticket_text: ticket_text(tenant, ticket, Utc::now()),
            can_queue,
            blocked_reason,
            token_captured: match (&tenant.token_captured_at, &tenant.token_captured_by) {
                (Some(at), Some(by)) => format!("{} by {}", format_time(*at), by),
                (Some(at), None) => format_time(*at),
                _ => "not captured".to_owned(),
            },
            last_success: tenant
                .last_success_at
                .map_or_else(|| "never".to_owned(), format_time),
            last_error: match tenant.current_error() {
                Some((error, Some(at))) => format!("{error} ({})", format_time(at)),
                Some((error, None)) => error.to_owned(),
                None => "none".to_owned(),
            },
            so_state: match (&tenant.so_state, tenant.so_state_checked_at) {
                (Some(so_state), Some(at)) => format!("{so_state} (checked {})", format_time(at)),
                (Some(so_state), None) => so_state.clone(),
                (None, _) => "not checked yet".to_owned(),
            },
            attention: tenant.needs_attention.then(|| {
                let reason = tenant
                    .attention_reason
                    .as_deref()
                    .unwrap_or("no reason recorded");
                match tenant.attention_at {
                    Some(at) => format!("{reason} (since {})", format_time(at)),
                    None => reason.to_owned(),
                }
            }),
        }
    }
}

/// The ticket state in words: none, valid until, refreshing, rejected.
pub fn ticket_text(tenant: &Tenant, ticket: Option<&StoredTicket>, now: DateTime<Utc>) -> String {
    match ticket {
        None if tenant.system_token.is_some() && tenant.state.allows_work() => {
            "no ticket yet: being obtained".to_owned()
        }
        None => "no ticket".to_owned(),
        Some(ticket) if ticket.rejected_at.is_some() => {
            "ticket rejected by the tenant: being refreshed".to_owned()
        }
        Some(ticket) if ticket.token_generation != tenant.token_generation => {
            "refreshing (a new token was captured)".to_owned()
        }
        Some(ticket) => {
            let until = ticket.last_used_at + Duration::hours(TICKET_LIFETIME_HOURS);
            if until > now {
                format!("ticket valid until {}", format_time(until))
            } else {
                "ticket expired: a new one is obtained on the next use".to_owned()
            }
        }
    }
}

/// A work request as the pages show it.
#[derive(Debug, Clone)]
pub struct WorkView {
    pub id: i64,
    pub created_at: String,
    pub company_name: String,
    pub state: String,
    pub outcome: String,
    pub open: bool,
    pub contact_id: Option<i64>,
}

impl WorkView {
    pub fn new(request: &WorkRequest) -> Self {
        let company_name = match request.work() {
            Ok(Work::CreateCompany(CreateCompany { name })) => name,
            Err(_) => "(unnamed)".to_owned(),
        };
        let contact_id = request
            .result
            .as_ref()
            .and_then(|r| r["contact_id"].as_i64());
        let outcome = match request.state {
            WorkState::Queued if request.attempts > 0 => "queued (will retry)".to_owned(),
            WorkState::Queued => "queued".to_owned(),
            WorkState::Running => "in progress".to_owned(),
            WorkState::Done => match contact_id {
                Some(id) => format!("done: company id {id}"),
                None => "done".to_owned(),
            },
            WorkState::Failed => format!(
                "failed: {}",
                request.error.as_deref().unwrap_or("unknown reason")
            ),
        };
        Self {
            id: request.id,
            created_at: format_time(request.created_at),
            company_name,
            state: request.state.to_string(),
            open: WorkState::OPEN.contains(&request.state),
            outcome,
            contact_id,
        }
    }
}

pub fn format_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}
