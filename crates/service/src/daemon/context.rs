//! What every tenant task shares: the pool, the SuperOffice clients, the ticket exchange, the cipher,
//! the clock, the settings and the circuit; plus the audit actor and the host name the daemon uses.

use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use shared::clients::SuperOfficeClients;
use shared::clock::Clock;
use shared::config::ServiceSettings;
use shared::crypto::at_rest::Cipher;
use shared::db::models::Tenant;
use shared::db::{self, tenants};
use shared::superid::exchange::TicketExchange;

use super::backoff::Backoff;
use super::circuit::Circuit;
use crate::tickets::TicketPolicy;

/// Who the daemon's changes are recorded as in the audit trail.
pub const ACTOR: &str = "partner-service";

/// What every tenant task needs. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    pub(super) pool: db::Pool,
    pub(super) clients: SuperOfficeClients,
    pub(super) exchange: Arc<dyn TicketExchange>,
    pub(super) cipher: Arc<Cipher>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) service: ServiceSettings,
    pub(super) backoff: Backoff,
    pub(super) via: &'static str,
    pub(super) owner: Arc<str>,
    pub(super) circuit: Arc<Circuit>,
    /// The SuperOffice state the state API reported running in this task's pass, and when: recorded
    /// with the release of the lease (`queue::release_many`) instead of a statement of its own.
    /// Each task gets its own (see `Daemon::spawn`).
    pub(super) running: Arc<Mutex<Option<ObservedRunning>>>,
}

/// A SuperOffice state the state API reported running, and when.
type ObservedRunning = (String, DateTime<Utc>);

impl Context {
    pub(super) fn observed_running(&self, so_state: &str, at: DateTime<Utc>) {
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) = Some((so_state.to_owned(), at));
    }

    pub(super) async fn db(&self) -> anyhow::Result<db::Connection> {
        self.pool
            .get()
            .await
            .context("taking a database connection")
    }

    pub(super) fn ticket_policy(&self) -> TicketPolicy {
        let secs = |s: u64| chrono::Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX));
        TicketPolicy {
            refresh_after: secs(self.service.ticket_refresh_after_secs),
            max_age: secs(self.service.ticket_max_age_secs),
        }
    }

    pub(super) fn lease_secs(&self) -> i64 {
        i64::try_from(self.service.lease_secs).unwrap_or(i64::MAX)
    }

    /// Records a failed pass with its reason on the tenant (under this daemon's lease) and hands
    /// back the connection for what follows.
    async fn record_outcome(
        &self,
        tenant: &Tenant,
        reason: &str,
        at: DateTime<Utc>,
    ) -> anyhow::Result<db::Connection> {
        let mut conn = self.db().await?;
        tenants::record_outcome(&mut conn, &tenant.context_id, &self.owner, Some(reason), at)
            .await?;
        Ok(conn)
    }

    /// Records a passing failure on the tenant and says when to try again (backoff with jitter).
    pub(super) async fn retry_later(
        &self,
        tenant: &Tenant,
        reason: &str,
    ) -> anyhow::Result<Option<DateTime<Utc>>> {
        drop(self.record_outcome(tenant, reason, Utc::now()).await?);
        let failures = u32::try_from(tenant.failed_attempts.saturating_add(1)).unwrap_or(1);
        let delay = self.backoff.delay(failures);
        tracing::info!(tenant = %tenant.context_id, failures, retry_in_secs = delay.as_secs(), reason, "will retry");
        Ok(Some(
            Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX),
        ))
    }

    /// Records a failure an operator must look at, without changing the tenant's state: the flag
    /// with the reason (secrets already removed), a metric, a warning; retried after the long
    /// `service.attention_backoff_secs`.
    pub(super) async fn needs_attention(
        &self,
        tenant: &Tenant,
        kind: &str,
        reason: &str,
    ) -> anyhow::Result<Option<DateTime<Utc>>> {
        let now = Utc::now();
        let mut conn = self.record_outcome(tenant, reason, now).await?;
        tenants::flag_attention(&mut conn, &tenant.context_id, &self.owner, reason, now).await?;
        metrics::counter!("partner_service_attention_total", "kind" => kind.to_owned())
            .increment(1);
        let delay = chrono::Duration::seconds(
            i64::try_from(self.service.attention_backoff_secs).unwrap_or(i64::MAX),
        );
        tracing::warn!(tenant = %tenant.context_id, kind, reason, retry_in_secs = delay.num_seconds(), "tenant needs attention; its state is kept");
        Ok(Some(now + delay))
    }
}

/// This machine's host name (`host` when it cannot be read).
pub(super) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned())
}
