//! SOAP micro-benchmarks: building and reading the ticket exchange's envelopes (PartnerSystemUserService),
//! the tenant Contact agent's envelopes, and the generic reader in `shared::soap`.
//! Run: cargo bench -p shared --bench soap -- --warm-up-time 1 --measurement-time 3
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::result_large_err)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use reqwest::StatusCode;
use shared::domain::{ContextId, Ticket};
use shared::soap::Envelope;
use shared::superid::exchange_soap;
use shared::tenant::soap::{self as contact, SERVICES88_NS};

const SOAP_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const EXCHANGE_NS: &str = "http://www.superoffice.com/superid/partnersystemuser/0.1";
const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";
const APP_TOKEN: &str = "local-dev-application-token";
const TICKET: &str = "7T:MAA3AGYAMQBlAGQAZAAxAGQAZQAwADgAYgAxAGEAYwBkADYAOAA0ADcAMQA2ADkAOQBhADQAZgBiADMAOQAyADsAMgAwADgANwAzADEANQAwADQAMwA7AEMAdQBzAHQAMgA2ADcANQA5AA==";

/// A signed system user token of the real size: token, minute, base64 of a 256-byte signature.
fn signed_token() -> String {
    format!(
        "SuperOffice DevNet Node OIDC-8k8Q7DmBgo.202601011200.{}",
        "Qk1hY2hpbmVTaWduYXR1cmUrLz0".repeat(13)
    )
}

/// The simulator's answer, shaped like SuperID's: a ~1.3 kB JWT in `Token`, `ErrorMessage` nil.
fn exchange_response() -> String {
    let jwt = format!(
        "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.{}.{}",
        "eyJodHRwOi8vc2NoZW1lcy5zdXBlcm9mZmljZS5uZXQvaWRlbnRpdHkvdGlja2V0IjoiN1Q6".repeat(12),
        "c2lnbmF0dXJl".repeat(28)
    );
    format!(
        r#"<s:Envelope xmlns:s="{SOAP_NS}"><s:Body><AuthenticationResponse xmlns="{EXCHANGE_NS}" xmlns:i="{XSI_NS}"><IsSuccessful>true</IsSuccessful><Token>{jwt}</Token><ErrorMessage i:nil="true"/></AuthenticationResponse></s:Body></s:Envelope>"#
    )
}

/// A ContactEntity as the simulator's Contact agent writes it.
fn contact_xml(contact_id: u32, name: &str) -> String {
    format!(
        "<ContactId>{contact_id}</ContactId><Name>{name}</Name><Department></Department><OrgNr></OrgNr>\
         <Number1></Number1><UpdatedDate>2026-01-01T12:00:00</UpdatedDate><CreatedDate>2026-01-01T12:00:00</CreatedDate>\
         <Associate><AssociateId>9000</AssociateId><Name>SYSTEM</Name><FullName>System User</FullName></Associate>\
         <Business><Id>0</Id><Value></Value></Business><Category><Id>0</Id><Value></Value></Category>\
         <Country><CountryId>578</CountryId><Name>Norway</Name><TwoLetterISOCountry>NO</TwoLetterISOCountry></Country>"
    )
}

fn contact_response(operation: &str, entity: &str) -> String {
    format!(
        r#"<s:Envelope xmlns:s="{SOAP_NS}"><s:Header><ExceptionInfo xmlns="{SERVICES88_NS}" xmlns:i="{XSI_NS}" i:nil="true"/><Succeeded xmlns="{SERVICES88_NS}">true</Succeeded></s:Header><s:Body><{operation}Response xmlns="{SERVICES88_NS}"><Response>{entity}</Response></{operation}Response></s:Body></s:Envelope>"#
    )
}

fn soap(c: &mut Criterion) {
    let ctx = ContextId::parse("Cust12345").unwrap();
    let signed = signed_token();
    c.bench_function("exchange: build request envelope", |b| {
        b.iter(|| {
            exchange_soap::request_envelope(
                black_box(APP_TOKEN),
                black_box(ctx.as_str()),
                black_box(&signed),
            )
        })
    });
    let response = exchange_response();
    let answer =
        exchange_soap::read_response(&ctx, StatusCode::OK, None, response.as_bytes(), &[]).unwrap();
    assert!(answer.is_successful && answer.token.is_some());
    c.bench_function("exchange: read response envelope", |b| {
        b.iter(|| {
            exchange_soap::read_response(
                &ctx,
                StatusCode::OK,
                None,
                black_box(response.as_bytes()),
                &[],
            )
        })
    });

    let ticket = Ticket::parse(TICKET).unwrap();
    let create_body = format!("<CreateDefaultContactEntity xmlns=\"{SERVICES88_NS}\"/>");
    c.bench_function("contact: build CreateDefaultContactEntity envelope", |b| {
        b.iter(|| contact::request_envelope(black_box(APP_TOKEN), &ticket, black_box(&create_body)))
    });
    let default = contact_response("CreateDefaultContactEntity", &contact_xml(0, ""));
    let read = |bytes: &[u8], operation: &str| {
        contact::read_response(&ctx, 200, bytes, operation, &[TICKET, APP_TOKEN])
    };
    let mut entity = read(default.as_bytes(), "CreateDefaultContactEntity").unwrap();
    c.bench_function("contact: read CreateDefaultContactEntity response", |b| {
        b.iter(|| read(black_box(default.as_bytes()), "CreateDefaultContactEntity"))
    });
    entity.name = "ContactEntity".to_owned();
    if let Some(name) = entity.child_mut("Name") {
        name.text = "Northwind & Daughters AS".to_owned();
    }
    c.bench_function("contact: build SaveContactEntity envelope", |b| {
        b.iter(|| {
            let body = contact::save_contact_body(black_box(&entity));
            contact::request_envelope(APP_TOKEN, &ticket, &body)
        })
    });
    let saved = contact_response(
        "SaveContactEntity",
        &contact_xml(42, "Northwind &amp; Daughters AS"),
    );
    let element = read(saved.as_bytes(), "SaveContactEntity").unwrap();
    assert_eq!(element.child_text("ContactId"), Some("42"));
    c.bench_function("contact: read SaveContactEntity response", |b| {
        b.iter(|| read(black_box(saved.as_bytes()), "SaveContactEntity"))
    });

    c.bench_function(
        "reader: soap::Envelope::parse (SaveContactEntity response)",
        |b| b.iter(|| Envelope::parse(black_box(saved.as_bytes()))),
    );
}

criterion_group!(benches, soap);
criterion_main!(benches);
