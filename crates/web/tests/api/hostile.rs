//! Hostile input at partner-web's boundary: oversized and malformed requests, headers and cookies each get
//! a clear refusal, quickly, and change nothing.

use std::time::{Duration, Instant};

use testkit::TestApp;

#[tokio::test(flavor = "multi_thread")]
async fn oversized_and_malformed_bodies_are_refused() {
    let app = crate::support::admin_signed_in().await;
    let csrf = app.csrf().await;
    let huge = "A".repeat(64 * 1024);
    let started = Instant::now();
    let response = app
        .post(
            "/companies/as-system-user",
            &csrf,
            &[("name", huge.as_str())],
        )
        .await;
    assert_eq!(response.status().as_u16(), 413);
    assert!(started.elapsed() < Duration::from_secs(5));
    for (content_type, body) in [
        ("application/x-www-form-urlencoded", "csrf_token=%ZZ&name"),
        ("application/json", "{\"name\": 1}"),
        ("application/x-www-form-urlencoded", ""),
    ] {
        let response =
            crate::support::post_body(&app, "/companies/as-system-user", content_type, body).await;
        assert!(
            response.status().is_client_error(),
            "{content_type} {body:?}: {}",
            response.status()
        );
    }
    // A name of only spaces is refused, and an overlong one too.
    for name in ["   ", &"x".repeat(201)] {
        let response = app
            .post("/companies/as-system-user", &csrf, &[("name", name)])
            .await;
        assert_eq!(response.status().as_u16(), 400);
    }
    crate::support::assert_no_open_work(&app, "Cust10001").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_headers_and_queries_are_refused() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::new();
    let response = client
        .get(app.url("/"))
        .header("x-padding", "p".repeat(256 * 1024))
        .send()
        .await;
    // actix refuses a request head over 128 KiB before any handler runs; a reset connection is a refusal too.
    if let Ok(response) = response {
        assert!(
            matches!(response.status().as_u16(), 400 | 413 | 431),
            "{}",
            response.status()
        );
    }
    let long_code = "c".repeat(20 * 1024);
    let response = client
        .get(app.url(&format!("/callback?code={long_code}&state=x")))
        .send()
        .await;
    if let Ok(response) = response {
        assert!(response.status().is_client_error(), "{}", response.status());
    }
    // The server is still serving.
    let health = client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_session_cookie_is_just_signed_out() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::new();
    for cookie in [
        "partner_session=forged",
        "partner_session=eyJ1c2VyIjp7InN1YmplY3QiOiJ4In19",
        "partner_session=%00%01%02",
    ] {
        let get = |path| client.get(app.url(path)).header("cookie", cookie).send();
        let home = get("/").await.unwrap();
        assert_eq!(home.status().as_u16(), 200, "{cookie}");
        let page = home.text().await.unwrap();
        assert!(
            page.contains("Sign in with SuperOffice"),
            "{cookie}: {page}"
        );
        let tenant = get("/tenant").await.unwrap();
        assert_eq!(tenant.status().as_u16(), 401, "{cookie}");
    }
}
