//! The REST variant of PartnerSystemUserService (protocol §5.2):
//! `POST {superid}/Login/api/PartnerSystemUser/Authenticate` with a JSON body.

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::Value;

use super::Rest;
use super::common::{Attempt, ExchangeError, ExchangeVariant, ServiceAnswer, server_date};
use crate::http;

/// The request body, in the documented order.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct AuthenticateRequest<'a> {
    signed_system_token: &'a str,
    application_token: &'a str,
    context_identifier: &'a str,
    return_token_type: &'a str,
}

impl ExchangeVariant for Rest {
    const VIA: &'static str = "rest";
    const WHAT: &'static str = "system user exchange (REST)";

    fn request(attempt: &Attempt<'_>) -> reqwest::RequestBuilder {
        let core = attempt.core;
        let body = AuthenticateRequest {
            signed_system_token: attempt.signed.expose(),
            application_token: core.application_token.expose_secret(),
            context_identifier: attempt.ctx.as_str(),
            return_token_type: "JWT",
        };
        core.http
            .client()
            .post(core.environment.system_user_rest_url())
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&body)
    }

    fn read(attempt: &Attempt<'_>, answer: &http::Answer) -> Result<ServiceAnswer, ExchangeError> {
        let status = answer.status;
        // A refusal may come with a 4xx and the usual body; use the body when it is there.
        match parse_answer(&answer.body) {
            Some(mut parsed) => {
                parsed.server_date = server_date(&answer.headers);
                if !status.is_success() && parsed.is_successful {
                    return Err(ExchangeError::Status {
                        tenant: attempt.ctx.clone(),
                        status: status.as_u16(),
                    });
                }
                Ok(parsed)
            }
            None if !status.is_success() => Err(ExchangeError::Status {
                tenant: attempt.ctx.clone(),
                status: status.as_u16(),
            }),
            None => Err(ExchangeError::Malformed {
                tenant: attempt.ctx.clone(),
                reason: "the body is not the JSON of an AuthenticationResponse".into(),
            }),
        }
    }
}

/// Reads `{ "IsSuccessful": …, "Token": …, "ErrorMessage": … }`; member names in any letter case,
/// missing or null members tolerated. `None` when the body is not such a JSON object.
fn parse_answer(body: &[u8]) -> Option<ServiceAnswer> {
    let Value::Object(members) = serde_json::from_slice::<Value>(body).ok()? else {
        return None;
    };
    let member = |name: &str| {
        members
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    };
    let text = |name: &str| {
        member(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let is_successful = match member("IsSuccessful") {
        Some(Value::Bool(flag)) => *flag,
        Some(Value::String(flag)) => flag.trim().eq_ignore_ascii_case("true"),
        None | Some(Value::Null) => false,
        Some(_) => return None,
    };
    if member("IsSuccessful").is_none()
        && member("Token").is_none()
        && member("ErrorMessage").is_none()
    {
        return None;
    }
    Some(ServiceAnswer {
        is_successful,
        token: text("Token").map(SecretString::from),
        error_message: text("ErrorMessage"),
        server_date: None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn answers_of_every_shape_are_read() {
        let ok =
            parse_answer(br#"{"IsSuccessful":true,"Token":"a.b.c","ErrorMessage":null}"#).unwrap();
        assert!(ok.is_successful);
        assert_eq!(ok.token.unwrap().expose_secret(), "a.b.c");
        let camel = parse_answer(br#"{"isSuccessful":false,"errorMessage":"Revoked"}"#).unwrap();
        assert!(!camel.is_successful);
        assert_eq!(camel.error_message.as_deref(), Some("Revoked"));
        let nil = parse_answer(br#"{"IsSuccessful":true,"Token":null}"#).unwrap();
        assert!(nil.token.is_none());
        assert!(parse_answer(br#"{"unrelated":1}"#).is_none());
        assert!(parse_answer(br#"{"IsSuccessful":tr"#).is_none());
        assert!(parse_answer(b"<html>busy</html>").is_none());
    }

    #[test]
    fn the_request_body_is_exactly_the_documented_one() {
        let body = serde_json::to_string(&AuthenticateRequest {
            signed_system_token: "t.202601011200.c2ln",
            application_token: "secret",
            context_identifier: "Cust1",
            return_token_type: "JWT",
        })
        .unwrap();
        assert_eq!(
            body,
            r#"{"SignedSystemToken":"t.202601011200.c2ln","ApplicationToken":"secret","ContextIdentifier":"Cust1","ReturnTokenType":"JWT"}"#
        );
    }
}
