//! `GET|POST /login/{common|CustNNNNN}/oauth/authorize`: the code flow's front channel.
//!
//! GET validates the request and shows a sign-in page listing the configured users, each a form
//! button "Sign in as {name}" that POSTs the same parameters back with the chosen `username`.
//! POST validates again, issues a single-use code and returns it to the redirect URI by `query`
//! (default), `fragment` or `form_post`.

use std::collections::HashMap;
use std::fmt::Write;

use actix_web::http::header::{CONTENT_TYPE, LOCATION};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use url::Url;

use crate::config::{TenantState, UserConfig};
use crate::context::{Application, SimContext};
use crate::keys::random_alphanumeric;
use crate::store::{AuthCode, PkceMethod, SignInRecord};
use crate::xml::escape;

/// `{tenant}` is `common` or a context identifier.
pub const PATH: &str = "/login/{tenant}/oauth/authorize";

/// Authorize parameters carried through the sign-in page.
const PARAMS: [&str; 11] = [
    "client_id",
    "scope",
    "redirect_uri",
    "state",
    "response_type",
    "response_mode",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "acr_values",
    "login_hint",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResponseMode {
    Query,
    Fragment,
    FormPost,
}

/// A request that passed validation.
struct Validated<'a> {
    app: &'a Application,
    redirect_uri: String,
    mode: ResponseMode,
    state: Option<String>,
    nonce: Option<String>,
    pkce: Option<(String, PkceMethod)>,
    tenant: Option<String>,
}

/// Why a request was refused: on a page when the redirect URI cannot be trusted, else by redirect.
enum Rejection {
    Page(String),
    Redirect {
        redirect_uri: String,
        mode: ResponseMode,
        state: Option<String>,
        error: &'static str,
        description: String,
    },
}

type Params = HashMap<String, String>;

fn parse_pairs(raw: &[u8]) -> Result<Params, Rejection> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(raw)
        .map_err(|e| Rejection::Page(format!("malformed parameters: {e}")))?;
    let mut params = Params::new();
    for (name, value) in pairs {
        if params.insert(name.clone(), value).is_some() {
            return Err(Rejection::Page(format!("parameter {name} is repeated")));
        }
    }
    Ok(params)
}

fn validate<'a>(
    ctx: &'a SimContext,
    params: &Params,
    path_tenant: &str,
) -> Result<Validated<'a>, Rejection> {
    let get = |name: &str| params.get(name).filter(|v| !v.is_empty()).cloned();
    let client_id =
        get("client_id").ok_or_else(|| Rejection::Page("client_id is missing".into()))?;
    let app = ctx
        .application(&client_id)
        .ok_or_else(|| Rejection::Page(format!("unknown client_id {client_id}")))?;
    let redirect_uri =
        get("redirect_uri").ok_or_else(|| Rejection::Page("redirect_uri is missing".into()))?;
    if !app.redirect_uris.contains(&redirect_uri) {
        return Err(Rejection::Page(format!(
            "redirect_uri {redirect_uri} is not registered for this application"
        )));
    }
    let state = get("state");
    let reject = |mode, error, description: String| Rejection::Redirect {
        redirect_uri: redirect_uri.clone(),
        mode,
        state: state.clone(),
        error,
        description,
    };
    let mode = match get("response_mode").as_deref() {
        None | Some("query") => ResponseMode::Query,
        Some("fragment") => ResponseMode::Fragment,
        Some("form_post") => ResponseMode::FormPost,
        Some(other) => {
            return Err(reject(
                ResponseMode::Query,
                "invalid_request",
                format!("unsupported response_mode {other}"),
            ));
        }
    };
    if get("response_type").as_deref() != Some("code") {
        return Err(reject(
            mode,
            "unsupported_response_type",
            "the simulator implements the authorization code flow (response_type=code) only".into(),
        ));
    }
    if !get("scope").is_some_and(|s| s.split_whitespace().any(|s| s == "openid")) {
        return Err(reject(
            mode,
            "invalid_scope",
            "scope must include openid".into(),
        ));
    }
    let pkce = match (
        get("code_challenge"),
        get("code_challenge_method").as_deref(),
    ) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(reject(
                mode,
                "invalid_request",
                "code_challenge_method without code_challenge".into(),
            ));
        }
        (Some(challenge), method) => {
            let method = match method {
                None | Some("plain") => PkceMethod::Plain,
                Some("S256") => PkceMethod::S256,
                Some(other) => {
                    return Err(reject(
                        mode,
                        "invalid_request",
                        format!("unsupported code_challenge_method {other}"),
                    ));
                }
            };
            if !is_pkce_string(&challenge) {
                return Err(reject(
                    mode,
                    "invalid_request",
                    "code_challenge must be 43-128 characters of [A-Za-z0-9-._~]".into(),
                ));
            }
            Some((challenge, method))
        }
    };
    let from_path = (!path_tenant.eq_ignore_ascii_case("common")).then(|| path_tenant.to_owned());
    let from_acr = get("acr_values").and_then(|acr| {
        acr.split_whitespace()
            .find_map(|v| v.strip_prefix("tenant:").map(str::to_owned))
    });
    let tenant = match (from_path, from_acr) {
        (Some(p), Some(a)) if p != a => {
            return Err(reject(
                mode,
                "invalid_request",
                format!("tenant {p} in the path and {a} in acr_values differ"),
            ));
        }
        (p, a) => p.or(a),
    };
    if let Some(tenant) = &tenant
        && !ctx.store().tenants.contains_key(tenant)
    {
        return Err(reject(
            mode,
            "invalid_request",
            format!("unknown tenant {tenant}"),
        ));
    }
    Ok(Validated {
        app,
        redirect_uri,
        mode,
        state,
        nonce: get("nonce"),
        pkce,
        tenant,
    })
}

