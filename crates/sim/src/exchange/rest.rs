//! `POST /Login/api/PartnerSystemUser/Authenticate` (path case-insensitive), JSON in and out.

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Value, json};

use super::{Request, TokenType};
use crate::context::SimContext;
use crate::request::{JsonObject, content_type_is};

pub fn authenticate(ctx: &SimContext, req: &HttpRequest, body: &Bytes) -> HttpResponse {
    if !content_type_is(req, "application/json") {
        return HttpResponse::UnsupportedMediaType()
            .json(json!({ "Message": "The request body must be application/json." }));
    }
    let request = match parse(body) {
        Ok(request) => request,
        Err(message) => return HttpResponse::BadRequest().json(json!({ "Message": message })),
    };
    let body = match super::authenticate(ctx, &request, "rest") {
        Ok(jwt) => json!({ "IsSuccessful": true, "Token": jwt, "ErrorMessage": null }),
        Err(failure) => {
            let form = super::refusal_as(ctx, &request.context_identifier);
            if let Some(response) = super::refusal_as_status(form, &failure.message) {
                return response;
            }
            if form == crate::modes::RefusalAs::SoapFault {
                return crate::soap::fault("s:Client", &failure.message, "");
            }
            json!({ "IsSuccessful": false, "Token": null, "ErrorMessage": failure.message })
        }
    };
    HttpResponse::Ok().json(body)
}

/// The answers to a body that is not JSON, and to JSON that is not an object.
const NOT_JSON: &str = "The request body is not JSON";
const NOT_AN_OBJECT: &str = "The request body must be a JSON object.";

/// Property names are matched case-insensitively, as ASP.NET binds them.
fn parse(body: &[u8]) -> Result<Request, String> {
    let object = JsonObject::parse(body, NOT_JSON, NOT_AN_OBJECT)?;
    let string = |name: &str| match object.field(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("{name} must be a string.")),
        None => Err(format!("{name} is required.")),
    };
    let token_type = match object.field("ReturnTokenType") {
        None | Some(Value::Null) => TokenType::Jwt,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("jwt") => TokenType::Jwt,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("saml") => TokenType::Saml,
        Some(other) => return Err(format!("ReturnTokenType {other} is not Jwt or Saml.")),
    };
    Ok(Request {
        signed_system_token: string("SignedSystemToken")?,
        application_token: string("ApplicationToken")?,
        context_identifier: string("ContextIdentifier")?,
        token_type,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_body_in_any_property_case() {
        let r = parse(br#"{"signedSystemToken":"a","ApplicationToken":"b","CONTEXTIDENTIFIER":"c","ReturnTokenType":"JWT"}"#)
            .unwrap();
        assert_eq!(r.signed_system_token, "a");
        assert_eq!(r.context_identifier, "c");
        assert_eq!(r.token_type, TokenType::Jwt);
    }

    #[test]
    fn rejects_missing_fields_and_bad_types() {
        assert!(parse(br#"{"ApplicationToken":"b","ContextIdentifier":"c"}"#).is_err());
        assert!(
            parse(br#"{"SignedSystemToken":1,"ApplicationToken":"b","ContextIdentifier":"c"}"#)
                .is_err()
        );
        assert!(parse(b"[]").is_err());
        assert!(parse(b"{").is_err());
    }
}
