//! NetServer's SOAP Contact agent (protocol §7.3) at `{Endpoint}/Remote/Services88/Contact.svc`:
//! SOAP 1.1 envelopes derived from the WSDL, with the `ApplicationToken` and `Credentials/Ticket`
//! headers. A company is created the safe way: `CreateDefaultContactEntity`, `Name` changed,
//! `SaveContactEntity` with the entity sent back. SOAP faults and the `ExceptionInfo`/`Succeeded`
//! response headers become typed errors.

use secrecy::ExposeSecret;
use url::Url;

use crate::domain::{ContextId, Ticket};
use crate::http::{self, scrub};
use crate::soap::{self, Element, Envelope};
use crate::tenant::status::TenantStatus;
use crate::tenant::{Company, TenantCaller, TenantError, endpoint_url, error_message};

const WHAT: &str = "tenant SOAP service";

/// The namespace of NetServer's Services88 messages and headers.
pub const SERVICES88_NS: &str = "http://www.superoffice.net/ws/crm/NetServer/Services88";

/// Calls tenants' SOAP Contact agent with a system user ticket. Share one per process.
#[derive(Debug, Clone)]
pub struct TenantSoapClient {
    caller: TenantCaller,
}

impl TenantSoapClient {
    pub fn new(caller: TenantCaller) -> Self {
        Self { caller }
    }

    /// `CreateDefaultContactEntity`: the unsaved default entity (the `ContactEntity` element).
    #[tracing::instrument(skip_all, fields(tenant = %tenant), err)]
    pub async fn create_default_contact(
        &self,
        tenant: &ContextId,
        ticket: &Ticket,
    ) -> Result<Element, TenantError> {
        let mut response = self
            .call(tenant, ticket, "CreateDefaultContactEntity", "<CreateDefaultContactEntity xmlns=\"http://www.superoffice.net/ws/crm/NetServer/Services88\"/>".to_owned())
            .await?;
        response.name = "ContactEntity".to_owned();
        Ok(response)
    }

    /// `SaveContactEntity` with `entity` (a `ContactEntity` element). Sent once.
    #[tracing::instrument(skip_all, fields(tenant = %tenant), err)]
    pub async fn save_contact(
        &self,
        tenant: &ContextId,
        ticket: &Ticket,
        entity: &Element,
    ) -> Result<Company, TenantError> {
        let body = save_contact_body(entity);
        let saved = self.call(tenant, ticket, "SaveContactEntity", body).await?;
        company(tenant, &saved)
    }

    /// Creates a company named `name`: the default entity, `Name` set, saved.
    #[tracing::instrument(skip_all, fields(tenant = %tenant), err)]
    pub async fn create_company(
        &self,
        tenant: &ContextId,
        ticket: &Ticket,
        name: &str,
    ) -> Result<Company, TenantError> {
        let mut entity = self.create_default_contact(tenant, ticket).await?;
        match entity.child_mut("Name") {
            Some(element) => {
                element.text = name.to_owned();
                element.nil = false;
                element.children.clear();
            }
            None => {
                // Keep the XSD order: Name follows ContactId.
                let at = entity
                    .children
                    .iter()
                    .position(|c| c.name == "ContactId")
                    .map_or(0, |i| i + 1);
                entity.children.insert(
                    at,
                    Element {
                        namespace: Some(SERVICES88_NS.to_owned()),
                        name: "Name".to_owned(),
                        text: name.to_owned(),
                        ..Element::default()
                    },
                );
            }
        }
        self.save_contact(tenant, ticket, &entity).await
    }