/// RFC 7636: 43 to 128 unreserved characters.
pub fn is_pkce_string(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

pub async fn show_sign_in(
    ctx: web::Data<SimContext>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    let params = match parse_pairs(req.query_string().as_bytes()) {
        Ok(params) => params,
        Err(rejection) => return reject(rejection),
    };
    match validate(&ctx, &params, &path) {
        Ok(valid) => sign_in_page(&ctx, &valid, &params, req.path()),
        Err(rejection) => reject(rejection),
    }
}

pub async fn sign_in(
    ctx: web::Data<SimContext>,
    path: web::Path<String>,
    body: Bytes,
) -> HttpResponse {
    let params = match parse_pairs(&body) {
        Ok(params) => params,
        Err(rejection) => return reject(rejection),
    };
    let valid = match validate(&ctx, &params, &path) {
        Ok(valid) => valid,
        Err(rejection) => return reject(rejection),
    };
    let username = params
        .get("username")
        .map(String::as_str)
        .unwrap_or_default();
    let Some(user) = ctx.user(username) else {
        return error_page(&format!("unknown user {username:?}"));
    };
    if valid.tenant.as_ref().is_some_and(|t| *t != user.tenant) {
        return error_page(&format!(
            "{} does not belong to tenant {}",
            user.username,
            valid.tenant.as_deref().unwrap_or_default()
        ));
    }
    let now = ctx.clock.now();
    let code = random_alphanumeric(64);
    {
        let mut store = ctx.store();
        if store
            .tenants
            .get(&user.tenant)
            .is_none_or(|t| t.state == TenantState::Deleted)
        {
            drop(store);
            return reject(Rejection::Redirect {
                redirect_uri: valid.redirect_uri,
                mode: valid.mode,
                state: valid.state,
                error: "access_denied",
                description: format!("tenant {} has been deleted", user.tenant),
            });
        }
        store.codes.insert(
            code.clone(),
            AuthCode {
                client_id: valid.app.client_id.clone(),
                redirect_uri: valid.redirect_uri.clone(),
                username: user.username.clone(),
                nonce: valid.nonce.clone(),
                pkce: valid.pkce.clone(),
                issued_at: now,
                used: false,
            },
        );
        store.records.superid.sign_ins.push(SignInRecord {
            at: now,
            username: user.username.clone(),
            context_id: user.tenant.clone(),
            client_id: valid.app.client_id.clone(),
            is_administrator: user.is_administrator,
        });
    }
    tracing::info!(user = %user.username, tenant = %user.tenant, "signed in");
    let mut fields = vec![("code", code)];
    fields.extend(valid.state.map(|s| ("state", s)));
    respond(&valid.redirect_uri, valid.mode, &fields)
}

fn reject(rejection: Rejection) -> HttpResponse {
    match rejection {
        Rejection::Page(message) => error_page(&message),
        Rejection::Redirect {
            redirect_uri,
            mode,
            state,
            error,
            description,
        } => {
            let mut fields = vec![
                ("error", error.to_owned()),
                ("error_description", description),
            ];
            fields.extend(state.map(|s| ("state", s)));
            respond(&redirect_uri, mode, &fields)
        }
    }
}

/// Returns `fields` to the redirect URI in the requested response mode.
fn respond(redirect_uri: &str, mode: ResponseMode, fields: &[(&str, String)]) -> HttpResponse {
    let Ok(mut url) = Url::parse(redirect_uri) else {
        return error_page("the redirect_uri is not an absolute URL");
    };
    match mode {
        ResponseMode::Query => {
            url.query_pairs_mut().extend_pairs(fields);
            HttpResponse::Found()
                .insert_header((LOCATION, url.as_str()))
                .finish()
        }
        ResponseMode::Fragment => {
            let fragment = serde_urlencoded::to_string(fields).unwrap_or_default();
            url.set_fragment(Some(&fragment));
            HttpResponse::Found()
                .insert_header((LOCATION, url.as_str()))
                .finish()
        }
        ResponseMode::FormPost => {
            let mut inputs = String::new();
            for (name, value) in fields {
                let _ = write!(
                    inputs,
                    "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                    escape(name),
                    escape(value)
                );
            }
            html(format!(
                "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Submit this form</title></head>\
                 <body onload=\"document.forms[0].submit()\"><form method=\"post\" action=\"{}\">{inputs}\
                 <noscript><button type=\"submit\">Continue</button></noscript></form></body></html>",
                escape(redirect_uri)
            ))
        }
    }
}

struct PageUser<'a> {
    user: &'a UserConfig,
    company: String,
}

