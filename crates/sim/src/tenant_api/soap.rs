//! `POST /{ctx}/Remote/Services88/Contact.svc`: NetServer's SOAP 1.1 Contact agent
//! (`CreateDefaultContactEntity`, `SaveContactEntity`), authenticated by the `ApplicationToken` and
//! `Credentials/Ticket` SOAP headers. Every answer carries the `ExceptionInfo` and `Succeeded` headers.

use std::fmt::Write;

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};

use super::auth::authenticate_ticket;
use super::contacts::{ContactInput, SaveError, save_contact};
use crate::context::SimContext;
use crate::soap::{self, Envelope, SoapError};
use crate::store::{Contact, ContactFields};
use crate::xml::{Element, XSI_NS, escape};

pub const NS: &str = "http://www.superoffice.net/ws/crm/NetServer/Services88";

fn success_headers() -> String {
    format!(
        "<ExceptionInfo xmlns=\"{NS}\" xmlns:i=\"{XSI_NS}\" i:nil=\"true\"/><Succeeded xmlns=\"{NS}\">true</Succeeded>"
    )
}

/// A SOAP fault, with `Succeeded` false and the reason in `ExceptionInfo`.
fn fault(code: &str, exception_type: &str, message: &str) -> HttpResponse {
    let message_xml = escape(message);
    let headers = format!(
        "<ExceptionInfo xmlns=\"{NS}\"><Message>{message_xml}</Message><StackTrace></StackTrace>\
         <FriendlyText>{message_xml}</FriendlyText><ExceptionType>{exception_type}</ExceptionType>\
         <Source>superoffice-sim</Source></ExceptionInfo><Succeeded xmlns=\"{NS}\">false</Succeeded>"
    );
    soap::fault(code, message, &headers)
}

pub fn contact_service(
    ctx: &SimContext,
    req: &HttpRequest,
    tenant: &str,
    body: &Bytes,
) -> HttpResponse {
    if let Some(response) = soap::reject_content_type(req) {
        return response;
    }
    let action = soap::soap_action(req).unwrap_or_default();
    let prefix = format!("{NS}/Contact/");
    let Some(method) = action.strip_prefix(&prefix).map(str::to_owned) else {
        return fault(
            "s:Client",
            "ActionNotSupportedException",
            &format!("SOAPAction '{action}' is not an operation of {prefix}"),
        );
    };
    let envelope = match Envelope::parse(body) {
        Ok(envelope) => envelope,
        Err(e) => return fault(e.fault_code(), "SoapException", &e.to_string()),
    };
    if !envelope.body.is(NS, &method) {
        return fault(
            "s:Client",
            "SoapException",
            &format!(
                "the Body holds {} but the SOAPAction names {method}",
                envelope.body.name
            ),
        );
    }
    let principal = match credentials(&envelope).and_then(|(app_token, ticket)| {
        authenticate_ticket(ctx, tenant, &ticket, Some(&app_token))
            .map_err(|e| SoapError::Client(e.0))
    }) {
        Ok(principal) => principal,
        Err(e) => return fault("s:Client", "SoSecurityException", &e.to_string()),
    };
    let entity = match method.as_str() {
        "CreateDefaultContactEntity" => principal.default_contact(),
        "SaveContactEntity" => {
            let input = match envelope
                .body
                .child(NS, "ContactEntity")
                .ok_or_else(|| "SaveContactEntity needs a ContactEntity".to_owned())
                .and_then(contact_input)
            {
                Ok(input) => input,
                Err(message) => return fault("s:Client", "SoapException", &message),
            };
            match save_contact(ctx, &principal, input, "soap") {
                Ok(contact) => contact,
                Err(SaveError::NotFound(id)) => {
                    return fault(
                        "s:Client",
                        "SoException",
                        &format!("Contact {id} not found"),
                    );
                }
                Err(SaveError::Invalid(message)) => {
                    return fault("s:Client", "SoValidationException", &message);
                }
            }
        }
        other => {
            return fault(
                "s:Client",
                "ActionNotSupportedException",
                &format!("the simulator does not implement Contact/{other}"),
            );
        }
    };
    let body = format!(
        "<{method}Response xmlns=\"{NS}\"><Response>{}</Response></{method}Response>",
        contact_xml(&entity)
    );
    soap::ok(&success_headers(), &body)
}

