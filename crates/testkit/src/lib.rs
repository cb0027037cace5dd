//! The test kit of every crate's tests: per-test databases ([`db`]), how tests find Postgres
//! ([`postgres`]), tenant seeding ([`seed`]), the test keys and fixtures (this module and `data/`), a
//! cookie-keeping web user ([`user`]), partner-web with or without the simulator ([`app`]), and table
//! snapshots ([`snapshot`]).

pub mod app;
pub mod db;
pub mod postgres;
pub mod seed;
pub mod snapshot;
pub mod user;

use std::path::PathBuf;

pub use app::{TestApp, TestAppBuilder};
pub use db::TestDatabase;
pub use postgres::PrivateCluster;
pub use user::{WebUser, bare_client, location, session_cookie};

/// The application the simulator registers for tests (`SimConfig::for_tests`).
pub const CLIENT_ID: &str = superoffice_sim::TEST_CLIENT_ID;
pub const CLIENT_SECRET: &str = superoffice_sim::TEST_CLIENT_SECRET;
/// `encryption.key` of every test: fixed, public, for tests only.
pub const ENCRYPTION_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
/// `web.session_key` of every test: fixed, public, for tests only.
pub const SESSION_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\
                               202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// A fixture of the kit's `data/` (see its README).
pub fn data(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/data")).join(name)
}

/// A fixture of `crates/shared/testdata` (partner keys and certificates of the protocol's unit tests).
pub fn shared_testdata(name: &str) -> PathBuf {
    repo_root().join("crates/shared/testdata").join(name)
}

/// A fixture's text.
pub fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The partner key the simulator knows for the test application: SuperOffice's public ServiceConsole
/// sample key, as SPKI PEM.
pub fn partner_public_key_pem() -> String {
    read(&data("service-console-public-key.pem"))
}

/// The test application's partner private key (`superoffice.private_key_file` in tests).
pub fn partner_key_file() -> PathBuf {
    shared_testdata("partner-private-key.xml")
}

/// The simulator's SuperID signing key (`[superid] signing_key_file`), so tests do not generate one each.
pub fn superid_signing_key_file() -> PathBuf {
    data("superid-signing-key.pem")
}

/// The cipher of [`ENCRYPTION_KEY`].
pub fn cipher() -> shared::crypto::at_rest::Cipher {
    use shared::config::KeyMaterial;
    use shared::crypto::at_rest::Cipher;
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&ENCRYPTION_KEY[2 * i..2 * i + 2], 16)
            .unwrap_or_else(|e| panic!("ENCRYPTION_KEY: {e}"));
    }
    Cipher::new(
        &KeyMaterial {
            version: 1,
            bytes: secrecy::SecretBox::new(Box::new(key)),
        },
        None,
    )
}

/// A port free at the time of asking, for a server that must be named before it starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}
