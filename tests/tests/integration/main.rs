//! End-to-end tests as real processes, one binary: the binaries' start, answers and stop
//! ([`foundation`]), the operator commands ([`operator`]), no secret in logs or the database
//! ([`secrets`]), the shipped dashboards' metrics ([`observability`]), faults ([`faults`]) the flow and the
//! operator console in headless Chromium ([`browser`], [`operator_console`]). `scripts/test` builds the binaries first.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod faults;
mod foundation;
mod observability;
mod operator;
mod operator_console;
mod secrets;
