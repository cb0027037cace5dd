//! RSASSA-PKCS1-v1_5 with SHA-256 (RS256) through aws-lc-rs, the constant-time library rustls already links.
//!
//! The `rsa` crate still reads keys in every accepted format and writes them back (`convert-key`); the
//! arithmetic is done here, with each key prepared once. aws-lc-rs signs only with keys of 2048 to 8192 bits
//! and verifies keys of 1024 to 8192 bits: a key outside that range (SuperOffice's 1024-bit sample keys, for
//! signing) keeps the `rsa` crate's implementation, which gives the same bytes since PKCS#1 v1.5 is
//! deterministic.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ParsedPublicKey, RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY, RSA_PKCS1_SHA256, RsaKeyPair,
    RsaPublicKeyComponents,
};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::{PrivateKey, PublicKey};
use sha2::Sha256;

/// The modulus sizes aws-lc-rs signs with.
const SIGNING_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;
/// The modulus sizes aws-lc-rs verifies (the `LEGACY` in the algorithm's name is its sub-2048 part).
const VERIFYING_BITS: std::ops::RangeInclusive<usize> = 1024..=8192;

fn bits(public: &PublicKey) -> usize {
    public.n().bit_width_vartime() as usize
}

/// Which implementation does a key's private operation.
#[derive(Clone)]
enum SignerBackend {
    AwsLc(Arc<RsaKeyPair>),
    Portable,
}

/// A private key ready to sign RS256. `Debug` shows only which implementation signs.
#[derive(Clone)]
pub struct Rs256Signer {
    key: SigningKey<Sha256>,
    backend: SignerBackend,
}

impl fmt::Debug for Rs256Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rs256Signer({})", self.backend_name())
    }
}

/// aws-lc-rs refused a key the `rsa` crate accepted. Names the reason, never the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("aws-lc-rs refused the key: {0}")]
pub struct BackendRejected(String);

impl Rs256Signer {
    /// Prepares `key` once: through PKCS#1 DER into aws-lc-rs when its size allows, else the `rsa` crate.
    pub fn new(key: PrivateKey) -> Result<Self, BackendRejected> {
        let backend = if SIGNING_BITS.contains(&bits(key.as_ref())) {
            let der = key
                .to_pkcs1_der()
                .map_err(|_| BackendRejected("it cannot be encoded as PKCS#1 DER".to_owned()))?;
            let pair = RsaKeyPair::from_der(der.as_bytes())
                .map_err(|rejected| BackendRejected(rejected.to_string()))?;
            SignerBackend::AwsLc(Arc::new(pair))
        } else {
            SignerBackend::Portable
        };
        Ok(Self {
            key: SigningKey::new(key),
            backend,
        })
    }

    /// The private key as the `rsa` crate holds it, for encoding.
    pub fn private_key(&self) -> &PrivateKey {
        self.key.as_ref()
    }

    /// `"aws-lc-rs"` or `"rsa"`: which implementation signs.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            SignerBackend::AwsLc(_) => "aws-lc-rs",
            SignerBackend::Portable => "rsa",
        }
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 over `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match &self.backend {
            SignerBackend::AwsLc(pair) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                match pair.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut signature,
                ) {
                    Ok(()) => signature,
                    // aws-lc-rs fails only on an internal error (allocation); the same key signs portably.
                    Err(_) => self.sign_portable(message),
                }
            }
            SignerBackend::Portable => self.sign_portable(message),
        }
    }

    /// The same signature computed by the `rsa` crate, whatever the key's size.
    pub fn sign_portable(&self, message: &[u8]) -> Vec<u8> {
        self.key.sign(message).to_vec()
    }
}

/// A public key ready to verify RS256, parsed once. Cheap to clone.
#[derive(Clone)]
pub struct Rs256Verifier {
    public: PublicKey,
    parsed: Option<Arc<ParsedPublicKey>>,
}

impl fmt::Debug for Rs256Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Rs256Verifier(RSA {} bits, {})",
            bits(&self.public),
            self.backend_name()
        )
    }
}

impl Rs256Verifier {
    /// Parses `public` into aws-lc-rs when its size allows; other keys are verified by the `rsa` crate.
    pub fn new(public: PublicKey) -> Self {
        let parsed = VERIFYING_BITS
            .contains(&bits(&public))
            .then(|| {
                RsaPublicKeyComponents {
                    n: public.n_bytes(),
                    e: public.e_bytes(),
                }
                .to_parsed_public_key(&RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY)
                .ok()
            })
            .flatten()
            .map(Arc::new);
        Self { public, parsed }
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// `"aws-lc-rs"` or `"rsa"`: which implementation verifies.
    pub fn backend_name(&self) -> &'static str {
        if self.parsed.is_some() {
            "aws-lc-rs"
        } else {
            "rsa"
        }
    }

    /// Whether `signature` is this key's RSASSA-PKCS1-v1_5 SHA-256 signature over `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.parsed {
            Some(parsed) => parsed.verify_sig(message, signature).is_ok(),
            None => self.verifies_portable(message, signature),
        }
    }

    /// The same check done by the `rsa` crate.
    pub fn verifies_portable(&self, message: &[u8], signature: &[u8]) -> bool {
        self.public
            .pkcs1v15_verify::<Sha256>(message, signature)
            .is_ok()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use rand::RngExt;
    use rand::distr::Alphanumeric;

    use super::*;

    fn generated(bits: usize) -> PrivateKey {
        PrivateKey::new(&mut rand::rng(), bits).unwrap()
    }

    #[test]
    fn backends_follow_the_key_size() {
        let sample =
            crate::crypto::partner_key::PartnerKey::from_file(std::path::Path::new(&format!(
                "{}/testdata/partner-private-key.xml",
                env!("CARGO_MANIFEST_DIR")
            )))
            .unwrap();
        assert_eq!(sample.signer().backend_name(), "rsa");
        assert_eq!(
            Rs256Verifier::new(sample.public_key().clone()).backend_name(),
            "aws-lc-rs"
        );
        let large = Rs256Signer::new(generated(2048)).unwrap();
        assert_eq!(large.backend_name(), "aws-lc-rs");
        assert_eq!(format!("{large:?}"), "Rs256Signer(aws-lc-rs)");
    }

    #[test]
    fn both_verifiers_agree_on_good_and_bad_signatures() {
        let signer = Rs256Signer::new(generated(2048)).unwrap();
        let verifier = Rs256Verifier::new(signer.private_key().to_public_key());
        let other = Rs256Verifier::new(generated(2048).to_public_key());
        for length in [0usize, 1, 55, 56, 64, 1000] {
            let message: Vec<u8> = rand::rng().sample_iter(Alphanumeric).take(length).collect();
            let signature = signer.sign(&message);
            let mut flipped = signature.clone();
            flipped[length % signature.len()] ^= 0x01;
            let cases: [(&Rs256Verifier, &[u8], &[u8], bool); 5] = [
                (&verifier, &message, &signature, true),
                (&verifier, b"other", &signature, false),
                (&verifier, &message, &flipped, false),
                (&verifier, &message, &signature[1..], false),
                (&other, &message, &signature, false),
            ];
            for (key, message, signature, expected) in cases {
                assert_eq!(key.verifies(message, signature), expected);
                assert_eq!(key.verifies_portable(message, signature), expected);
            }
        }
    }
}
