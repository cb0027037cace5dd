//! PartnerSystemUserService: a signed system user token in, a system user ticket (inside a JWT) out.
//! The checks are shared by the REST and SOAP front ends.

pub mod rest;
pub mod soap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use rand::RngExt;
use serde_json::{Map, Value, json};

use crate::claims::{SUPEROFFICE_ISSUER, claim};
use crate::config::TenantState;
use crate::context::SimContext;
use crate::keys::{random_alphanumeric, verify_rs256};
use crate::modes::{Mode, RefusalAs, word};
use crate::store::{ExchangeRecord, GrantStatus, Ticket};

/// The token type asked for by `ReturnTokenType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    Jwt,
    Saml,
}

/// One exchange request, whichever front end it came through.
#[derive(Debug)]
pub struct Request {
    pub signed_system_token: String,
    pub application_token: String,
    pub context_identifier: String,
    pub token_type: TokenType,
}

/// `IsSuccessful: false` with an `ErrorMessage` that starts with the documented `AuthorizeErrorCode`.
#[derive(Debug)]
pub struct Failure {
    pub code: &'static str,
    pub message: String,
}

fn fail(code: &'static str, detail: impl AsRef<str>) -> Failure {
    let description = match code {
        "Revoked" => "Application's access to the tenant has been revoked",
        "Expired" => "The application authorization on this tenant has expired",
        "Denied" => "Access to the tenant was denied",
        "NeedsReapproval" => "The application must be re-approved by a tenant administrator",
        "InvalidTimestamp" => "The supplied timestamp is invalid",
        "InvalidSignature" => "Calculated signature is invalid",
        _ => "The request cannot be served",
    };
    let detail = detail.as_ref();
    let message = if detail.is_empty() {
        format!("{code}: {description}")
    } else {
        format!("{code}: {description} ({detail})")
    };
    Failure { code, message }
}

/// How the tenant's mode says a refusal reaches the caller.
pub fn refusal_as(ctx: &SimContext, context_id: &str) -> RefusalAs {
    ctx.store().modes.of(context_id).refusals.refusal_as
}

/// A refusal as plain HTTP (`Http4xx`, `Http5xx`), when the mode says so.
pub fn refusal_as_status(form: RefusalAs, message: &str) -> Option<actix_web::HttpResponse> {
    let status = match form {
        RefusalAs::Http4xx => actix_web::http::StatusCode::UNAUTHORIZED,
        RefusalAs::Http5xx => actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
        RefusalAs::Body | RefusalAs::SoapFault => return None,
    };
    Some(
        actix_web::HttpResponse::build(status)
            .content_type("text/plain; charset=utf-8")
            .body(message.to_owned()),
    )
}

/// A signed system user token split from the right: `token.yyyyMMddHHmm.base64(signature)`.
/// Public, with `split` and `parse_timestamp`, so that the fuzz targets reach the parser the exchange uses.
#[derive(Debug, PartialEq, Eq)]
pub struct SignedToken<'a> {
    pub signed_part: &'a str,
    pub token: &'a str,
    pub timestamp: &'a str,
    pub signature: &'a str,
}

/// Splits from the right, so the token itself may hold dots and spaces; `None` without two dots.
pub fn split(signed: &str) -> Option<SignedToken<'_>> {
    let (signed_part, signature) = signed.rsplit_once('.')?;
    let (token, timestamp) = signed_part.rsplit_once('.')?;
    Some(SignedToken {
        signed_part,
        token,
        timestamp,
        signature,
    })
}

/// `yyyyMMddHHmm` in UTC.
pub fn parse_timestamp(ts: &str) -> Option<DateTime<Utc>> {
    if ts.len() != 12 || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDateTime::parse_from_str(ts, "%Y%m%d%H%M")
        .ok()
        .map(|t| t.and_utc())
}

/// The timestamp names a minute; it is accepted when that minute overlaps now ± the window.
fn timestamp_in_window(ts: DateTime<Utc>, now: DateTime<Utc>, window: TimeDelta) -> bool {
    ts + TimeDelta::seconds(59) >= now - window && ts <= now + window
}

/// A fresh ticket: `7T:` and base64 of UTF-16LE `{32 hex};{10 digits};{ctx}`, shaped like SuperOffice's.
fn new_ticket(ctx: &str) -> String {
    let digits = rand::rng().random_range(1_000_000_000u64..10_000_000_000);
    let plain = format!("{};{digits};{ctx}", uuid::Uuid::new_v4().simple());
    let utf16: Vec<u8> = plain.encode_utf16().flat_map(u16::to_le_bytes).collect();
    format!("7T:{}", STANDARD.encode(utf16))
}

