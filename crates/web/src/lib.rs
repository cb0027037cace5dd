//! partner-web: sign-in through SuperID and capture of the tenant's system user token.

pub mod client_ip;
pub mod errors;
pub mod limiter;
pub mod request_log;
pub mod routes;
pub mod session;
pub mod session_store;
pub mod startup;
pub mod state;

pub use startup::Application;
