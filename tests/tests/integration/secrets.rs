//! A full run (sign-in, capture, exchange, both company actions) as real processes, then a dump of the
//! database and every log line of partner-web and partner-service at debug level: no system user token,
//! ticket, access or refresh token, client secret, key material or session key may appear in either.

use std::process::Command;
use std::time::Duration;

use e2e::{CLIENT_SECRET, ENCRYPTION_KEY, Stack, repo_root};
use testkit::TestDatabase;

/// The base64 of every component of the partner's private key, as it stands in the XML file.
fn private_key_material() -> Vec<String> {
    let xml =
        std::fs::read_to_string(repo_root().join("config/local/partner-private-key.xml")).unwrap();
    ["P", "Q", "DP", "DQ", "InverseQ", "D"]
        .iter()
        .map(|element| {
            let open = format!("<{element}>");
            let start = xml.find(&open).unwrap() + open.len();
            let end = xml[start..].find('<').unwrap() + start;
            // A distinctive slice is enough to find a leak, and avoids matching line-wrapped copies wrongly.
            xml[start..end].trim().chars().take(40).collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_the_database_in_clear_or_any_log_line() {
    let database = TestDatabase::create().await.unwrap();
    let mut stack = Stack::start("secrets", database.url()).await;
    let user = stack.signed_in_admin().await;
    let created = user.create_company("as-user", "Leak Check User AS").await;
    assert_eq!(created.status().as_u16(), 303);
    let (state, page) = user
        .system_user_company("Leak Check System AS", Duration::from_secs(60))
        .await;
    assert_eq!(state, "done", "{page}");

    let get = reqwest::Method::GET;
    let tenant = stack
        .sim_admin(get.clone(), "/tenants/Cust10001", None)
        .await;
    let credentials = stack.sim_admin(get, "/credentials", None).await;
    let mut secrets: Vec<(String, String)> = vec![
        (
            "system user token".into(),
            tenant["system_token"].as_str().unwrap().to_owned(),
        ),
        ("client secret".into(), CLIENT_SECRET.to_owned()),
        ("encryption key".into(), ENCRYPTION_KEY.to_owned()),
        ("session key".into(), stack.session_key.clone()),
    ];
    for (kind, field) in [
        ("authorization code", "authorization_codes"),
        ("ticket", "tickets"),
        ("access token", "access_tokens"),
        ("refresh token", "refresh_tokens"),
    ] {
        let values = credentials[field].as_array().unwrap();
        if kind == "ticket" || kind == "authorization code" {
            assert!(!values.is_empty(), "no {kind} was issued");
        }
        secrets.extend(
            values
                .iter()
                .map(|v| (kind.to_owned(), v.as_str().unwrap().to_owned())),
        );
    }
    secrets.extend(
        private_key_material()
            .into_iter()
            .map(|m| ("private key material".to_owned(), m)),
    );

    let dump = Command::new("pg_dump")
        .args(["--data-only", "--inserts", "-d", database.url()])
        .output()
        .unwrap();
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let dump = String::from_utf8_lossy(&dump.stdout).into_owned();
    assert!(
        dump.contains("Cust10001"),
        "the dump holds no tenant: is it the right database?"
    );

    let statuses = stack.stop();
    assert!(statuses.iter().all(|s| s.success()), "{statuses:?}");
    let mut logs = String::new();
    for name in ["partner-web", "partner-service"] {
        for suffix in ["out", "err"] {
            logs.push_str(
                &std::fs::read_to_string(stack.log_dir.join(format!("{name}.{suffix}.log")))
                    .unwrap_or_default(),
            );
        }
    }
    assert!(
        logs.lines().count() > 20,
        "too few log lines to prove anything:\n{logs}"
    );
    for (kind, secret) in &secrets {
        assert!(secret.len() >= 16, "{kind} is too short to search for");
        assert!(
            !dump.contains(secret.as_str()),
            "secret found in clear in the database: {kind}"
        );
        assert!(
            !logs.contains(secret.as_str()),
            "secret found in the logs: {kind}"
        );
    }
}
