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

    /// `testdata/signed-system-user-tokens.toml`: golden signatures and malformed signed tokens.
    #[derive(serde::Deserialize)]
    struct Fixture {
        golden: Vec<Golden>,
        malformed: Vec<Malformed>,
    }

    /// A key file of `testdata`, a token, the signing minute, the key's signing backend and the signed
    /// token expected.
    #[derive(serde::Deserialize)]
    struct Golden {
        key: String,
        token: String,
        minute: DateTime<Utc>,
        backend: String,
        signed: String,
    }

    /// A signed token that does not parse and the name of the [`SignedTokenError`] it is refused with.
    #[derive(serde::Deserialize)]
    struct Malformed {
        input: String,
        error: String,
    }

    fn fixture() -> Fixture {
        toml::from_str(include_str!(
            "../../testdata/signed-system-user-tokens.toml"
        ))
        .unwrap_or_else(|error| panic!("testdata/signed-system-user-tokens.toml: {error}"))
    }

    /// The golden signatures made with keys large enough for aws-lc-rs to sign with.
    fn large_golden() -> Vec<Golden> {
        let large: Vec<Golden> = fixture()
            .golden
            .into_iter()
            .filter(|golden| golden.backend == "aws-lc-rs")
            .collect();
        assert!(large.len() >= 2, "two large keys at least");
        large
    }

    #[test]
    fn signatures_match_python_and_openssl() {
        for golden in fixture().golden {
            let key = key(&golden.key);
            assert_eq!(
                key.signer().backend_name(),
                golden.backend,
                "{}",
                golden.key
            );
            let signed = sign_system_user_token(
                &key,
                &SystemUserToken::parse(golden.token).unwrap(),
                golden.minute,
            );
            assert_eq!(signed.expose(), golden.signed, "{}", golden.key);
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
        let large = large_golden();
        for golden in &large {
            let key = key(&golden.key);
            assert_eq!(key.signer().backend_name(), "aws-lc-rs", "{}", golden.key);
            let signed = sign_system_user_token(
                &key,
                &SystemUserToken::parse(golden.token.as_str()).unwrap(),
                golden.minute,
            );
            assert_eq!(signed.expose(), golden.signed, "{}", golden.key);
            let (sign_this, signature) = golden.signed.rsplit_once('.').unwrap();
            assert_eq!(
                STANDARD.encode(key.signer().sign_portable(sign_this.as_bytes())),
                signature,
                "{}",
                golden.key
            );
        }
        let mut rng = rand::rng();
        let generated =
            PartnerKey::from_private_key(rsa::PrivateKey::new(&mut rng, 2048).unwrap()).unwrap();
        let mut keys: Vec<PartnerKey> = large.iter().map(|golden| key(&golden.key)).collect();
        keys.push(generated);
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
        let golden = &fixture().golden[0];
        let key = key(&golden.key);
        let token = SystemUserToken::parse(golden.token.as_str()).unwrap();
        let clock = FixedClock(golden.minute + chrono::Duration::seconds(58));
        assert_eq!(sign_now(&key, &token, &clock).expose(), golden.signed);
    }

    #[test]
    fn signed_tokens_parse_from_the_right_and_verify() {
        for golden in fixture().golden {
            let key = key(&golden.key);
            let parsed = verify_signed_token(key.public_key(), &golden.signed)
                .unwrap_or_else(|error| panic!("{}: {error}", golden.key));
            assert_eq!(parsed.token, golden.token);
            assert_eq!(parsed.timestamp, golden.minute);
            // As long as the modulus: 128 bytes for the 1024-bit XML keys.
            assert_eq!(
                parsed.signature.len(),
                key.public_key().size(),
                "{}",
                golden.key
            );
            assert!(!format!("{parsed:?}").contains(&golden.token));
        }
    }

    #[test]
    fn verification_fails_with_another_key_or_changed_text() {
        let golden = &fixture().golden[0];
        let other = key("service-console-key.xml");
        assert_eq!(
            verify_signed_token(other.public_key(), &golden.signed).unwrap_err(),
            SignedTokenError::SignatureMismatch
        );
        let owner = key(&golden.key);
        let later = golden.signed.replace(".202402291359.", ".202402291400.");
        assert_ne!(later, golden.signed);
        assert_eq!(
            verify_signed_token(owner.public_key(), &later).unwrap_err(),
            SignedTokenError::SignatureMismatch
        );
    }

    #[test]
    fn malformed_signed_tokens_are_named() {
        let malformed = fixture().malformed;
        assert!(!malformed.is_empty());
        for case in malformed {
            match parse_signed_token(&case.input) {
                Ok(_) => panic!("{:?} parsed", case.input),
                Err(error) => assert_eq!(format!("{error:?}"), case.error, "{:?}", case.input),
            }
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
