//! Encryption at rest for system user tokens and tickets.
//!
//! AES-256-GCM with a random 96-bit nonce per value. The associated data names what the value is (a system
//! user token or a ticket) and whose (the tenant's context identifier), so a value copied to another tenant's
//! row, or from the token column into the ticket column, does not decrypt. The key version travels beside the
//! bytes (its own column) so keys can be rotated: values under the previous key still decrypt, and
//! `reencrypt` moves them to the current one.
//!
//! Two formats, told apart by their first bytes:
//! - format 2 (every value written now): `"\0AR2" || nonce || ciphertext+tag`, associated data
//!   `partner-at-rest/2\0{token|ticket}\0{context id}`;
//! - format 1 (values written before format 2 existed): `nonce || ciphertext+tag`, associated data the context
//!   identifier only. Still read, never written; `partner-service rotate-encryption-key` rewrites them as
//!   format 2 (`reencrypt`).
//!
//! A format-2 value is only ever opened with format-2 associated data, so moving a new value into the other
//! column fails. A value that carries the format-2 marker but does not open is tried as format 1 as well,
//! because a format-1 nonce may start with the marker by chance (1 in 2^32); that attempt cannot open a real
//! format-2 value (its nonce and associated data differ), so it gives an attacker no way around the kind check.
//! Format-1 values keep their weaker binding (tenant only) until they are rewritten.

use std::fmt;

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use secrecy::{ExposeSecret, SecretSlice, SecretString};

use crate::domain::ContextId;

/// A 32-byte AES key with its version, read from 64 hex characters.
pub struct KeyMaterial {
    pub version: i16,
    pub bytes: secrecy::SecretBox<[u8; 32]>,
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyMaterial(version {}, [REDACTED])", self.version)
    }
}

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// The first bytes of every format-2 value.
const FORMAT_2: &[u8; 4] = b"\0AR2";

/// What a stored secret is; part of its associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// `tenants.system_token_ciphertext`.
    SystemUserToken,
    /// `tickets.ciphertext`.
    Ticket,
}

impl SecretKind {
    fn label(self) -> &'static str {
        match self {
            Self::SystemUserToken => "token",
            Self::Ticket => "ticket",
        }
    }
}

/// The format a stored value was written in (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Tenant-only associated data; read, never written.
    Legacy,
    /// Kind and tenant in the associated data.
    Current,
}

fn associated_data(tenant: &ContextId, kind: SecretKind) -> Vec<u8> {
    let mut aad = Vec::with_capacity(32 + tenant.as_str().len());
    aad.extend_from_slice(b"partner-at-rest/2\0");
    aad.extend_from_slice(kind.label().as_bytes());
    aad.push(0);
    aad.extend_from_slice(tenant.as_str().as_bytes());
    aad
}

/// Why a value could not be encrypted or decrypted. Never carries the value.
#[derive(Debug, thiserror::Error)]
pub enum AtRestError {
    #[error(
        "stored value is under encryption key version {0}, which is neither the current nor the previous key; \
         configure encryption.previous_key with that version"
    )]
    UnknownKeyVersion(i16),
    #[error(
        "stored value is {0} bytes, shorter than a nonce and tag; it is not an encrypted value"
    )]
    TooShort(usize),
    #[error(
        "stored value does not decrypt under key version {0}: it was altered, belongs to another tenant or \
         another column, or was encrypted with a different key of that version"
    )]
    Authentication(i16),
    #[error("decrypted value is not UTF-8 text")]
    NotText,
    #[error("the system's random number generator failed")]
    Random,
    #[error("value is too long to encrypt")]
    TooLong,
}

/// An encrypted value and the version of the key that encrypted it.
#[derive(Clone, PartialEq, Eq)]
pub struct Encrypted {
    pub key_version: i16,
    /// `nonce (12 bytes) || ciphertext || tag (16 bytes)`.
    pub bytes: Vec<u8>,
}

impl fmt::Debug for Encrypted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Encrypted(key version {}, {} bytes)",
            self.key_version,
            self.bytes.len()
        )
    }
}

struct VersionedKey {
    version: i16,
    aead: Aes256Gcm,
}

