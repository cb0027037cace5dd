//! The daemon: claims due tenants (`FOR UPDATE SKIP LOCKED` with a lease, so instances sharing the
//! database never work on one tenant at once), processes each in its own task with its own timeout,
//! at most `service.concurrency` at a time, and wakes on `NOTIFY partner_work` or the poll interval.
//! On shutdown it stops claiming, lets work in flight finish within `service.shutdown_grace_secs`,
//! then gives back what is left.

mod backoff;
pub mod circuit;
mod context;
pub mod heartbeat;
mod listener;
mod metrics_server;
mod worker;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use shared::clients::SuperOfficeClients;
use shared::clock::{Clock, SystemClock};
use shared::config::Settings;
use shared::crypto::at_rest::Cipher;
use shared::crypto::partner_key::PartnerKey;
use shared::db::models::{TenantState, WorkState};
use shared::db::queue::{Claim, Release};
use shared::db::{self, queue, tenants, work};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use self::backoff::Backoff;
use self::circuit::{Circuit, CircuitSettings};
pub use self::context::ACTOR;
use self::context::{Context, host_name};

/// How often the tenants-by-state gauge is refreshed at most.
const GAUGE_EVERY: Duration = Duration::from_secs(5);

/// How long a freed slot waits for others before the next claim (see `Daemon::gather_slots`).
const GATHER_SLOTS: Duration = Duration::from_millis(20);

/// The largest claim while whole batches come back idle (see `Daemon::claim_and_spawn`).
const IDLE_CLAIM_MAX: usize = 512;

/// A daemon instance: one owner id for its leases, its clients and its pool.
pub struct Daemon {
    deps: Context,
    database_url: String,
    slots: Arc<Semaphore>,
    tracker: TaskTracker,
    /// Cancelled when work in flight must stop (after the shutdown grace).
    abort: CancellationToken,
    /// Signalled whenever a tenant task ends (a slot is free).
    finished: Arc<Notify>,
    /// Tenants whose pass has ended, given back together at the next claim round.
    ended: Arc<Mutex<Vec<Release>>>,
}

