//! Signing the system user token for one exchange (protocol §4.2):
//!
//! ```text
//! signThis    = token + "." + UTC yyyyMMddHHmm
//! signedToken = signThis + "." + base64(RSASSA-PKCS1-v1_5(SHA-256, key, UTF-8(signThis)))
//! ```
//!
//! Parsing and verifying the same shape is here too, for the simulator and for tests.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, NaiveDateTime, Utc};
use rsa::PublicKey;
use sha2::Sha256;

use crate::clock::Clock;
use crate::crypto::partner_key::PartnerKey;
use crate::domain::{SignedSystemToken, SystemUserToken};

/// `yyyyMMddHHmm` in chrono's notation: 24-hour clock, zero-padded, no separators.
pub const TIMESTAMP_FORMAT: &str = "%Y%m%d%H%M";

/// Signs `token` as of `at` (only the minute is kept).
pub fn sign_system_user_token(
    key: &PartnerKey,
    token: &SystemUserToken,
    at: DateTime<Utc>,
) -> SignedSystemToken {
    let sign_this = format!("{}.{}", token.expose(), at.format(TIMESTAMP_FORMAT));
    let signature = key.sign_sha256(sign_this.as_bytes());
    SignedSystemToken::new(format!("{sign_this}.{}", STANDARD.encode(signature)))
}

/// Signs `token` as of the clock's now: call immediately before each exchange, never reuse the result.
pub fn sign_now(key: &PartnerKey, token: &SystemUserToken, clock: &dyn Clock) -> SignedSystemToken {
    sign_system_user_token(key, token, clock.now())
}

/// Why a signed system user token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignedTokenError {
    #[error("signed system user token is not of the form token.yyyyMMddHHmm.signature")]
    Shape,
    #[error("signed system user token has an empty token part")]
    EmptyToken,
    #[error("signed system user token timestamp is not a valid UTC yyyyMMddHHmm")]
    Timestamp,
    #[error("signed system user token signature is not standard padded base64")]
    SignatureEncoding,
    #[error("signed system user token signature does not verify with the partner's public key")]
    SignatureMismatch,
}

/// The three parts of a signed system user token. `Debug` redacts the token.
#[derive(Clone, PartialEq, Eq)]
pub struct ParsedSignedToken<'a> {
    /// The system user token, exactly as signed.
    pub token: &'a str,
    /// The signing time, to the minute.
    pub timestamp: DateTime<Utc>,
    /// The raw RSA signature.
    pub signature: Vec<u8>,
    signed_part: &'a str,
}

impl fmt::Debug for ParsedSignedToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedSignedToken")
            .field("token", &"[REDACTED]")
            .field("timestamp", &self.timestamp)
            .field("signature_len", &self.signature.len())
            .finish()
    }
}

/// Splits `token.yyyyMMddHHmm.signature` from the right: the token itself may contain dots and spaces.
pub fn parse_signed_token(signed: &str) -> Result<ParsedSignedToken<'_>, SignedTokenError> {
    let (signed_part, signature) = signed.rsplit_once('.').ok_or(SignedTokenError::Shape)?;
    let (token, timestamp) = signed_part
        .rsplit_once('.')
        .ok_or(SignedTokenError::Shape)?;
    if token.is_empty() {
        return Err(SignedTokenError::EmptyToken);
    }
    if timestamp.len() != 12 || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignedTokenError::Timestamp);
    }
    let timestamp = NaiveDateTime::parse_from_str(timestamp, TIMESTAMP_FORMAT)
        .map_err(|_| SignedTokenError::Timestamp)?
        .and_utc();
    let signature = STANDARD
        .decode(signature)
        .map_err(|_| SignedTokenError::SignatureEncoding)?;
    Ok(ParsedSignedToken {
        token,
        timestamp,
        signature,
        signed_part,
    })
}

