//! SuperOffice claim names.

/// Prefix of every SuperOffice-specific claim.
pub const CLAIM_PREFIX: &str = "http://schemes.superoffice.net/identity/";

/// Issuer of system user and notification JWTs.
pub const SUPEROFFICE_ISSUER: &str = "SuperOffice AS";

/// The full claim name, e.g. `http://schemes.superoffice.net/identity/ctx` for `ctx`.
pub fn claim(name: &str) -> String {
    format!("{CLAIM_PREFIX}{name}")
}
