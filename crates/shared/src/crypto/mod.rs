//! Credentials: the partner private key, signed system user tokens, and encryption at rest.

pub mod at_rest;
pub mod partner_key;
pub mod rs256;
pub mod system_user_token;

use subtle::ConstantTimeEq;

/// Whether two byte strings are equal, in time that does not depend on where they differ (for
/// secrets compared with what a client sent: OAuth `state`, CSRF tokens).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}
