//! X.509 certificates as SuperID uses them: only the RSA public key and the SHA-1 thumbprint matter.
//!
//! The certificate is not validated as a chain (SuperOffice's are SHA1withRSA under a private CA); it is
//! trusted because it is pinned in the binary, given by the operator, or served by SuperID's JWKS over TLS.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::PublicKey;
use rsa::pkcs8::der::{self, Decode, SliceReader, Tagged, asn1::AnyRef};
use rsa::pkcs8::spki::SubjectPublicKeyInfoRef;
use sha1::{Digest, Sha1};

use crate::crypto::rs256::Rs256Verifier;

/// Why a certificate could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("certificate is not PEM (-----BEGIN CERTIFICATE-----)")]
    NotPem,
    #[error("certificate is not valid DER: {0}")]
    Der(String),
    #[error(
        "certificate does not hold a usable RSA public key (RSA of 1024 to 8192 bits expected): {0}"
    )]
    PublicKey(String),
}

/// A certificate's SHA-1 thumbprint: the JWKS `kid` (upper-case hex) and `x5t` (base64url).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Thumbprint([u8; 20]);

impl Thumbprint {
    pub fn of_der(der: &[u8]) -> Self {
        Self(Sha1::digest(der).into())
    }

    /// Reads either form: 40 hex digits (any case) or 27 characters of base64url.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let mut bytes = [0u8; 20];
        if text.len() == 40 && hex::decode_to_slice(text, &mut bytes).is_ok() {
            return Some(Self(bytes));
        }
        let decoded = URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()?;
        bytes = decoded.try_into().ok()?;
        Some(Self(bytes))
    }

    /// Upper-case hex, as SuperID's `kid`.
    pub fn hex(&self) -> String {
        hex::encode_upper(self.0)
    }

    /// Unpadded base64url, as the `x5t` header and JWKS member.
    pub fn x5t(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }
}

impl fmt::Debug for Thumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Thumbprint({})", self.hex())
    }
}

impl fmt::Display for Thumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

/// A parsed certificate: its DER, thumbprint and RSA public key, the key ready to verify RS256. Cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct Certificate {
    der: Der,
    thumbprint: Thumbprint,
    key: Rs256Verifier,
}

/// A certificate's DER encoding. `Debug` gives its length.
#[derive(Clone)]
struct Der(Arc<[u8]>);

impl fmt::Debug for Der {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Der({} bytes)", self.0.len())
    }
}

impl Certificate {
    /// Reads the first `CERTIFICATE` block of a PEM text.
    pub fn from_pem(pem: &str) -> Result<Self, CertificateError> {
        let pem = pem.trim_start_matches('\u{feff}');
        let start = pem
            .find("-----BEGIN CERTIFICATE-----")
            .ok_or(CertificateError::NotPem)?;
        let end_marker = "-----END CERTIFICATE-----";
        let end = pem[start..]
            .find(end_marker)
            .ok_or(CertificateError::NotPem)?
            + start
            + end_marker.len();
        let (label, der) = der::pem::decode_vec(&pem.as_bytes()[start..end])
            .map_err(|_| CertificateError::NotPem)?;
        if label != "CERTIFICATE" {
            return Err(CertificateError::NotPem);
        }
        Self::from_der(&der)
    }

    /// Reads a DER certificate (as in a JWKS `x5c` entry, after base64).
    pub fn from_der(der: &[u8]) -> Result<Self, CertificateError> {
        let public_key = subject_public_key(der)?;
        Ok(Self {
            der: Der(Arc::from(der)),
            thumbprint: Thumbprint::of_der(der),
            key: Rs256Verifier::new(public_key),
        })
    }

    pub fn der(&self) -> &[u8] {
        &self.der.0
    }

    pub fn thumbprint(&self) -> Thumbprint {
        self.thumbprint
    }

    pub fn public_key(&self) -> &PublicKey {
        self.key.public_key()
    }

    /// The public key, prepared once to verify RS256 signatures.
    pub fn verifier(&self) -> &Rs256Verifier {
        &self.key
    }
}

/// Walks `Certificate → tbsCertificate` to `subjectPublicKeyInfo` (RFC 5280 §4.1) and reads it as RSA.
fn subject_public_key(der: &[u8]) -> Result<PublicKey, CertificateError> {
    let bad = |e: der::Error| CertificateError::Der(e.to_string());
    let certificate = AnyRef::from_der(der).map_err(bad)?;
    let mut outer = SliceReader::new(certificate.value()).map_err(bad)?;
    let tbs = AnyRef::decode(&mut outer).map_err(bad)?;
    let mut fields = SliceReader::new(tbs.value()).map_err(bad)?;
    let first = AnyRef::decode(&mut fields).map_err(bad)?;
    // Skip to the seventh field: [0] version (optional), serialNumber, signature, issuer, validity, subject.
    let skip = if first.tag().is_context_specific() {
        5
    } else {
        4
    };
    for _ in 0..skip {
        AnyRef::decode(&mut fields).map_err(bad)?;
    }
    let spki = SubjectPublicKeyInfoRef::decode(&mut fields).map_err(bad)?;
    PublicKey::try_from(spki).map_err(|e| CertificateError::PublicKey(e.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_reads_both_forms() {
        let hex = "16B7FB8C3F9AB06885A800C64E64C97C4AB5E98C";
        let from_hex = Thumbprint::parse(hex).unwrap();
        let from_lower = Thumbprint::parse(&hex.to_lowercase()).unwrap();
        let from_x5t = Thumbprint::parse("Frf7jD-asGiFqADGTmTJfEq16Yw").unwrap();
        assert_eq!(from_hex, from_lower);
        assert_eq!(from_hex, from_x5t);
        assert_eq!(from_x5t.hex(), hex);
        assert_eq!(from_hex.x5t(), "Frf7jD-asGiFqADGTmTJfEq16Yw");
        assert!(Thumbprint::parse("sim-key-1").is_none());
        assert!(Thumbprint::parse("").is_none());
    }

    #[test]
    fn test_certificate_holds_the_sample_key() {
        let pem = include_str!("../../testdata/test-federated-login.pem");
        let certificate = Certificate::from_pem(pem).unwrap();
        let key = crate::crypto::partner_key::PartnerKey::parse(include_str!(
            "../../testdata/localhost-private-key.xml"
        ))
        .unwrap();
        assert_eq!(certificate.public_key(), key.public_key());
        // openssl x509 -in testdata/test-federated-login.pem -noout -fingerprint -sha1
        assert_eq!(
            certificate.thumbprint().hex(),
            "D7DF365F1316AC0922CA96C3CD8BC67F606E0E4A"
        );
    }

    #[test]
    fn debug_names_the_certificate_without_its_bytes() {
        let pem = include_str!("../../testdata/test-federated-login.pem");
        let shown = format!("{:?}", Certificate::from_pem(pem).unwrap());
        assert!(
            shown.contains("D7DF365F1316AC0922CA96C3CD8BC67F606E0E4A") && shown.len() < 200,
            "{shown}"
        );
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(
            Certificate::from_pem("nothing").unwrap_err(),
            CertificateError::NotPem
        );
        let not_base64 = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert_eq!(
            Certificate::from_pem(not_base64).unwrap_err(),
            CertificateError::NotPem
        );
        assert!(matches!(
            Certificate::from_der(&[0x30, 0x03, 0x02, 0x01, 0x01]),
            Err(CertificateError::Der(_))
        ));
    }
}
