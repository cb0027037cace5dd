//! Turning a tenant's system user token into a system user ticket (protocol §5, §6): the
//! `TicketExchange` trait, what it returns, how its failures are classified, and the part of the flow
//! both PartnerSystemUserService variants (REST, SOAP) share: sign immediately before sending, retry
//! once on `InvalidTimestamp`, validate the returned JWT.

use std::sync::Arc;

mod common;
pub mod rest;
pub mod soap;

pub use common::*;

/// The REST variant (`rest.rs`).
#[derive(Debug, Clone, Copy)]
pub enum Rest {}

/// The SOAP variant (`soap.rs`).
#[derive(Debug, Clone, Copy)]
pub enum Soap {}

/// Exchanges over REST.
pub type RestExchange = VariantExchange<Rest>;

/// Exchanges over SOAP.
pub type SoapExchange = VariantExchange<Soap>;

/// The exchange `superoffice.exchange` selects.
pub fn configured_exchange(kind: ExchangeKind, core: ExchangeCore) -> Arc<dyn TicketExchange> {
    match kind {
        ExchangeKind::Rest => Arc::new(RestExchange::new(core)),
        ExchangeKind::Soap => Arc::new(SoapExchange::new(core)),
    }
}
