//! The binaries start, answer, stop cleanly and refuse bad configuration, as real processes.

use std::time::Duration;

use e2e::{Process, free_port, run, test_secrets, wait_for_http};
use testkit::TestDatabase;

fn env_with(database: &str, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut env = test_secrets();
    env.push(("DATABASE_URL", database.to_owned()));
    env.extend(extra.iter().cloned());
    env
}

/// Starts `name ARGS` over `database` with `extra` configuration and `listen` (the setting of the address
/// that serves `/healthz`) on a free port; waits until `/healthz` answers 200. The process and the port.
async fn started(
    name: &str,
    args: &[&str],
    database: &str,
    listen: &'static str,
    extra: &[(&'static str, String)],
) -> (Process, u16) {
    let port = free_port();
    let mut env = env_with(database, extra);
    env.push((listen, format!("127.0.0.1:{port}")));
    let process = Process::spawn(name, args, &env);
    let health = wait_for_http(
        &format!("http://127.0.0.1:{port}/healthz"),
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(health, Some(reqwest::StatusCode::OK), "{name}");
    (process, port)
}

#[tokio::test(flavor = "multi_thread")]
async fn web_answers_health_and_readiness_then_stops_on_sigterm() {
    let database = TestDatabase::create().await.unwrap();
    let (mut web, port) =
        started("partner-web", &[], database.url(), "PARTNER_WEB__BIND", &[]).await;
    let ready: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["database"], "ok");
    let status = web
        .terminate(Duration::from_secs(15))
        .expect("web did not stop");
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn web_reports_an_unreachable_database_as_not_ready() {
    let closed = free_port();
    let (_web, port) = started(
        "partner-web",
        &[],
        &format!("postgres://postgres@127.0.0.1:{closed}/nowhere"),
        "PARTNER_WEB__BIND",
        &[("PARTNER_DATABASE__CONNECT_TIMEOUT_SECS", "1".to_owned())],
    )
    .await;
    let response = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["database"], "unreachable");
}

#[tokio::test(flavor = "multi_thread")]
async fn service_waits_for_work_and_exits_zero_on_sigterm() {
    let database = TestDatabase::create().await.unwrap();
    let (mut service, _) = started(
        "partner-service",
        &["run"],
        database.url(),
        "PARTNER_SERVICE__METRICS_BIND",
        &[],
    )
    .await;
    let status = service
        .terminate(Duration::from_secs(15))
        .expect("service did not stop");
    assert!(
        status.success(),
        "exit status {status:?}: {}",
        service.stderr()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_twice_and_twice_concurrently_leaves_one_schema() {
    let database = TestDatabase::create_empty().await.unwrap();
    let env = env_with(database.url(), &[]);
    let first = run("partner-service", &["migrate"], &env);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).contains("applied migration"));
    let second = run("partner-service", &["migrate"], &env);
    assert!(second.status.success());
    assert!(String::from_utf8_lossy(&second.stdout).contains("up to date"));

    let fresh = TestDatabase::create_empty().await.unwrap();
    let env = env_with(fresh.url(), &[]);
    let mut a = e2e::command("partner-service", &env);
    let mut b = e2e::command("partner-service", &env);
    for cmd in [&mut a, &mut b] {
        cmd.arg("migrate")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
    }
    let (a, b) = (a.spawn().unwrap(), b.spawn().unwrap());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success());
    let outputs = [
        String::from_utf8_lossy(&a.stdout),
        String::from_utf8_lossy(&b.stdout),
    ];
    assert_eq!(
        outputs
            .iter()
            .filter(|o| o.contains("applied migration"))
            .count(),
        1,
        "{outputs:?}"
    );
    assert_eq!(
        outputs.iter().filter(|o| o.contains("up to date")).count(),
        1,
        "{outputs:?}"
    );

    let expected = shared::db::migrate::applied_versions(database.url())
        .await
        .unwrap();
    let concurrent = shared::db::migrate::applied_versions(fresh.url())
        .await
        .unwrap();
    assert_eq!(expected, concurrent);
    assert!(!expected.is_empty());
}

#[test]
fn an_unknown_key_stops_start_up_naming_it() {
    for (binary, args) in [("partner-web", &[][..]), ("partner-service", &["run"][..])] {
        let output = run(
            binary,
            args,
            &env_with(
                "postgres://postgres@127.0.0.1:5432/postgres",
                &[("PARTNER_WEB__COLOR", "x".into())],
            ),
        );
        assert_eq!(output.status.code(), Some(1), "{binary}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let line = stderr.lines().last().unwrap_or_default();
        assert!(
            line.contains("web.color") && line.contains("unknown"),
            "{binary}: {stderr}"
        );
    }
}

#[test]
fn a_missing_secret_stops_start_up_naming_it() {
    let mut env: Vec<_> = test_secrets()
        .into_iter()
        .filter(|(k, _)| *k != "PARTNER_ENCRYPTION__KEY")
        .collect();
    env.push((
        "DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/postgres".into(),
    ));
    for (binary, args) in [("partner-web", &[][..]), ("partner-service", &["run"][..])] {
        let output = run(binary, args, &env);
        assert_eq!(output.status.code(), Some(1), "{binary}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("encryption.key") && stderr.contains("required"),
            "{binary}: {stderr}"
        );
    }
    let output = run(
        "partner-web",
        &[],
        &[(
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/postgres".into(),
        )],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("superoffice.client_id"), "{stderr}");
}

#[test]
fn a_malformed_config_file_names_the_file() {
    let dir = std::env::temp_dir().join(format!("partner-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "[web\nbind = 1").unwrap();
    let output = run(
        "partner-service",
        &["--config", path.to_str().unwrap(), "migrate"],
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("bad.toml"));
}
