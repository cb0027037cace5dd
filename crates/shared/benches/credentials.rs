//! Credentials micro-benchmarks: signing, JWT validation and encryption at rest, and the floor they are
//! measured against in the same run: OpenSSL's RSA-2048 sign and verify (`openssl speed`) and, as a peer,
//! pycryptodome's (a throwaway virtualenv; `BENCH_PYCRYPTODOME=0` skips it).
//! Run: cargo bench -p shared --bench credentials -- --warm-up-time 1 --measurement-time 3
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../tests/src/floor.rs"]
#[allow(dead_code, unused_imports)]
mod floor;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use criterion::Criterion;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use shared::clock::FixedClock;
use shared::config::KeyMaterial;
use shared::crypto::at_rest::{Cipher, SecretKind};
use shared::crypto::partner_key::PartnerKey;
use shared::crypto::rs256::Rs256Verifier;
use shared::crypto::system_user_token::sign_system_user_token;
use shared::domain::{ContextId, SystemUserToken};
use shared::jwt::{Expectation, JwtValidator, KeySet, VerificationKey};

const NOW: i64 = 1_800_000_000;
const PREFIX: &str = "http://schemes.superoffice.net/identity/";

fn jwt(key: &PartnerKey, claims: &Value) -> String {
    let encode = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "bench-key"});
    let signed = format!("{}.{}", encode(&header), encode(claims));
    let signature = URL_SAFE_NO_PAD.encode(key.sign_sha256(signed.as_bytes()));
    format!("{signed}.{signature}")
}

fn system_user_claims() -> Value {
    json!({
        format!("{PREFIX}ctx"): "Cust12345", format!("{PREFIX}serial"): "1801550193",
        format!("{PREFIX}ticket"): "7T:MAA3AGYAMQBlAGQAZAAxAGQAZQAwADgAYgAxAGEAYwBkADYAOAA0ADcAMQA2ADkAOQBhADQAZgBiADMAOQAyADsAMgAwADgANwAzADEANQAwADQAMwA7AEMAdQBzAHQAMgA2ADcANQA5AA==",
        format!("{PREFIX}netserver_url"): "https://sod2.superoffice.com/Cust12345/Remote/Services88/",
        "iss": "SuperOffice AS", "aud": "spn:1801550193", "iat": NOW, "nbf": NOW - 60, "exp": NOW + 300,
    })
}

/// A validator that trusts `key` alone, at the fixed time `at`.
fn validator(key: &PartnerKey, at: DateTime<Utc>) -> JwtValidator {
    JwtValidator::new(
        KeySet::from_keys(vec![VerificationKey::new(
            Some("bench-key"),
            key.public_key().clone(),
        )]),
        Duration::from_secs(60),
    )
    .with_clock(Arc::new(FixedClock(at)))
}

