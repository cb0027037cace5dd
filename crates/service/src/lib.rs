//! partner-service: the daemon and the operator commands.

pub mod cli;
pub mod commands;
pub mod daemon;
pub mod tickets;
