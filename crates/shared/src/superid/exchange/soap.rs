//! The SOAP variant of PartnerSystemUserService (protocol §5.1):
//! `POST {superid}/Login/Services/PartnerSystemUserService.svc`, SOAP 1.1, with `ApplicationToken` and
//! `ContextIdentifier` as SOAP headers and the envelope exactly as SuperOffice publishes it.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use super::Soap;
use super::common::{Attempt, ExchangeError, ExchangeVariant, ServiceAnswer, server_date};
use crate::domain::ContextId;
use crate::http::{self, scrub};
use crate::soap::{self, Envelope};

/// The operation's SOAPAction, sent unquoted as in SuperOffice's samples.
pub const SOAP_ACTION: &str = "http://www.superoffice.com/superid/partnersystemuser/0.1/IPartnerSystemUserService/Authenticate";

/// The request envelope (protocol §5.1, verbatim), every value escaped.
pub fn request_envelope(application_token: &str, context_id: &str, signed_token: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
  <SOAP-ENV:Envelope xmlns:ns0="http://schemas.xmlsoap.org/soap/envelope/"
                     xmlns:ns1="http://www.superoffice.com/superid/partnersystemuser/0.1"
                     xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
                     xmlns:tns="http://www.superoffice.com/superid/partnersystemuser/0.1"
                     xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">
    <SOAP-ENV:Header>
      <tns:ApplicationToken>{}</tns:ApplicationToken>
      <tns:ContextIdentifier>{}</tns:ContextIdentifier>
    </SOAP-ENV:Header>
    <ns0:Body>
      <ns1:AuthenticationRequest>
        <ns1:SignedSystemToken>{}</ns1:SignedSystemToken>
        <ns1:ReturnTokenType>Jwt</ns1:ReturnTokenType>
      </ns1:AuthenticationRequest>
    </ns0:Body>
  </SOAP-ENV:Envelope>"#,
        soap::escape(application_token),
        soap::escape(context_id),
        soap::escape(signed_token),
    )
}

impl ExchangeVariant for Soap {
    const VIA: &'static str = "soap";
    const WHAT: &'static str = "system user exchange (SOAP)";

    fn request(attempt: &Attempt<'_>) -> reqwest::RequestBuilder {
        let core = attempt.core;
        let body = request_envelope(
            core.application_token.expose_secret(),
            attempt.ctx.as_str(),
            attempt.signed.expose(),
        );
        core.http
            .client()
            .post(core.environment.system_user_soap_url())
            .header(reqwest::header::CONTENT_TYPE, soap::CONTENT_TYPE)
            .header("SOAPAction", SOAP_ACTION)
            .body(body)
    }

    fn read(attempt: &Attempt<'_>, answer: &http::Answer) -> Result<ServiceAnswer, ExchangeError> {
        read_response(
            attempt.ctx,
            answer.status,
            server_date(&answer.headers),
            &answer.body,
            &attempt.secrets(),
        )
    }
}

/// Reads the service's answer: a fault, the `AuthenticationResponse`, or why neither is there.
/// `secrets` are scrubbed from a fault's message.
// The error is every exchange's `ExchangeError`; boxing it here alone would set this apart from the rest.
#[allow(clippy::result_large_err)]
pub fn read_response(
    ctx: &ContextId,
    status: reqwest::StatusCode,
    date: Option<DateTime<Utc>>,
    body: &[u8],
    secrets: &[&str],
) -> Result<ServiceAnswer, ExchangeError> {
    let envelope = match Envelope::parse(body) {
        Ok(envelope) => envelope,
        Err(_) if !status.is_success() => {
            return Err(ExchangeError::Status {
                tenant: ctx.clone(),
                status: status.as_u16(),
            });
        }
        Err(error) => {
            return Err(ExchangeError::Malformed {
                tenant: ctx.clone(),
                reason: error.to_string(),
            });
        }
    };
    if let Some(fault) = envelope.fault() {
        return Err(ExchangeError::Fault {
            tenant: ctx.clone(),
            code: fault.code,
            message: scrub(&fault.message, secrets),
        });
    }
    let Some(response) = envelope.body.find("AuthenticationResponse") else {
        return Err(if status.is_success() {
            ExchangeError::Malformed {
                tenant: ctx.clone(),
                reason: "the Body holds no AuthenticationResponse".into(),
            }
        } else {
            ExchangeError::Status {
                tenant: ctx.clone(),
                status: status.as_u16(),
            }
        });
    };
    Ok(ServiceAnswer {
        is_successful: response
            .child_text("IsSuccessful")
            .is_some_and(|flag| flag.eq_ignore_ascii_case("true") || flag == "1"),
        token: response
            .child_text("Token")
            .map(|t| SecretString::from(t.to_owned())),
        error_message: response.child_text("ErrorMessage").map(str::to_owned),
        server_date: date,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn the_envelope_escapes_every_value_and_reads_back() {
        let xml = request_envelope("a&b", "Cust1", "My <App>-x.202601011200.c2ln+/=");
        assert!(xml.contains("<tns:ApplicationToken>a&amp;b</tns:ApplicationToken>"));
        assert!(xml.contains("My &lt;App&gt;-x.202601011200.c2ln+/="));
        let parsed = Envelope::parse(xml.as_bytes()).unwrap();
        let header = parsed.header.unwrap();
        assert_eq!(header.child_text("ApplicationToken"), Some("a&b"));
        assert_eq!(header.child_text("ContextIdentifier"), Some("Cust1"));
        let request = parsed.body.child("AuthenticationRequest").unwrap();
        assert_eq!(
            request.child_text("SignedSystemToken"),
            Some("My <App>-x.202601011200.c2ln+/=")
        );
        assert_eq!(request.child_text("ReturnTokenType"), Some("Jwt"));
        assert_eq!(
            request.namespace.as_deref(),
            Some("http://www.superoffice.com/superid/partnersystemuser/0.1")
        );
    }
}
