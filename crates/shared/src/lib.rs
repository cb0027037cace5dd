//! The core of the SuperOffice system-user integration, shared by `partner-web` and `partner-service`.

pub mod config;
pub mod db;
pub mod domain;
pub mod environment;
pub mod metrics;
pub mod shutdown;
pub mod telemetry;
