//! `PartnerKey::parse`: RSA XML, PKCS#1 PEM and PKCS#8 PEM private keys, as an operator's key file holds them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::crypto::partner_key::PartnerKey;

fuzz_target!(|data: &[u8]| {
    // Key files are read as UTF-8 (`PartnerKey::from_file`); other bytes never reach the parser.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match PartnerKey::parse(text) {
        Ok(key) => {
            // An accepted key signs with a signature of its modulus' size and converts losslessly.
            let signature = key.sign_sha256(b"fuzz");
            assert_eq!(signature.len(), key.bits().div_ceil(8));
            let pem = key
                .to_pkcs8_pem()
                .expect("an accepted key encodes as PKCS#8");
            let again = PartnerKey::parse(secrecy::ExposeSecret::expose_secret(&pem))
                .expect("a key's own PKCS#8 PEM reads back");
            assert_eq!(again.public_key(), key.public_key());
        }
        Err(error) => {
            let message = error.to_string();
            assert!(!message.is_empty());
        }
    }
});