/// Runs every check and either issues a ticket (returning the signed JWT) or explains the refusal.
/// The attempt is recorded either way.
pub fn authenticate(ctx: &SimContext, req: &Request, via: &'static str) -> Result<String, Failure> {
    let now = ctx.clock.now();
    let app = ctx.application_by_secret(&req.application_token);
    let mode = ctx.store().modes.of(&req.context_identifier).clone();
    let result = match &mode.refusals.refuse_with {
        Some(message) => Err(Failure {
            code: "Refused",
            message: message.clone(),
        }),
        None => check_and_issue(ctx, req, now, &mode).map_err(|failure| Failure {
            message: word(mode.refusals.wording, failure.code, failure.message),
            code: failure.code,
        }),
    };
    let (outcome, error_message) = match &result {
        Ok(_) => ("Success".to_owned(), None),
        Err(f) => (f.code.to_owned(), Some(f.message.clone())),
    };
    tracing::info!(tenant = %req.context_identifier, via, %outcome, "system user exchange");
    ctx.store().records.superid.exchanges.push(ExchangeRecord {
        at: now,
        via,
        context_identifier: req.context_identifier.clone(),
        client_id: app.map(|a| a.client_id.clone()),
        outcome,
        error_message,
    });
    result
}

fn check_and_issue(
    ctx: &SimContext,
    req: &Request,
    now: DateTime<Utc>,
    mode: &Mode,
) -> Result<String, Failure> {
    if req.token_type == TokenType::Saml {
        return Err(Failure {
            code: "Unsupported",
            message: "ReturnTokenType Saml is not supported by superoffice-sim; ask for Jwt".into(),
        });
    }
    let app = ctx
        .application_by_secret(&req.application_token)
        .ok_or_else(|| fail("Denied", "unknown application token"))?;
    let ctx_id = &req.context_identifier;
    {
        let store = ctx.store();
        let tenant = store
            .tenants
            .get(ctx_id)
            .ok_or_else(|| fail("Denied", format!("unknown context identifier {ctx_id}")))?;
        if tenant.state == TenantState::Deleted {
            return Err(fail("Denied", format!("tenant {ctx_id} has been deleted")));
        }
    }
    let signed = split(&req.signed_system_token).ok_or_else(|| {
        fail(
            "InvalidSignature",
            "the signed token must be token.yyyyMMddHHmm.base64signature",
        )
    })?;
    let timestamp = parse_timestamp(signed.timestamp).ok_or_else(|| {
        fail(
            "InvalidTimestamp",
            format!("{:?} is not a UTC yyyyMMddHHmm timestamp", signed.timestamp),
        )
    })?;
    let window = ctx.superid.timestamp_window;
    if !timestamp_in_window(timestamp, now, window) {
        return Err(fail(
            "InvalidTimestamp",
            format!(
                "{} is more than {} seconds away from {}",
                signed.timestamp,
                window.num_seconds(),
                now.format("%Y%m%d%H%M")
            ),
        ));
    }
    let signature = STANDARD
        .decode(signed.signature)
        .map_err(|_| fail("InvalidSignature", "the signature is not standard base64"))?;
    if !verify_rs256(&app.public_key, signed.signed_part.as_bytes(), &signature) {
        return Err(fail(
            "InvalidSignature",
            "RSASSA-PKCS1-v1_5 SHA-256 verification with the application's public key failed",
        ));
    }
    let mut store = ctx.store();
    let signing_key = store.signing_key.clone();
    let tenant = store
        .tenants
        .get_mut(ctx_id)
        .ok_or_else(|| fail("Denied", format!("unknown context identifier {ctx_id}")))?;
    let grant = tenant.grants.get(&app.client_id).ok_or_else(|| {
        fail(
            "Denied",
            format!("the application is not installed on {ctx_id}"),
        )
    })?;
    match grant.status {
        GrantStatus::Active => {}
        GrantStatus::Revoked => return Err(fail("Revoked", "")),
        GrantStatus::Expired => return Err(fail("Expired", "")),
        GrantStatus::Denied => return Err(fail("Denied", "")),
        GrantStatus::NeedsReapproval => return Err(fail("NeedsReapproval", "")),
    }
    if grant.system_token != signed.token {
        return Err(fail(
            "Denied",
            format!("the system user token does not belong to {ctx_id}"),
        ));
    }
    let ticket = new_ticket(ctx_id);
    let endpoint = ctx.tenant_endpoint(tenant);
    let iat = now.timestamp();
    let mut claims = Map::new();
    let values: [(String, Value); 11] = [
        ("sub".into(), json!(ctx_id)),
        (claim("ticket"), json!(ticket)),
        (claim("ctx"), json!(ctx_id)),
        (claim("serial"), json!(tenant.serial)),
        (claim("webapi_url"), json!(format!("{endpoint}/api/"))),
        (
            claim("netserver_url"),
            json!(format!("{endpoint}/Remote/Services88/")),
        ),
        (claim("company_name"), json!(tenant.company_name)),
        ("nbf".into(), json!(iat - 60)),
        ("iat".into(), json!(iat)),
        ("exp".into(), json!(iat + 300)),
        ("iss".into(), json!(SUPEROFFICE_ISSUER)),
    ];
    claims.extend(values);
    claims.insert("aud".into(), json!(format!("spn:{}", tenant.serial)));
    let signed = if mode.signing.unknown_kid {
        let kid = format!("UNKNOWN{}", random_alphanumeric(20).to_uppercase());
        signing_key.sign_as(&kid, &claims)
    } else {
        signing_key.sign(&claims)
    };
    let jwt = signed.map_err(|e| {
        fail(
            "Denied",
            format!("the simulator could not sign the JWT: {e}"),
        )
    })?;
    tenant.tickets_issued += 1;
    store.tickets.insert(
        ticket,
        Ticket {
            context_id: ctx_id.clone(),
            client_id: app.client_id.clone(),
            last_used: now,
        },
    );
    Ok(jwt)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn splits_from_the_right_so_tokens_may_hold_dots_and_spaces() {
        let s = split("My App v1.2-abc.202401021304.c2ln").unwrap();
        assert_eq!(s.token, "My App v1.2-abc");
        assert_eq!(s.timestamp, "202401021304");
        assert_eq!(s.signature, "c2ln");
        assert_eq!(s.signed_part, "My App v1.2-abc.202401021304");
        assert!(split("no-dots").is_none());
    }

    #[test]
    fn oversized_and_odd_signed_tokens_split_in_linear_time() {
        // Larger than the simulator's 1 MiB body limit, with dots and spaces all through the token.
        let token = "My App v1.2 .x".repeat(80_000);
        let signed = format!("{token}.202401021304.{}", "QUFB".repeat(100_000));
        let started = std::time::Instant::now();
        let s = split(&signed).unwrap();
        assert_eq!(s.token, token);
        assert_eq!(s.timestamp, "202401021304");
        assert_eq!(s.signature.len(), 400_000);
        assert!(parse_timestamp(s.timestamp).is_some());
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        // Twelve bytes that are not twelve ASCII digits, and surrounding spaces, are not a timestamp.
        for ts in ["２０２４", " 20240102130", "202401021304 ", "+20240102130"] {
            assert!(parse_timestamp(ts).is_none(), "{ts:?}");
        }
        assert_eq!(split("a..").unwrap().timestamp, "");
        assert_eq!(split("..").unwrap().token, "");
    }

    #[test]
    fn timestamps_are_twelve_digit_utc_minutes() {
        let t = parse_timestamp("202401021304").unwrap();
        assert_eq!(t.to_rfc3339(), "2024-01-02T13:04:00+00:00");
        assert!(parse_timestamp("2024010213041").is_none());
        assert!(parse_timestamp("20240102130a").is_none());
        assert!(parse_timestamp("202413021304").is_none());
    }

    #[test]
    fn window_covers_the_whole_signing_minute() {
        let ts = parse_timestamp("202401021300").unwrap();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let window = TimeDelta::minutes(5);
        assert!(timestamp_in_window(ts, at("2024-01-02T13:05:59Z"), window));
        assert!(!timestamp_in_window(ts, at("2024-01-02T13:06:00Z"), window));
        assert!(timestamp_in_window(ts, at("2024-01-02T12:55:00Z"), window));
        assert!(!timestamp_in_window(ts, at("2024-01-02T12:54:59Z"), window));
    }

    #[test]
    fn tickets_look_like_superoffice_tickets() {
        let ticket = new_ticket("Cust10001");
        let raw = STANDARD
            .decode(ticket.strip_prefix("7T:").unwrap())
            .unwrap();
        let utf16: Vec<u16> = raw
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let plain = String::from_utf16(&utf16).unwrap();
        assert!(plain.ends_with(";Cust10001"), "{plain}");
        assert_eq!(plain.split(';').count(), 3);
    }
}
