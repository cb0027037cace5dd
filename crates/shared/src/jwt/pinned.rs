//! The three "SuperOffice Federated Login" certificates, shipped in the binary (protocol §3.4).
//!
//! They sign id_tokens and system-user JWTs in their environment, and are the fallback when SuperID's
//! JWKS cannot be fetched. `custom` (the simulator, a proxy) has none: its keys come from its JWKS or from
//! a certificate the operator supplies.

use crate::environment::Environment;
use crate::jwt::certificate::{Certificate, CertificateError};

const SOD: &str = include_str!("../../certs/sod-federated-login.pem");
const STAGE: &str = include_str!("../../certs/stage-federated-login.pem");
const ONLINE: &str = include_str!("../../certs/online-federated-login.pem");

/// The PEM of the environment's federated-login certificate; `None` for `custom`.
fn pinned_pem(environment: Environment) -> Option<&'static str> {
    match environment {
        Environment::Sod => Some(SOD),
        Environment::QaOnline => Some(STAGE),
        Environment::Online => Some(ONLINE),
        Environment::Custom => None,
    }
}

/// The environment's federated-login certificate, parsed; `None` for `custom`.
pub fn pinned_certificate(
    environment: Environment,
) -> Result<Option<Certificate>, CertificateError> {
    pinned_pem(environment)
        .map(Certificate::from_pem)
        .transpose()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use rsa::traits::PublicKeyParts;

    use super::*;

    /// Protocol §3.4, re-computed from the PEM files with
    /// `openssl x509 -in certs/ENV-federated-login.pem -noout -fingerprint -sha1` (kid) and
    /// `openssl x509 -in … -outform DER | openssl dgst -sha1 -binary | base64 | tr '+/' '-_' | tr -d '='` (x5t).
    const TABLE: [(Environment, &str, &str); 3] = [
        (
            Environment::Sod,
            "16B7FB8C3F9AB06885A800C64E64C97C4AB5E98C",
            "Frf7jD-asGiFqADGTmTJfEq16Yw",
        ),
        (
            Environment::QaOnline,
            "484903A7732B928C7980A39D38E947EA119F1089",
            "SEkDp3Mrkox5gKOdOOlH6hGfEIk",
        ),
        (
            Environment::Online,
            "60B61583DBB2B7EEC46FD01EC0056E62451D61F3",
            "YLYVg9uyt-7Eb9AewAVuYkUdYfM",
        ),
    ];

    #[test]
    fn thumbprints_match_the_published_table() {
        for (environment, kid, x5t) in TABLE {
            let certificate = pinned_certificate(environment).unwrap().unwrap();
            assert_eq!(certificate.thumbprint().hex(), kid, "{environment}");
            assert_eq!(certificate.thumbprint().x5t(), x5t, "{environment}");
            assert_eq!(
                certificate.public_key().size(),
                256,
                "{environment} is 2048-bit"
            );
        }
        assert!(pinned_certificate(Environment::Custom).unwrap().is_none());
    }

    #[test]
    fn sod_key_is_the_published_jwks_modulus() {
        // Protocol §3.1: the `n` of SOD's JWKS entry.
        let n = "sY6PrEDYl7VuiTaFDCnTKYwcqq2y5J_vttZWf8QCV9oOXsI77lhCqO71SavHaoRQe3gkXsWIbgpv3hwmYyDiOiqf6XdJxVarmrvvjmXDQDl9mgUZ4visDhxNPFyWjsMiLQpVUlpO73ASy7-F_cuBCTQ4g9YDX7YBh94WL-EvA9ciB6ZtRsRS945ezrDMq8Q38RjpemXekc7ObwPXOX7PzFkGcdMWLHNm6Ktj2OFIqkuJYBRmOr85IlKcuek4x0LeVDj24Min_HG-4MqVpvDzF4m2Ib5AgFI3Akl9p7Z-dCSq6KTphu8hO_LmW-E93kz6weG7dZxt7otFps0j09py-Q";
        use base64::Engine as _;
        let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(n)
            .unwrap();
        let certificate = pinned_certificate(Environment::Sod).unwrap().unwrap();
        assert_eq!(
            certificate.public_key().n_bytes().as_ref(),
            expected.as_slice()
        );
    }
}