impl VersionedKey {
    fn new(material: &KeyMaterial) -> Self {
        let key = Key::<Aes256Gcm>::from(*material.bytes.expose_secret());
        Self {
            version: material.version,
            aead: Aes256Gcm::new(&key),
        }
    }
}

/// Encrypts under the current key; decrypts under the current or the previous key.
pub struct Cipher {
    current: VersionedKey,
    previous: Option<VersionedKey>,
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cipher")
            .field("current_version", &self.current.version)
            .field(
                "previous_version",
                &self.previous.as_ref().map(|k| k.version),
            )
            .finish()
    }
}

impl Cipher {
    pub fn new(current: &KeyMaterial, previous: Option<&KeyMaterial>) -> Self {
        Self {
            current: VersionedKey::new(current),
            previous: previous.map(VersionedKey::new),
        }
    }

    /// The version new values are stored under.
    pub fn current_version(&self) -> i16 {
        self.current.version
    }

    /// Encrypts `plaintext`, a `kind` of `tenant`, under the current key with a fresh random nonce (format 2).
    pub fn encrypt(
        &self,
        tenant: &ContextId,
        kind: SecretKind,
        plaintext: &[u8],
    ) -> Result<Encrypted, AtRestError> {
        self.seal(FORMAT_2, &associated_data(tenant, kind), plaintext)
    }

    /// `prefix || nonce || ciphertext+tag` under the current key with a fresh random nonce.
    fn seal(&self, prefix: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Encrypted, AtRestError> {
        let nonce = Nonce::try_generate().map_err(|_| AtRestError::Random)?;
        self.seal_with(prefix, aad, plaintext, &nonce)
    }

    /// As `seal`, with the given nonce.
    fn seal_with(
        &self,
        prefix: &[u8],
        aad: &[u8],
        plaintext: &[u8],
        nonce: &aes_gcm::aead::Nonce<Aes256Gcm>,
    ) -> Result<Encrypted, AtRestError> {
        let sealed = self
            .current
            .aead
            .encrypt(
                nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| AtRestError::TooLong)?;
        let mut bytes = Vec::with_capacity(prefix.len() + NONCE_LEN + sealed.len());
        bytes.extend_from_slice(prefix);
        bytes.extend_from_slice(nonce.as_slice());
        bytes.extend_from_slice(&sealed);
        Ok(Encrypted {
            key_version: self.current.version,
            bytes,
        })
    }

    /// Decrypts a `kind` stored for `tenant`, with the key its version names.
    pub fn decrypt(
        &self,
        tenant: &ContextId,
        kind: SecretKind,
        value: &Encrypted,
    ) -> Result<SecretSlice<u8>, AtRestError> {
        self.open(tenant, kind, value)
            .map(|(plaintext, _)| plaintext)
    }

    /// Decrypts a value that was text (a token or a ticket).
    pub fn decrypt_string(
        &self,
        tenant: &ContextId,
        kind: SecretKind,
        value: &Encrypted,
    ) -> Result<SecretString, AtRestError> {
        let bytes = self.decrypt(tenant, kind, value)?;
        let text = std::str::from_utf8(bytes.expose_secret()).map_err(|_| AtRestError::NotText)?;
        Ok(SecretString::from(text))
    }

    /// The value encrypted again under the current key in format 2 when it is under an older key or in
    /// format 1; `None` when it is current already. It is decrypted either way, with whichever key and
    /// format it has: a value that does not decrypt is an error.
    pub fn reencrypt(
        &self,
        tenant: &ContextId,
        kind: SecretKind,
        value: &Encrypted,
    ) -> Result<Option<Encrypted>, AtRestError> {
        let (plaintext, format) = self.open(tenant, kind, value)?;
        if value.key_version == self.current.version && format == Format::Current {
            return Ok(None);
        }
        self.encrypt(tenant, kind, plaintext.expose_secret())
            .map(Some)
    }

    /// The plaintext and the format it was stored in.
    fn open(
        &self,
        tenant: &ContextId,
        kind: SecretKind,
        value: &Encrypted,
    ) -> Result<(SecretSlice<u8>, Format), AtRestError> {
        let key = self.key(value.key_version)?;
        if let Some(rest) = value.bytes.strip_prefix(FORMAT_2.as_slice())
            && let Ok(plaintext) = open_with(key, rest, &associated_data(tenant, kind))
        {
            return Ok((plaintext, Format::Current));
        }
        if value.bytes.len() < NONCE_LEN + TAG_LEN {
            return Err(AtRestError::TooShort(value.bytes.len()));
        }
        open_with(key, &value.bytes, tenant.as_str().as_bytes())
            .map(|plaintext| (plaintext, Format::Legacy))
            .map_err(|()| AtRestError::Authentication(value.key_version))
    }

    fn key(&self, version: i16) -> Result<&VersionedKey, AtRestError> {
        if version == self.current.version {
            return Ok(&self.current);
        }
        self.previous
            .as_ref()
            .filter(|k| k.version == version)
            .ok_or(AtRestError::UnknownKeyVersion(version))
    }
}

/// Values that belong to something other than a tenant (partner-web's sessions): the caller names the
/// associated data, which should say what the value is and which row holds it.
impl Cipher {
    /// Encrypts `plaintext` bound to `associated_data` under the current key with a fresh random nonce.
    pub fn encrypt_bound(
        &self,
        associated_data: &[u8],
        plaintext: &[u8],
    ) -> Result<Encrypted, AtRestError> {
        self.seal(&[], associated_data, plaintext)
    }

