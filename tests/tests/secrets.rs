//! A full run (sign-in, capture, exchange, both company actions) as real processes, then a dump of the
//! database and every log line of partner-web and partner-service at debug level: no system user token,
//! ticket, access or refresh token, client secret, key material or session key may appear in either.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use e2e::{CLIENT_SECRET, ENCRYPTION_KEY, Stack, repo_root};
use serde_json::Value;
use shared::db::testing::TestDatabase;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// Signs in through the simulator's form as `username`.
async fn sign_in(stack: &Stack, client: &reqwest::Client, username: &str) {
    let login = client
        .get(format!("{}/login", stack.web_url))
        .send()
        .await
        .unwrap();
    let authorize = url::Url::parse(&location(&login)).unwrap();
    let mut form: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    form.push(("username".into(), username.into()));
    let mut action = authorize.clone();
    action.set_query(None);
    let back = client.post(action).form(&form).send().await.unwrap();
    let callback = client.get(location(&back)).send().await.unwrap();
    assert_eq!(callback.status().as_u16(), 303, "sign-in failed");
}

async fn csrf(stack: &Stack, client: &reqwest::Client) -> String {
    let home = client
        .get(format!("{}/", stack.web_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let marker = "name=\"csrf_token\" value=\"";
    let start = home.find(marker).unwrap() + marker.len();
    home[start..start + 64].to_owned()
}

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
    let client = client();
    sign_in(&stack, &client, "admin@northwind.example").await;
    let token = csrf(&stack, &client).await;
    let created = client
        .post(format!("{}/companies/as-user", stack.web_url))
        .form(&[
            ("csrf_token", token.as_str()),
            ("name", "Leak Check User AS"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 303);
    let queued = client
        .post(format!("{}/companies/as-system-user", stack.web_url))
        .form(&[
            ("csrf_token", token.as_str()),
            ("name", "Leak Check System AS"),
        ])
        .send()
        .await
        .unwrap();
    let request_url = format!("{}{}", stack.web_url, location(&queued));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let page = client
            .get(&request_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if page.contains("data-state=\"done\"") {
            break;
        }
        assert!(!page.contains("data-state=\"failed\""), "{page}");
        assert!(
            Instant::now() < deadline,
            "the system user never created the company:\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let sim = reqwest::Client::new();
    let tenant: Value = sim
        .get(format!("{}/admin/tenants/Cust10001", stack.superid_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let credentials: Value = sim
        .get(format!("{}/admin/credentials", stack.superid_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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
        ("ticket", "tickets"),
        ("access token", "access_tokens"),
        ("refresh token", "refresh_tokens"),
    ] {
        let values = credentials[field].as_array().unwrap();
        if kind == "ticket" {
            assert!(!values.is_empty(), "no ticket was issued");
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
            "a {kind} is stored in clear in the database"
        );
        assert!(
            !logs.contains(secret.as_str()),
            "a {kind} appears in the logs"
        );
    }
}
