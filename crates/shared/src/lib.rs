//! The core of the SuperOffice system-user integration, shared by `partner-web` and `partner-service`.

pub mod config;
pub mod domain;
pub mod environment;
