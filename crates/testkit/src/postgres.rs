//! How tests find Postgres. There is one starter, `scripts/lib.sh`: the kit connects to `DATABASE_URL` (or
//! the local default) and, when nothing answers there, calls its `ensure_postgres`. A test that must stop
//! and restart its database gets a [`PrivateCluster`], started and stopped by the same script.

use std::path::{Path, PathBuf};
use std::process::Command;

use diesel_async::{AsyncConnection, AsyncPgConnection};
use tokio::sync::OnceCell;

use crate::free_port;

/// `scripts/lib.sh`, the one place that knows how to start Postgres.
pub fn lib_sh() -> PathBuf {
    crate::repo_root().join("scripts/lib.sh")
}

/// Runs `function args…` of `scripts/lib.sh` in bash; panics with its output when it fails.
fn lib_sh_call(function: &str, args: &[&str]) {
    let script = format!(". \"$0\" && {function} \"$@\"");
    let output = Command::new("bash")
        .arg("-c")
        .arg(script)
        .arg(lib_sh())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running scripts/lib.sh {function}: {e}"));
    assert!(
        output.status.success(),
        "scripts/lib.sh {function} {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Makes sure a server answers at `admin_url`, once per test binary: `scripts/lib.sh`'s `ensure_postgres`
/// starts one when nothing does.
pub async fn ensure_server(admin_url: &str) {
    static CHECKED: OnceCell<()> = OnceCell::const_new();
    CHECKED
        .get_or_init(|| async {
            if AsyncPgConnection::establish(admin_url).await.is_err() {
                let call = || lib_sh_call("ensure_postgres", &[]);
                tokio::task::spawn_blocking(call)
                    .await
                    .unwrap_or_else(|e| panic!("starting Postgres: {e}"));
            }
        })
        .await;
}

/// A Postgres cluster of this test's own under the temporary directory, so a test may stop and restart the
/// database without touching the machine's server. Started by `scripts/lib.sh`'s `start_cluster` (needs
/// `initdb` and `pg_ctl`, the postgresql package); removed when dropped.
pub struct PrivateCluster {
    dir: PathBuf,
    pub port: u16,
}

impl PrivateCluster {
    pub fn start() -> Self {
        // Under the system's temporary directory: the `postgres` user must be able to reach it, which a
        // checkout in a private directory does not allow.
        let dir = std::env::temp_dir().join(format!(
            "partner-e2e-pg-{}-{}",
            std::process::id(),
            free_port()
        ));
        let cluster = Self {
            dir,
            port: free_port(),
        };
        cluster.start_again();
        cluster
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// `pg_ctl stop` (fast): every connection is cut.
    pub fn stop(&self) {
        lib_sh_call("stop_cluster", &[&self.dir_str(), "fast"]);
    }

    pub fn start_again(&self) {
        lib_sh_call(
            "start_cluster",
            &[&self.dir_str(), &self.port.to_string(), "-c fsync=off"],
        );
    }

    fn dir_str(&self) -> String {
        path_str(&self.dir)
    }
}

fn path_str(path: &Path) -> String {
    path.display().to_string()
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let script = ". \"$0\" && stop_cluster \"$1\" immediate";
        let _ = Command::new("bash")
            .args(["-c", script])
            .arg(lib_sh())
            .arg(self.dir_str())
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
