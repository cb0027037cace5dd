//! superoffice-sim: a local simulator of SuperOffice's SuperID (OpenID Connect, PartnerSystemUserService,
//! state API) and tenant web services (REST and SOAP), strict where SuperOffice is strict, with an admin
//! API for fault injection. See `crates/sim/README.md`.
//!
//! Layers: `store` holds the simulator's data (tenants, grants, tokens, companies, faults, records);
//! `context` wraps it with the configuration and the clock; the front ends (`superid`, `exchange`,
//! `tenant_api`, `state`, `admin`) read and change it; `server` wires them into listeners. Nothing
//! imports upwards (`scripts/check-modules.py` checks it).
//!
//! ```no_run
//! # async fn run(pem: &str) -> Result<(), superoffice_sim::StartError> {
//! use superoffice_sim::{SimConfig, Simulator};
//! let sim = Simulator::start(SimConfig::for_tests(pem)).await?;
//! let token_url = format!("{}/login/common/oauth/tokens", sim.superid_url());
//! let api = sim.api_host_url("sod2").map(str::to_owned);
//! sim.admin().advance_clock(3600);
//! sim.stop().await;
//! # let _ = (token_url, api);
//! # Ok(()) }
//! ```

pub mod admin;
mod claims;
pub mod clock;
pub mod config;
mod context;
pub mod exchange;
pub mod faults;
pub mod keys;
pub mod modes;
mod notify;
mod request;
mod server;
mod soap;
pub mod state;
pub mod store;
pub mod superid;
pub mod tenant_api;
mod xml;

pub use admin::{Admin, AdminError, TenantView};
pub use config::{SimConfig, TEST_CLIENT_ID, TEST_CLIENT_SECRET, TEST_REDIRECT_URI, TenantState};
pub use faults::{Fault, Group};
pub use server::{MAX_BODY_BYTES, RunningSim, Simulator, StartError};
pub use store::GrantStatus;
