//! The tenant REST API: `Authorization: SOTicket <ticket>` with `SO-AppToken`, or `Bearer 8A:…`.

use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Value, json};

use super::auth::{AuthError, Credential, Principal, authenticate_bearer, authenticate_ticket};
use super::contacts::{ContactInput, SaveError};
use crate::context::SimContext;
use crate::request::{JsonObject, content_type_is};
use crate::store::{Contact, ContactFields};

fn error(status: StatusCode, error_type: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "Error": message, "ErrorType": error_type }))
}

fn unauthorized(ctx: &SimContext, tenant: &str, AuthError(message): AuthError) -> HttpResponse {
    let status = ctx
        .store()
        .modes
        .of(tenant)
        .dead_ticket_status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::UNAUTHORIZED);
    let mut response = error(status, "AuthenticationException", &message);
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
            Some(t) => (ctx.tenant_endpoint(t), t.version.file_version.clone()),
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
        Err(e) => unauthorized(ctx, tenant, e),
    }
}

pub fn get_contact(ctx: &SimContext, req: &HttpRequest, tenant: &str, id: &str) -> HttpResponse {
    if let Err(e) = principal(ctx, req, tenant) {
        return unauthorized(ctx, tenant, e);
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

/// `GET /{ctx}/api/v1/Contact?$select=…&$filter=…`: the archive query, in the OData shape
/// `{"odata.nextLink": null, "value": [{…}]}`. Filters of the form `field eq 'value'` (quotes doubled
/// inside the value, as OData escapes them), joined with `and`; `$select` names the columns returned,
/// keyed as given (default `contactId,name`).
pub fn query_contacts(ctx: &SimContext, req: &HttpRequest, tenant: &str) -> HttpResponse {
    if let Err(e) = principal(ctx, req, tenant) {
        return unauthorized(ctx, tenant, e);
    }
    let query = match parse_query(req.query_string()) {
        Ok(query) => query,
        Err(message) => return error(StatusCode::BAD_REQUEST, "ArgumentException", &message),
    };
    let rows: Vec<Value> =
        ctx.store()
            .tenants
            .get(tenant)
            .map(|t| {
                t.contacts
                    .values()
                    .filter(|c| {
                        query.filter.iter().all(|(field, value)| {
                            contact_column(c, field).as_deref() == Some(value)
                        })
                    })
                    .map(|c| {
                        let row: serde_json::Map<String, Value> = query
                            .select
                            .iter()
                            .map(|column| {
                                let value = if column.eq_ignore_ascii_case("contactId") {
                                    json!(c.contact_id)
                                } else {
                                    json!(contact_column(c, column))
                                };
                                (column.clone(), value)
                            })
                            .collect();
                        Value::Object(row)
                    })
                    .collect()
            })
            .unwrap_or_default();
    HttpResponse::Ok().json(json!({ "odata.nextLink": null, "value": rows }))
}

/// A parsed archive query.
#[derive(Debug, PartialEq)]
struct ContactQuery {
    select: Vec<String>,
    /// `(column, value)` pairs that must all match.
    filter: Vec<(String, String)>,
}

/// The columns a query may select or filter on.
const COLUMNS: [&str; 6] = [
    "contactId",
    "name",
    "department",
    "orgNr",
    "number1",
    "number2",
];

fn column(name: &str) -> Result<String, String> {
    COLUMNS
        .iter()
        .find(|c| c.eq_ignore_ascii_case(name.trim()))
        .map(|_| name.trim().to_owned())
        .ok_or_else(|| format!("unknown column {:?}", name.trim()))
}

fn contact_column(contact: &Contact, column: &str) -> Option<String> {
    let column = column.to_ascii_lowercase();
    Some(match column.as_str() {
        "contactid" => contact.contact_id.to_string(),
        "name" => contact.fields.name.clone(),
        "department" => contact.fields.department.clone(),
        "orgnr" => contact.fields.org_nr.clone(),
        "number1" => contact.fields.number1.clone(),
        "number2" => contact.fields.number2.clone(),
        _ => return None,
    })
}

fn parse_query(query_string: &str) -> Result<ContactQuery, String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query_string)
        .map_err(|e| format!("the query string cannot be read: {e}"))?;
    let mut query = ContactQuery {
        select: vec!["contactId".to_owned(), "name".to_owned()],
        filter: Vec::new(),
    };
    for (key, value) in pairs {
        match key.to_ascii_lowercase().as_str() {
            "$select" => {
                query.select = value
                    .split(',')
                    .filter(|c| !c.trim().is_empty())
                    .map(column)
                    .collect::<Result<_, _>>()?;
            }
            "$filter" => {
                for condition in value.split(" and ") {
                    query.filter.push(parse_condition(condition)?);
                }
            }
            // Rows come in ContactId order already; only that order is accepted.
            "$orderby" => {
                let order = value.trim();
                let by = order
                    .strip_suffix(" asc")
                    .or_else(|| order.strip_suffix(" ASC"))
                    .unwrap_or(order);
                if !by.trim().eq_ignore_ascii_case("contactId") {
                    return Err(format!("unsupported $orderby {order:?}: use ContactId"));
                }
            }
            _ => return Err(format!("unsupported query option {key}")),
        }
    }
    Ok(query)
}

