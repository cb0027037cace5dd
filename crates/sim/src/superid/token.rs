//! `POST /login/common/oauth/tokens`: authorization_code and refresh_token grants.
//!
//! Parameters are read from the query string and the form body (SuperOffice's docs show both);
//! the client authenticates with `client_secret_post` or `client_secret_basic`, never both.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, CACHE_CONTROL, PRAGMA, WWW_AUTHENTICATE};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::claims::claim;
use crate::config::{TenantState, UserConfig};
use crate::context::{Application, SimContext};
use crate::keys::{random_alphanumeric, random_base64};
use crate::request::content_type_is;
use crate::store::{AccessToken, GrantStatus, PkceMethod, RefreshToken, Store, TokenRecord};

pub const PATH: &str = "/login/common/oauth/tokens";

/// Lifetime of an authorization code.
const CODE_LIFETIME_SECS: i64 = 600;
/// `expires_in` of access tokens.
pub const ACCESS_TOKEN_LIFETIME_SECS: i64 = 3600;

struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    basic_auth: bool,
}

fn bad(error: &'static str, description: impl Into<String>) -> OAuthError {
    OAuthError {
        status: StatusCode::BAD_REQUEST,
        error,
        description: description.into(),
        basic_auth: false,
    }
}

fn invalid_client(description: impl Into<String>, basic_auth: bool) -> OAuthError {
    OAuthError {
        status: StatusCode::UNAUTHORIZED,
        error: "invalid_client",
        description: description.into(),
        basic_auth,
    }
}

struct Granted {
    body: Value,
    system_token_issued: bool,
}

pub async fn tokens(ctx: web::Data<SimContext>, req: HttpRequest, body: Bytes) -> HttpResponse {
    let mut client_id = None;
    let mut grant_type = None;
    ctx.rotate_for_mode().await;
    let result = handle(&ctx, &req, &body, &mut client_id, &mut grant_type);
    let (outcome, system_token_issued) = match &result {
        Ok(granted) => ("ok".to_owned(), granted.system_token_issued),
        Err(e) => (e.error.to_owned(), false),
    };
    let at = ctx.clock.now();
    ctx.store()
        .records
        .superid
        .token_requests
        .push(TokenRecord {
            at,
            client_id,
            grant_type,
            outcome,
            system_token_issued,
        });
    match result {
        Ok(granted) => HttpResponse::Ok()
            .insert_header((CACHE_CONTROL, "no-store"))
            .insert_header((PRAGMA, "no-cache"))
            .json(granted.body),
        Err(e) => {
            tracing::info!(error = e.error, description = %e.description, "token request refused");
            let mut response = HttpResponse::build(e.status);
            response.insert_header((CACHE_CONTROL, "no-store"));
            if e.basic_auth {
                response.insert_header((WWW_AUTHENTICATE, "Basic realm=\"superoffice-sim\""));
            }
            response.json(json!({ "error": e.error, "error_description": e.description }))
        }
    }
}

fn handle(
    ctx: &SimContext,
    req: &HttpRequest,
    body: &[u8],
    client_id_seen: &mut Option<String>,
    grant_type_seen: &mut Option<String>,
) -> Result<Granted, OAuthError> {
    let params = parameters(req, body)?;
    let get = |name: &str| params.get(name).filter(|v| !v.is_empty()).cloned();
    *grant_type_seen = get("grant_type");
    let basic = basic_credentials(req)?;
    let basic_used = basic.is_some();
    let (client_id, secret) = match (basic, get("client_secret")) {
        (Some(_), Some(_)) => {
            return Err(bad(
                "invalid_request",
                "use one client authentication method: client_secret_basic or client_secret_post",
            ));
        }
        (Some((id, secret)), None) => {
            if get("client_id").is_some_and(|c| c != id) {
                return Err(bad(
                    "invalid_request",
                    "client_id differs from the Basic credentials",
                ));
            }
            (id, secret)
        }
        (None, Some(secret)) => {
            let id =
                get("client_id").ok_or_else(|| invalid_client("client_id is missing", false))?;
            (id, secret)
        }
        (None, None) => return Err(invalid_client("client authentication is required", false)),
    };
    *client_id_seen = Some(client_id.clone());
    let app = ctx
        .application(&client_id)
        .filter(|app| app.client_secret == secret)
        .ok_or_else(|| invalid_client("unknown client or wrong client secret", basic_used))?;
    match get("grant_type").as_deref() {
        Some("authorization_code") => authorization_code(ctx, app, &get),
        Some("refresh_token") => refresh_token(ctx, app, &get),
        Some(other) => Err(bad(
            "unsupported_grant_type",
            format!("grant_type {other} is not supported"),
        )),
        None => Err(bad("invalid_request", "grant_type is missing")),
    }
}

