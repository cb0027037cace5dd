//! Turning a tenant's system user token into a system user ticket (protocol §5, §6): the
//! `TicketExchange` trait, what it returns, how its failures are classified, and the part of the flow
//! both PartnerSystemUserService variants (REST, SOAP) share: sign immediately before sending, retry
//! once on `InvalidTimestamp`, validate the returned JWT.

use std::sync::Arc;

mod common;
pub mod rest;
pub mod soap;

pub use common::*;
use rest::RestExchange;
use soap::SoapExchange;

/// The exchange `superoffice.exchange` selects.
pub fn configured_exchange(kind: ExchangeKind, core: ExchangeCore) -> Arc<dyn TicketExchange> {
    match kind {
        ExchangeKind::Rest => Arc::new(RestExchange::new(core)),
        ExchangeKind::Soap => Arc::new(SoapExchange::new(core)),
    }
}
