//! Every SuperOffice client of a process, wired from the configuration: one HTTP stack, one discovery
//! cache, one token validator, one tenant status cache, shared by the sign-in, the exchange and the
//! tenant API clients. partner-web and partner-service build this once at start-up.

use std::sync::Arc;

use secrecy::SecretString;

use crate::clock::Clock;
use crate::config::{ConfigError, ExchangeKind, Settings};
use crate::crypto::partner_key::PartnerKey;
use crate::environment::SuperIdEnvironment;
use crate::http::{ClientBuildError, SuperOfficeHttp};
use crate::jwt::CertificateError;
use crate::jwt::pinned::pinned_certificate;
use crate::superid::discovery::Discovery;
use crate::superid::exchange::{ExchangeCore, TicketExchange, configured_exchange};
use crate::superid::oidc::{OidcApplication, OidcClient};
use crate::superid::validation::SuperIdValidator;
use crate::tenant::TenantCaller;
use crate::tenant::rest::TenantRestClient;
use crate::tenant::soap::TenantSoapClient;
use crate::tenant::status::TenantStatusClient;

/// The clients could not be built from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ClientsError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Http(#[from] ClientBuildError),
    #[error("the pinned SuperID certificate cannot be read: {0}")]
    Certificate(CertificateError),
}

impl From<CertificateError> for ClientsError {
    fn from(error: CertificateError) -> Self {
        Self::Certificate(error)
    }
}

/// The SuperOffice clients of one process: what they all share, then the SuperID and the tenant
/// clients. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SuperOfficeClients {
    pub http: SuperOfficeHttp,
    /// Checks every JWT SuperOffice sends; its discovery document names SuperID's endpoints.
    pub validator: Arc<SuperIdValidator>,
    pub superid: SuperIdClients,
    pub tenants: TenantClients,
}

/// What calls SuperID: the sign-in, and what the ticket exchange is built from.
#[derive(Debug, Clone)]
pub struct SuperIdClients {
    pub environment: SuperIdEnvironment,
    pub oidc: OidcClient,
    exchange_kind: ExchangeKind,
    application_token: SecretString,
    clock: Arc<dyn Clock>,
}

/// What calls the tenants: their state (where each lives, whether it runs), their REST API and their
/// SOAP services.
#[derive(Debug, Clone)]
pub struct TenantClients {
    pub statuses: Arc<TenantStatusClient>,
    pub rest: TenantRestClient,
    pub soap: TenantSoapClient,
}

impl SuperOfficeClients {
    /// Needs `superoffice.client_secret`; the partner key is asked for only by `exchange`.
    pub fn from_settings(settings: &Settings, clock: Arc<dyn Clock>) -> Result<Self, ClientsError> {
        let superoffice = &settings.superoffice;
        let http = SuperOfficeHttp::from_settings(&superoffice.http)?;
        let environment = SuperIdEnvironment::from_settings(&superoffice.superid)?;
        let application_token = superoffice.application.client_secret()?.clone();
        let discovery = Arc::new(Discovery::new(http.clone(), &environment));
        let validator = Arc::new(
            SuperIdValidator::new(
                discovery,
                http.client().clone(),
                pinned_certificate(environment.environment())?,
                superoffice.trust.jwt_leeway(),
                Arc::clone(&clock),
            )
            .with_jwks_max_age(superoffice.trust.jwks_refresh()),
        );
        let statuses = Arc::new(
            TenantStatusClient::new(http.clone(), environment.clone(), Arc::clone(&clock))
                .with_allowed_hosts(superoffice.superid.allowed_tenant_hosts.clone()),
        );
        let oidc = OidcClient::new(
            http.clone(),
            Arc::clone(&validator),
            Arc::clone(&clock),
            OidcApplication {
                issuer: environment.issuer().to_owned(),
                client_id: superoffice.application.client_id.clone(),
                client_secret: application_token.clone(),
                redirect_uri: settings.web.redirect_uri(),
                pkce: superoffice.trust.pkce,
            },
        );
        let caller = TenantCaller::new(
            http.clone(),
            Arc::clone(&statuses),
            application_token.clone(),
        );
        Ok(Self {
            superid: SuperIdClients {
                environment,
                oidc,
                exchange_kind: superoffice.exchange,
                application_token,
                clock,
            },
            tenants: TenantClients {
                statuses,
                rest: TenantRestClient::new(caller.clone())
                    .with_marker_field(&settings.service.idempotency_field),
                soap: TenantSoapClient::new(caller),
            },
            http,
            validator,
        })
    }

    /// The ticket exchange `superoffice.exchange` selects, signing with `key`.
    pub fn exchange(&self, key: Arc<PartnerKey>) -> Arc<dyn TicketExchange> {
        let superid = &self.superid;
        configured_exchange(
            superid.exchange_kind,
            ExchangeCore::new(
                self.http.clone(),
                superid.environment.clone(),
                superid.application_token.clone(),
                key,
                Arc::clone(&superid.clock),
                Arc::clone(&self.validator),
            ),
        )
    }
}
