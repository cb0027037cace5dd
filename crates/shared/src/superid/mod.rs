//! SuperID: the OpenID Connect sign-in and the system user ticket exchange (REST and SOAP).

pub mod discovery;
pub mod environment;
pub mod exchange;
pub mod exchange_rest;
pub mod exchange_soap;
pub mod oidc;
pub mod validation;