impl Daemon {
    /// Builds the pool, the SuperOffice clients and the cipher from the configuration; makes no
    /// connection yet. The instance id is `{hostname}-{pid}-{random}`.
    pub fn build(settings: &Settings) -> anyhow::Result<Self> {
        settings.require_service()?;
        let pool = db::pool(&settings.database).context("building the database pool")?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let clients = SuperOfficeClients::from_settings(settings, Arc::clone(&clock))
            .context("building the SuperOffice clients")?;
        let key = PartnerKey::from_source(&settings.superoffice.application.private_key_source()?)
            .context("reading the partner private key")?;
        let exchange = clients.exchange(Arc::new(key));
        let cipher = Cipher::from_settings(&settings.encryption)
            .context("loading encryption.key and encryption.previous_key")?;
        let service = settings.service.clone();
        let circuit = Arc::new(Circuit::new(CircuitSettings {
            tenants: service.circuit_tenants,
            window: Duration::from_secs(service.circuit_window_secs),
            probe_base: Duration::from_secs(service.circuit_probe_base_secs),
            probe_max: Duration::from_secs(service.circuit_probe_max_secs),
        }));
        Ok(Self {
            deps: Context {
                pool,
                clients,
                exchange,
                cipher: Arc::new(cipher),
                clock,
                backoff: Backoff {
                    base: Duration::from_secs(service.backoff_base_secs),
                    max: Duration::from_secs(service.backoff_max_secs),
                },
                via: settings.superoffice.exchange.as_str(),
                owner: instance_id().into(),
                service: service.clone(),
                circuit,
                running: Arc::default(),
            },
            database_url: settings.database.url().to_owned(),
            slots: Arc::new(Semaphore::new(service.concurrency.max(1))),
            tracker: TaskTracker::new(),
            abort: CancellationToken::new(),
            finished: Arc::new(Notify::new()),
            ended: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// Replaces the instance id (tests run several instances in one process).
    pub fn with_owner(mut self, owner: &str) -> Self {
        self.deps.owner = owner.into();
        self
    }

    /// The id this instance's leases carry.
    pub fn owner(&self) -> &str {
        &self.deps.owner
    }

    /// The instance's circuit (exchanges paused for every tenant while it is open).
    pub fn circuit(&self) -> Arc<Circuit> {
        Arc::clone(&self.deps.circuit)
    }

    /// Processes everything due now, then returns.
    pub async fn run_once(&self) -> anyhow::Result<()> {
        loop {
            let claimed = self.claim_and_spawn().await?;
            if claimed == 0 && self.tracker.is_empty() {
                break;
            }
            if claimed == 0 {
                self.finished.notified().await;
                self.gather_slots(std::future::pending()).await;
            }
        }
        self.release_ended().await?;
        self.publish_states().await;
        Ok(())
    }

    /// Runs until `cancel` fires, then drains: work in flight gets `service.shutdown_grace_secs`, what
    /// is left is given back (its requests queued again, its leases released).
    pub async fn run(&self, cancel: CancellationToken) -> anyhow::Result<()> {
        let wake = Arc::new(Notify::new());
        let listener = tokio::spawn(listener::listen(
            self.database_url.clone(),
            Arc::clone(&wake),
            Arc::clone(&self.deps.clients.tenants.statuses),
            cancel.clone(),
        ));
        let beating = CancellationToken::new();
        let heartbeat = tokio::spawn(heartbeat::run(
            self.deps.pool.clone(),
            self.deps.owner.to_string(),
            self.circuit(),
            beating.clone(),
        ));
        let poll = Duration::from_secs(self.deps.service.poll_interval_secs);
        let mut gauge_at = tokio::time::Instant::now();
        register_metrics(&self.deps.circuit);
        self.publish_states().await;
        tracing::info!(owner = %self.deps.owner, concurrency = self.deps.service.concurrency, "daemon started");
        loop {
            match self.claim_and_spawn().await {
                // Every round counts, empty or not: an instance that stops claiming shows (PartnerNoInstanceClaiming).
                Ok(_) => metrics::counter!("partner_service_claim_rounds_total").increment(1),
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "claiming due tenants failed; retrying at the next wake-up")
                }
            }
            if gauge_at.elapsed() >= GAUGE_EVERY {
                self.publish_states().await;
                gauge_at = tokio::time::Instant::now();
            }
            tokio::select! {
                () = cancel.cancelled() => break,
                () = wake.notified() => {}
                () = self.finished.notified() => {
                    self.gather_slots(async {
                        tokio::select! {
                            () = wake.notified() => {}
                            () = cancel.cancelled() => {}
                        }
                    })
                    .await;
                }
                () = tokio::time::sleep(poll) => {}
            }
        }
        tracing::info!("stopping: no new work is claimed");
        self.drain().await;
        beating.cancel();
        let _ = heartbeat.await;
        let _ = listener.await;
        Ok(())
    }

    /// After a tenant's pass has ended: waits up to `GATHER_SLOTS` for half the slots to be free, so
    /// that one claim (two statements) serves several tenants rather than one each time a pass ends.
    /// `interrupt` (new work woke the daemon, or shutdown) ends the wait at once.
    async fn gather_slots(&self, interrupt: impl Future<Output = ()>) {
        let enough = self.deps.service.concurrency.max(1).div_ceil(2);
        let deadline = tokio::time::sleep(GATHER_SLOTS);
        tokio::pin!(deadline, interrupt);
        while self.slots.available_permits() < enough {
            tokio::select! {
                () = &mut deadline => return,
                () = &mut interrupt => return,
                () = self.finished.notified() => {}
            }
        }
    }

    /// Waits for work in flight up to the grace, stops the rest, then releases every lease of this owner.
    async fn drain(&self) {
        self.tracker.close();
        let grace = Duration::from_secs(self.deps.service.shutdown_grace_secs);
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                in_flight = self.tracker.len(),
                "shutdown grace over; giving back the work still in flight"
            );
            self.abort.cancel();
            self.tracker.wait().await;
        }
        // Ended passes first, with their own next attempt; `release_all` makes the rest due at once.
        if let Err(e) = self.release_ended().await {
            tracing::error!(error = %format!("{e:#}"), "giving back the tenants whose pass ended failed");
        }
        match self.deps.db().await {
            Ok(mut conn) => match queue::release_all(&mut conn, &self.deps.owner).await {
                Ok(released) => tracing::info!(released, "leases released"),
                Err(e) => {
                    tracing::error!(error = %e, "releasing leases failed; they expire by themselves")
                }
            },
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "releasing leases failed; they expire by themselves")
            }
        }
    }

    /// Gives back, in one statement, the tenants whose pass ended since the last call, each due again
    /// when its pass said. Until then they keep this instance's lease (so no instance takes them), for
    /// a claim round at most. On failure they stay gathered for the next round; their leases would
    /// expire by themselves meanwhile.
    async fn release_ended(&self) -> anyhow::Result<usize> {
        let ended = std::mem::take(&mut *self.ended.lock().unwrap_or_else(|e| e.into_inner()));
        if ended.is_empty() {
            return Ok(0);
        }
        let released = async {
            let mut conn = self.deps.db().await?;
            queue::release_many(&mut conn, &ended, &self.deps.owner)
                .await
                .context("giving back the tenants whose pass ended")
        }
        .await;
        if released.is_err() {
            self.ended
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(ended);
        }
        released
    }

    /// Gives back the tenants whose passes ended, then claims as many due tenants as there are free
    /// slots and starts a task for each, until the slots are full or nothing more is due. Claimed
    /// tenants with nothing to do (active, a usable ticket, no open work) are given back in one
    /// statement per claim, without a task: a steady pass over thousands of tenants costs a few round
    /// trips per claim, not one per tenant. While whole claims come back idle, the next claim doubles
    /// (up to `IDLE_CLAIM_MAX`), so a steady pass over N tenants takes about N / 512 claims, not N / 8;
    /// tenants of a large claim that need a pass but find no free slot are given back due at once.
    /// Returns how many tenants were claimed.
    async fn claim_and_spawn(&self) -> anyhow::Result<usize> {
        if let Err(e) = self.release_ended().await {
            tracing::error!(error = %format!("{e:#}"), "giving back the tenants whose pass ended failed; retrying at the next round");
        }
        let mut total = 0;
        let mut idle_streak = 0u32;
        loop {
            let free = self.slots.available_permits();
            if free == 0 || self.tracker.is_closed() {
                return Ok(total);
            }
            let limit = if idle_streak == 0 {
                free
            } else {
                free.saturating_mul(1 << idle_streak.min(16))
                    .clamp(free, IDLE_CLAIM_MAX.max(free))
            };
            let mut conn = self.deps.db().await?;
            let claimed = queue::claim_due(
                &mut conn,
                &self.deps.owner,
                self.deps.lease_secs(),
                i64::try_from(limit).unwrap_or(i64::MAX),
            )
            .await
            .context("claiming due tenants")?;
            let count = claimed.len();
            total += count;
            let (idle, mut busy): (Vec<Claim>, Vec<Claim>) = claimed
                .into_iter()
                .partition(|claim| worker::is_idle(&self.deps, claim));
            let mut give_back: Vec<Release> = idle
                .iter()
                .map(|claim| Release {
                    context_id: claim.tenant.context_id.clone(),
                    next_attempt_at: None,
                    so_state: None,
                    so_state_checked_at: None,
                })
                .collect();
            if busy.len() > free {
                // Due still: claimed by the next round, when slots are free.
                let now = Utc::now();
                give_back.extend(busy.split_off(free).into_iter().map(|claim| Release {
                    context_id: claim.tenant.context_id,
                    next_attempt_at: Some(now),
                    so_state: None,
                    so_state_checked_at: None,
                }));
            }
            if !give_back.is_empty() {
                match queue::release_many(&mut conn, &give_back, &self.deps.owner).await {
                    Ok(released) => tracing::debug!(
                        released,
                        idle = idle.len(),
                        "tenants with a valid ticket and no work given back"
                    ),
                    // Their leases run out by themselves; the tenants are then claimed again.
                    Err(e) => {
                        tracing::error!(error = %e, tenants = give_back.len(), "cannot give back claimed tenants; their leases expire by themselves")
                    }
                }
            }
            drop(conn);
            let whole_claim_idle = busy.is_empty();
            for claim in busy {
                self.spawn(claim).await?;
            }
            if count < limit {
                return Ok(total);
            }
            idle_streak = if whole_claim_idle { idle_streak + 1 } else { 0 };
        }
    }

    /// Starts the pass of one claimed tenant under a concurrency slot.
    async fn spawn(&self, claim: Claim) -> anyhow::Result<()> {
        let permit = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .context("the concurrency limit was closed")?;
        let deps = Context {
            running: Arc::default(),
            ..self.deps.clone()
        };
        let abort = self.abort.clone();
        let finished = Arc::clone(&self.finished);
        let ended = Arc::clone(&self.ended);
        let span = tracing::info_span!("tenant", tenant = %claim.tenant.context_id);
        self.tracker.spawn(
            async move {
                if let Some(release) = run_tenant(&deps, claim, abort).await {
                    ended
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(release);
                }
                drop(permit);
                finished.notify_one();
            }
            .instrument(span),
        );
        Ok(())
    }

    async fn publish_states(&self) {
        let Ok(mut conn) = self.deps.db().await else {
            return;
        };
        if let Ok(counts) = tenants::count_by_state(&mut conn).await {
            // Every state gets a value, so a state whose last tenant left it reads 0, not its old count.
            for state in TenantState::ALL {
                let count = counts
                    .iter()
                    .find(|(name, _)| name == state.as_str())
                    .map_or(0, |(_, count)| *count);
                metrics::gauge!("partner_tenants", "state" => state.as_str()).set(count as f64);
            }
        }
        if let Ok(flagged) = tenants::count_needing_attention(&mut conn).await {
            metrics::gauge!("partner_tenants_needs_attention").set(flagged as f64);
        }
        if let Ok(age) = shared::db::work::oldest_queued_age_secs(&mut conn).await {
            metrics::gauge!("partner_work_oldest_queued_seconds").set(age);
        }
    }
}

