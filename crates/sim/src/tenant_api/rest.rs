//! The tenant REST API: `Authorization: SOTicket <ticket>` with `SO-AppToken`, or `Bearer 8A:…`.

use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Value, json};

use super::{
    AuthError, ContactInput, Principal, SaveError, authenticate_bearer, authenticate_ticket,
};
use crate::context::SimContext;
use crate::request::{content_type_is, json_field};

fn error(status: StatusCode, error_type: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "Error": message, "ErrorType": error_type }))
}

fn unauthorized(AuthError(message): AuthError) -> HttpResponse {
    let mut response = error(
        StatusCode::UNAUTHORIZED,
        "AuthenticationException",
        &message,
    );
    response.headers_mut().insert(
        WWW_AUTHENTICATE,
        actix_web::http::header::HeaderValue::from_static("SOTicket, Bearer"),
    );
    response
}

/// The caller, from the Authorization header (scheme case-insensitive).
fn principal(ctx: &SimContext, req: &HttpRequest, tenant: &str) -> Result<Principal, AuthError> {
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| AuthError("Authorization header is missing".into()))?;
    let (scheme, credential) = header
        .trim()
        .split_once(' ')
        .ok_or_else(|| AuthError("Authorization header is malformed".into()))?;
    let credential = credential.trim();
    if scheme.eq_ignore_ascii_case("SOTicket") {
        let app_token = req
            .headers()
            .get("SO-AppToken")
            .and_then(|v| v.to_str().ok());
        authenticate_ticket(ctx, tenant, credential, app_token)
    } else if scheme.eq_ignore_ascii_case("Bearer") {
        authenticate_bearer(ctx, tenant, credential)
    } else {
        Err(AuthError(format!(
            "unsupported authorization scheme {scheme}"
        )))
    }
}

/// `GET /{ctx}/api`: version information.
pub fn api_info(ctx: &SimContext, tenant: &str) -> HttpResponse {
    let (endpoint, version) = {
        let store = ctx.store();
        match store.tenants.get(tenant) {
            Some(t) => (ctx.tenant_endpoint(t), t.file_version.clone()),
            None => return error(StatusCode::NOT_FOUND, "NotFound", "unknown tenant"),
        }
    };
    HttpResponse::Ok().json(json!({
        "v1": format!("{endpoint}/api/v1/"),
        "Version": "v1",
        "NetServerVersion": version,
        "Services": "Services87",
        "ServicesCurrent": "Services88",
    }))
}

pub fn default_contact(ctx: &SimContext, req: &HttpRequest, tenant: &str) -> HttpResponse {
    match principal(ctx, req, tenant) {
        Ok(principal) => HttpResponse::Ok().json(principal.default_contact()),
        Err(e) => unauthorized(e),
    }
}

pub fn get_contact(ctx: &SimContext, req: &HttpRequest, tenant: &str, id: &str) -> HttpResponse {
    if let Err(e) = principal(ctx, req, tenant) {
        return unauthorized(e);
    }
    let Ok(id) = id.parse::<i64>() else {
        return error(
            StatusCode::BAD_REQUEST,
            "ArgumentException",
            "the id must be a number",
        );
    };
    let contact = ctx
        .store()
        .tenants
        .get(tenant)
        .and_then(|t| t.contacts.get(&id).cloned());
    match contact {
        Some(contact) => HttpResponse::Ok().json(contact),
        None => error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("Contact {id} not found"),
        ),
    }
}

pub fn save_contact(
    ctx: &SimContext,
    req: &HttpRequest,
    tenant: &str,
    body: &[u8],
) -> HttpResponse {
    let principal = match principal(ctx, req, tenant) {
        Ok(principal) => principal,
        Err(e) => return unauthorized(e),
    };
    if !content_type_is(req, "application/json") {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            "the body must be application/json",
        );
    }
    let input = match parse_contact(body) {
        Ok(input) => input,
        Err(message) => return error(StatusCode::BAD_REQUEST, "ArgumentException", &message),
    };
    match super::save_contact(ctx, &principal, input, "rest") {
        Ok(contact) => HttpResponse::Ok().json(contact),
        Err(SaveError::NotFound(id)) => error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("Contact {id} not found"),
        ),
        Err(SaveError::Invalid(message)) => {
            error(StatusCode::BAD_REQUEST, "ValidationException", &message)
        }
    }
}

/// A ContactEntity body; property names match case-insensitively, as ASP.NET binds them.
fn parse_contact(body: &[u8]) -> Result<ContactInput, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let Value::Object(object) = value else {
        return Err("the body must be a ContactEntity object".into());
    };
    let field = |name: &str| json_field(&object, name);
    let text = |name: &str| match field(name) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(String::new())),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{name} must be a string")),
    };
    let contact_id = match field("ContactId") {
        None | Some(Value::Null) => 0,
        Some(v) => v.as_i64().ok_or("ContactId must be an integer")?,
    };
    Ok(ContactInput {
        contact_id,
        name: text("Name")?,
        department: text("Department")?,
        org_nr: text("OrgNr")?,
        number1: text("Number1")?,
    })
}

pub fn current_principal(ctx: &SimContext, req: &HttpRequest, tenant: &str) -> HttpResponse {
    match principal(ctx, req, tenant) {
        Ok(p) => HttpResponse::Ok().json(json!({
            "AssociateId": p.associate_id,
            "Associate": p.username,
            "FullName": p.full_name,
            "EMailAddress": p.email,
            "UserType": match p.credential {
                super::Credential::SystemUserTicket => "SystemAssociate",
                super::Credential::UserBearer => "InternalAssociate",
            },
            "IsSystemUser": p.credential == super::Credential::SystemUserTicket,
            "DatabaseContextIdentifier": p.context_id,
        })),
        Err(e) => unauthorized(e),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_contact_bodies() {
        let input = parse_contact(br#"{"contactId":0,"Name":"A","Department":null}"#).unwrap();
        assert_eq!(input.contact_id, 0);
        assert_eq!(input.name.as_deref(), Some("A"));
        assert_eq!(input.department.as_deref(), Some(""));
        assert_eq!(input.org_nr, None);
        assert!(parse_contact(br#"{"ContactId":"x"}"#).is_err());
        assert!(parse_contact(br#"{"Name":5}"#).is_err());
    }
}