    /// Decrypts a value encrypted by `encrypt_bound` with the same associated data.
    pub fn decrypt_bound(
        &self,
        associated_data: &[u8],
        value: &Encrypted,
    ) -> Result<SecretSlice<u8>, AtRestError> {
        let key = self.key(value.key_version)?;
        if value.bytes.len() < NONCE_LEN + TAG_LEN {
            return Err(AtRestError::TooShort(value.bytes.len()));
        }
        open_with(key, &value.bytes, associated_data)
            .map_err(|()| AtRestError::Authentication(value.key_version))
    }
}

/// `nonce || ciphertext+tag` opened with `aad`.
fn open_with(key: &VersionedKey, bytes: &[u8], aad: &[u8]) -> Result<SecretSlice<u8>, ()> {
    if bytes.len() < NONCE_LEN + TAG_LEN {
        return Err(());
    }
    let (nonce, sealed) = bytes.split_at(NONCE_LEN);
    let nonce = Nonce::try_from(nonce).map_err(|_| ())?;
    key.aead
        .decrypt(&nonce, Payload { msg: sealed, aad })
        .map(SecretSlice::from)
        .map_err(|_| ())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn material(version: i16, fill: u8) -> KeyMaterial {
        KeyMaterial {
            version,
            bytes: secrecy::SecretBox::new(Box::new([fill; 32])),
        }
    }

    fn tenant(id: &str) -> ContextId {
        ContextId::parse(id).unwrap()
    }

    const TOKEN: &[u8] = b"SuperOffice DevNet Node OIDC-8k8Q7DmBgo";
    const K: SecretKind = SecretKind::SystemUserToken;

    #[test]
    fn round_trip_with_fresh_nonces() {
        let cipher = Cipher::new(&material(1, 7), None);
        let ctx = tenant("Cust12345");
        let a = cipher.encrypt(&ctx, K, TOKEN).unwrap();
        let b = cipher.encrypt(&ctx, K, TOKEN).unwrap();
        assert_eq!(a.key_version, 1);
        assert_eq!(
            a.bytes.len(),
            FORMAT_2.len() + NONCE_LEN + TOKEN.len() + TAG_LEN
        );
        assert_eq!(&a.bytes[..FORMAT_2.len()], FORMAT_2);
        let nonce = FORMAT_2.len()..FORMAT_2.len() + NONCE_LEN;
        assert_ne!(a.bytes[nonce.clone()], b.bytes[nonce]);
        assert!(!a.bytes.windows(TOKEN.len()).any(|w| w == TOKEN));
        assert_eq!(cipher.decrypt(&ctx, K, &a).unwrap().expose_secret(), TOKEN);
        let text = cipher.decrypt_string(&ctx, K, &b).unwrap();
        assert_eq!(text.expose_secret().as_bytes(), TOKEN);
        assert!(!format!("{a:?}").contains("Super"));
    }

    #[test]
    fn another_tenant_cannot_decrypt() {
        let cipher = Cipher::new(&material(1, 7), None);
        let value = cipher.encrypt(&tenant("Cust1"), K, TOKEN).unwrap();
        let err = cipher.decrypt(&tenant("Cust2"), K, &value).unwrap_err();
        assert!(matches!(err, AtRestError::Authentication(1)), "{err}");
        assert!(err.to_string().contains("another tenant"));
    }

    /// Why `reader` refuses a token that `writer` encrypted for the same tenant.
    fn refusal(writer: &Cipher, reader: &Cipher) -> AtRestError {
        let ctx = tenant("Cust1");
        let value = writer.encrypt(&ctx, K, TOKEN).unwrap();
        reader.decrypt(&ctx, K, &value).unwrap_err()
    }

    #[test]
    fn another_key_of_the_same_version_cannot_decrypt() {
        let err = refusal(
            &Cipher::new(&material(1, 7), None),
            &Cipher::new(&material(1, 8), None),
        );
        assert!(matches!(err, AtRestError::Authentication(1)), "{err}");
    }

    #[test]
    fn tampering_is_detected() {
        let cipher = Cipher::new(&material(1, 7), None);
        let ctx = tenant("Cust1");
        let value = cipher.encrypt(&ctx, K, TOKEN).unwrap();
        for index in [
            0,
            FORMAT_2.len(),
            FORMAT_2.len() + NONCE_LEN,
            value.bytes.len() - 1,
        ] {
            let mut tampered = value.clone();
            tampered.bytes[index] ^= 0x01;
            assert!(matches!(
                cipher.decrypt(&ctx, K, &tampered),
                Err(AtRestError::Authentication(1))
            ));
        }
        let truncated = Encrypted {
            key_version: 1,
            bytes: value.bytes[..NONCE_LEN + TAG_LEN - 1].to_vec(),
        };
        assert!(matches!(
            cipher.decrypt(&ctx, K, &truncated),
            Err(AtRestError::TooShort(27))
        ));
    }

    #[test]
    fn unknown_version_is_named() {
        let err = refusal(
            &Cipher::new(&material(3, 7), None),
            &Cipher::new(&material(4, 7), Some(&material(2, 7))),
        );
        assert!(matches!(err, AtRestError::UnknownKeyVersion(3)));
        assert!(err.to_string().contains("version 3"));
    }

    #[test]
    fn rotation_reads_old_values_and_moves_them_to_the_new_key() {
        let ctx = tenant("Cust42");
        let old = Cipher::new(&material(1, 7), None);
        let stored = old.encrypt(&ctx, K, TOKEN).unwrap();
        assert!(old.reencrypt(&ctx, K, &stored).unwrap().is_none());

        let rotated = Cipher::new(&material(2, 9), Some(&material(1, 7)));
        assert_eq!(rotated.current_version(), 2);
        assert_eq!(
            rotated.decrypt(&ctx, K, &stored).unwrap().expose_secret(),
            TOKEN
        );

        let moved = rotated.reencrypt(&ctx, K, &stored).unwrap().unwrap();
        assert_eq!(moved.key_version, 2);
        assert!(rotated.reencrypt(&ctx, K, &moved).unwrap().is_none());
        assert_eq!(
            rotated.decrypt(&ctx, K, &moved).unwrap().expose_secret(),
            TOKEN
        );
        let new_only = Cipher::new(&material(2, 9), None);
        assert_eq!(
            new_only.decrypt(&ctx, K, &moved).unwrap().expose_secret(),
            TOKEN
        );
        assert!(matches!(
            old.decrypt(&ctx, K, &moved),
            Err(AtRestError::UnknownKeyVersion(2))
        ));
    }

    #[test]
    fn bound_values_decrypt_only_with_their_associated_data() {
        let cipher = Cipher::new(&material(1, 7), None);
        let sealed = cipher.encrypt_bound(b"session:a", b"state").unwrap();
        assert_eq!(
            cipher
                .decrypt_bound(b"session:a", &sealed)
                .unwrap()
                .expose_secret(),
            b"state"
        );
        assert!(matches!(
            cipher.decrypt_bound(b"session:b", &sealed),
            Err(AtRestError::Authentication(1))
        ));
    }

    /// Format 1, as values were written before the kind was part of the associated data.
    fn legacy_encrypt(cipher: &Cipher, tenant: &ContextId, plaintext: &[u8]) -> Encrypted {
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce);
        legacy_encrypt_with(cipher, tenant, plaintext, nonce)
    }

