//! `spawn_app()`: partner-web on a random port over its own migrated database, and a client that keeps cookies.

use std::collections::BTreeMap;
use std::time::Duration;

use shared::config::{Settings, Sources};
use shared::db::Pool;
use shared::db::testing::TestDatabase;
use web::Application;

pub const CLIENT_ID: &str = superoffice_sim::TEST_CLIENT_ID;
pub const CLIENT_SECRET: &str = superoffice_sim::TEST_CLIENT_SECRET;
/// `encryption.key` and `web.session_key` of every test app: fixed, public, for tests only.
pub const ENCRYPTION_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
pub const SESSION_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\
                               202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";

/// A running partner-web.
pub struct TestApp {
    /// `http://127.0.0.1:{port}`
    pub address: String,
    pub port: u16,
    /// The port of `/metrics` (`web.metrics_bind`, a free loopback port in tests).
    pub metrics_port: u16,
    pub pool: Pool,
    /// Keeps cookies, does not follow redirects.
    pub client: reqwest::Client,
    /// The test's own database; dropped (and removed) with the app.
    pub database: TestDatabase,
    /// The configuration the app was built from (as `PARTNER_*` variables).
    pub env: BTreeMap<String, String>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Another partner-web instance over the same database and configuration, on its own port;
    /// returns its base URL.
    pub async fn another_instance(&self) -> String {
        let mut env = self.env.clone();
        env.insert("PARTNER_WEB__BIND".into(), "127.0.0.1:0".into());
        let settings = Settings::from_sources(&Sources { file: None, env }).unwrap();
        let app = Application::build(settings).await.unwrap();
        let port = app.port();
        tokio::spawn(app.run_until_stopped());
        format!("http://127.0.0.1:{port}")
    }
}

/// partner-web with the test defaults: environment `custom` with SuperID at an address nobody listens on.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// partner-web with configuration overrides, as `PARTNER_<SECTION>__<KEY>` variables (they win over the test
/// defaults). The database URL and `web.bind` are always the test's own.
pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    let database = TestDatabase::create().await.unwrap();
    let mut env: BTreeMap<String, String> = [
        ("PARTNER_SUPEROFFICE__ENVIRONMENT", "custom"),
        ("PARTNER_SUPEROFFICE__SUPERID_URL", "http://127.0.0.1:9"),
        ("PARTNER_SUPEROFFICE__CLIENT_ID", CLIENT_ID),
        ("PARTNER_SUPEROFFICE__CLIENT_SECRET", CLIENT_SECRET),
        ("PARTNER_SUPEROFFICE__HTTP_TIMEOUT_SECS", "5"),
        ("PARTNER_ENCRYPTION__KEY", ENCRYPTION_KEY),
        ("PARTNER_WEB__SESSION_KEY", SESSION_KEY),
        ("PARTNER_WEB__SECURE_COOKIES", "false"),
    ]
    .into_iter()
    .chain(overrides.iter().copied())
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    env.insert("PARTNER_DATABASE__URL".into(), database.url().to_owned());
    env.entry("PARTNER_WEB__BIND".into())
        .or_insert_with(|| "127.0.0.1:0".into());
    env.entry("PARTNER_WEB__METRICS_BIND".into())
        .or_insert_with(|| "127.0.0.1:0".into());
    let settings = Settings::from_sources(&Sources {
        file: None,
        env: env.clone(),
    })
    .unwrap();
    let app = Application::build(settings).await.unwrap();
    let port = app.port();
    let metrics_port = app.metrics_port();
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        metrics_port,
        pool: database.pool().unwrap(),
        client,
        database,
        env,
    }
}

/// A port free at the time of asking, for a server that must be named before it starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The partner key the simulator knows for the test application (a public SuperOffice sample key).
pub fn partner_public_key_pem() -> String {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../sim/tests/data/service-console-public-key.pem");
    std::fs::read_to_string(path).unwrap()
}

/// partner-web signed in through a real (in-process) simulator.
pub struct SignInApp {
    pub app: TestApp,
    pub sim: superoffice_sim::RunningSim,
}

