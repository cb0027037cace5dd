//! The core of the SuperOffice system-user integration, shared by `partner-web` and `partner-service`.

#[macro_use]
mod text_enum;

pub mod clients;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod db;
pub mod domain;
pub mod environment;
pub mod http;
pub mod jwt;
pub mod lifecycle;
pub mod metrics;
pub mod shutdown;
pub mod soap;
pub mod superid;
pub mod telemetry;
pub mod tenant;