    fn legacy_encrypt_with(
        cipher: &Cipher,
        tenant: &ContextId,
        plaintext: &[u8],
        nonce: [u8; NONCE_LEN],
    ) -> Encrypted {
        let nonce = Nonce::try_from(&nonce[..]).unwrap();
        cipher
            .seal_with(&[], tenant.as_str().as_bytes(), plaintext, &nonce)
            .unwrap()
    }

    #[test]
    fn a_value_moved_into_the_other_column_does_not_decrypt() {
        let cipher = Cipher::new(&material(1, 7), None);
        let ctx = tenant("Cust1");
        let token = cipher
            .encrypt(&ctx, SecretKind::SystemUserToken, TOKEN)
            .unwrap();
        let ticket = cipher.encrypt(&ctx, SecretKind::Ticket, b"7T:abc").unwrap();
        let err = cipher
            .decrypt(&ctx, SecretKind::Ticket, &token)
            .unwrap_err();
        assert!(matches!(err, AtRestError::Authentication(1)), "{err}");
        assert!(err.to_string().contains("another column"));
        assert!(matches!(
            cipher.decrypt(&ctx, SecretKind::SystemUserToken, &ticket),
            Err(AtRestError::Authentication(1))
        ));
        // Stripping the format marker does not turn a new value into an old one either.
        let stripped = Encrypted {
            key_version: 1,
            bytes: token.bytes[FORMAT_2.len()..].to_vec(),
        };
        for kind in [SecretKind::SystemUserToken, SecretKind::Ticket] {
            assert!(matches!(
                cipher.decrypt(&ctx, kind, &stripped),
                Err(AtRestError::Authentication(1))
            ));
        }
        assert_eq!(
            cipher
                .decrypt(&ctx, SecretKind::Ticket, &ticket)
                .unwrap()
                .expose_secret(),
            b"7T:abc"
        );
    }

