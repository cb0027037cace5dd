//! SuperID: the OpenID Connect sign-in and the system user ticket exchange (REST and SOAP).

pub mod discovery;
pub mod exchange;
/// The exchange's variants under their former paths.
pub use exchange::{rest as exchange_rest, soap as exchange_soap};
pub mod oidc;
pub mod validation;
