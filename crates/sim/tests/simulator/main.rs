//! Integration tests: an in-process simulator on random ports, driven over HTTP with reqwest.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod exchange;
mod superid;
mod support;
mod tenant_api;
