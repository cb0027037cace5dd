//! partner-web in-process on a random port over its own migrated database, with or without the simulator:
//! `TestApp::builder().with_sim().with("PARTNER_WEB__…", "…").start().await`.

use std::collections::BTreeMap;

use shared::config::{Settings, Sources};
use shared::db::Pool;
use superoffice_sim::{RunningSim, SimConfig, Simulator};
use web::Application;

use crate::user::{WebUser, cookie_client};
use crate::{CLIENT_ID, CLIENT_SECRET, ENCRYPTION_KEY, SESSION_KEY, TestDatabase, free_port};

/// A running partner-web (and simulator, when built `with_sim`).
pub struct TestApp {
    /// `http://127.0.0.1:{port}`
    pub address: String,
    pub port: u16,
    /// The port of `/metrics` (`web.metrics_bind`, a free loopback port in tests).
    pub metrics_port: u16,
    pub pool: Pool,
    /// Keeps cookies, does not follow redirects; the client of [`TestApp::user`].
    pub client: reqwest::Client,
    /// The test's own database; dropped (and removed) with the app.
    pub database: TestDatabase,
    /// The configuration the app was built from (as `PARTNER_*` variables).
    pub env: BTreeMap<String, String>,
    sim: Option<RunningSim>,
}

type SimAdjust = Box<dyn FnOnce(&mut SimConfig) + Send>;

/// How to build a [`TestApp`].
#[derive(Default)]
pub struct TestAppBuilder {
    overrides: Vec<(String, String)>,
    sim: bool,
    notify: bool,
    adjust: Vec<SimAdjust>,
}

impl TestAppBuilder {
    /// A configuration override as a `PARTNER_<SECTION>__<KEY>` variable; it wins over the test defaults.
    /// The database URL is always the test's own.
    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.overrides.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Several overrides, as [`TestAppBuilder::with`].
    pub fn with_all(mut self, overrides: &[(&str, &str)]) -> Self {
        for (key, value) in overrides {
            self = self.with(key, value);
        }
        self
    }

    /// The in-process simulator (`SimConfig::for_tests` with the kit's keys), started first; partner-web on
    /// a reserved port is registered with it as the redirect URI and points at its SuperID.
    pub fn with_sim(mut self) -> Self {
        self.sim = true;
        self
    }

    /// As `with_sim`, the simulator's configuration changed by `adjust` first.
    pub fn sim_config(mut self, adjust: impl FnOnce(&mut SimConfig) + Send + 'static) -> Self {
        self.sim = true;
        self.adjust.push(Box::new(adjust));
        self
    }

    /// As `with_sim`, the simulator delivering state-change notifications to partner-web.
    pub fn notify_state_changes(mut self) -> Self {
        self.sim = true;
        self.notify = true;
        self
    }

