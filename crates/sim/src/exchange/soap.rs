//! `POST /Login/Services/PartnerSystemUserService.svc` (path case-insensitive): SOAP 1.1 with
//! `ApplicationToken` and `ContextIdentifier` as SOAP headers, as published by SuperOffice.

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};

use super::{Request, TokenType};
use crate::context::SimContext;
use crate::soap::{self, Envelope, SoapError};
use crate::xml::{XSI_NS, escape};

pub const NS: &str = "http://www.superoffice.com/superid/partnersystemuser/0.1";
pub const ACTION: &str = "http://www.superoffice.com/superid/partnersystemuser/0.1/IPartnerSystemUserService/Authenticate";

pub fn authenticate(ctx: &SimContext, req: &HttpRequest, body: &Bytes) -> HttpResponse {
    if let Some(response) = soap::reject_content_type(req) {
        return response;
    }
    let action = soap::soap_action(req).unwrap_or_default();
    if action != ACTION {
        return soap::fault(
            "s:Client",
            &format!(
                "The message with Action '{action}' cannot be processed at the receiver, due to a \
                 ContractFilter mismatch at the EndpointDispatcher."
            ),
            "",
        );
    }
    let envelope = match Envelope::parse(body) {
        Ok(envelope) => envelope,
        Err(e) => return soap::fault(e.fault_code(), &e.to_string(), ""),
    };
    let request = match read(&envelope) {
        Ok(request) => request,
        Err(e) => return soap::fault(e.fault_code(), &e.to_string(), ""),
    };
    // Only the Body's sequence is checked: SOAP headers have no order.
    let strict = ctx
        .store()
        .modes
        .of(&request.context_identifier)
        .strict_soap_order;
    if strict && let Some(message) = soap::out_of_order(&envelope.body, NS, &SEQUENCE) {
        return soap::fault("s:Client", &message, "");
    }
    let (successful, token, error) = match super::authenticate(ctx, &request, "soap") {
        Ok(jwt) => (true, Some(jwt), None),
        Err(failure) => {
            let form = super::refusal_as(ctx, &request.context_identifier);
            if let Some(response) = super::refusal_as_status(form, &failure.message) {
                return response;
            }
            if form == crate::modes::RefusalAs::SoapFault {
                return soap::fault("s:Client", &failure.message, "");
            }
            (false, None, Some(failure.message))
        }
    };
    let nillable = |name: &str, value: Option<String>| match value {
        Some(v) => format!("<{name}>{}</{name}>", escape(&v)),
        None => format!("<{name} i:nil=\"true\"/>"),
    };
    let body = format!(
        "<AuthenticationResponse xmlns=\"{NS}\" xmlns:i=\"{XSI_NS}\"><IsSuccessful>{successful}</IsSuccessful>{}{}</AuthenticationResponse>",
        nillable("Token", token),
        nillable("ErrorMessage", error),
    );
    soap::ok("", &body)
}

/// Reads an `AuthenticationRequest` envelope (public for the fuzz targets).
pub fn parse(body: &[u8]) -> Result<Request, SoapError> {
    read(&Envelope::parse(body)?)
}

/// The WSDL's sequence for `AuthenticationRequest`'s children.
const SEQUENCE: [&str; 2] = ["SignedSystemToken", "ReturnTokenType"];

/// The request in `envelope`, its Body's children read in any order.
fn read(envelope: &Envelope) -> Result<Request, SoapError> {
    if !envelope.body.is(NS, "AuthenticationRequest") {
        return Err(SoapError::Client(format!(
            "expected {{{NS}}}AuthenticationRequest in the Body, found {}",
            envelope.body.name
        )));
    }
    let header = |name: &str| {
        envelope
            .header(NS, name)
            .and_then(|h| h.value())
            .map(|v| v.trim().to_owned())
            .ok_or_else(|| SoapError::Client(format!("the SOAP header {{{NS}}}{name} is missing")))
    };
    let application_token = header("ApplicationToken")?;
    let context_identifier = header("ContextIdentifier")?;
    let signed_system_token = envelope
        .body
        .child(NS, "SignedSystemToken")
        .and_then(|e| e.value())
        .map(|v| v.trim().to_owned())
        .unwrap_or_default();
    let token_type = match envelope
        .body
        .child(NS, "ReturnTokenType")
        .map(|e| e.text.trim())
    {
        None | Some("Jwt") => TokenType::Jwt,
        Some("Saml") => TokenType::Saml,
        Some(other) => {
            return Err(SoapError::Client(format!(
                "ReturnTokenType '{other}' is not a valid TokenType (Jwt or Saml, case-sensitive)"
            )));
        }
    };
    Ok(Request {
        signed_system_token,
        application_token,
        context_identifier,
        token_type,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// The request envelope as published (protocol §5.1), with sample values.
    const PUBLISHED: &str = include_str!("published-request.xml");

    #[test]
    fn parses_the_published_envelope() {
        let r = parse(PUBLISHED.as_bytes()).unwrap();
        assert_eq!(r.application_token, "app-token");
        assert_eq!(r.context_identifier, "Cust10001");
        assert_eq!(r.signed_system_token, "My App-x.202401021304.c2ln");
        assert_eq!(r.token_type, TokenType::Jwt);
    }

    #[test]
    fn hostile_envelopes_are_refused_quickly() {
        let started = std::time::Instant::now();
        let bomb = format!(
            "<!DOCTYPE e [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\">]>{}",
            PUBLISHED.replace("app-token", "&b;")
        );
        assert!(
            parse(bomb.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("DOCTYPE")
        );
        let undefined = PUBLISHED.replace("app-token", "&b;");
        assert!(
            parse(undefined.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("&b;")
        );
        let deep = PUBLISHED.replace(
            "<ns1:ReturnTokenType>",
            &format!("{}<ns1:ReturnTokenType>", "<x>".repeat(100_000)),
        );
        assert!(
            parse(deep.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("too deeply")
        );
        assert!(parse(&[0xff, 0xfe, 0x3c]).is_err());
        // A token as large as the 1 MiB body limit allows is read whole, escapes resolved.
        let token = "a&amp;b ".repeat(120_000);
        let big = PUBLISHED.replace("My App-x.202401021304.c2ln", &token);
        let request = parse(big.as_bytes()).unwrap();
        assert_eq!(
            request.signed_system_token,
            "a&b ".repeat(120_000).trim_end()
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn token_type_is_case_sensitive_and_headers_required() {
        assert!(parse(PUBLISHED.replace(">Jwt<", ">JWT<").as_bytes()).is_err());
        let no_header = PUBLISHED.replace(
            "<tns:ContextIdentifier>Cust10001</tns:ContextIdentifier>",
            "",
        );
        assert!(parse(no_header.as_bytes()).is_err());
    }
}
