//! Credentials: the partner private key, signed system user tokens, and encryption at rest.

pub mod at_rest;
pub mod partner_key;
pub mod rs256;
pub mod system_user_token;
