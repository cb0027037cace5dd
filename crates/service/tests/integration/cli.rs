//! The offline credential commands, run as the built binary.

use std::process::Output;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use shared::crypto::partner_key::PartnerKey;

use crate::binary::{partner_service, stderr, stdout};

const NOW: i64 = 1_800_000_000;

fn testdata(name: &str) -> String {
    testkit::shared_testdata(name).display().to_string()
}

fn run(args: &[&str]) -> Output {
    partner_service().args(args).output().unwrap()
}

/// A system-user JWT signed with the key of testdata/test-federated-login.pem.
fn system_user_jwt(ctx: &str, exp: i64) -> String {
    let key = PartnerKey::from_file(testdata("localhost-private-key.xml").as_ref()).unwrap();
    let encode = |v: Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(&v).unwrap());
    let claims = json!({
        "http://schemes.superoffice.net/identity/ctx": ctx,
        "http://schemes.superoffice.net/identity/serial": "1801550193",
        "http://schemes.superoffice.net/identity/ticket": "7T:c2VjcmV0LXRpY2tldA==",
        "iss": "SuperOffice AS", "aud": "spn:1801550193",
        "iat": NOW, "nbf": NOW - 60, "exp": exp,
    });
    let signed = format!(
        "{}.{}",
        encode(json!({"alg": "RS256", "typ": "JWT"})),
        encode(claims)
    );
    let signature = URL_SAFE_NO_PAD.encode(key.sign_sha256(signed.as_bytes()));
    format!("{signed}.{signature}")
}

#[test]
fn sign_token_prints_the_signed_token() {
    let output = run(&[
        "sign-token",
        "--key",
        &testdata("partner-private-key.xml"),
        "--token",
        "SuperOffice DevNet Node OIDC-8k8Q7DmBgo",
        "--timestamp",
        "202402291359",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    // The same golden value as shared's signer test (Python cryptography and openssl agree on it).
    assert_eq!(
        stdout(&output).trim_end(),
        "SuperOffice DevNet Node OIDC-8k8Q7DmBgo.202402291359.ft3dRdgeB6uBeJPwaKIDSor4mfZDwEcS9BOxUG8Om8tmiXf7xcPNaU+Fxq5i4sBLHgTR28TX02NZol+Waq3lt69J06KmaciGMoGG9zHeOoOJv2t3E1Ha6WDjinAE87T2cvX/5DcH0lwE2WNA7kMzki+FHFkssMldjfCD8IfzYOY="
    );
}

#[test]
fn sign_token_without_timestamp_uses_now_and_names_a_missing_key() {
    let output = run(&[
        "sign-token",
        "--key",
        &testdata("partner-private-key.xml"),
        "--token",
        "App-1",
    ]);
    assert!(output.status.success());
    let signed = stdout(&output);
    let minute = signed.trim_end().split('.').nth(1).unwrap();
    assert_eq!(minute.len(), 12);
    assert!(minute.starts_with("20"));

    let output = run(&[
        "sign-token",
        "--key",
        "/no/such/key.xml",
        "--token",
        "App-1",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).is_empty());
    let message = stderr(&output);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(message.contains("/no/such/key.xml"), "{message}");
}

#[test]
fn convert_key_prints_pkcs8_of_the_same_key() {
    let output = run(&["convert-key", "--key", &testdata("service-console-key.xml")]);
    assert!(output.status.success(), "{}", stderr(&output));
    let pem = stdout(&output);
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
    let converted = PartnerKey::parse(&pem).unwrap();
    let original = PartnerKey::from_file(testdata("service-console-key.xml").as_ref()).unwrap();
    assert_eq!(converted.public_key(), original.public_key());
}

/// `verify-jwt` of a system-user token of the custom environment, certificate
/// testdata/test-federated-login.pem, at `NOW`.
fn verify_jwt(options: &[&str], token: &str) -> Output {
    let cert = testdata("test-federated-login.pem");
    let now = NOW.to_string();
    let mut args = vec!["verify-jwt", "--kind", "system-user", "--env", "custom"];
    args.extend(["--cert", &cert, "--now", &now]);
    args.extend_from_slice(options);
    args.push(token);
    run(&args)
}

#[test]
fn verify_jwt_prints_redacted_claims() {
    let token = system_user_jwt("Cust12345", NOW + 300);
    let output = verify_jwt(
        &["--audience", "spn:1801550193", "--ctx", "Cust12345"],
        &token,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let claims: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(claims["context_id"], "Cust12345");
    assert_eq!(claims["serial"], "1801550193");
    assert_eq!(claims["ticket"], "[REDACTED]");
    assert!(!stdout(&output).contains("c2VjcmV0LXRpY2tldA"));

    // Without --ctx the tenant is reported from the verified token.
    let output = verify_jwt(&["--audience", "1801550193"], &token);
    assert!(output.status.success(), "{}", stderr(&output));
    let claims: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(claims["context_id"], "Cust12345");
}

#[test]
fn verify_jwt_refuses_with_one_line() {
    let expired = system_user_jwt("Cust12345", NOW - 3600);
    let valid = system_user_jwt("Cust12345", NOW + 300);
    let cert = testdata("test-federated-login.pem");
    let now = NOW.to_string();
    let base = ["verify-jwt", "--kind", "system-user"];
    // The options as words; `CERT`, `NOW`, `EXPIRED` and `VALID` stand for their values.
    let cases = [
        (
            "--env custom --cert CERT --audience 1801550193 --now NOW EXPIRED",
            "expired",
        ),
        (
            "--env sod --audience 1801550193 --now NOW VALID",
            "signature does not verify",
        ),
        (
            "--env custom --cert CERT --audience 1801550193 --ctx Cust1 --now NOW VALID",
            "not Cust1",
        ),
        (
            "--env custom --cert CERT --audience spn:42 --now NOW VALID",
            "audience",
        ),
        (
            "--env custom --cert CERT --now NOW VALID",
            "--audience is required",
        ),
        (
            "--env custom --audience 1801550193 VALID",
            "no pinned certificate",
        ),
    ];
    for (words, reason) in cases {
        let extra = words.split(' ').map(|word| match word {
            "CERT" => cert.as_str(),
            "NOW" => now.as_str(),
            "EXPIRED" => expired.as_str(),
            "VALID" => valid.as_str(),
            word => word,
        });
        let args: Vec<&str> = base.iter().copied().chain(extra).collect();
        let output = run(&args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert!(stdout(&output).is_empty());
        let message = stderr(&output);
        assert_eq!(message.lines().count(), 1, "{message}");
        assert!(message.contains(reason), "{message} lacks {reason}");
    }
}
