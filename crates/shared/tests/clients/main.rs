//! The SuperOffice clients against HTTP doubles (wiremock): every response shape and error class.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod discovery;
mod exchange;
mod oidc;
mod simulator;
mod support;
mod tenant_api;
mod tenant_status;
