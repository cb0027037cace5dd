//! End-to-end tests' processes: the workspace's binaries as real processes, and the whole stack. Databases,
//! keys, the web user and private Postgres clusters come from `testkit` (re-exported here).

pub mod bench;
pub mod floor;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The path of a workspace binary (`partner-web`, `partner-service`, `superoffice-sim`) in the
/// target directory this test was built into. `scripts/test` builds them before the tests run.
pub fn binary(name: &str) -> PathBuf {
    let mut dir = std::env::current_exe().unwrap_or_default();
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (cargo build --workspace --bins, or scripts/test)",
        path.display()
    );
    path
}

pub use testkit::{
    ENCRYPTION_KEY, PrivateCluster, SESSION_KEY, TestDatabase, WebUser, free_port, location,
    repo_root,
};

/// A command for a binary with a clean `PARTNER_*` environment and the given variables.
pub fn command(name: &str, env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(binary(name));
    for (key, _) in std::env::vars() {
        if key.starts_with("PARTNER_") || key == "DATABASE_URL" {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(repo_root());
    // partner-web's /metrics on a free port unless a test names one: its default port is one per host.
    cmd.env("PARTNER_WEB__METRICS_BIND", "127.0.0.1:0");
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.env("RUST_LOG", "info");
    cmd
}

/// Runs a command to completion.
pub fn run(name: &str, args: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = command(name, env);
    cmd.args(args);
    cmd.output()
        .unwrap_or_else(|e| panic!("running {name}: {e}"))
}

/// A running process, killed when dropped.
pub struct Process {
    pub child: Child,
    name: String,
}

impl Process {
    pub fn spawn(name: &str, args: &[&str], env: &[(&str, String)]) -> Self {
        let mut cmd = command(name, env);
        cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Self {
            child,
            name: name.to_owned(),
        }
    }

    /// Sends SIGTERM and waits for the exit status (at most `limit`).
    pub fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Everything the process wrote to stderr (call after it exited).
    pub fn stderr(&mut self) -> String {
        use std::io::Read;
        let mut text = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = err.read_to_string(&mut text);
        }
        text
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `url` until it answers with a status below 500 or `limit` passes; returns the last status.
pub async fn wait_for_http(url: &str, limit: Duration) -> Option<reqwest::StatusCode> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(response) = client.get(url).timeout(Duration::from_secs(2)).send().await {
            return Some(response.status());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// What a process serves at `{base_url}/metrics` (Prometheus text).
pub async fn scrape_metrics(base_url: &str) -> String {
    let url = format!("{base_url}/metrics");
    let response = reqwest::get(&url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    response
        .text()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// Northwind's administrator in `config/sim.toml`: their sign-in captures the system user token.
pub const NORTHWIND_ADMIN: &str = "admin@northwind.example";

/// Local-only secrets for test processes.
pub fn test_secrets() -> Vec<(&'static str, String)> {
    vec![
        ("PARTNER_ENCRYPTION__KEY", ENCRYPTION_KEY.to_owned()),
        ("PARTNER_WEB__SESSION_KEY", SESSION_KEY.to_owned()),
        ("PARTNER_SUPEROFFICE__CLIENT_ID", "test-client".to_owned()),
        (
            "PARTNER_SUPEROFFICE__CLIENT_SECRET",
            "test-secret".to_owned(),
        ),
        (
            "PARTNER_SUPEROFFICE__PRIVATE_KEY_FILE",
            "config/local/partner-private-key.xml".to_owned(),
        ),
    ]
}

/// The local application's credentials, as registered with the simulator by `stack_sim_config`.
pub const CLIENT_ID: &str = "9d7a1f0c2b3e4d5f6a7b8c9d0e1f2a3b";
pub const CLIENT_SECRET: &str = "local-dev-application-token";

/// The whole system as real processes: superoffice-sim, partner-web and partner-service on free ports,
/// over one test database. Every process's log goes to a file under `target/e2e-logs/<name>/`.
pub struct Stack {
    pub web_url: String,
    pub superid_url: String,
    pub metrics_url: String,
    /// partner-web's `/metrics` (`web.metrics_bind`), apart from `web_url`.
    pub web_metrics_url: String,
    pub log_dir: PathBuf,
    pub session_key: String,
    processes: Vec<Child>,
    service_env: Vec<(&'static str, String)>,
}

impl Stack {
    /// Starts the simulator, the web and the service; waits until each answers.
    pub async fn start(name: &str, database_url: &str) -> Self {
        Self::start_with(name, database_url, &[]).await
    }

    /// As `start`, with configuration overrides (`PARTNER_…` variables) for the web and the service.
    pub async fn start_with(
        name: &str,
        database_url: &str,
        overrides: &[(&'static str, String)],
    ) -> Self {
        let root = repo_root();
        let log_dir = root.join("target/e2e-logs").join(name);
        let _ = std::fs::remove_dir_all(&log_dir);
        std::fs::create_dir_all(&log_dir)
            .unwrap_or_else(|e| panic!("creating {}: {e}", log_dir.display()));
        let StackSimConfig {
            web,
            web_url,
            superid_url,
            path: sim_config,
        } = StackSimConfig::write(&log_dir)
            .unwrap_or_else(|e| panic!("writing the simulator's configuration: {e}"));
        let (metrics, web_metrics) = (free_port(), free_port());
        let session_key = SESSION_KEY.to_owned();
        let mut processes = Vec::new();
        processes.push(spawn_logged(
            "superoffice-sim",
            &["--config", sim_config.to_str().unwrap_or_default()],
            &[],
            &log_dir,
        ));
        let discovery = format!("{superid_url}/login/.well-known/openid-configuration");
        assert_eq!(
            wait_for_http(&discovery, Duration::from_secs(30)).await,
            Some(reqwest::StatusCode::OK),
            "the simulator did not start; see {}",
            log_dir.display()
        );
        let env = vec![
            ("DATABASE_URL", database_url.to_owned()),
            ("PARTNER_SUPEROFFICE__ENVIRONMENT", "custom".to_owned()),
            ("PARTNER_SUPEROFFICE__SUPERID_URL", superid_url.clone()),
            ("PARTNER_SUPEROFFICE__CLIENT_ID", CLIENT_ID.to_owned()),
            (
                "PARTNER_SUPEROFFICE__CLIENT_SECRET",
                CLIENT_SECRET.to_owned(),
            ),
            (
                "PARTNER_SUPEROFFICE__PRIVATE_KEY_FILE",
                root.join("config/local/partner-private-key.xml")
                    .display()
                    .to_string(),
            ),
            ("PARTNER_ENCRYPTION__KEY", ENCRYPTION_KEY.to_owned()),
            ("PARTNER_WEB__SESSION_KEY", session_key.clone()),
            ("PARTNER_WEB__BIND", format!("127.0.0.1:{web}")),
            ("PARTNER_WEB__PUBLIC_URL", web_url.clone()),
            ("PARTNER_WEB__SECURE_COOKIES", "false".to_owned()),
            (
                "PARTNER_WEB__METRICS_BIND",
                format!("127.0.0.1:{web_metrics}"),
            ),
            (
                "PARTNER_SERVICE__METRICS_BIND",
                format!("127.0.0.1:{metrics}"),
            ),
            ("PARTNER_SERVICE__POLL_INTERVAL_SECS", "2".to_owned()),
            (
                "RUST_LOG",
                "debug,actix_server=info,h2=info,hyper=info,reqwest=info,rustls=info".to_owned(),
            ),
        ];
        let mut env = env;
        env.extend(overrides.iter().cloned());
        processes.push(spawn_logged("partner-web", &[], &env, &log_dir));
        processes.push(spawn_logged("partner-service", &["run"], &env, &log_dir));
        let metrics_url = format!("http://127.0.0.1:{metrics}");
        let web_metrics_url = format!("http://127.0.0.1:{web_metrics}");
        for url in [
            format!("{web_url}/healthz"),
            format!("{metrics_url}/healthz"),
            format!("{web_metrics_url}/metrics"),
        ] {
            assert_eq!(
                wait_for_http(&url, Duration::from_secs(30)).await,
                Some(reqwest::StatusCode::OK),
                "{url} did not answer; see {}",
                log_dir.display()
            );
        }
        Self {
            web_url,
            superid_url,
            metrics_url,
            web_metrics_url,
            log_dir,
            session_key,
            processes,
            service_env: env,
        }
    }

    /// A browser on partner-web with Northwind's administrator signed in.
    pub async fn signed_in_admin(&self) -> WebUser {
        let user = WebUser::new(&self.web_url);
        assert_eq!(user.sign_in(NORTHWIND_ADMIN).await, 303, "signing in");
        user
    }

    /// The simulator's admin API: `method` on `/admin{path}` with an optional JSON body; panics unless it
    /// succeeds; returns the answer's JSON (null when there is none).
    pub async fn sim_admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let client = reqwest::Client::new();
        let url = format!("{}/admin{path}", self.superid_url);
        let mut request = client.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("admin {path}: {e}"));
        assert!(
            response.status().is_success(),
            "admin {path}: {}",
            response.status()
        );
        response.json().await.unwrap_or(serde_json::Value::Null)
    }

    /// Kills partner-service with SIGKILL: no shutdown, leases left behind, work cut off mid-flight.
    pub fn kill_service(&mut self) {
        if let Some(child) = self.processes.last_mut() {
            let _ = Command::new("kill")
                .args(["-KILL", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// The process id of the partner-service started last.
    pub fn service_pid(&self) -> Option<u32> {
        self.processes.last().map(Child::id)
    }

    /// Starts another partner-service instance (after `kill_service`, or beside the running one); its log
    /// is `partner-service-<n>`.
    pub async fn start_service(&mut self) {
        let n = self.processes.len();
        let name = format!("partner-service-{n}");
        let out = std::fs::File::create(self.log_dir.join(format!("{name}.out.log")));
        let err = std::fs::File::create(self.log_dir.join(format!("{name}.err.log")));
        let (Ok(out), Ok(err)) = (out, err) else {
            panic!("cannot create log files in {}", self.log_dir.display());
        };
        let metrics = free_port();
        let mut env = self.service_env.clone();
        env.retain(|(k, _)| *k != "PARTNER_SERVICE__METRICS_BIND");
        env.push((
            "PARTNER_SERVICE__METRICS_BIND",
            format!("127.0.0.1:{metrics}"),
        ));
        let mut cmd = command("partner-service", &env);
        if let Some((_, filter)) = env.iter().find(|(k, _)| *k == "RUST_LOG") {
            cmd.env("RUST_LOG", filter);
        }
        cmd.arg("run").stdout(out).stderr(err);
        self.processes.push(
            cmd.spawn()
                .unwrap_or_else(|e| panic!("starting {name}: {e}")),
        );
        let url = format!("http://127.0.0.1:{metrics}/healthz");
        assert_eq!(
            wait_for_http(&url, Duration::from_secs(30)).await,
            Some(reqwest::StatusCode::OK),
            "{name} did not start"
        );
    }

    /// Everything the processes logged so far.
    pub fn logs(&self) -> String {
        let mut all = String::new();
        for name in ["superoffice-sim", "partner-web", "partner-service"] {
            for suffix in ["out", "err"] {
                let path = self.log_dir.join(format!("{name}.{suffix}.log"));
                all.push_str(&std::fs::read_to_string(path).unwrap_or_default());
            }
        }
        all
    }

    /// Stops every process with SIGTERM (the services exit 0 on it).
    pub fn stop(&mut self) -> Vec<std::process::ExitStatus> {
        let mut statuses = Vec::new();
        for child in self.processes.iter_mut().rev() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    statuses.push(status);
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    if let Ok(status) = child.wait() {
                        statuses.push(status);
                    }
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        self.processes.clear();
        statuses
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for child in &mut self.processes {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn_logged(name: &str, args: &[&str], env: &[(&str, String)], dir: &std::path::Path) -> Child {
    let out = std::fs::File::create(dir.join(format!("{name}.out.log")));
    let err = std::fs::File::create(dir.join(format!("{name}.err.log")));
    let (Ok(out), Ok(err)) = (out, err) else {
        panic!("cannot create log files in {}", dir.display());
    };
    let mut cmd = command(name, env);
    if let Some((_, filter)) = env.iter().find(|(k, _)| *k == "RUST_LOG") {
        cmd.env("RUST_LOG", filter);
    }
    cmd.args(args).stdout(out).stderr(err);
    cmd.spawn()
        .unwrap_or_else(|e| panic!("starting {name}: {e}"))
}

/// The simulator's configuration for a stack on free ports, written to `dir/sim.toml`.
pub struct StackSimConfig {
    /// partner-web's port, where SuperID redirects to.
    pub web: u16,
    pub web_url: String,
    pub superid_url: String,
    /// The file written.
    pub path: PathBuf,
}

impl StackSimConfig {
    /// [`stack_sim_config`] on free ports for SuperID, the two API hosts and partner-web.
    pub fn write(dir: &std::path::Path) -> std::io::Result<Self> {
        let (superid, sod2, sod3, web) = (free_port(), free_port(), free_port(), free_port());
        let web_url = format!("http://127.0.0.1:{web}");
        let path = dir.join("sim.toml");
        std::fs::write(
            &path,
            stack_sim_config(&repo_root(), superid, sod2, sod3, &web_url),
        )?;
        Ok(Self {
            web,
            web_url,
            superid_url: format!("http://127.0.0.1:{superid}"),
            path,
        })
    }
}

/// `config/sim.toml`'s application, tenants and users, on the given ports, redirecting to `web_url`.
pub fn stack_sim_config(
    root: &std::path::Path,
    superid: u16,
    sod2: u16,
    sod3: u16,
    web_url: &str,
) -> String {
    let base = std::fs::read_to_string(root.join("config/sim.toml")).unwrap_or_default();
    let key = root.join("config/local/partner-public-key.pem");
    base.replace("127.0.0.1:9100", &format!("127.0.0.1:{superid}"))
        .replace("127.0.0.1:9200", &format!("127.0.0.1:{sod2}"))
        .replace("127.0.0.1:9201", &format!("127.0.0.1:{sod3}"))
        .replace("http://127.0.0.1:8080", web_url)
        .replace(
            "\"local/partner-public-key.pem\"",
            &format!("{:?}", key.display().to_string()),
        )
}