/// `field eq 'value'`, with `''` standing for a quote inside the value.
fn parse_condition(condition: &str) -> Result<(String, String), String> {
    let unsupported = || format!("unsupported $filter {condition:?}: use field eq 'value'");
    let (field, rest) = condition.trim().split_once(' ').ok_or_else(unsupported)?;
    let rest = rest.trim_start();
    let literal = rest
        .strip_prefix("eq ")
        .or_else(|| rest.strip_prefix("EQ "))
        .ok_or_else(unsupported)?
        .trim();
    let inner = literal
        .strip_prefix('\'')
        .and_then(|l| l.strip_suffix('\''))
        .ok_or_else(unsupported)?;
    Ok((column(field)?, inner.replace("''", "'")))
}

pub fn save_contact(
    ctx: &SimContext,
    req: &HttpRequest,
    tenant: &str,
    body: &[u8],
) -> HttpResponse {
    let principal = match principal(ctx, req, tenant) {
        Ok(principal) => principal,
        Err(e) => return unauthorized(ctx, tenant, e),
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
    match super::contacts::save_contact(ctx, &principal, input, "rest") {
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
    let object = JsonObject::parse(
        body,
        "the body is not JSON",
        "the body must be a ContactEntity object",
    )?;
    let text = |name: &str| match object.field(name) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(String::new())),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{name} must be a string")),
    };
    let contact_id = match object.field("ContactId") {
        None | Some(Value::Null) => 0,
        Some(v) => v.as_i64().ok_or("ContactId must be an integer")?,
    };
    Ok(ContactInput {
        contact_id,
        fields: ContactFields {
            name: text("Name")?,
            department: text("Department")?,
            org_nr: text("OrgNr")?,
            number1: text("Number1")?,
            number2: text("Number2")?,
        },
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
                Credential::SystemUserTicket => "SystemAssociate",
                Credential::UserBearer => "InternalAssociate",
            },
            "IsSystemUser": p.credential == Credential::SystemUserTicket,
            "DatabaseContextIdentifier": p.context_id,
        })),
        Err(e) => unauthorized(ctx, tenant, e),
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
        assert_eq!(input.fields.name.as_deref(), Some("A"));
        assert_eq!(input.fields.department.as_deref(), Some(""));
        assert_eq!(input.fields.org_nr, None);
        assert!(parse_contact(br#"{"ContactId":"x"}"#).is_err());
        assert!(parse_contact(br#"{"Name":5}"#).is_err());
    }

    #[test]
    fn parses_archive_queries() {
        let query =
            parse_query("$select=ContactId,Name,Number2&$filter=number2%20eq%20%27k%27%27ey%27")
                .unwrap();
        assert_eq!(query.select, ["ContactId", "Name", "Number2"]);
        assert_eq!(query.filter, [("number2".to_owned(), "k'ey".to_owned())]);
        assert_eq!(parse_query("").unwrap().filter, []);
        assert!(parse_query("$filter=number2 gt '1'").is_err());
        assert!(parse_query("$filter=secret eq '1'").is_err());
        assert!(parse_query("$orderby=name").is_err());
    }
}
