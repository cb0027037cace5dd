//! partner-service's integration tests, one binary: the offline credential commands ([`cli`]), the
//! operator's tenant commands over a database ([`tenants_cli`]), and the daemon against Postgres and the
//! in-process simulator ([`daemon`]). Databases, keys and seeding come from `testkit`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binary;
mod cli;
mod daemon;
mod tenants_cli;
