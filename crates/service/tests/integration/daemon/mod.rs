//! The daemon against Postgres and the in-process SuperOffice simulator: tickets obtained once and
//! reused, refreshed, refused; tenants stopped, waiting and moved; several instances sharing the
//! database; take-over after a crash; graceful shutdown.

mod failures;
mod heartbeat;
mod instances;
mod lifecycle;
mod support;
mod tickets;
