//! Calling a tenant: its status (where it lives, whether it runs), its REST API and its SOAP services.

pub mod status;
