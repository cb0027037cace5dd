//! What SuperOffice itself posts to partner-web.

pub mod state_change;
