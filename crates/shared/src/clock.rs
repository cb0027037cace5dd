//! Where "now" comes from, so signing and token validation can be tested and replayed at a fixed time.

use std::fmt;

use chrono::{DateTime, Utc};

/// A source of the current UTC time.
pub trait Clock: fmt::Debug + Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock (NTP-synced in production: SuperID checks the signed token's timestamp).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Always the same instant: for tests, benchmarks and `verify-jwt --now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}
