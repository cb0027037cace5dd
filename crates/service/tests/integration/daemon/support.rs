//! A world for the daemon: its own database, an in-process simulator, Settings pointing at both, the
//! cipher, and tenants seeded with the simulator's real system user tokens (`testkit::seed::from_sim`).

use std::collections::BTreeMap;
use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use service::daemon::Daemon;
use shared::config::{Settings, Sources};
use shared::crypto::at_rest::Cipher;
use shared::crypto::at_rest::SecretKind;
use shared::crypto::partner_key::PartnerKey;
use shared::db::models::{StoredTicket, Tenant, WorkRequest};
use shared::db::schema::{tenants, tickets as ticket_rows, work_requests};
use shared::db::{self, Pool, tenants as tenant_db, tickets, work};
use shared::domain::ContextId;
use superoffice_sim::store::CompanyRecord;
use superoffice_sim::{
    RunningSim, SimConfig, Simulator, TEST_CLIENT_ID, TEST_CLIENT_SECRET, TenantState,
};

use testkit::{ENCRYPTION_KEY, TestDatabase};

pub struct World {
    /// Dropped with the world: the database goes with it.
    _db: TestDatabase,
    pub sim: RunningSim,
    pub settings: Settings,
    pub cipher: Cipher,
    pub pool: Pool,
    /// The `PARTNER_*` variables the settings came from, to run the built binary against the same world.
    pub env: BTreeMap<String, String>,
}

pub async fn world() -> World {
    world_with(|_| {}).await
}