fn credentials(c: &mut Criterion, key: &PartnerKey) {
    let key = key.clone();
    let token = SystemUserToken::parse("SuperOffice DevNet Node OIDC-8k8Q7DmBgo").unwrap();
    let at = DateTime::from_timestamp(NOW, 0).unwrap();
    c.bench_function("sign system user token (RSA 2048)", |b| {
        b.iter(|| sign_system_user_token(black_box(&key), black_box(&token), at))
    });

    let validator = validator(&key, at);
    let ctx = ContextId::parse("Cust12345").unwrap();
    let system_user = jwt(&key, &system_user_claims());
    let system_user_expectation = Expectation::SystemUser {
        serial: "1801550193".into(),
        context_id: ctx.clone(),
    };
    validator
        .validate_offline(&system_user, &system_user_expectation)
        .unwrap();
    c.bench_function("validate system-user JWT (RS256 2048)", |b| {
        b.iter(|| validator.validate_offline(black_box(&system_user), &system_user_expectation))
    });

    let id_token = jwt(
        &key,
        &json!({
            "sub": "tony@superoffice.com",
            format!("{PREFIX}ctx"): "Cust12345", format!("{PREFIX}serial"): "1801550193",
            format!("{PREFIX}associateid"): "5", format!("{PREFIX}is_administrator"): "True",
            format!("{PREFIX}company_name"): "Tonys Developer Network",
            format!("{PREFIX}email"): "tony@superoffice.com", format!("{PREFIX}upn"): "tony@superoffice.com",
            format!("{PREFIX}webapi_url"): "https://sod.superoffice.com/Cust12345/api/",
            format!("{PREFIX}netserver_url"): "https://sod.superoffice.com/Cust12345/Remote/Services88/",
            format!("{PREFIX}system_token"): "SuperOffice DevNet Node OIDC-8k8Q7DmBgo",
            "nonce": "637172620046685267.NmU2ZmRjNTctYjU0ZS00ZDRlLThkNjgtOTBlZmY2N2QyYjc3",
            "iss": "https://sod.superoffice.com", "aud": "6cf25376616343b38d14ddcd804f2891",
            "iat": NOW, "nbf": NOW - 60, "exp": NOW + 300,
        }),
    );
    let id_token_expectation = Expectation::IdToken {
        issuer: "https://sod.superoffice.com".into(),
        client_id: "6cf25376616343b38d14ddcd804f2891".into(),
        nonce: Some("637172620046685267.NmU2ZmRjNTctYjU0ZS00ZDRlLThkNjgtOTBlZmY2N2QyYjc3".into()),
    };
    validator
        .validate_offline(&id_token, &id_token_expectation)
        .unwrap();
    c.bench_function("validate id_token (RS256 2048)", |b| {
        b.iter(|| validator.validate_offline(black_box(&id_token), &id_token_expectation))
    });

    let cipher = Cipher::new(
        &KeyMaterial {
            version: 1,
            bytes: secrecy::SecretBox::new(Box::new([7u8; 32])),
        },
        None,
    );
    let plaintext = token.expose().as_bytes();
    c.bench_function("encrypt system user token (AES-256-GCM)", |b| {
        b.iter(|| {
            cipher
                .encrypt(
                    black_box(&ctx),
                    SecretKind::SystemUserToken,
                    black_box(plaintext),
                )
                .unwrap()
        })
    });
    let stored = cipher
        .encrypt(&ctx, SecretKind::SystemUserToken, plaintext)
        .unwrap();
    c.bench_function("decrypt system user token (AES-256-GCM)", |b| {
        b.iter(|| {
            cipher
                .decrypt_string(
                    black_box(&ctx),
                    SecretKind::SystemUserToken,
                    black_box(&stored),
                )
                .unwrap()
        })
    });
}

fn main() {
    let key = PartnerKey::from_private_key(rsa::PrivateKey::new(&mut rand::rng(), 2048).unwrap())
        .unwrap();
    // `cargo test` runs benches as tests (no `--bench`): criterion does one pass, without the floor.
    if std::env::args().any(|a| a == "--bench") {
        floor_report(
            &key,
            std::env::var("BENCH_PYCRYPTODOME").map_or(true, |v| v != "0"),
        );
    }
    let mut criterion = Criterion::default().configure_from_args();
    credentials(&mut criterion, &key);
    criterion.final_summary();
}

fn thread_cpu_ns() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    u64::try_from(now.tv_sec).unwrap() * 1_000_000_000 + u64::try_from(now.tv_nsec).unwrap()
}