    pub async fn start(self) -> TestApp {
        let database = TestDatabase::create()
            .await
            .unwrap_or_else(|e| panic!("creating the test database: {e}"));
        let mut env: BTreeMap<String, String> = [
            ("PARTNER_SUPEROFFICE__ENVIRONMENT", "custom"),
            // SuperID at an address nobody listens on, unless the simulator runs.
            ("PARTNER_SUPEROFFICE__SUPERID_URL", "http://127.0.0.1:9"),
            ("PARTNER_SUPEROFFICE__CLIENT_ID", CLIENT_ID),
            ("PARTNER_SUPEROFFICE__CLIENT_SECRET", CLIENT_SECRET),
            ("PARTNER_SUPEROFFICE__HTTP_TIMEOUT_SECS", "5"),
            ("PARTNER_ENCRYPTION__KEY", ENCRYPTION_KEY),
            ("PARTNER_WEB__SESSION_KEY", SESSION_KEY),
            ("PARTNER_WEB__SECURE_COOKIES", "false"),
            ("PARTNER_WEB__BIND", "127.0.0.1:0"),
            ("PARTNER_WEB__METRICS_BIND", "127.0.0.1:0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let sim = if self.sim {
            let port = free_port();
            let public_url = format!("http://127.0.0.1:{port}");
            let mut config = SimConfig::for_tests(&crate::partner_public_key_pem());
            config.superid.signing_key_file = Some(crate::superid_signing_key_file());
            config.applications[0].redirect_uris = vec![format!("{public_url}/callback")];
            if self.notify {
                config.applications[0].state_change_url =
                    Some(format!("{public_url}/superoffice/state-change"));
            }
            for adjust in self.adjust {
                adjust(&mut config);
            }
            let sim = Simulator::start(config)
                .await
                .unwrap_or_else(|e| panic!("starting the simulator: {e}"));
            let superid = sim.superid_url().trim_end_matches('/').to_owned();
            env.insert("PARTNER_SUPEROFFICE__SUPERID_URL".into(), superid);
            env.insert("PARTNER_WEB__BIND".into(), format!("127.0.0.1:{port}"));
            env.insert("PARTNER_WEB__PUBLIC_URL".into(), public_url);
            Some(sim)
        } else {
            None
        };
        env.extend(self.overrides);
        env.insert("PARTNER_DATABASE__URL".into(), database.url().to_owned());
        let (port, metrics_port) = run(&env).await;
        TestApp {
            address: format!("http://127.0.0.1:{port}"),
            port,
            metrics_port,
            pool: database
                .pool()
                .unwrap_or_else(|e| panic!("a pool on the test database: {e}")),
            client: cookie_client(),
            database,
            env,
            sim,
        }
    }
}

/// Builds partner-web from `env` and runs it in the background; returns its port and its metrics port.
async fn run(env: &BTreeMap<String, String>) -> (u16, u16) {
    let sources = Sources {
        file: None,
        env: env.clone(),
    };
    let settings =
        Settings::from_sources(&sources).unwrap_or_else(|e| panic!("the test configuration: {e}"));
    let app = Application::build(settings)
        .await
        .unwrap_or_else(|e| panic!("building partner-web: {e}"));
    let ports = (app.port(), app.metrics_port());
    tokio::spawn(app.run_until_stopped());
    ports
}

impl TestApp {
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder::default()
    }

    /// partner-web with the test defaults: environment `custom` with SuperID at an address nobody listens on.
    pub async fn spawn() -> Self {
        Self::builder().start().await
    }

    /// partner-web with the simulator and configuration overrides: `builder().with_sim().with_all(…)`.
    pub async fn with_sim(overrides: &[(&str, &str)]) -> Self {
        Self::builder().with_sim().with_all(overrides).start().await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// The user of [`TestApp::client`] (the same cookies).
    pub fn user(&self) -> WebUser {
        WebUser {
            client: self.client.clone(),
            web_url: self.address.clone(),
        }
    }

    /// The simulator; panics unless the app was built `with_sim`.
    pub fn sim(&self) -> &RunningSim {
        self.sim
            .as_ref()
            .unwrap_or_else(|| panic!("the app was built without the simulator"))
    }

    /// Another partner-web instance over the same database and configuration, on its own port;
    /// returns its base URL.
    pub async fn another_instance(&self) -> String {
        let mut env = self.env.clone();
        env.insert("PARTNER_WEB__BIND".into(), "127.0.0.1:0".into());
        let (port, _) = run(&env).await;
        format!("http://127.0.0.1:{port}")
    }

    /// See [`WebUser::get`].
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.user().get(path).await
    }

    /// See [`WebUser::follow`].
    pub async fn follow(&self, url: &str) -> reqwest::Response {
        self.user().follow(url).await
    }

    /// See [`WebUser::post`].
    pub async fn post(&self, path: &str, csrf: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.user().post(path, csrf, fields).await
    }

    /// See [`WebUser::authorize_as`].
    pub async fn authorize_as(&self, username: &str) -> String {
        self.user().authorize_as(username).await
    }

    /// See [`WebUser::sign_in_as`].
    pub async fn sign_in_as(&self, username: &str) -> reqwest::Response {
        self.user().sign_in_as(username).await
    }

    /// The home page's HTML.
    pub async fn home(&self) -> String {
        self.user().home().await
    }

    /// The CSRF token of the signed-in session.
    pub async fn csrf(&self) -> String {
        self.user().csrf().await
    }
}
