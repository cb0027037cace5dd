//! The tenant side, served on every API host: `/{ctx}/api/...` (REST) and
//! `/{ctx}/Remote/Services88/Contact.svc` (SOAP). Paths are case-insensitive after the tenant.
//!
//! Before any route: an unknown tenant is 404, a tenant living on another host is 421
//! "Wrong subdomain used to access tenant", a tenant that is not running is 503.

pub mod rest;
pub mod soap;

use actix_web::http::{Method, StatusCode};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::context::SimContext;
use crate::store::{CompanyRecord, GrantStatus};

/// Associate id of the system user in every tenant.
pub const SYSTEM_USER_ASSOCIATE_ID: i64 = 9000;
/// Sliding lifetime of a system user ticket.
const TICKET_LIFETIME_SECS: i64 = 6 * 3600;

/// The name of the API host a listener serves.
#[derive(Debug, Clone)]
pub struct ApiHostName(pub String);

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AssociateRef {
    pub associate_id: i64,
    pub name: String,
    pub full_name: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListItem {
    pub id: i64,
    pub value: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Country {
    pub country_id: i64,
    pub name: String,
    #[serde(rename = "TwoLetterISOCountry")]
    pub two_letter_iso_country: String,
}

/// A modest ContactEntity (a company), PascalCase like the real API.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Contact {
    pub contact_id: i64,
    pub name: String,
    pub department: String,
    pub org_nr: String,
    pub number1: String,
    pub number2: String,
    pub updated_date: String,
    pub created_date: String,
    pub associate: AssociateRef,
    pub business: ListItem,
    pub category: ListItem,
    pub country: Country,
}

/// The fields a client may set.
#[derive(Debug, Default)]
pub struct ContactInput {
    pub contact_id: i64,
    pub name: Option<String>,
    pub department: Option<String>,
    pub org_nr: Option<String>,
    pub number1: Option<String>,
    pub number2: Option<String>,
}

/// `0001-01-01T00:00:00`: NetServer's empty date.
const NO_DATE: &str = "0001-01-01T00:00:00";

fn netserver_date(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    SystemUserTicket,
    UserBearer,
}

impl Credential {
    pub fn name(self) -> &'static str {
        match self {
            Self::SystemUserTicket => "system_user_ticket",
            Self::UserBearer => "user_bearer",
        }
    }
}

/// Who a request runs as.
#[derive(Debug, Clone)]
pub struct Principal {
    pub credential: Credential,
    pub context_id: String,
    pub associate_id: i64,
    pub username: String,
    pub full_name: String,
    pub email: String,
}

impl Principal {
    fn associate(&self) -> AssociateRef {
        AssociateRef {
            associate_id: self.associate_id,
            name: self.username.clone(),
            full_name: self.full_name.clone(),
        }
    }

    /// `CreateDefaultContactEntity`: an empty company owned by the caller.
    pub fn default_contact(&self) -> Contact {
        Contact {
            contact_id: 0,
            name: String::new(),
            department: String::new(),
            org_nr: String::new(),
            number1: String::new(),
            number2: String::new(),
            updated_date: NO_DATE.to_owned(),
            created_date: NO_DATE.to_owned(),
            associate: self.associate(),
            business: ListItem {
                id: 0,
                value: String::new(),
            },
            category: ListItem {
                id: 0,
                value: String::new(),
            },
            country: Country {
                country_id: 578,
                name: "Norway".to_owned(),
                two_letter_iso_country: "NO".to_owned(),
            },
        }
    }
}

/// Why a credential was refused.
#[derive(Debug)]
pub struct AuthError(pub String);

/// Checks a system user ticket for this tenant and slides its expiry.
pub fn authenticate_ticket(
    ctx: &SimContext,
    context_id: &str,
    ticket: &str,
    app_token: Option<&str>,
) -> Result<Principal, AuthError> {
    let now = ctx.clock.now();
    let mut guard = ctx.store();
    let store = &mut *guard;
    let entry = store
        .tickets
        .get_mut(ticket)
        .ok_or_else(|| AuthError("unknown ticket".into()))?;
    if entry.context_id != context_id {
        return Err(AuthError(format!(
            "the ticket belongs to another tenant, not {context_id}"
        )));
    }
    if now - entry.last_used > TimeDelta::seconds(TICKET_LIFETIME_SECS) {
        return Err(AuthError("the ticket has expired".into()));
    }
    let app = ctx
        .application(&entry.client_id)
        .ok_or_else(|| AuthError("unknown application".into()))?;
    if app_token != Some(app.client_secret.as_str()) {
        return Err(AuthError(
            "the application token (SO-AppToken) is missing or does not match the ticket's application"
                .into(),
        ));
    }
    let active = store
        .tenants
        .get(context_id)
        .and_then(|t| t.grants.get(&app.client_id))
        .is_some_and(|g| g.status == GrantStatus::Active);
    if !active {
        return Err(AuthError(
            "the application's access to the tenant has been withdrawn".into(),
        ));
    }
    entry.last_used = now;
    Ok(Principal {
        credential: Credential::SystemUserTicket,
        context_id: context_id.to_owned(),
        associate_id: SYSTEM_USER_ASSOCIATE_ID,
        username: "SYSTEM".to_owned(),
        full_name: "System User".to_owned(),
        email: String::new(),
    })
}