    /// One operation on the tenant's current host; the `Response` element of its answer.
    async fn call(
        &self,
        tenant: &ContextId,
        ticket: &Ticket,
        operation: &'static str,
        body: String,
    ) -> Result<Element, TenantError> {
        let application_token = self.caller.application_token.expose_secret();
        let envelope = request_envelope(application_token, ticket, &body);
        let request = |status: &TenantStatus| {
            Ok(self
                .caller
                .http
                .client()
                .post(service_url(tenant, status)?)
                .header(reqwest::header::CONTENT_TYPE, soap::CONTENT_TYPE)
                .header(
                    "SOAPAction",
                    format!("\"{SERVICES88_NS}/Contact/{operation}\""),
                )
                .body(envelope.clone()))
        };
        let secrets = [ticket.expose(), application_token];
        let read = |answer: http::Answer| {
            read_response(
                tenant,
                answer.status.as_u16(),
                &answer.body,
                operation,
                &secrets,
            )
        };
        let repeatable = operation.starts_with("Create");
        self.caller
            .call(tenant, WHAT, repeatable, request, read)
            .await
    }
}

/// The request envelope: the `ApplicationToken` and `Credentials/Ticket` headers around `body`
/// (already serialized XML), every value escaped.
pub fn request_envelope(application_token: &str, ticket: &Ticket, body: &str) -> String {
    format!(
        r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header><ApplicationToken xmlns="{SERVICES88_NS}">{}</ApplicationToken><Credentials xmlns="{SERVICES88_NS}"><Ticket>{}</Ticket></Credentials></s:Header><s:Body>{body}</s:Body></s:Envelope>"#,
        soap::escape(application_token),
        soap::escape(ticket.expose()),
    )
}

/// The Body of `SaveContactEntity` carrying `entity` (a `ContactEntity` element).
pub fn save_contact_body(entity: &Element) -> String {
    let mut body = format!("<SaveContactEntity xmlns=\"{SERVICES88_NS}\">");
    entity.write_xml(&mut body, Some(SERVICES88_NS));
    body.push_str("</SaveContactEntity>");
    body
}

/// Reads an answer to `operation` with HTTP status `code`: its `{operation}Response/Response`
/// element, or the typed error. `secrets` are scrubbed from any message.
pub fn read_response(
    tenant: &ContextId,
    code: u16,
    bytes: &[u8],
    operation: &str,
    secrets: &[&str],
) -> Result<Element, TenantError> {
    let tenant = tenant.clone();
    match code {
        421 => return Err(TenantError::Misdirected { tenant }),
        401 | 403 => return Err(TenantError::TicketRejected { tenant }),
        _ => {}
    }
    let success = (200..300).contains(&code);
    let parsed = match Envelope::parse(bytes) {
        Ok(parsed) => parsed,
        Err(_) if !success => {
            return Err(TenantError::Http {
                tenant,
                status: code,
                message: error_message(bytes, secrets),
            });
        }
        Err(error) => {
            return Err(TenantError::Malformed {
                tenant,
                reason: error.to_string(),
            });
        }
    };
    if let Some(error) = failure(&tenant, &parsed, secrets) {
        return Err(error);
    }
    if !success {
        return Err(TenantError::Http {
            tenant,
            status: code,
            message: "(a SOAP answer without a fault)".to_owned(),
        });
    }
    parsed
        .body
        .find(&format!("{operation}Response"))
        .and_then(|r| r.child("Response"))
        .cloned()
        .ok_or_else(|| TenantError::Malformed {
            tenant,
            reason: format!("the Body holds no {operation}Response/Response"),
        })
}

/// `{Endpoint}/Remote/Services88/Contact.svc`.
fn service_url(tenant: &ContextId, status: &TenantStatus) -> Result<Url, TenantError> {
    endpoint_url(
        tenant,
        status.endpoint.as_ref(),
        "Endpoint",
        "Remote/Services88/Contact.svc",
    )
}

