//! The claims checks behind a valid signature: the input is the payload, signed here with the pinned key so
//! that every input reaches issuer, audience, lifetime, nonce, tenant and typed-claim parsing.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use shared::jwt::{Expectation, SUPEROFFICE_ISSUER};
use superoffice_fuzz::{CERTIFICATE, EXPECTATIONS, NOW, SIGNING_KEY, VALIDATOR};

fuzz_target!(|payload: &[u8]| {
    let thumbprint = CERTIFICATE.thumbprint();
    let header = serde_json::json!({
        "alg": "RS256", "typ": "JWT", "kid": thumbprint.hex(), "x5t": thumbprint.x5t(),
    });
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = SIGNING_KEY.sign_sha256(signed.as_bytes());
    let token = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature));
    for expectation in EXPECTATIONS.iter() {
        match VALIDATOR.validate_offline(&token, expectation) {
            Ok(claims) => {
                // What a success promises, whatever the payload.
                assert!(
                    claims.token.expires_at.timestamp() >= NOW - 60,
                    "accepted an expired token"
                );
                if let Some(not_before) = claims.token.not_before {
                    assert!(
                        not_before.timestamp() <= NOW + 60,
                        "accepted a token not yet valid"
                    );
                }
                match expectation {
                    Expectation::IdToken {
                        client_id, nonce, ..
                    } => {
                        assert!(claims.token.audience.contains(client_id));
                        assert_eq!(claims.token.nonce.as_ref(), nonce.as_ref());
                        assert!(claims.user.subject.is_some());
                    }
                    Expectation::SystemUser { serial, context_id } => {
                        assert!(claims.token.audience.contains(&format!("spn:{serial}")));
                        assert_eq!(&claims.tenant.context_id, context_id);
                        assert!(claims.credentials.ticket.is_some());
                    }
                    Expectation::StateChange {
                        context_id,
                        client_id,
                        ..
                    } => {
                        assert_eq!(&claims.tenant.context_id, context_id);
                        assert!(claims.token.audience.contains(&format!("spn:{client_id}")));
                        assert!(claims.credentials.ticket.is_none() && claims.token.nonce.is_none());
                        assert!(claims.credentials.system_token.is_none());
                    }
                    Expectation::Legacy | Expectation::LegacySignIn { .. } => {}
                }
                let issuer = match expectation {
                    Expectation::IdToken { issuer, .. } => issuer.as_str(),
                    _ => SUPEROFFICE_ISSUER,
                };
                assert_eq!(claims.token.issuer.trim_end_matches('/'), issuer);
                assert!(claims.redacted_json().is_object());
            }
            Err(error) => assert!(!error.to_string().is_empty()),
        }
    }
});