fn authorization_code(
    ctx: &SimContext,
    app: &Application,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Granted, OAuthError> {
    let code = get("code").ok_or_else(|| bad("invalid_request", "code is missing"))?;
    let now = ctx.clock.now();
    let mut store = ctx.store();
    let entry = store
        .codes
        .get_mut(&code)
        .ok_or_else(|| bad("invalid_grant", "unknown authorization code"))?;
    if entry.client_id != app.client_id {
        return Err(bad(
            "invalid_grant",
            "the code was issued to another client",
        ));
    }
    if entry.used {
        return Err(bad(
            "invalid_grant",
            "the authorization code has already been used",
        ));
    }
    entry.used = true;
    let entry = entry.clone();
    if (now - entry.issued_at).num_seconds() > CODE_LIFETIME_SECS {
        return Err(bad("invalid_grant", "the authorization code has expired"));
    }
    if get("redirect_uri").as_deref() != Some(entry.redirect_uri.as_str()) {
        return Err(bad(
            "invalid_grant",
            "redirect_uri does not match the one of the authorization request",
        ));
    }
    match (&entry.pkce, get("code_verifier")) {
        (None, None) => {}
        (None, Some(_)) => {
            return Err(bad(
                "invalid_grant",
                "code_verifier sent, but the authorization request had no code_challenge",
            ));
        }
        (Some(_), None) => return Err(bad("invalid_grant", "code_verifier is missing")),
        (Some((challenge, method)), Some(verifier)) => {
            if !pkce_matches(challenge, *method, &verifier) {
                return Err(bad(
                    "invalid_grant",
                    "code_verifier does not match the code_challenge",
                ));
            }
        }
    }
    let user = ctx
        .user(&entry.username)
        .ok_or_else(|| bad("invalid_grant", "the user no longer exists"))?;
    issue(
        ctx,
        &mut store,
        app,
        user,
        entry.nonce.as_deref(),
        now,
        true,
    )
}

fn refresh_token(
    ctx: &SimContext,
    app: &Application,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Granted, OAuthError> {
    let token =
        get("refresh_token").ok_or_else(|| bad("invalid_request", "refresh_token is missing"))?;
    if let Some(uri) = get("redirect_uri")
        && !app.redirect_uris.contains(&uri)
    {
        return Err(bad("invalid_grant", "redirect_uri is not registered"));
    }
    let now = ctx.clock.now();
    let mut store = ctx.store();
    let entry = store
        .refresh_tokens
        .get(&token)
        .filter(|t| t.client_id == app.client_id)
        .cloned()
        .ok_or_else(|| bad("invalid_grant", "unknown refresh token"))?;
    let tenant = store
        .tenants
        .get(&entry.context_id)
        .filter(|t| t.state != TenantState::Deleted)
        .ok_or_else(|| bad("invalid_grant", "the tenant no longer exists"))?;
    if let Some(grant) = tenant.grants.get(&app.client_id)
        && grant.status != GrantStatus::Active
    {
        return Err(bad(
            "invalid_grant",
            format!("the application's authorization is {:?}", grant.status),
        ));
    }
    let user = ctx
        .user(&entry.username)
        .ok_or_else(|| bad("invalid_grant", "the user no longer exists"))?;
    issue(ctx, &mut store, app, user, None, now, false)
}

/// RFC 7636 §4.6.
fn pkce_matches(challenge: &str, method: PkceMethod, verifier: &str) -> bool {
    if !super::authorize::is_pkce_string(verifier) {
        return false;
    }
    match method {
        PkceMethod::Plain => verifier == challenge,
        PkceMethod::S256 => {
            URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge
        }
    }
}

/// Access token, id_token and (for the code grant) a refresh token.
fn issue(
    ctx: &SimContext,
    store: &mut Store,
    app: &Application,
    user: &UserConfig,
    nonce: Option<&str>,
    now: DateTime<Utc>,
    with_refresh_token: bool,
) -> Result<Granted, OAuthError> {
    let tenant = store
        .tenants
        .get(&user.tenant)
        .ok_or_else(|| bad("invalid_grant", "the user's tenant no longer exists"))?;
    let system_token = tenant
        .grants
        .get(&app.client_id)
        .filter(|g| user.is_administrator && g.status == GrantStatus::Active)
        .map(|g| g.system_token.clone());
    let endpoint = ctx.tenant_endpoint(tenant);
    let iat = now.timestamp();
    let mut claims = Map::new();
    let mut put = |name: String, value: Value| {
        claims.insert(name, value);
    };
    put("sub".into(), json!(user.username));
    put(claim("associateid"), json!(user.associate_id.to_string()));
    put(claim("identityprovider"), json!("central-superid"));
    put(claim("email"), json!(user.email()));
    put(claim("upn"), json!(user.username));
    put(
        claim("is_administrator"),
        json!(if user.is_administrator {
            "True"
        } else {
            "False"
        }),
    );
    put(claim("ctx"), json!(tenant.context_id));
    put(claim("company_name"), json!(tenant.company_name));
    put(claim("serial"), json!(tenant.serial));
    put(
        claim("netserver_url"),
        json!(format!("{endpoint}/Remote/Services88/")),
    );
    put(claim("webapi_url"), json!(format!("{endpoint}/api/")));
    if let Some(token) = &system_token {
        put(claim("system_token"), json!(token));
    }
    put("iat".into(), json!(iat));
    put(claim("initials"), json!(user.initials()));
    put(claim("so_primary_email_address"), json!(user.email()));
    if let Some(nonce) = nonce {
        put("nonce".into(), json!(nonce));
    }
    put("nbf".into(), json!(iat - 60));
    put("exp".into(), json!(iat + 300));
    put("iss".into(), json!(ctx.superid.url));
    put("aud".into(), json!(app.client_id));
    let id_token = store.signing_key.sign(&claims).map_err(|e| OAuthError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        error: "server_error",
        description: format!("could not sign the id_token: {e}"),
        basic_auth: false,
    })?;
    let access_token = format!("8A:{}.{}", tenant.context_id, random_base64(96));
    let context_id = tenant.context_id.clone();
    store.access_tokens.insert(
        access_token.clone(),
        AccessToken {
            client_id: app.client_id.clone(),
            username: user.username.clone(),
            context_id: context_id.clone(),
            expires_at: now + TimeDelta::seconds(ACCESS_TOKEN_LIFETIME_SECS),
        },
    );
    let mut body = json!({
        "token_type": "Bearer",
        "access_token": access_token,
        "expires_in": ACCESS_TOKEN_LIFETIME_SECS,
        "id_token": id_token,
    });
    if with_refresh_token {
        let refresh = random_alphanumeric(64);
        store.refresh_tokens.insert(
            refresh.clone(),
            RefreshToken {
                client_id: app.client_id.clone(),
                username: user.username.clone(),
                context_id,
            },
        );
        body["refresh_token"] = json!(refresh);
    }
    Ok(Granted {
        body,
        system_token_issued: system_token.is_some(),
    })
}

/// Query-string and form-body parameters together; a repeated parameter is an error.
fn parameters(req: &HttpRequest, body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let mut pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string())
        .map_err(|e| bad("invalid_request", format!("malformed query string: {e}")))?;
    if !body.is_empty() {
        if !content_type_is(req, "application/x-www-form-urlencoded") {
            return Err(bad(
                "invalid_request",
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|e| bad("invalid_request", format!("malformed form body: {e}")))?;
        pairs.extend(form);
    }
    let mut params = HashMap::new();
    for (name, value) in pairs {
        if params.insert(name.clone(), value).is_some() {
            return Err(bad(
                "invalid_request",
                format!("parameter {name} is repeated"),
            ));
        }
    }
    Ok(params)
}

/// `Authorization: Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = req.headers().get(AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || invalid_client("malformed Basic credentials", true);
    let value = value.to_str().map_err(|_| malformed())?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err(malformed());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(invalid_client(
            format!("unsupported authentication scheme {scheme}"),
            true,
        ));
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    Ok(Some((form_decode(id), form_decode(secret))))
}

fn form_decode(s: &str) -> String {
    let escaped = s.replace('&', "%26").replace('=', "%3D");
    url::form_urlencoded::parse(escaped.as_bytes())
        .map(|(k, _)| k.into_owned())
        .next()
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc7636_example() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(challenge, PkceMethod::S256, verifier));
        assert!(!pkce_matches(challenge, PkceMethod::Plain, verifier));
        assert!(pkce_matches(verifier, PkceMethod::Plain, verifier));
    }

    #[test]
    fn form_decoding_of_basic_credentials() {
        assert_eq!(form_decode("a%3Ab+c"), "a:b c");
        assert_eq!(form_decode("x=y"), "x=y");
    }
}