    #[test]
    fn old_values_still_decrypt_and_are_rewritten_in_the_new_format() {
        let cipher = Cipher::new(&material(1, 7), None);
        let ctx = tenant("Cust1");
        let old = legacy_encrypt(&cipher, &ctx, TOKEN);
        assert_eq!(
            cipher.decrypt(&ctx, K, &old).unwrap().expose_secret(),
            TOKEN
        );
        assert!(matches!(
            cipher.decrypt(&tenant("Cust2"), K, &old),
            Err(AtRestError::Authentication(1))
        ));
        let rewritten = cipher.reencrypt(&ctx, K, &old).unwrap().unwrap();
        assert_eq!(&rewritten.bytes[..FORMAT_2.len()], FORMAT_2);
        assert!(cipher.reencrypt(&ctx, K, &rewritten).unwrap().is_none());
        assert!(matches!(
            cipher.decrypt(&ctx, SecretKind::Ticket, &rewritten),
            Err(AtRestError::Authentication(1))
        ));
        // An old value whose nonce happens to start with the marker still reads.
        let mut nonce = [9u8; NONCE_LEN];
        nonce[..FORMAT_2.len()].copy_from_slice(FORMAT_2);
        let lucky = legacy_encrypt_with(&cipher, &ctx, TOKEN, nonce);
        assert!(lucky.bytes.starts_with(FORMAT_2));
        assert_eq!(
            cipher.decrypt(&ctx, K, &lucky).unwrap().expose_secret(),
            TOKEN
        );
    }
}
