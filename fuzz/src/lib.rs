//! What the JWT fuzz targets share: a validator pinned to the test certificate, at a fixed time, and the
//! expectations of each kind of token SuperOffice sends.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use chrono::DateTime;
use shared::clock::FixedClock;
use shared::crypto::partner_key::PartnerKey;
use shared::domain::ContextId;
use shared::jwt::{
    Certificate, DEFAULT_MAX_AGE, DEFAULT_REFETCH_COOLDOWN, Expectation, JwtValidator, KeySet,
};

/// The validator's "now": 2027-01-15T08:00:00Z.
pub const NOW: i64 = 1_800_000_000;
pub const ISSUER: &str = "https://sod.superoffice.com";
pub const CLIENT_ID: &str = "6cf25376616343b38d14ddcd804f2891";
pub const SERIAL: &str = "1801550193";
pub const CONTEXT: &str = "Cust12345";

/// The key behind `test-federated-login.pem`; it signs the tokens of the claims target.
pub static SIGNING_KEY: LazyLock<PartnerKey> = LazyLock::new(|| {
    PartnerKey::parse(include_str!(
        "../../crates/shared/testdata/localhost-private-key.xml"
    ))
    .expect("the test key parses")
});

pub static CERTIFICATE: LazyLock<Certificate> = LazyLock::new(|| {
    Certificate::from_pem(include_str!(
        "../../crates/shared/testdata/test-federated-login.pem"
    ))
    .expect("the test certificate parses")
});

/// Offline: the pinned test certificate only, never a network fetch.
pub static VALIDATOR: LazyLock<JwtValidator> = LazyLock::new(|| {
    let now = DateTime::from_timestamp(NOW, 0).expect("NOW is a valid time");
    JwtValidator::new(
        KeySet::new(
            Some(&CERTIFICATE),
            None,
            DEFAULT_REFETCH_COOLDOWN,
            DEFAULT_MAX_AGE,
        ),
        Duration::from_secs(60),
    )
    .with_clock(Arc::new(FixedClock(now)))
});

pub fn context() -> ContextId {
    ContextId::parse(CONTEXT).expect("a valid context id")
}

/// One expectation of each kind.
pub static EXPECTATIONS: LazyLock<[Expectation; 4]> = LazyLock::new(|| {
    [
        Expectation::IdToken {
            issuer: ISSUER.into(),
            client_id: CLIENT_ID.into(),
            nonce: Some("nonce-1".into()),
        },
        Expectation::SystemUser {
            serial: SERIAL.into(),
            context_id: context(),
        },
        Expectation::Legacy,
        Expectation::StateChange {
            context_id: context(),
            client_id: CLIENT_ID.into(),
            audience_required: true,
        },
    ]
});