/// Checks a user's `8A:` access token for this tenant.
pub fn authenticate_bearer(
    ctx: &SimContext,
    context_id: &str,
    token: &str,
) -> Result<Principal, AuthError> {
    let now = ctx.clock.now();
    let entry = ctx
        .store()
        .access_tokens
        .get(token)
        .cloned()
        .ok_or_else(|| AuthError("unknown access token".into()))?;
    if entry.context_id != context_id {
        return Err(AuthError(format!(
            "the access token belongs to another tenant, not {context_id}"
        )));
    }
    if now >= entry.expires_at {
        return Err(AuthError("the access token has expired".into()));
    }
    let user = ctx
        .user(&entry.username)
        .ok_or_else(|| AuthError("unknown user".into()))?;
    Ok(Principal {
        credential: Credential::UserBearer,
        context_id: context_id.to_owned(),
        associate_id: user.associate_id,
        username: user.username.clone(),
        full_name: user.name.clone(),
        email: user.email().to_owned(),
    })
}

#[derive(Debug)]
pub enum SaveError {
    NotFound(i64),
    Invalid(String),
}

/// `SaveContactEntity`: ContactId 0 creates, anything else updates an existing company.
pub fn save_contact(
    ctx: &SimContext,
    principal: &Principal,
    input: ContactInput,
    via: &'static str,
) -> Result<Contact, SaveError> {
    let now = ctx.clock.now();
    let mut store = ctx.store();
    let tenant = store
        .tenants
        .get_mut(&principal.context_id)
        .ok_or(SaveError::NotFound(input.contact_id))?;
    let mut contact = if input.contact_id == 0 {
        let mut contact = principal.default_contact();
        contact.contact_id = tenant.contacts.keys().next_back().map_or(1, |id| id + 1);
        contact.created_date = netserver_date(now);
        contact
    } else {
        tenant
            .contacts
            .get(&input.contact_id)
            .cloned()
            .ok_or(SaveError::NotFound(input.contact_id))?
    };
    let created = input.contact_id == 0;
    if let Some(name) = input.name {
        contact.name = name;
    }
    if let Some(department) = input.department {
        contact.department = department;
    }
    if let Some(org_nr) = input.org_nr {
        contact.org_nr = org_nr;
    }
    if let Some(number1) = input.number1 {
        contact.number1 = number1;
    }
    if let Some(number2) = input.number2 {
        contact.number2 = number2;
    }
    if contact.name.trim().is_empty() {
        return Err(SaveError::Invalid("Name is required".into()));
    }
    contact.updated_date = if created {
        NO_DATE.to_owned()
    } else {
        netserver_date(now)
    };
    tenant.contacts.insert(contact.contact_id, contact.clone());
    if created {
        store.records.companies.push(CompanyRecord {
            at: now,
            context_id: principal.context_id.clone(),
            contact_id: contact.contact_id,
            name: contact.name.clone(),
            credential: principal.credential.name(),
            via,
            associate_id: principal.associate_id,
        });
    }
    tracing::info!(tenant = %principal.context_id, id = contact.contact_id, via, created, "contact saved");
    Ok(contact)
}

pub fn plain(status: StatusCode, text: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .body(text.to_owned())
}

/// Routes every request on an API host.
pub async fn dispatch(
    ctx: web::Data<SimContext>,
    host: web::Data<ApiHostName>,
    req: HttpRequest,
    body: Bytes,
) -> HttpResponse {
    let segments: Vec<&str> = req.path().split('/').filter(|s| !s.is_empty()).collect();
    let Some((tenant_id, rest)) = segments.split_first() else {
        return plain(StatusCode::NOT_FOUND, "Not found");
    };
    {
        let store = ctx.store();
        let Some(tenant) = store.tenants.get(*tenant_id) else {
            return plain(
                StatusCode::NOT_FOUND,
                &format!("Unknown tenant {tenant_id}"),
            );
        };
        if tenant.host != host.0 {
            return plain(
                StatusCode::MISDIRECTED_REQUEST,
                "Wrong subdomain used to access tenant",
            );
        }
        if !tenant.state.is_running() {
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("Tenant {tenant_id} is not running (state {})", tenant.state),
            );
        }
    }
    let lower: Vec<String> = rest.iter().map(|s| s.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    let method = req.method();
    match (method, lower.as_slice()) {
        (&Method::GET, ["api"]) => rest::api_info(&ctx, tenant_id),
        (&Method::GET, ["api", "v1", "contact", "default"]) => {
            rest::default_contact(&ctx, &req, tenant_id)
        }
        (&Method::GET, ["api", "v1", "contact"]) => rest::query_contacts(&ctx, &req, tenant_id),
        (&Method::POST, ["api", "v1", "contact"]) => {
            rest::save_contact(&ctx, &req, tenant_id, &body)
        }
        (&Method::GET, ["api", "v1", "contact", id]) => {
            rest::get_contact(&ctx, &req, tenant_id, id)
        }
        (&Method::GET, ["api", "v1", "user", "currentprincipal"]) => {
            rest::current_principal(&ctx, &req, tenant_id)
        }
        (&Method::POST, ["remote", "services88", "contact.svc"]) => {
            soap::contact_service(&ctx, &req, tenant_id, &body)
        }
        _ => plain(StatusCode::NOT_FOUND, "Not found"),
    }
}
