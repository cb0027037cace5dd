//! One module per group of commands.

pub mod credentials;
