//! SOAP 1.1 envelope handling shared by the PartnerSystemUserService and NetServer endpoints.

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};

use crate::xml::{self, Element, XmlError, escape};

/// Why a SOAP request was refused.
#[derive(Debug, thiserror::Error)]
pub enum SoapError {
    #[error("{0}")]
    Xml(#[from] XmlError),
    #[error("the root element is not a SOAP 1.1 Envelope")]
    NotEnvelope,
    #[error("SOAP 1.2 envelopes are not accepted here: this service uses SOAP 1.1 (text/xml)")]
    VersionMismatch,
    #[error("the Envelope has no Body")]
    NoBody,
    #[error("the Body must hold exactly one element")]
    BodyShape,
    #[error("{0}")]
    Client(String),
}

impl SoapError {
    /// The `faultcode`: VersionMismatch or Client (the sender's fault).
    pub fn fault_code(&self) -> &'static str {
        match self {
            Self::VersionMismatch => "s:VersionMismatch",
            _ => "s:Client",
        }
    }
}

/// The parts of a SOAP 1.1 request.
#[derive(Debug)]
pub struct Envelope {
    pub headers: Vec<Element>,
    pub body: Element,
}

impl Envelope {
    /// SOAP 1.1's envelope namespace: the only one these services read and write.
    const NS: &'static str = "http://schemas.xmlsoap.org/soap/envelope/";
    /// SOAP 1.2's envelope namespace, answered with a VersionMismatch fault.
    const SOAP12_NS: &'static str = "http://www.w3.org/2003/05/soap-envelope";

    pub fn parse(bytes: &[u8]) -> Result<Self, SoapError> {
        let root = xml::parse(bytes)?;
        if root.is(Self::SOAP12_NS, "Envelope") {
            return Err(SoapError::VersionMismatch);
        }
        if !root.is(Self::NS, "Envelope") {
            return Err(SoapError::NotEnvelope);
        }
        let mut headers = Vec::new();
        let mut body = None;
        for child in root.children {
            if child.is(Self::NS, "Header") {
                headers.extend(child.children);
            } else if child.is(Self::NS, "Body") {
                body = Some(child);
            }
        }
        let body = body.ok_or(SoapError::NoBody)?;
        let mut elements = body.children.into_iter();
        match (elements.next(), elements.next()) {
            (Some(body), None) => Ok(Self { headers, body }),
            _ => Err(SoapError::BodyShape),
        }
    }

    /// The SOAP header element with this namespace and local name.
    pub fn header(&self, ns: &str, name: &str) -> Option<&Element> {
        self.headers.iter().find(|h| h.is(ns, name))
    }
}

/// Why `element`'s children in `ns` break the schema's `sequence` (each name's position in it), as a
/// reader that enforces element order (WCF's `DataContractSerializer`) would refuse them; `None` when
/// they follow it. Children the sequence does not name are left to the caller.
pub fn out_of_order(element: &Element, ns: &str, sequence: &[&str]) -> Option<String> {
    let mut latest: Option<usize> = None;
    for child in element
        .children
        .iter()
        .filter(|c| c.ns.as_deref() == Some(ns))
    {
        let Some(position) = sequence.iter().position(|name| *name == child.name) else {
            continue;
        };
        if let Some(before) = latest
            && position < before
        {
            return Some(format!(
                "Error in deserializing body of request message: element '{}' found after '{}'; \
                 {} expects the order {}",
                child.name,
                sequence[before],
                element.name,
                sequence.join(", ")
            ));
        }
        latest = Some(position);
    }
    None
}

/// The SOAPAction HTTP header without surrounding quotes.
pub fn soap_action(req: &HttpRequest) -> Option<String> {
    let raw = req.headers().get("SOAPAction")?.to_str().ok()?.trim();
    Some(raw.trim_matches('"').to_owned())
}

/// The content type of every SOAP 1.1 message, request or answer.
const CONTENT_TYPE_XML: &str = "text/xml; charset=utf-8";

/// SOAP 1.1 requires `text/xml`; WCF's basicHttpBinding answers anything else with 415.
pub fn reject_content_type(req: &HttpRequest) -> Option<HttpResponse> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if content_type.starts_with("text/xml") {
        None
    } else {
        Some(HttpResponse::UnsupportedMediaType()
            .content_type("text/plain; charset=utf-8")
            .body(format!(
                "Cannot process the message because the content type '{content_type}' was not the expected type '{CONTENT_TYPE_XML}'."
            )))
    }
}

/// A SOAP 1.1 envelope around already-serialized header and body XML.
pub fn envelope(header_xml: &str, body_xml: &str) -> String {
    let header = if header_xml.is_empty() {
        String::new()
    } else {
        format!("<s:Header>{header_xml}</s:Header>")
    };
    let ns = Envelope::NS;
    format!("<s:Envelope xmlns:s=\"{ns}\">{header}<s:Body>{body_xml}</s:Body></s:Envelope>")
}

/// A 200 response carrying a SOAP envelope.
pub fn ok(header_xml: &str, body_xml: &str) -> HttpResponse {
    respond(StatusCode::OK, envelope(header_xml, body_xml))
}

/// A SOAP Fault (HTTP 500) with optional extra SOAP headers.
pub fn fault(code: &str, message: &str, header_xml: &str) -> HttpResponse {
    let body = format!(
        "<s:Fault><faultcode>{code}</faultcode><faultstring xml:lang=\"en-US\">{}</faultstring></s:Fault>",
        escape(message)
    );
    respond(
        StatusCode::INTERNAL_SERVER_ERROR,
        envelope(header_xml, &body),
    )
}

fn respond(status: StatusCode, xml: String) -> HttpResponse {
    let mut response = HttpResponse::build(status).body(xml);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_XML));
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn collects_headers_and_the_single_body_element() {
        let doc = br#"<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Header><h xmlns="urn:h">1</h></e:Header><e:Body><Op xmlns="urn:b"/></e:Body></e:Envelope>"#;
        let env = Envelope::parse(doc).unwrap();
        assert_eq!(env.header("urn:h", "h").unwrap().text, "1");
        assert!(env.body.is("urn:b", "Op"));
    }

    #[test]
    fn refuses_soap12_and_empty_bodies() {
        let v12 = br#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body><x/></e:Body></e:Envelope>"#;
        assert!(matches!(
            Envelope::parse(v12),
            Err(SoapError::VersionMismatch)
        ));
        let empty = br#"<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body/></e:Envelope>"#;
        assert!(matches!(Envelope::parse(empty), Err(SoapError::BodyShape)));
    }
}
