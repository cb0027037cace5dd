//! One module per group of commands.

pub mod migrate;
pub mod superoffice;