/// Exports every counter with a known label set at 0 from the start, so rates and ratios (and the shipped
/// dashboard and alerts) see a series before its first event.
fn register_metrics(circuit: &Circuit) {
    // The circuit may have been built before the recorder was installed: say its state now.
    let open = if circuit.open_reason().is_some() {
        1.0
    } else {
        0.0
    };
    metrics::gauge!("partner_service_circuit_open").set(open);
    use shared::metrics::register_counters;
    register_counters(
        "partner_service_exchanges_total",
        "outcome",
        &worker::EXCHANGE_OUTCOMES,
    );
    register_counters(
        "partner_service_attention_total",
        "kind",
        &worker::ATTENTION_KINDS,
    );
    register_counters(
        "",
        "",
        &[
            "partner_service_ticket_reuse_total",
            "partner_service_circuit_opened_total",
            "partner_service_claim_rounds_total",
        ],
    );
}

/// How a tenant's task ended.
enum Ended {
    Processed(anyhow::Result<Option<DateTime<Utc>>>),
    TimedOut,
    LeaseLost,
    Aborted,
}

/// One tenant: its pass under a timeout, its lease renewed meanwhile. Returns how to give the lease
/// back (the daemon releases the ended passes together), or `None` when the lease was lost.
async fn run_tenant(deps: &Context, claim: Claim, abort: CancellationToken) -> Option<Release> {
    let timeout = Duration::from_secs(deps.service.tenant_timeout_secs);
    let tenant = &claim.tenant;
    let ended = tokio::select! {
        result = tokio::time::timeout(timeout, worker::process(deps, &claim)) => match result {
            Ok(outcome) => Ended::Processed(outcome),
            Err(_) => Ended::TimedOut,
        },
        () = keep_lease(deps, &tenant.context_id) => Ended::LeaseLost,
        () = abort.cancelled() => Ended::Aborted,
    };
    let next = match ended {
        Ended::Processed(Ok(next)) => next,
        Ended::Processed(Err(error)) => {
            let reason = format!("{error:#}");
            tracing::warn!(error = %reason, "tenant pass failed");
            give_back_running(deps, &tenant.context_id, &reason).await;
            deps.retry_later(tenant, &reason).await.unwrap_or(None)
        }
        Ended::TimedOut => {
            let reason = format!(
                "the tenant's pass took longer than {} s (service.tenant_timeout_secs)",
                timeout.as_secs()
            );
            tracing::warn!(reason, "tenant pass timed out");
            give_back_running(deps, &tenant.context_id, &reason).await;
            deps.retry_later(tenant, &reason).await.unwrap_or(None)
        }
        Ended::LeaseLost => {
            tracing::warn!(
                "lease lost (another instance took the tenant over); stopping its work here"
            );
            return None;
        }
        Ended::Aborted => {
            give_back_running(
                deps,
                &tenant.context_id,
                "the service stopped before it finished",
            )
            .await;
            Some(Utc::now())
        }
    };
    let running = deps
        .running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    let (so_state, so_state_checked_at) = running.unzip();
    Some(Release {
        context_id: tenant.context_id.clone(),
        next_attempt_at: next,
        so_state,
        so_state_checked_at,
    })
}

