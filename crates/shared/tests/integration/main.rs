//! The database layer against a real Postgres, one binary: per-test databases, migrations and schema
//! ([`db`]), token capture ([`capture`]), the tenant work queue ([`queue`]), key rotation ([`rotation`]),
//! web sessions ([`sessions`]), the operator console's queries ([`operator`]) and state-change notifications ([`state_changes`]). Databases and seeding
//! come from `testkit`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod capture;
mod db;
mod operator;
mod queue;
mod rotation;
mod sessions;
mod state_changes;