/// `(ApplicationToken, Credentials/Ticket)` from the SOAP headers.
fn credentials(envelope: &Envelope) -> Result<(String, String), SoapError> {
    let app_token = envelope
        .header(NS, "ApplicationToken")
        .and_then(Element::value)
        .map(|v| v.trim().to_owned())
        .ok_or_else(|| SoapError::Client("the ApplicationToken SOAP header is missing".into()))?;
    let ticket = envelope
        .header(NS, "Credentials")
        .and_then(|c| c.child(NS, "Ticket"))
        .and_then(Element::value)
        .map(|v| v.trim().to_owned())
        .ok_or_else(|| SoapError::Client("the Credentials/Ticket SOAP header is missing".into()))?;
    Ok((app_token, ticket))
}

fn contact_input(entity: &Element) -> Result<ContactInput, String> {
    let text = |name: &str| {
        entity
            .child(NS, name)
            .map(|e| e.value().unwrap_or_default().to_owned())
    };
    let contact_id = match text("ContactId") {
        None => 0,
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("ContactId {v:?} is not an integer"))?,
    };
    Ok(ContactInput {
        contact_id,
        fields: ContactFields {
            name: text("Name"),
            department: text("Department"),
            org_nr: text("OrgNr"),
            number1: text("Number1"),
            number2: text("Number2"),
        },
    })
}

/// The ContactEntity's elements, in XSD order, every value escaped.
fn contact_xml(c: &Contact) -> String {
    let mut xml = String::new();
    let fields = [
        ("ContactId", c.contact_id.to_string()),
        ("Name", c.fields.name.clone()),
        ("Department", c.fields.department.clone()),
        ("OrgNr", c.fields.org_nr.clone()),
        ("Number1", c.fields.number1.clone()),
        ("Number2", c.fields.number2.clone()),
        ("UpdatedDate", c.updated_date.clone()),
        ("CreatedDate", c.created_date.clone()),
    ];
    for (name, value) in &fields {
        element(&mut xml, name, value);
    }
    let associate_id = c.associate.associate_id.to_string();
    let business_id = c.business.id.to_string();
    let category_id = c.category.id.to_string();
    let country_id = c.country.country_id.to_string();
    let nested_elements: [(&str, &[(&str, &str)]); 4] = [
        (
            "Associate",
            &[
                ("AssociateId", &associate_id),
                ("Name", &c.associate.name),
                ("FullName", &c.associate.full_name),
            ],
        ),
        (
            "Business",
            &[("Id", &business_id), ("Value", &c.business.value)],
        ),
        (
            "Category",
            &[("Id", &category_id), ("Value", &c.category.value)],
        ),
        (
            "Country",
            &[
                ("CountryId", &country_id),
                ("Name", &c.country.name),
                ("TwoLetterISOCountry", &c.country.two_letter_iso_country),
            ],
        ),
    ];
    for (name, children) in nested_elements {
        nested(&mut xml, name, children);
    }
    xml
}

/// `<name>value</name>`, the value escaped.
fn element(xml: &mut String, name: &str, value: &str) {
    let _ = write!(xml, "<{name}>{}</{name}>", escape(value));
}

/// `<name>` around the child elements.
fn nested(xml: &mut String, name: &str, children: &[(&str, &str)]) {
    let _ = write!(xml, "<{name}>");
    for (child, value) in children {
        element(xml, child, value);
    }
    let _ = write!(xml, "</{name}>");
}
