//! The mission's flow in headless Chromium, against real processes: sign in as a tenant administrator
//! through the simulator, create a company with the login user and one with the system user (carried out
//! by partner-service), and see both results on the page. Screenshots: target/e2e-logs/browser/screenshots.
//!
//! Needs Debian's `chromium` and `tests/browser/node_modules` (`npm ci --prefix tests/browser`);
//! `.ci/run` and `scripts/test` install both.

use std::path::Path;
use std::process::Command;

use e2e::{Stack, repo_root};
use testkit::TestDatabase;

/// Headless Chromium's path (`CHROMIUM`, else Debian's); panics, saying what to install, unless it and
/// playwright-core are there.
pub fn chromium() -> String {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "headless Chromium is needed: apt-get install chromium (or set CHROMIUM)"
    );
    assert!(
        repo_root()
            .join("tests/browser/node_modules/playwright-core")
            .exists(),
        "playwright-core is needed: npm ci --prefix tests/browser"
    );
    chromium
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_and_create_companies_in_headless_chromium() {
    // Without Chromium, fail before the stack starts.
    super::browser::chromium();
    let database = TestDatabase::create().await.unwrap();
    let mut stack = Stack::start("browser", database.url()).await;
    let screenshots = stack.log_dir.join("screenshots");
    let stdout = run_flow(
        &stack,
        "flow.mjs",
        &screenshots,
        &[("ADMIN_NAME", "Ada Admin")],
    );
    assert!(stdout.contains("ok: done: company id"), "{stdout}");
    assert_screenshots(
        &screenshots,
        &[
            "1-superid-sign-in",
            "2-home-signed-in",
            "3-created-with-login-user",
            "5-created-with-system-user",
        ],
    );
    let statuses = stack.stop();
    assert!(statuses.iter().all(|s| s.success()), "{statuses:?}");
}

/// Runs `tests/browser/{script}` in node against the stack's partner-web with `env` set, and returns what
/// it printed; fails the test with its output and the stack's log folder when it fails.
pub fn run_flow(stack: &Stack, script: &str, screenshots: &Path, env: &[(&str, &str)]) -> String {
    let output = Command::new("node")
        .arg(repo_root().join("tests/browser").join(script))
        .env("WEB_URL", &stack.web_url)
        .env("SCREENSHOT_DIR", screenshots)
        .env("CHROMIUM", chromium())
        .envs(env.iter().copied())
        .output()
        .expect("running node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{stderr}\nlogs: {}",
        stack.log_dir.display()
    );
    stdout.into_owned()
}

/// Every named screenshot was written and is not empty.
pub fn assert_screenshots(screenshots: &Path, names: &[&str]) {
    for shot in names {
        let path = screenshots.join(format!("{shot}.png"));
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(size > 1000, "{} missing or empty", path.display());
    }
}
