//! Helpers for end-to-end tests: the workspace's binaries as real processes.

use std::net::TcpListener;
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

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// A port free at the time of asking.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// A command for a binary with a clean `PARTNER_*` environment and the given variables.
pub fn command(name: &str, env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(binary(name));
    for (key, _) in std::env::vars() {
        if key.starts_with("PARTNER_") || key == "DATABASE_URL" {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(repo_root());
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

/// Local-only secrets for test processes.
pub fn test_secrets() -> Vec<(&'static str, String)> {
    vec![
        (
            "PARTNER_ENCRYPTION__KEY",
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff".to_owned(),
        ),
        ("PARTNER_WEB__SESSION_KEY", "ab".repeat(64)),
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
