//! The SuperOffice clients against HTTP doubles (wiremock): every response shape and error class.

#![allow(clippy::unwrap_used, clippy::expect_used)]

/// Asserts that a value matches a pattern (a guard allowed), printing the value when it does not.
macro_rules! assert_is {
    ($value:expr, $($pattern:tt)+) => {
        assert!(matches!($value, $($pattern)+), "{}", $value)
    };
}

mod discovery;
mod exchange;
mod oidc;
mod simulator;
mod support;
mod tenant_api;
mod tenant_status;