fn sign_in_page(
    ctx: &SimContext,
    valid: &Validated<'_>,
    params: &Params,
    action: &str,
) -> HttpResponse {
    let users: Vec<PageUser<'_>> = {
        let store = ctx.store();
        ctx.users
            .iter()
            .filter(|u| valid.tenant.as_ref().is_none_or(|t| *t == u.tenant))
            .map(|user| PageUser {
                user,
                company: store
                    .tenants
                    .get(&user.tenant)
                    .map(|t| t.company_name.clone())
                    .unwrap_or_default(),
            })
            .collect()
    };
    let mut hidden = String::new();
    for name in PARAMS {
        if let Some(value) = params.get(name) {
            let _ = write!(
                hidden,
                "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                escape(value)
            );
        }
    }
    let mut items = String::new();
    for PageUser { user, company } in &users {
        let role = if user.is_administrator {
            "Administrator"
        } else {
            "User"
        };
        let _ = write!(
            items,
            "<li><form method=\"post\" action=\"{action}\">{hidden}\
             <input type=\"hidden\" name=\"username\" value=\"{username}\">\
             <button type=\"submit\">Sign in as {name}</button> \
             <small>{email} · {company} ({tenant}) · {role}</small></form></li>",
            action = escape(action),
            username = escape(&user.username),
            name = escape(&user.name),
            email = escape(user.email()),
            company = escape(company),
            tenant = escape(&user.tenant),
        );
    }
    let tenant_note = valid
        .tenant
        .as_ref()
        .map(|t| format!(" in tenant {}", escape(t)))
        .unwrap_or_default();
    html(format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>SuperOffice ID (simulator)</title></head>\
         <body><h1>SuperOffice ID</h1><p>Sign in to <strong>{app}</strong>{tenant_note}.</p><ul>{items}</ul>\
         <p>This is superoffice-sim, a local simulator: pick a user, no password is asked.</p></body></html>",
        app = escape(&valid.app.name),
    ))
}

fn error_page(message: &str) -> HttpResponse {
    let mut response = html(format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign-in error</title></head>\
         <body><h1>Sign-in error</h1><p>{}</p></body></html>",
        escape(message)
    ));
    *response.status_mut() = actix_web::http::StatusCode::BAD_REQUEST;
    response
}

fn html(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
        .body(body)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn pkce_strings() {
        assert!(is_pkce_string(&"a".repeat(43)));
        assert!(!is_pkce_string(&"a".repeat(42)));
        assert!(!is_pkce_string(&format!("{}+", "a".repeat(43))));
    }

    #[test]
    fn query_mode_appends_to_existing_query() {
        let res = respond(
            "http://app/cb?x=1",
            ResponseMode::Query,
            &[("code", "c".into()), ("state", "a b".into())],
        );
        let location = res.headers().get(LOCATION).unwrap().to_str().unwrap();
        assert_eq!(location, "http://app/cb?x=1&code=c&state=a+b");
    }
}
