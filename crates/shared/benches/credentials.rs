//! Credentials micro-benchmarks: signing, JWT validation and encryption at rest.
//! Run: cargo bench -p shared --bench credentials -- --warm-up-time 1 --measurement-time 3
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::DateTime;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use shared::clock::FixedClock;
use shared::config::KeyMaterial;
use shared::crypto::at_rest::{Cipher, SecretKind};
use shared::crypto::partner_key::PartnerKey;
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

fn credentials(c: &mut Criterion) {
    let key = PartnerKey::from_private_key(rsa::PrivateKey::new(&mut rand::rng(), 2048).unwrap())
        .unwrap();
    let token = SystemUserToken::parse("SuperOffice DevNet Node OIDC-8k8Q7DmBgo").unwrap();
    let at = DateTime::from_timestamp(NOW, 0).unwrap();
    c.bench_function("sign system user token (RSA 2048)", |b| {
        b.iter(|| sign_system_user_token(black_box(&key), black_box(&token), at))
    });

    let validator = JwtValidator::new(
        KeySet::from_keys(vec![VerificationKey::new(
            Some("bench-key"),
            key.public_key().clone(),
        )]),
        Duration::from_secs(60),
    )
    .with_clock(Arc::new(FixedClock(at)));
    let ctx = ContextId::parse("Cust12345").unwrap();
    let system_user = jwt(
        &key,
        &json!({
            format!("{PREFIX}ctx"): "Cust12345", format!("{PREFIX}serial"): "1801550193",
            format!("{PREFIX}ticket"): "7T:MAA3AGYAMQBlAGQAZAAxAGQAZQAwADgAYgAxAGEAYwBkADYAOAA0ADcAMQA2ADkAOQBhADQAZgBiADMAOQAyADsAMgAwADgANwAzADEANQAwADQAMwA7AEMAdQBzAHQAMgA2ADcANQA5AA==",
            format!("{PREFIX}netserver_url"): "https://sod2.superoffice.com/Cust12345/Remote/Services88/",
            "iss": "SuperOffice AS", "aud": "spn:1801550193", "iat": NOW, "nbf": NOW - 60, "exp": NOW + 300,
        }),
    );
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

criterion_group!(benches, credentials);
criterion_main!(benches);