/// Parses `signed` and checks its signature with the partner's public key.
pub fn verify_signed_token<'a>(
    public_key: &PublicKey,
    signed: &'a str,
) -> Result<ParsedSignedToken<'a>, SignedTokenError> {
    let parsed = parse_signed_token(signed)?;
    public_key
        .pkcs1v15_verify::<Sha256>(parsed.signed_part.as_bytes(), &parsed.signature)
        .map_err(|_| SignedTokenError::SignatureMismatch)?;
    Ok(parsed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use chrono::TimeZone;
    use rand::RngExt;

    use rsa::traits::PublicKeyParts;

    use super::*;
    use crate::clock::FixedClock;

    fn key(name: &str) -> PartnerKey {
        let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
        PartnerKey::from_file(std::path::Path::new(&path)).unwrap()
    }

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    /// A key file, a token, a signing minute (y, m, d, h, min) and the signed token expected.
    type Golden = (&'static str, &'static str, Minute, &'static str);
    type Minute = (i32, u32, u32, u32, u32);

    // Expected values computed with Python `cryptography` 48 from the XML key (run in crates/shared):
    //   python3 -c 'import base64,sys,xml.etree.ElementTree as E;from cryptography.hazmat.primitives.asymmetric import rsa,padding;from cryptography.hazmat.primitives import hashes;v={c.tag:int.from_bytes(base64.b64decode(c.text),"big") for c in E.parse(sys.argv[1]).getroot()};k=rsa.RSAPrivateNumbers(v["P"],v["Q"],v["D"],v["DP"],v["DQ"],v["InverseQ"],rsa.RSAPublicNumbers(v["Exponent"],v["Modulus"])).private_key();m=sys.argv[2];print(m+"."+base64.b64encode(k.sign(m.encode(),padding.PKCS1v15(),hashes.SHA256())).decode())' testdata/KEY.xml "TOKEN.yyyyMMddHHmm"
    // and cross-checked with openssl, KEY.pem being the same key written by cryptography as PKCS#1 PEM:
    //   printf '%s' "TOKEN.yyyyMMddHHmm" | openssl dgst -sha256 -sign KEY.pem | base64 -w0
    const GOLDEN: [Golden; 5] = [
        (
            "partner-private-key.xml",
            "SuperOffice DevNet Node OIDC-8k8Q7DmBgo",
            (2024, 2, 29, 13, 59),
            "SuperOffice DevNet Node OIDC-8k8Q7DmBgo.202402291359.ft3dRdgeB6uBeJPwaKIDSor4mfZDwEcS9BOxUG8Om8tmiXf7xcPNaU+Fxq5i4sBLHgTR28TX02NZol+Waq3lt69J06KmaciGMoGG9zHeOoOJv2t3E1Ha6WDjinAE87T2cvX/5DcH0lwE2WNA7kMzki+FHFkssMldjfCD8IfzYOY=",
        ),
        (
            "service-console-key.xml",
            "Application Name-pzqc70604i",
            (2030, 12, 31, 23, 59),
            "Application Name-pzqc70604i.203012312359.zARGfjIlZ2eaZ3GoZZAPpEew+gQHYXDBCNOn4l1coi89jLmilJnNXyObRImub9VoyRiBzOnV64i7/xJrIuBEYtUxCnGw8wIkdMZB7/btUhIY6feTpk70qt3IMLBe2qQtoM+GRyOcFsHt+Llpf0iMUEtPN90cldo4YFDgQhZApcc=",
        ),
        (
            "localhost-private-key.xml",
            "Приложение Ärlig.app-ø 日本.v2-x",
            (2026, 1, 1, 0, 0),
            "Приложение Ärlig.app-ø 日本.v2-x.202601010000.gBwYtKzfvx35khxUkISAncbJhy2UHWgCStPuyCC0daoyi7USKHwPk2V22koz5h3wC+7YlXKdzWTOWW62hkm402ggtJyqRtqsxuKhaTKfKm6MfXh/gfRigTgdqOa/KpmdZhq1/2q+YOOTZhjarEemgPi3lW5KrgTKzyx0/cMQnZM=",
        ),
        // From here on (LARGE_GOLDEN), by the same commands, keys large enough for aws-lc-rs to sign with; the key files were
        // made with `openssl genrsa -traditional 2048` and `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072`.
        (
            "partner-private-key-2048.pem",
            "Partner App-2048-Ärlig.x",
            (2026, 12, 1, 8, 45),
            "Partner App-2048-Ärlig.x.202612010845.EsVoC59WdZc6WRWOoD37JRT3Htp73UItn28Jjak7Ym94qU7/gOdiAcS9zPwf9WlpRyhz3h8ZDJ7GzsflDUjKZOb4UdtgbtnwYFzft6yeZOy5PMYEnC0dL9ZBwkMxF5IJuTjID5hQdiPVn1mXTYhJGVfWlE+azuPKD/LBelpApv84YuebspgYItnwDAbxx8zArGmAb9DQa/ZytyVs+/GaqF7JRqS1YGGgGJSEV7VxgJnjngh2fz1k5z7HVVvs7TcPr7mO971Em1qo/cGiQ7h33onLAlEpxeafTMniUCmOO2j6hR807CoNipJQkJ8J+boWFtRp3Gzhs9R+cchDxW+jvw==",
        ),
        (
            "partner-private-key-3072.pem",
            "Partner App-2048-Ärlig.x",
            (2026, 12, 1, 8, 45),
            "Partner App-2048-Ärlig.x.202612010845.lN+XX1RCmUK+UIh3U6X2Y5QARKuyLz2L0BnE6edVg6Egxj/b0CSK37ivGCLMY/pXYxW7tXRBJ5wmnXMamhAywZzveO73lvhkyhRVOX3DZ5M8G9R6b1lCRg5+DpWHK/bfN1eX2yKfS1n31FjndOClbcMtwT819TsXzVgIdGV/V8xROGK7hvVBTp6KCsuCG7baKV+h9Xbv7eLWQNg54OD0c4slvZmN6TCiSKHk+YHiJQRz0P1NYnrsyMHdj5BPpyc+y/EMtocNGhKhgnNr2it/opMc5rxiWFrNnGk++1f4EYlmPPkGWGtaw63+b3IIXI5jhw1oGRBN0yq0Jz6KfsjCkqpgeMUCR6Yo1Ep5ZYqRPEyYe+LXJzIf4QEt/cOTX+BGKUiSknAqTdTzYlpHYdvPokOgNpnaQb3TtM4sZDJP8Y8mxn19dGNGQBX+Mjntz9yOLuGAvCBTpE5O6MF/1Xi5ctygwF1BHpU93UN2DfRtDftDjE9jl+QIzhEkpsJqZg5F",
        ),
    ];

    /// The keys large enough for aws-lc-rs to sign with.
    const LARGE_GOLDEN: &[Golden] = GOLDEN.split_at(3).1;

    #[test]
    fn signatures_match_python_and_openssl() {
        for (file, token, (y, mo, d, h, mi), expected) in GOLDEN {
            let signed = sign_system_user_token(
                &key(file),
                &SystemUserToken::parse(token).unwrap(),
                at(y, mo, d, h, mi),
            );
            assert_eq!(signed.expose(), expected, "{file}");
        }
    }

    /// A random system user token: `App Name-` and a suffix, of letters, digits, spaces, dots and non-ASCII.
    fn random_token(rng: &mut impl rand::Rng) -> String {
        const ALPHABET: &[char] = &[
            'a', 'Z', '0', '9', ' ', '.', '-', '_', 'Ä', 'ø', '日', 'Я', '+', '/', '=',
        ];
        let length = rng.random_range(1..120);
        let suffix: String = (0..length)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())])
            .collect();
        format!("App Name-{suffix}")
    }

    #[test]
    fn aws_lc_and_the_rsa_crate_sign_byte_identically() {
        for &(file, token, (y, mo, d, h, mi), expected) in LARGE_GOLDEN {
            let key = key(file);
            assert_eq!(key.signer().backend_name(), "aws-lc-rs", "{file}");
            let signed = sign_system_user_token(
                &key,
                &SystemUserToken::parse(token).unwrap(),
                at(y, mo, d, h, mi),
            );
            assert_eq!(signed.expose(), expected, "{file}");
            let (sign_this, _) = expected.rsplit_once('.').unwrap();
            assert_eq!(
                STANDARD.encode(key.signer().sign_portable(sign_this.as_bytes())),
                expected.rsplit_once('.').unwrap().1,
                "{file}"
            );
        }
        let mut rng = rand::rng();
        let generated =
            PartnerKey::from_private_key(rsa::PrivateKey::new(&mut rng, 2048).unwrap()).unwrap();
        let keys = [key(LARGE_GOLDEN[0].0), key(LARGE_GOLDEN[1].0), generated];
        for key in &keys {
            assert_eq!(key.signer().backend_name(), "aws-lc-rs");
            for _ in 0..100 {
                let token = SystemUserToken::parse(random_token(&mut rng)).unwrap();
                let minute = at(2020, 1, 1, 0, 0)
                    + chrono::Duration::minutes(rng.random_range(0..10_000_000));
                let signed = sign_system_user_token(key, &token, minute);
                let (sign_this, signature) = signed.expose().rsplit_once('.').unwrap();
                assert_eq!(
                    STANDARD.encode(key.signer().sign_portable(sign_this.as_bytes())),
                    signature,
                    "{sign_this}"
                );
                assert!(verify_signed_token(key.public_key(), signed.expose()).is_ok());
            }
        }
    }

    #[test]
    fn seconds_are_dropped_and_the_clock_is_used() {
        let key = key("partner-private-key.xml");
        let token = SystemUserToken::parse("SuperOffice DevNet Node OIDC-8k8Q7DmBgo").unwrap();
        let clock = FixedClock(Utc.with_ymd_and_hms(2024, 2, 29, 13, 59, 58).unwrap());
        assert_eq!(sign_now(&key, &token, &clock).expose(), GOLDEN[0].3);
    }

    #[test]
    fn signed_tokens_parse_from_the_right_and_verify() {
        for (file, token, (y, mo, d, h, mi), expected) in GOLDEN {
            let key = key(file);
            let parsed = verify_signed_token(key.public_key(), expected).unwrap();
            assert_eq!(parsed.token, token);
            assert_eq!(parsed.timestamp, at(y, mo, d, h, mi));
            // As long as the modulus: 128 bytes for the 1024-bit XML keys.
            assert_eq!(parsed.signature.len(), key.public_key().size(), "{file}");
            assert!(!format!("{parsed:?}").contains(token));
        }
    }

    #[test]
    fn verification_fails_with_another_key_or_changed_text() {
        let (_, _, _, signed) = GOLDEN[0];
        let other = key("service-console-key.xml");
        assert_eq!(
            verify_signed_token(other.public_key(), signed).unwrap_err(),
            SignedTokenError::SignatureMismatch
        );
        let owner = key("partner-private-key.xml");
        let later = signed.replace(".202402291359.", ".202402291400.");
        assert_eq!(
            verify_signed_token(owner.public_key(), &later).unwrap_err(),
            SignedTokenError::SignatureMismatch
        );
    }

    #[test]
    fn malformed_signed_tokens_are_named() {
        let cases = [
            ("no dots at all", SignedTokenError::Shape),
            ("one.dot", SignedTokenError::Shape),
            (".202401010000.AAAA", SignedTokenError::EmptyToken),
            ("tok.20240101000.AAAA", SignedTokenError::Timestamp),
            ("tok.202413010000.AAAA", SignedTokenError::Timestamp),
            ("tok.2024010100a0.AAAA", SignedTokenError::Timestamp),
            (
                "tok.202401010000.not base64!",
                SignedTokenError::SignatureEncoding,
            ),
            ("tok.202401010000.AAA", SignedTokenError::SignatureEncoding),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_signed_token(input).unwrap_err(), expected, "{input}");
        }
    }

    #[test]
    fn oversized_signed_tokens_with_dots_and_spaces_fail_fast() {
        let public = key("partner-private-key.xml").public_key().clone();
        let token = "My App v1.2 .x ".repeat(70_000);
        let started = std::time::Instant::now();
        let signed = format!("{token}.202401010000.{}", "QUFB".repeat(100_000));
        let parsed = parse_signed_token(&signed).unwrap();
        assert_eq!(parsed.token, token);
        assert_eq!(parsed.signature.len(), 300_000);
        assert_eq!(
            verify_signed_token(&public, &signed).unwrap_err(),
            SignedTokenError::SignatureMismatch
        );
        let spaced = format!("{token}. 202401010000.AAAA");
        assert_eq!(
            parse_signed_token(&spaced).unwrap_err(),
            SignedTokenError::Timestamp
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn signed_token_debug_is_redacted() {
        let signed = sign_system_user_token(
            &key("partner-private-key.xml"),
            &SystemUserToken::parse("App-secret").unwrap(),
            at(2024, 1, 1, 0, 0),
        );
        assert!(!format!("{signed:?}").contains("App-secret"));
    }
}
