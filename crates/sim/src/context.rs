//! Everything the handlers share: the configuration as resolved at start, the clock and the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::TimeDelta;
use rsa::PublicKey;

use crate::clock::Clock;
use crate::config::{SimConfig, SuperIdConfig, UserConfig};
use crate::keys::SigningKey;
use crate::store::{Store, Tenant};

/// A registered application with its partner public key parsed.
#[derive(Debug, Clone)]
pub struct Application {
    pub client_id: String,
    pub client_secret: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub public_key: PublicKey,
    pub state_change_url: Option<String>,
}

/// An API host and the URL it is reached at.
#[derive(Debug, Clone)]
pub struct ApiHost {
    pub name: String,
    pub url: String,
}

/// SuperID as resolved at start: where browsers reach it, and how far its answers reach in time.
#[derive(Debug, Clone)]
pub struct SuperId {
    /// Browser-facing base URL without a trailing slash; also the id_token issuer.
    pub url: String,
    /// Accepted distance between a signed system user token's timestamp and the sim clock.
    pub timestamp_window: TimeDelta,
    /// How long a state API answer stays valid (its `ValidUntil` is now plus this).
    pub state_valid_for: TimeDelta,
}

impl SuperId {
    fn new(url: String, config: &SuperIdConfig) -> Self {
        Self {
            url,
            timestamp_window: seconds(config.timestamp_window_secs),
            state_valid_for: seconds(config.state_valid_for_secs),
        }
    }
}

/// A configured number of seconds; one too large for a duration is the largest duration.
fn seconds(secs: u64) -> TimeDelta {
    i64::try_from(secs)
        .ok()
        .and_then(TimeDelta::try_seconds)
        .unwrap_or(TimeDelta::MAX)
}

#[derive(Debug)]
pub struct SimContext {
    pub superid: SuperId,
    pub hosts: Vec<ApiHost>,
    pub applications: Vec<Application>,
    pub users: Vec<UserConfig>,
    pub clock: Clock,
    /// Client for state-change notifications.
    pub http: reqwest::Client,
    store: Mutex<Store>,
    initial: Store,
}

impl SimContext {
    pub fn new(
        config: &SimConfig,
        superid_url: String,
        hosts: Vec<ApiHost>,
        applications: Vec<Application>,
        key: SigningKey,
    ) -> Result<Self, reqwest::Error> {
        let names: HashMap<String, String> = applications
            .iter()
            .map(|a| (a.client_id.clone(), a.name.clone()))
            .collect();
        let initial = Store::new(config, &names, key);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        Ok(Self {
            superid: SuperId::new(superid_url, &config.superid),
            hosts,
            applications,
            users: config.users.clone(),
            clock: Clock::default(),
            http,
            store: Mutex::new(initial.clone()),
            initial,
        })
    }

    /// Locks the store. A panic elsewhere while holding the lock does not make the state unusable.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Back to the state at start: tenants, grants and system tokens, keys, no faults, no records,
    /// the clock at real time.
    pub fn reset(&self) {
        *self.store() = self.initial.clone();
        self.clock.set_offset(0);
    }

    /// In the global `rotate_keys_withdrawn` mode, the first exchange answer or id_token signed after the
    /// mode was set is signed with a new key and the old one leaves the JWKS, as when SuperID rotates and
    /// withdraws its key after a caller last fetched the JWKS. Later answers keep the new key.
    pub async fn rotate_for_mode(&self) {
        let due =
            |store: &Store| store.modes.global.signing.rotate_keys_withdrawn && !store.mode_rotated;
        if !due(&self.store()) {
            return;
        }
        let generated = tokio::task::spawn_blocking(SigningKey::generate)
            .await
            .map_err(|e| e.to_string())
            .and_then(|key| key.map_err(|e| e.to_string()));
        let key = match generated {
            Ok(key) => key,
            Err(error) => {
                tracing::warn!(%error, "no new signing key for rotate_keys_withdrawn");
                return;
            }
        };
        let mut store = self.store();
        // Another answer may have rotated while this key was generated.
        if due(&store) {
            store.signing_key = Arc::new(key);
            store.old_keys.clear();
            store.mode_rotated = true;
        }
    }

    pub fn application(&self, client_id: &str) -> Option<&Application> {
        self.applications.iter().find(|a| a.client_id == client_id)
    }

    pub fn application_by_secret(&self, secret: &str) -> Option<&Application> {
        self.applications.iter().find(|a| a.client_secret == secret)
    }

    pub fn user(&self, username: &str) -> Option<&UserConfig> {
        self.users.iter().find(|u| u.username == username)
    }

    pub fn host_url(&self, name: &str) -> Option<&str> {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .map(|h| h.url.as_str())
    }

    /// `{host url}/{ctx}`: the tenant's `Endpoint`.
    pub fn tenant_endpoint(&self, tenant: &Tenant) -> String {
        format!(
            "{}/{}",
            self.host_url(&tenant.host).unwrap_or_default(),
            tenant.context_id
        )
    }
}
