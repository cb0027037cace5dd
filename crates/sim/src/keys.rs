//! RSA keys: SuperID's token-signing key, partner public keys, and random token material.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::RngExt;
use rand::distr::Alphanumeric;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey, EncodeRsaPrivateKey};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey, LineEnding};
use rsa::signature::Verifier;
use rsa::traits::PublicKeyParts;
use rsa::{PrivateKey, PublicKey};
use serde::Serialize;
use sha1::{Digest, Sha1};
use sha2::Sha256;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("could not generate an RSA key: {0}")]
    Generate(#[from] rsa::Error),
    #[error("not a PEM RSA private key (PKCS#1 or PKCS#8)")]
    PrivatePem,
    #[error("not a PEM RSA public key (SPKI or PKCS#1)")]
    PublicPem,
    #[error("could not encode the key: {0}")]
    Encode(String),
}

/// The SuperID token-signing key ("SuperOfficeFederatedLogin"): RS256, `kid` = upper-hex SHA-1 of the
/// public key's SPKI DER, `x5t` = base64url of the same SHA-1.
pub struct SigningKey {
    kid: String,
    x5t: String,
    encoding: EncodingKey,
    jwk: serde_json::Value,
    public_pem: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh 2048-bit key.
    pub fn generate() -> Result<Self, KeyError> {
        let key = PrivateKey::new(&mut rand::rng(), 2048)?;
        Self::from_private(&key)
    }

    /// A PKCS#8 or PKCS#1 PEM private key.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let key = PrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| PrivateKey::from_pkcs1_pem(pem))
            .map_err(|_| KeyError::PrivatePem)?;
        Self::from_private(&key)
    }

    fn from_private(key: &PrivateKey) -> Result<Self, KeyError> {
        let der = key
            .to_pkcs1_der()
            .map_err(|e| KeyError::Encode(e.to_string()))?;
        let public = key.to_public_key();
        let spki = public
            .to_public_key_der()
            .map_err(|e| KeyError::Encode(e.to_string()))?;
        let thumbprint = Sha1::digest(spki.as_bytes());
        let kid = hex::encode_upper(thumbprint);
        let x5t = URL_SAFE_NO_PAD.encode(thumbprint);
        let jwk = serde_json::json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": kid,
            "x5t": x5t,
            "n": URL_SAFE_NO_PAD.encode(public.n_bytes()),
            "e": URL_SAFE_NO_PAD.encode(public.e_bytes()),
        });
        let public_pem = public
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| KeyError::Encode(e.to_string()))?;
        Ok(Self {
            kid,
            x5t,
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            jwk,
            public_pem,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The key's JWKS entry.
    pub fn jwk(&self) -> &serde_json::Value {
        &self.jwk
    }

    /// The public key as PEM SPKI.
    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    /// Signs `claims` as an RS256 JWT with `kid`, `x5t` and `typ` in the header.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("JWT".to_owned());
        header.kid = Some(self.kid.clone());
        header.x5t = Some(self.x5t.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
    }

    /// RS256 with this key under another name: `kid` as given, no `x5t`.
    pub fn sign_as<T: Serialize>(
        &self,
        kid: &str,
        claims: &T,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("JWT".to_owned());
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding)
    }
}

/// A partner's public key as registered in the Developer Portal: PEM SPKI or PKCS#1.
pub fn parse_public_key(pem: &str) -> Result<PublicKey, KeyError> {
    PublicKey::from_public_key_pem(pem.trim())
        .or_else(|_| PublicKey::from_pkcs1_pem(pem.trim()))
        .map_err(|_| KeyError::PublicPem)
}

/// Checks an RSASSA-PKCS1-v1_5 SHA-256 signature.
pub fn verify_rs256(key: &PublicKey, message: &[u8], signature: &[u8]) -> bool {
    let Ok(signature) = Signature::try_from(signature) else {
        return false;
    };
    VerifyingKey::<Sha256>::new(key.clone())
        .verify(message, &signature)
        .is_ok()
}

/// `len` random ASCII letters and digits.
pub fn random_alphanumeric(len: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// `len` random bytes in standard base64 (the alphabet of SuperOffice's opaque tokens).
pub fn random_base64(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    rand::fill(&mut bytes[..]);
    STANDARD.encode(bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use rsa::pkcs1v15::SigningKey as RsaSigningKey;
    use rsa::signature::{SignatureEncoding, Signer};

    #[test]
    fn signing_key_kid_is_upper_hex_sha1_and_x5t_its_base64url() {
        let key = SigningKey::generate().unwrap();
        assert_eq!(key.kid().len(), 40);
        assert!(
            key.kid()
                .chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        );
        let raw = hex::decode(key.kid()).unwrap();
        assert_eq!(key.jwk()["x5t"], URL_SAFE_NO_PAD.encode(raw));
        assert!(key.public_pem().starts_with("-----BEGIN PUBLIC KEY-----"));
    }

    #[test]
    fn verifies_pkcs1v15_sha256_signatures() {
        let private = PrivateKey::new(&mut rand::rng(), 1024).unwrap();
        let public = private.to_public_key();
        let sig = RsaSigningKey::<Sha256>::new(private).sign(b"token.202401011200");
        assert!(verify_rs256(
            &public,
            b"token.202401011200",
            &sig.to_bytes()
        ));
        assert!(!verify_rs256(
            &public,
            b"token.202401011201",
            &sig.to_bytes()
        ));
        assert!(!verify_rs256(&public, b"token.202401011200", b"short"));
    }

    #[test]
    fn parses_spki_and_pkcs1_public_keys() {
        let private = PrivateKey::new(&mut rand::rng(), 1024).unwrap();
        let public = private.to_public_key();
        let spki = public.to_public_key_pem(LineEnding::LF).unwrap();
        let pkcs1 = rsa::pkcs1::EncodeRsaPublicKey::to_pkcs1_pem(&public, LineEnding::LF).unwrap();
        assert_eq!(parse_public_key(&spki).unwrap(), public);
        assert_eq!(parse_public_key(&pkcs1).unwrap(), public);
        assert!(parse_public_key("nonsense").is_err());
    }

    #[test]
    fn random_material_has_the_requested_shape() {
        let s = random_alphanumeric(64);
        assert_eq!(s.len(), 64);
        assert!(s.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(STANDARD.decode(random_base64(30)).unwrap().len(), 30);
    }
}