/// A world whose simulator configuration `adjust` may change first.
pub async fn world_with(adjust: impl FnOnce(&mut SimConfig)) -> World {
    let key_file = testkit::partner_key_file().display().to_string();
    let key = PartnerKey::from_file(key_file.as_ref()).unwrap();
    let mut config = SimConfig::for_tests(key.public_key_pem());
    config.superid.signing_key_file = Some(testkit::superid_signing_key_file());
    adjust(&mut config);
    let sim = Simulator::start(config).await.unwrap();
    let db = TestDatabase::create().await.unwrap();
    let env: BTreeMap<String, String> = [
        ("PARTNER_DATABASE__URL", db.url()),
        ("PARTNER_DATABASE__POOL_SIZE", "12"),
        ("PARTNER_SUPEROFFICE__ENVIRONMENT", "custom"),
        ("PARTNER_SUPEROFFICE__SUPERID_URL", sim.superid_url()),
        ("PARTNER_SUPEROFFICE__CLIENT_ID", TEST_CLIENT_ID),
        ("PARTNER_SUPEROFFICE__CLIENT_SECRET", TEST_CLIENT_SECRET),
        ("PARTNER_SUPEROFFICE__PRIVATE_KEY_FILE", &key_file),
        ("PARTNER_SUPEROFFICE__HTTP_TIMEOUT_SECS", "2"),
        ("PARTNER_SUPEROFFICE__TENANT_RATE_LIMIT_PER_SEC", "50"),
        ("PARTNER_ENCRYPTION__KEY", ENCRYPTION_KEY),
        ("PARTNER_WEB__PUBLIC_URL", "http://127.0.0.1:8080"),
        ("PARTNER_SERVICE__POLL_INTERVAL_SECS", "1"),
        ("PARTNER_SERVICE__METRICS_BIND", "127.0.0.1:0"),
        ("PARTNER_SERVICE__CONCURRENCY", "8"),
        ("PARTNER_SERVICE__LEASE_SECS", "10"),
        ("PARTNER_SERVICE__SHUTDOWN_GRACE_SECS", "1"),
        ("PARTNER_SERVICE__TENANT_TIMEOUT_SECS", "15"),
        ("PARTNER_SERVICE__BACKOFF_BASE_SECS", "1"),
        ("PARTNER_SERVICE__BACKOFF_MAX_SECS", "2"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let mut settings = Settings::from_sources(&Sources {
        file: None,
        env: env.clone(),
    })
    .unwrap();
    // Shorter than the configuration allows, so take-overs happen within a test.
    settings.service.lease_secs = 2;
    let cipher = Cipher::from_settings(&settings.encryption).unwrap();
    let pool = db.pool().unwrap();
    World {
        _db: db,
        sim,
        settings,
        cipher,
        pool,
        env,
    }
}

/// A world with the simulator tenant `ctx` seeded, and a daemon.
pub async fn seeded(ctx: &str) -> (World, Daemon) {
    let w = world().await;
    w.seed(ctx).await;
    let daemon = w.daemon();
    (w, daemon)
}

impl World {
    /// Queues a company for `ctx` and lets `daemon` make one pass; returns the request as queued.
    pub async fn pass(&self, daemon: &Daemon, ctx: &str, name: &str) -> WorkRequest {
        let request = self.enqueue(ctx, name).await;
        daemon.run_once().await.unwrap();
        request
    }

    pub fn daemon(&self) -> Daemon {
        Daemon::build(&self.settings).unwrap()
    }

    pub async fn conn(&self) -> db::Connection {
        self.pool.get().await.unwrap()
    }

    /// Sets the tenant's state in SuperOffice's state API (the simulator's).
    pub async fn set_so_state(&self, ctx: &str, state: TenantState) {
        self.sim.admin().set_state(ctx, state).await.unwrap();
    }

    /// Captures the simulator tenant's current system user token, as partner-web does on sign-in.
    pub async fn seed(&self, ctx: &str) {
        let view = self.sim.admin().tenant(ctx).unwrap();
        testkit::seed::from_sim(&view)
            .insert(&mut *self.conn().await)
            .await;
    }

    pub async fn enqueue(&self, ctx: &str, name: &str) -> WorkRequest {
        work::enqueue_create_company(&mut *self.conn().await, ctx, name, "user@test")
            .await
            .unwrap()
    }

    pub async fn request(&self, id: i64) -> WorkRequest {
        work_requests::table
            .find(id)
            .select(WorkRequest::as_select())
            .first(&mut *self.conn().await)
            .await
            .unwrap()
    }

    pub async fn tenant(&self, ctx: &str) -> Option<Tenant> {
        tenant_db::find(&mut *self.conn().await, ctx).await.unwrap()
    }

    pub async fn ticket(&self, ctx: &str) -> Option<StoredTicket> {
        tickets::find(&mut *self.conn().await, ctx).await.unwrap()
    }

    /// Makes the tenant due now (instead of waiting for its backoff).
    pub async fn due_now(&self, ctx: &str) {
        tenant_db::schedule_now(&mut *self.conn().await, ctx)
            .await
            .unwrap();
    }

    /// Exchanges the simulator answered for the tenant.
    pub fn exchanges(&self, ctx: &str) -> usize {
        self.sim
            .admin()
            .records()
            .records
            .superid
            .exchanges
            .iter()
            .filter(|e| e.context_identifier == ctx)
            .count()
    }

    /// Replaces the tenant's stored ticket with one SuperOffice refuses (403), sealed as a real one.
    pub async fn store_refused_ticket(&self, ctx: &str) {
        let id = ContextId::parse(ctx).unwrap();
        let bogus = self
            .cipher
            .encrypt(&id, SecretKind::Ticket, b"7T:bm90LWEtdGlja2V0")
            .unwrap();
        diesel::update(ticket_rows::table.find(ctx))
            .set(ticket_rows::ciphertext.eq(bogus.bytes))
            .execute(&mut *self.conn().await)
            .await
            .unwrap();
    }

    pub fn tickets_issued(&self, ctx: &str) -> u64 {
        self.sim.admin().tenant(ctx).unwrap().tickets_issued
    }

    pub fn companies(&self, ctx: &str) -> Vec<CompanyRecord> {
        self.sim
            .admin()
            .records()
            .records
            .companies
            .into_iter()
            .filter(|c| c.context_id == ctx)
            .collect()
    }

    /// The audit trail of a tenant as (action, detail) pairs, oldest first.
    pub async fn audit(&self, ctx: &str) -> Vec<(String, serde_json::Value)> {
        let mut events = shared::db::audit::recent_for_tenant(&mut *self.conn().await, ctx, 1000)
            .await
            .unwrap();
        events.reverse();
        events
            .into_iter()
            .map(|e| (e.action.to_string(), e.detail))
            .collect()
    }

    /// Tenants whose lease `owner` holds.
    pub async fn leased_by(&self, owner: &str) -> i64 {
        tenants::table
            .filter(tenants::lease_owner.eq(owner))
            .count()
            .get_result(&mut *self.conn().await)
            .await
            .unwrap()
    }

    /// Waits until `check` holds, up to `limit`.
    pub async fn eventually<F, Fut>(&self, limit: Duration, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + limit;
        while !check().await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "condition not met within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
