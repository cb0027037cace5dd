//! Signed system user tokens `token.yyyyMMddHHmm.base64(signature)`: the simulator's parser (what SuperID's
//! stand-in accepts) against the client's `parse_signed_token`, which must agree on every input, and the
//! client's signature check with the partner's public key.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use shared::crypto::system_user_token::{
    SignedTokenError, parse_signed_token, verify_signed_token,
};
use superoffice_fuzz::SIGNING_KEY;
use superoffice_sim::exchange::{parse_timestamp, split};

fuzz_target!(|data: &[u8]| {
    let Ok(signed) = std::str::from_utf8(data) else {
        return;
    };
    let simulator = split(signed).and_then(|parts| {
        let timestamp = parse_timestamp(parts.timestamp)?;
        let signature = STANDARD.decode(parts.signature).ok()?;
        Some((parts, timestamp, signature))
    });
    match (parse_signed_token(signed), &simulator) {
        (Ok(client), Some((parts, timestamp, signature))) => {
            assert_eq!(client.token, parts.token);
            assert_eq!(client.timestamp, *timestamp);
            assert_eq!(&client.signature, signature);
        }
        // The simulator lets an empty token through to its grant check, which refuses it.
        (Err(SignedTokenError::EmptyToken), Some((parts, ..))) => assert!(parts.token.is_empty()),
        (Ok(_), None) => panic!("the client accepts a signed token the simulator cannot parse"),
        (Err(error), Some(_)) => {
            panic!("the simulator parses a signed token the client refuses: {error}")
        }
        (Err(_), None) => {}
    }
    if let Ok(parsed) = verify_signed_token(SIGNING_KEY.public_key(), signed) {
        assert!(!parsed.token.is_empty());
    }
});
