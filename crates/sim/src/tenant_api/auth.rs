//! Who a tenant API request runs as: a system user ticket (sliding expiry) or a user's access token.

use chrono::TimeDelta;

use crate::context::SimContext;
use crate::store::GrantStatus;

/// Associate id of the system user in every tenant.
pub const SYSTEM_USER_ASSOCIATE_ID: i64 = 9000;
/// Sliding lifetime of a system user ticket.
const TICKET_LIFETIME_SECS: i64 = 6 * 3600;

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