/// The simulator, then partner-web on a reserved port registered with it as the redirect URI.
pub async fn spawn_app_with_sim() -> SignInApp {
    spawn_app_with_sim_and(&[]).await
}

/// As `spawn_app_with_sim`, with configuration overrides for partner-web.
pub async fn spawn_app_with_sim_and(overrides: &[(&str, &str)]) -> SignInApp {
    let port = free_port();
    let public_url = format!("http://127.0.0.1:{port}");
    let mut config = superoffice_sim::SimConfig::for_tests(&partner_public_key_pem());
    config.applications[0].redirect_uris = vec![format!("{public_url}/callback")];
    let sim = superoffice_sim::Simulator::start(config).await.unwrap();
    let superid = sim.superid_url().to_string();
    let bind = format!("127.0.0.1:{port}");
    let mut settings = vec![
        (
            "PARTNER_SUPEROFFICE__SUPERID_URL",
            superid.trim_end_matches('/'),
        ),
        ("PARTNER_WEB__BIND", bind.as_str()),
        ("PARTNER_WEB__PUBLIC_URL", public_url.as_str()),
    ];
    settings.extend_from_slice(overrides);
    let app = spawn_app_with(&settings).await;
    SignInApp { app, sim }
}

/// The `Location` of a redirect.
pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

impl SignInApp {
    /// `GET /login` and the simulator's sign-in form submitted as `username`; returns SuperID's redirect
    /// back to partner-web (`/callback?code=…&state=…`), not yet followed.
    pub async fn authorize_as(&self, username: &str) -> String {
        let login = self
            .app
            .client
            .get(self.app.url("/login"))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status().as_u16(), 303, "GET /login did not redirect");
        let authorize = url::Url::parse(&location(&login)).unwrap();
        let mut form: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
        form.push(("username".into(), username.into()));
        let mut action = authorize.clone();
        action.set_query(None);
        let answer = self
            .app
            .client
            .post(action)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(
            answer.status().as_u16(),
            302,
            "the simulator did not redirect back"
        );
        location(&answer)
    }

    /// A full sign-in as `username`; returns the callback's response (a redirect home on success).
    pub async fn sign_in_as(&self, username: &str) -> reqwest::Response {
        let callback = self.authorize_as(username).await;
        self.app.client.get(callback).send().await.unwrap()
    }

    /// The home page's HTML.
    pub async fn home(&self) -> String {
        self.app
            .client
            .get(self.app.url("/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The CSRF token of the signed-in session, read from the home page's forms.
    pub async fn csrf(&self) -> String {
        let home = self.home().await;
        let marker = "name=\"csrf_token\" value=\"";
        let start = home.find(marker).expect("no CSRF token on the home page") + marker.len();
        home[start..start + 64].to_owned()
    }
}

/// The session cookie a response sets, as `name=value` (to replay it from another client).
pub fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.contains("partner_session="))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

/// A client that keeps no cookies and does not follow redirects: an attacker replaying a cookie.
pub fn bare_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Every row of the tables an attack could touch, as text: compare before and after.
pub async fn snapshot(pool: &Pool) -> String {
    use diesel::sql_types::Text;
    use diesel_async::RunQueryDsl;

    #[derive(diesel::QueryableByName)]
    struct Rows {
        #[diesel(sql_type = Text)]
        rows: String,
    }
    let mut conn = pool.get().await.unwrap();
    let mut all = String::new();
    // A session's "last seen" moves with any request of its owner (at most every few seconds); what an
    // attack must not change is which sessions exist and what they hold.
    for (table, source) in [
        ("tenants", "tenants"),
        ("tickets", "tickets"),
        ("work_requests", "work_requests"),
        (
            "web_sessions",
            "(SELECT id_hash, context_id, subject, state_ciphertext, key_version, created_at \
              FROM web_sessions)",
        ),
        ("audit_events", "audit_events"),
    ] {
        let rows: Rows = diesel::sql_query(format!(
            "SELECT '{table}: ' || coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '(none)') \
             AS rows FROM {source} t"
        ))
        .get_result(&mut conn)
        .await
        .unwrap();
        all.push_str(&rows.rows);
        all.push('\n');
    }
    all
}
