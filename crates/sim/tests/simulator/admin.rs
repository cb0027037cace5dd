//! The admin API: notifications, key rotation, faults, clock, reset; and the repository's sim.toml.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::{Value, json};
use superoffice_sim::{SimConfig, Simulator, TEST_CLIENT_ID, TEST_CLIENT_SECRET};

use crate::support::*;

/// A tiny receiver for state-change notifications.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Value>>>,
    handle: actix_web::dev::ServerHandle,
}

async fn receiver() -> Receiver {
    let received = Arc::new(Mutex::new(Vec::new()));
    let store = web::Data::new(received.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/superoffice/state-change",
        listener.local_addr().unwrap()
    );
    let server = HttpServer::new(move || {
        App::new().app_data(store.clone()).route(
            "/superoffice/state-change",
            web::post().to(
                |store: web::Data<Arc<Mutex<Vec<Value>>>>, body: web::Json<Value>| async move {
                    store.lock().unwrap().push(body.into_inner());
                    HttpResponse::Ok().finish()
                },
            ),
        )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    Receiver {
        url,
        received,
        handle,
    }
}

#[tokio::test]
async fn state_changes_are_notified_with_a_verifiable_token() {
    let rx = receiver().await;
    let url = rx.url.clone();
    let t = spawn_with(move |c| c.applications[0].state_change_url = Some(url)).await;
    let post = |path: &'static str, body: Value| t.admin_post(path, body);
    assert_eq!(
        post("/tenants/Cust10001/state", json!({"state": "Suspended"}))
            .await
            .status(),
        200
    );
    post("/tenants/Cust10001/state", json!({"state": "Running"})).await;
    let upgraded: Value = post(
        "/tenants/Cust10001/upgrade",
        json!({"version_name": "Release_11.11", "file_version": "11.11.1.0"}),
    )
    .await
    .body_json()
    .await;
    assert_eq!(upgraded["tenant"]["version_name"], "Release_11.11");
    assert_eq!(upgraded["tenant"]["file_version"], "11.11.1.0");
    post("/tenants/Cust10001/backup-restored", Value::Null).await;
    let moved: Value = post("/tenants/Cust10001/move", json!({"host": "sod3"}))
        .await
        .body_json()
        .await;
    assert_eq!(moved["notifications"][0]["delivered"], true);
    post("/tenants/Cust10001/state", json!({"state": "Deleted"})).await;
    // Cust10003 does not have the app installed: nobody is notified.
    let none: Value = post("/tenants/Cust10003/state", json!({"state": "Suspended"}))
        .await
        .body_json()
        .await;
    assert_eq!(none["notifications"], json!([]));

    let received = rx.received.lock().unwrap().clone();
    let types: Vec<i64> = received
        .iter()
        .map(|n| n["ChangeType"].as_i64().unwrap())
        .collect();
    assert_eq!(types, vec![2, 3, 0, 1, 5, 4]);
    let sod3 = url::Url::parse(t.sim.api_host_url("sod3").unwrap()).unwrap();
    let endpoint = format!("{}:{}", sod3.host_str().unwrap(), sod3.port().unwrap());
    assert_eq!(received[4]["PublicEndpoint"], endpoint);
    assert!(received[0].get("PublicEndpoint").is_none());
    assert_eq!(received[2]["VersionName"], "Release_11.11");
    assert_eq!(received[2]["FileVersion"], "11.11.1.0");
    for notification in &received {
        assert_eq!(notification["ContextIdentifier"], "Cust10001");
        let claims = t
            .verify(
                notification["Token"].text(),
                Some(&format!("spn:{TEST_CLIENT_ID}")),
            )
            .await;
        assert_eq!(claims["iss"], "SuperOffice AS");
        assert_eq!(claims[format!("{CLAIM}ctx")], "Cust10001");
    }
    let records = t.admin_get("/records").await;
    assert_eq!(records["notifications"].as_array().unwrap().len(), 6);
    rx.handle.stop(true).await;
}

#[tokio::test]
async fn a_failed_delivery_is_recorded_and_does_not_fail_the_admin_call() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/gone", closed.local_addr().unwrap());
    drop(closed);
    let t = spawn_with(move |c| c.applications[0].state_change_url = Some(url)).await;
    let body = t.admin_set_state("Cust10002", "Suspended").await;
    assert_eq!(body["tenant"]["state"], "Suspended");
    assert_eq!(body["notifications"][0]["delivered"], false);
    assert!(body["notifications"][0]["error"].is_string());
}

#[tokio::test]
async fn rotating_the_signing_key_changes_the_kid_and_can_keep_the_old_key() {
    let t = spawn().await;
    let old = t.sim.admin().keys().kid;
    let rotated: Value = t
        .admin_post("/keys/rotate", json!({"keep_old": true}))
        .await
        .body_json()
        .await;
    let new = rotated["kid"].text().to_owned();
    assert_ne!(new, old);
    assert_eq!(rotated["served_kids"], json!([new, old]));
    let kids: Vec<String> = t.jwks().await["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].text().to_owned())
        .collect();
    assert_eq!(kids, vec![new.clone(), old.clone()]);
    let tokens = t.tokens_for(ADA_ADMIN).await;
    let header = jsonwebtoken::decode_header(tokens["id_token"].text()).unwrap();
    assert_eq!(header.kid.as_deref(), Some(new.as_str()));
    t.verify(tokens["id_token"].text(), Some(TEST_CLIENT_ID))
        .await;

    let rotated: Value = t
        .admin_post("/keys/rotate", Value::Null)
        .await
        .body_json()
        .await;
    assert_eq!(rotated["served_kids"].as_array().unwrap().len(), 1);
    assert_eq!(t.jwks().await["keys"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn rotate_keys_withdrawn_signs_the_next_answer_with_a_new_key_and_withdraws_the_old() {
    let t = spawn().await;
    let old = t.sim.admin().keys().kid;
    let mode = superoffice_sim::modes::Mode {
        signing: superoffice_sim::modes::Signing {
            rotate_keys_withdrawn: true,
            ..Default::default()
        },
        ..Default::default()
    };
    t.sim.admin().set_mode(None, mode).unwrap();
    let kid = |jwt: &str| jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap();
    let signed = t.sign(&t.system_token("Cust10001"));
    let answer = t
        .exchange_rest("Cust10001", &signed, TEST_CLIENT_SECRET)
        .await;
    let new = kid(answer["Token"].text());
    assert_ne!(new, old);
    assert_eq!(t.sim.admin().keys().served_kids, vec![new.clone()]);
    t.verify(answer["Token"].text(), None).await;

    // Rotated once: the id_tokens that follow keep the new key.
    let tokens = t.tokens_for(ADA_ADMIN).await;
    assert_eq!(kid(tokens["id_token"].text()), new);
}

#[tokio::test]
async fn latency_is_added_to_the_chosen_group_only() {
    let t = spawn().await;
    let r = t
        .admin_put("/faults/state", json!({"latency_ms": 400}))
        .await;
    assert_eq!(r.status(), 200);
    let started = Instant::now();
    assert_eq!(t.get_status(t.url("/api/state/Cust10001")).await, 200);
    assert!(started.elapsed() >= Duration::from_millis(400));
    let started = Instant::now();
    t.jwks().await;
    assert!(started.elapsed() < Duration::from_millis(400));
}

#[tokio::test]
async fn the_next_n_requests_fail_then_recover() {
    let t = spawn().await;
    let fail_twice = json!({"fail_next": 2, "fail_status": 502});
    t.admin_put("/faults/exchange", fail_twice).await;
    let url = t.url("/Login/api/PartnerSystemUser/Authenticate");
    let body = json!({"SignedSystemToken": t.sign(&t.system_token("Cust10001")), "ApplicationToken": TEST_CLIENT_SECRET, "ContextIdentifier": "Cust10001"});
    for expected in [502, 502, 200] {
        let status = t.http.post(&url).json(&body).fetch_status().await;
        assert_eq!(status, expected);
    }
    t.admin_put("/faults/api", json!({"fail_share": 1.0})).await;
    let api = t.http.get(t.api("sod2", "/Cust10001/api")).fetch().await;
    assert_eq!(api.status(), 503);
    let listed = t.admin_get("/faults").await;
    assert_eq!(listed["api"]["fail_share"], 1.0);
    let cleared = t.admin_delete("/faults").await;
    assert_eq!(cleared.status(), 200);
    assert_eq!(t.get_status(t.api("sod2", "/Cust10001/api")).await, 200);
}

#[tokio::test]
async fn a_hanging_group_times_clients_out_until_cleared() {
    let t = spawn().await;
    t.admin_put("/faults/superid", json!({"hang": true})).await;
    let result = t
        .http
        .get(t.url("/login/.well-known/jwks"))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(result.unwrap_err().is_timeout());
    // The admin API is never faulted.
    let deleted = t.admin_delete("/faults/superid").await;
    assert_eq!(deleted.status(), 200);
    assert_eq!(t.get_status(t.url("/login/.well-known/jwks")).await, 200);
}

#[tokio::test]
async fn the_clock_can_be_read_moved_and_reset() {
    let t = spawn().await;
    let before = t.admin_get("/clock").await;
    assert_eq!(before["offset_secs"], 0);
    let moved: Value = t
        .admin_post("/clock", json!({"advance_secs": 7200}))
        .await
        .body_json()
        .await;
    assert_eq!(moved["offset_secs"], 7200);
    let set: Value = t
        .admin_post("/clock", json!({"offset_secs": -60}))
        .await
        .body_json()
        .await;
    assert_eq!(set["offset_secs"], -60);
    assert_eq!(t.admin_post("/clock", json!({})).await.status(), 400);
}

#[tokio::test]
async fn reset_restores_the_initial_state() {
    let t = spawn().await;
    let token = t.system_token("Cust10001");
    t.ticket("Cust10001").await;
    t.sim
        .admin()
        .reapprove("Cust10001", TEST_CLIENT_ID)
        .unwrap();
    t.sim.admin().advance_clock(99);
    t.admin_post("/tenants/Cust10002/move", json!({"host": "sod3"}))
        .await;
    t.admin_put("/faults/api", json!({"fail_next": 5})).await;
    assert_eq!(t.admin_post("/reset", Value::Null).await.status(), 200);
    let tenant = t.admin_get("/tenants/Cust10001").await;
    assert_eq!(tenant["system_token"], token.as_str());
    assert_eq!(tenant["tickets_issued"], 0);
    assert_eq!(t.admin_get("/tenants/Cust10002").await["host"], "sod2");
    assert_eq!(t.admin_get("/clock").await["offset_secs"], 0);
    assert_eq!(t.admin_get("/faults").await, json!({}));
    assert_eq!(t.admin_get("/records").await["exchanges"], json!([]));
}

#[tokio::test]
async fn admin_errors_name_what_is_wrong() {
    let t = spawn().await;
    let unknown = t
        .admin_post("/tenants/Cust404/state", json!({"state": "Running"}))
        .await;
    assert_eq!(unknown.status(), 404);
    let body: Value = unknown.body_json().await;
    assert!(body["error"].text().contains("Cust404"));
    assert_eq!(
        t.admin_post("/tenants/Cust10001/state", json!({"state": ""}))
            .await
            .status(),
        400
    );
    assert_eq!(
        t.admin_post("/tenants/Cust10001/move", json!({"host": "sod9"}))
            .await
            .status(),
        404
    );
    assert_eq!(
        t.admin_post(
            "/tenants/Cust10003/apps/0123456789abcdef0123456789abcdef/revoke",
            Value::Null
        )
        .await
        .status(),
        404
    );
    let bad_group = t.admin_put("/faults/db", json!({})).await;
    assert_eq!(bad_group.status(), 404);
    let tenants = t.admin_get("/tenants").await;
    assert_eq!(tenants.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn the_repository_sim_toml_starts_as_configured() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/sim.toml");
    let mut config = SimConfig::from_file(&path).unwrap();
    assert_eq!(
        config.superid.public_url.as_deref(),
        Some("http://127.0.0.1:9100")
    );
    // Random ports, so the test does not collide with a running simulator.
    config.superid.bind = "127.0.0.1:0".into();
    config.superid.public_url = None;
    for host in &mut config.api_hosts {
        host.bind = "127.0.0.1:0".into();
        host.public_url = None;
    }
    config.superid.signing_key_file = Some(data("superid-signing-key.pem"));
    let sim = Simulator::start(config).await.unwrap();
    let admin = sim.admin();
    let tenants: Vec<_> = admin
        .tenants()
        .into_iter()
        .map(|t| {
            (
                t.context_id,
                t.company_name,
                t.host,
                t.system_token.is_some(),
            )
        })
        .collect();
    assert_eq!(
        tenants,
        vec![
            (
                "Cust10001".into(),
                "Northwind Traders AS".into(),
                "sod2".into(),
                true
            ),
            (
                "Cust10002".into(),
                "Fjord Fisheries AS".into(),
                "sod2".into(),
                true
            ),
            (
                "Cust10003".into(),
                "Polar Bakery AS".into(),
                "sod3".into(),
                false
            ),
        ]
    );
    let http = reqwest::Client::new();
    let page = http
        .get(format!(
            "{}/login/common/oauth/authorize?client_id=9d7a1f0c2b3e4d5f6a7b8c9d0e1f2a3b&scope=openid&response_type=code&redirect_uri=http%3A%2F%2Flocalhost%3A8080%2Fcallback",
            sim.superid_url()
        ))
        .fetch().await;
    assert_eq!(page.status(), 200);
    assert!(page.body_text().await.contains("Sign in as Ada Admin"));
    sim.stop().await;
}

#[tokio::test]
async fn a_lost_answer_fault_lets_the_post_take_effect() {
    let (t, ticket) = spawn_with_ticket().await;
    let lose_next_post =
        json!({"fail_next": 1, "method": "POST", "after_handler": true, "fail_status": 504});
    let set = t.admin_put("/faults/api", lose_next_post).await;
    assert_eq!(set.status(), 200);
    let call = |method: reqwest::Method, path: &str| {
        t.http
            .request(method, t.api("sod2", path))
            .with_ticket(&ticket)
    };
    let default = call(reqwest::Method::GET, "/Cust10001/api/v1/Contact/default")
        .fetch()
        .await;
    assert_eq!(default.status(), 200, "a GET is not affected");
    let lost = call(reqwest::Method::POST, "/Cust10001/api/v1/Contact")
        .json(&json!({"ContactId": 0, "Name": "Lost Answer AS"}))
        .fetch()
        .await;
    assert_eq!(lost.status(), 504);
    let companies = t.admin_get("/records").await["companies"].clone();
    assert_eq!(companies.as_array().unwrap().len(), 1, "{companies}");
    assert_eq!(companies[0]["name"], "Lost Answer AS");
    let again = call(reqwest::Method::POST, "/Cust10001/api/v1/Contact")
        .json(&json!({"ContactId": 0, "Name": "Second AS"}))
        .fetch()
        .await;
    assert_eq!(again.status(), 200, "only the next POST was affected");
}

async fn issue_token(t: &TestSim, body: Value) -> Value {
    let response = t.admin_post("/tokens", body).await;
    assert_eq!(response.status().as_u16(), 200);
    response.json::<Value>().await.unwrap()
}

#[tokio::test]
async fn tokens_for_other_purposes_are_issued_and_key_fetches_counted() {
    let t = spawn().await;
    let records = t.admin_get("/records").await;
    assert_eq!(
        (
            records["discovery_fetches"].as_u64(),
            records["jwks_fetches"].as_u64()
        ),
        (Some(0), Some(0))
    );
    let ctx = "http://schemes.superoffice.net/identity/ctx";

    let notification = issue_token(
        &t,
        json!({"kind": "state_change", "context_id": "Cust10001"}),
    )
    .await;
    let claims = t
        .verify(
            notification["token"].text(),
            Some(&format!("spn:{TEST_CLIENT_ID}")),
        )
        .await;
    assert_eq!(
        (claims["iss"].as_str(), claims[ctx].as_str()),
        (Some("SuperOffice AS"), Some("Cust10001"))
    );
    let bare = issue_token(
        &t,
        json!({"kind": "state_change", "context_id": "Cust10001", "audience": false}),
    )
    .await;
    assert!(
        t.verify(bare["token"].text(), None)
            .await
            .get("aud")
            .is_none()
    );

    let system_user = issue_token(
        &t,
        json!({"kind": "system_user", "context_id": "Cust10001"}),
    )
    .await;
    let claims = t.verify(system_user["token"].text(), None).await;
    let serial = claims["http://schemes.superoffice.net/identity/serial"].text();
    assert_eq!(claims["aud"], format!("spn:{serial}"));
    assert!(
        claims["http://schemes.superoffice.net/identity/ticket"]
            .text()
            .starts_with("7T:")
    );

    let other = "ffffffffffffffffffffffffffffffff";
    let id_token = issue_token(
        &t,
        json!({"kind": "id_token", "context_id": "Cust10001", "client_id": other, "nonce": "n-1"}),
    )
    .await;
    let claims = t.verify(id_token["token"].text(), Some(other)).await;
    assert_eq!(claims["nonce"], "n-1");
    assert_eq!(claims["iss"], t.url("").trim_end_matches('/'));
    assert!(claims["http://schemes.superoffice.net/identity/system_token"].is_string());

    let unknown = issue_token(
        &t,
        json!({"kind": "state_change", "context_id": "Cust10001", "unknown_kid": true}),
    )
    .await;
    let header = jsonwebtoken::decode_header(unknown["token"].text()).unwrap();
    assert_eq!(header.kid.as_deref(), unknown["kid"].as_str());
    assert!(header.x5t.is_none());
    let served = t.admin_get("/keys").await["served_kids"].clone();
    assert!(!served.as_array().unwrap().contains(&unknown["kid"]));

    let refused = t
        .admin_post(
            "/tokens",
            json!({"kind": "state_change", "context_id": "Cust99999"}),
        )
        .await;
    assert_eq!(refused.status().as_u16(), 404);

    // Each of the four verifications above fetched the JWKS once; discovery is asked once here.
    t.discovery().fetch().await;
    let records = t.admin_get("/records").await;
    assert_eq!(records["discovery_fetches"], 1);
    assert_eq!(records["jwks_fetches"], 4);
}

#[tokio::test]
async fn modes_are_set_per_tenant_or_globally_over_http() {
    let t = spawn().await;
    let url = t.url("/Login/api/PartnerSystemUser/Authenticate");
    let exchange = |ctx: &str| json!({"SignedSystemToken": t.sign(&t.system_token(ctx)), "ApplicationToken": TEST_CLIENT_SECRET, "ContextIdentifier": ctx});
    let refusing =
        json!({"refuse_with": "Nei takk", "refusal_as": "http4xx", "state_api": "not_found"});
    let set = t.admin_put("/modes/Cust10001", refusing).await;
    assert_eq!(set.status(), 200);
    let refused = t.http.post(&url).json(&exchange("Cust10001")).fetch().await;
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.body_text().await, "Nei takk");
    let state = t.http.get(t.url("/api/state/Cust10001")).fetch().await;
    assert_eq!(state.status(), 404);
    let other = t.http.post(&url).json(&exchange("Cust10002")).fetch().await;
    let other: serde_json::Value = other.body_json().await;
    assert_eq!(
        other["IsSuccessful"], true,
        "another tenant is not affected"
    );

    let global = t
        .admin_put("/modes", json!({"state_api": "unknown_state"}))
        .await;
    assert_eq!(global.status(), 200);
    let state: serde_json::Value = t.http.get(t.url("/api/state/Cust10002")).fetch_json().await;
    assert_eq!(state["State"], "Hibernating");
    assert_eq!(state["IsRunning"], false);
    let unknown = t.admin_put("/modes/Cust99999", json!({})).await;
    assert_eq!(unknown.status(), 404);
    let bad = t.admin_put("/modes", json!({"wording": "klingon"})).await;
    assert_eq!(bad.status(), 400);
    assert_eq!(
        t.admin_get("/modes").await["tenants"]["Cust10001"]["refuse_with"],
        "Nei takk"
    );
    let cleared = t.admin_delete("/modes").await;
    assert_eq!(cleared.status(), 200);
    let state = t.http.get(t.url("/api/state/Cust10001")).fetch().await;
    assert_eq!(state.status(), 200);
}
