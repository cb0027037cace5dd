//! What SuperOffice itself posts to partner-web.

pub mod limiter;
pub mod state_change;
