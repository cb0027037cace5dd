//! `JwtValidator::validate_offline` on whole untrusted tokens: size check, splitting, base64url, the header's
//! JSON and algorithm, key selection by kid/x5t, and the signature check, with every kind of expectation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use superoffice_fuzz::{EXPECTATIONS, VALIDATOR};

fuzz_target!(|data: &[u8]| {
    // Tokens arrive as text (a form field, a JSON string, a SOAP element).
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    for expectation in EXPECTATIONS.iter() {
        if let Err(error) = VALIDATOR.validate_offline(token, expectation) {
            assert!(!error.to_string().is_empty());
        }
    }
});
