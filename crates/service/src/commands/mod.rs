//! One module per group of commands.

pub mod credentials;
pub mod migrate;
pub mod superoffice;
pub mod tenants;