/// Renews the tenant's lease a few times per lease period; returns only when the lease is lost.
async fn keep_lease(deps: &Context, context_id: &str) {
    let every = Duration::from_millis(deps.service.lease_secs.saturating_mul(1000) / 3)
        .max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(every).await;
        let renewed = match deps.db().await {
            Ok(mut conn) => {
                queue::renew_lease(&mut conn, context_id, &deps.owner, deps.lease_secs()).await
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "cannot renew the lease now");
                continue;
            }
        };
        match renewed {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => tracing::warn!(error = %e, "cannot renew the lease now"),
        }
    }
}

/// Puts the tenant's running requests back in the queue (their attempts count stays, so the next
/// attempt looks the company up before creating it).
async fn give_back_running(deps: &Context, context_id: &str, reason: &str) {
    let result = async {
        let mut conn = deps.db().await?;
        for request in work::open_for_tenant(&mut conn, context_id).await? {
            if request.state == WorkState::Running {
                work::requeue(&mut conn, request.id, &deps.owner, Some(reason)).await?;
            }
        }
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = result {
        tracing::error!(error = %format!("{e:#}"), "cannot requeue the tenant's running work");
    }
}

/// `{hostname}-{pid}-{8 random hex}`: unique per process, readable in `tenants.lease_owner`.
fn instance_id() -> String {
    let host = host_name();
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &random[..8])
}

/// `partner-service run [--once]`: the daemon with its metrics endpoint, until `cancel` fires.
pub async fn run(settings: Settings, once: bool, cancel: CancellationToken) -> anyhow::Result<()> {
    let daemon = Daemon::build(&settings)?;
    db::ping(&daemon.deps.pool).await.context(
        "connecting to the database (is it running, and migrated with `partner-service migrate`?)",
    )?;
    tracing::info!(database = %shared::config::redact_url(settings.database.url()), owner = daemon.owner(), "connected to the database");
    if once {
        return daemon.run_once().await;
    }
    let (metrics, metrics_port) = metrics_server::start(
        &settings.service.metrics_bind,
        shared::metrics::handle(),
        daemon.deps.pool.clone(),
        daemon.circuit(),
    )?;
    tracing::info!(port = metrics_port, "metrics and health endpoint listening");
    let result = daemon.run(cancel).await;
    metrics.stop(true).await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_are_unique_per_call() {
        let (a, b) = (instance_id(), instance_id());
        assert_ne!(a, b);
        assert!(a.contains(&format!("-{}-", std::process::id())), "{a}");
    }
}
