//! SuperID: the OpenID Connect sign-in and the system user ticket exchange (REST and SOAP).

pub mod discovery;
pub mod environment;