/// A fault, an `ExceptionInfo` header or `Succeeded` false, as an error: the ticket's when the
/// exception is about security or authentication, a fault otherwise.
fn failure(tenant: &ContextId, envelope: &Envelope, secrets: &[&str]) -> Option<TenantError> {
    let header = envelope.header.as_ref();
    let exception = header
        .and_then(|h| h.child("ExceptionInfo"))
        .filter(|e| !e.nil && !e.children.is_empty());
    let succeeded = header
        .and_then(|h| h.child_text("Succeeded"))
        .map(|s| s.eq_ignore_ascii_case("true"));
    let fault = envelope.fault();
    if fault.is_none() && exception.is_none() && succeeded != Some(false) {
        return None;
    }
    let exception_type = exception
        .and_then(|e| e.child_text("ExceptionType"))
        .unwrap_or_default()
        .to_owned();
    let message = exception
        .and_then(|e| e.child_text("Message"))
        .map(str::to_owned)
        .or_else(|| fault.as_ref().map(|f| f.message.clone()))
        .unwrap_or_else(|| "Succeeded is false".to_owned());
    let about_credentials = [exception_type.as_str(), message.as_str()]
        .iter()
        .any(|text| {
            let text = text.to_ascii_lowercase();
            ["security", "authenticat", "ticket", "credential"]
                .iter()
                .any(|word| text.contains(word))
        });
    Some(if about_credentials {
        TenantError::TicketRejected {
            tenant: tenant.clone(),
        }
    } else {
        TenantError::Fault {
            tenant: tenant.clone(),
            exception: if exception_type.is_empty() {
                fault.map(|f| f.code).unwrap_or_default()
            } else {
                exception_type
            },
            message: scrub(&message, secrets),
        }
    })
}

fn company(tenant: &ContextId, entity: &Element) -> Result<Company, TenantError> {
    let contact_id = entity
        .child_text("ContactId")
        .and_then(|id| id.parse().ok());
    Company::from_entity(tenant, contact_id, |path| {
        let (name, parents) = path.split_last()?;
        let parent = parents
            .iter()
            .try_fold(entity, |parent, name| parent.child(name))?;
        parent.child_text(name).map(str::to_owned)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn envelope(text: &str) -> Envelope {
        Envelope::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn headers_and_faults_are_classified() {
        let tenant = ContextId::parse("Cust1").unwrap();
        let ok = envelope(&format!(
            r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header>
            <ExceptionInfo xmlns="{SERVICES88_NS}" xmlns:i="http://www.w3.org/2001/XMLSchema-instance" i:nil="true"/>
            <Succeeded xmlns="{SERVICES88_NS}">true</Succeeded></s:Header><s:Body/></s:Envelope>"#
        ));
        assert!(failure(&tenant, &ok, &[]).is_none());
        let security = envelope(&format!(
            r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header>
            <ExceptionInfo xmlns="{SERVICES88_NS}"><Message>Bad credentials</Message>
            <ExceptionType>SoSecurityException</ExceptionType></ExceptionInfo>
            <Succeeded xmlns="{SERVICES88_NS}">false</Succeeded></s:Header><s:Body><s:Fault>
            <faultcode>s:Client</faultcode><faultstring>Bad credentials</faultstring></s:Fault></s:Body></s:Envelope>"#
        ));
        assert!(matches!(
            failure(&tenant, &security, &[]),
            Some(TenantError::TicketRejected { .. })
        ));
        let validation = envelope(
            r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>
            <faultcode>s:Client</faultcode><faultstring>Name is required</faultstring></s:Fault></s:Body></s:Envelope>"#,
        );
        match failure(&tenant, &validation, &[]) {
            Some(TenantError::Fault {
                exception, message, ..
            }) => assert_eq!(
                (exception.as_str(), message.as_str()),
                ("s:Client", "Name is required")
            ),
            other => panic!("{other:?}"),
        }
        let not_succeeded = envelope(&format!(
            r#"<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Header>
            <Succeeded xmlns="{SERVICES88_NS}">false</Succeeded></Header><Body/></Envelope>"#
        ));
        assert!(matches!(
            failure(&tenant, &not_succeeded, &[]),
            Some(TenantError::Fault { .. })
        ));
    }
}
