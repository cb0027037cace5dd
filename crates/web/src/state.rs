//! What every handler can reach, built once by `startup` and shared by the routes.

use std::sync::Arc;

use ipnet::IpNet;
use shared::clients::SuperOfficeClients;
use shared::config::{Operator, SystemUserActions};
use shared::crypto::at_rest::Cipher;
use shared::db;
use shared::db::work_limits::WorkLimits;
use shared::environment::Environment;

use crate::limiter::NotificationLimits;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: db::Pool,
    /// Every SuperOffice client: sign-in, the JWT validator (pinned certificate plus the JWKS that
    /// discovery names), tenant status and the tenant's REST API.
    pub clients: SuperOfficeClients,
    /// Encrypts captured system user tokens at rest.
    pub cipher: Arc<Cipher>,
    /// `superoffice.client_id`: the audience of id_tokens and (as `spn:{client_id}`) of notifications.
    pub client_id: String,
    /// `superoffice.environment`, stored with each tenant.
    pub environment: Environment,
    /// `web.system_user_actions`: who may queue work for the system user.
    pub system_user_actions: SystemUserActions,
    /// `web.work_per_*` and `web.open_work_per_tenant`.
    pub work_limits: WorkLimits,
    /// `web.trusted_proxies`: peers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Arc<Vec<IpNet>>,
    /// `web.legacy_sign_in`: whether `POST /callback` exists.
    pub legacy_sign_in: bool,
    /// Whether notifications must carry the audience `spn:{client_id}`.
    pub state_change_audience_required: bool,
    /// Notifications per tenant and per source address.
    pub notification_limits: Arc<NotificationLimits>,
    /// `web.operators`: who may open the operator console.
    pub operators: Arc<Vec<Operator>>,
}

impl AppState {
    /// A connection from the pool, for the request at hand.
    pub async fn conn(&self) -> Result<db::Connection, db::DbError> {
        Ok(self.pool.get().await?)
    }
}