/// Median per-operation CPU time (ms) of `batches` batches of `iterations` calls, on this thread's clock.
fn per_op_ms(batches: usize, iterations: u32, op: &dyn Fn()) -> f64 {
    let mut values: Vec<f64> = (0..batches)
        .map(|_| {
            let start = thread_cpu_ns();
            for _ in 0..iterations {
                op();
            }
            (thread_cpu_ns() - start) as f64 / 1e6 / f64::from(iterations)
        })
        .collect();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The project's RS256 next to OpenSSL and pycryptodome, all measured now on this machine: ours right
/// before and right after the floor (the median of both), so that the machine's drift hits both sides.
fn floor_report(key: &PartnerKey, with_pycryptodome: bool) {
    let token = SystemUserToken::parse("SuperOffice DevNet Node OIDC-8k8Q7DmBgo").unwrap();
    let at = DateTime::from_timestamp(NOW, 0).unwrap();
    let message = "SuperOffice DevNet Node OIDC-8k8Q7DmBgo.202701150800";
    let verifier = Rs256Verifier::new(key.public_key().clone());
    let signature = key.sign_sha256(message.as_bytes());
    let validator = validator(key, at);
    let system_user = jwt(key, &system_user_claims());
    let expectation = Expectation::SystemUser {
        serial: "1801550193".into(),
        context_id: ContextId::parse("Cust12345").unwrap(),
    };
    validator
        .validate_offline(&system_user, &expectation)
        .unwrap();
    let ours = || {
        [
            per_op_ms(7, 200, &|| {
                black_box(sign_system_user_token(key, &token, at));
            }),
            per_op_ms(7, 2000, &|| {
                black_box(verifier.verifies(message.as_bytes(), black_box(&signature)));
            }),
            per_op_ms(7, 2000, &|| {
                black_box(
                    validator
                        .validate_offline(black_box(&system_user), &expectation)
                        .ok(),
                );
            }),
            per_op_ms(3, 20, &|| {
                black_box(key.signer().sign_portable(black_box(message.as_bytes())));
            }),
            per_op_ms(3, 200, &|| {
                black_box(verifier.verifies_portable(message.as_bytes(), black_box(&signature)));
            }),
        ]
    };
    let before = ours();
    let openssl = floor::openssl_speed(2).unwrap();
    let peer = with_pycryptodome
        .then(|| {
            let venv = floor::Pycryptodome::install()?;
            let pem = key.to_pkcs1_pem().map_err(|e| e.to_string())?;
            let measured = venv.measure(pem.expose_secret(), message, 2.0)?;
            Ok::<_, String>((venv.version().to_owned(), measured))
        })
        .and_then(|r| {
            r.map_err(|e| println!("pycryptodome not measured: {e}"))
                .ok()
        });
    let after = ours();
    let mid = |i: usize| (before[i] + after[i]) / 2.0;
    println!("\n== RS256 against the floor, measured in this run (CPU time per operation) ==");
    println!(
        "{}; load average {}",
        floor::openssl_version(),
        floor::load()
    );
    println!(
        "OpenSSL speed rsa2048       sign {:.4} ms, verify {:.4} ms",
        openssl.sign_ms, openssl.verify_ms
    );
    if let Some((version, p)) = &peer {
        println!(
            "pycryptodome {version:<14} sign {:.4} ms, verify {:.4} ms",
            p.sign_ms, p.verify_ms
        );
    }
    let peer_sign = peer.as_ref().map(|(_, p)| p.sign_ms);
    let peer_verify = peer.as_ref().map(|(_, p)| p.verify_ms);
    let rows = [
        (
            "sign system user token (aws-lc-rs)",
            openssl.sign_ms,
            peer_sign,
        ),
        ("verify RS256 (aws-lc-rs)", openssl.verify_ms, peer_verify),
        (
            "validate system-user JWT (all checks)",
            openssl.verify_ms,
            peer_verify,
        ),
        ("sign, rsa crate (before)", openssl.sign_ms, peer_sign),
        (
            "verify RS256, rsa crate (before)",
            openssl.verify_ms,
            peer_verify,
        ),
    ];
    for (i, (name, floor_ms, peer_ms)) in rows.into_iter().enumerate() {
        let ms = mid(i);
        let peer = peer_ms.map_or(String::new(), |p| format!(", {:.2}× pycryptodome", ms / p));
        println!(
            "{name:<40} {ms:.4} ms = {:.2}× OpenSSL{peer}  (before {:.4}, after {:.4})",
            ms / floor_ms,
            before[i],
            after[i],
        );
    }
    println!(
        "targets: sign ≤ 1.5× OpenSSL sign ({:.2}×), validation ≤ 3× OpenSSL verify ({:.2}×)\n",
        mid(0) / openssl.sign_ms,
        mid(2) / openssl.verify_ms
    );
}
