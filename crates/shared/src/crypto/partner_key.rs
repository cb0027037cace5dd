//! The partner private key that signs system user tokens.
//!
//! SuperOffice's samples ship it as .NET RSA XML (`<RSAKeyValue>`); operators may also have converted it to
//! PKCS#1 (`BEGIN RSA PRIVATE KEY`) or PKCS#8 (`BEGIN PRIVATE KEY`) PEM. All three are read here, checked for
//! consistency, and proven usable by a sign/verify round trip before they are accepted. Errors say what is wrong
//! with the file and never echo its content.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use quick_xml::events::Event;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::{BoxedUint, PrivateKey, PublicKey};
use secrecy::{ExposeSecret, SecretString};

use crate::crypto::rs256::{Rs256Signer, Rs256Verifier};

/// Where the partner private key comes from.
#[derive(Debug, Clone)]
pub enum PrivateKeySource {
    File(PathBuf),
    Inline(SecretString),
}

/// The smallest modulus accepted. SuperOffice's sample keys are 1024-bit; portal keys may be larger.
pub const MIN_KEY_BITS: usize = 1024;
/// The largest modulus accepted: the `rsa` crate's own limit for verifying signatures, and far above any
/// real partner key. It bounds the cost of the arithmetic a hostile key file could ask for.
pub const MAX_KEY_BITS: usize = 8192;
/// Longer key text is refused unread: an 8192-bit key is under 7 KiB in any accepted format.
pub const MAX_KEY_TEXT_BYTES: usize = 64 * 1024;

/// Standard base64 that tolerates missing `=` padding (some tools strip it).
const XML_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What is wrong with a private key. Never carries any of the key's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read private key file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error(
        "private key is in no known format: expected RSA XML (<RSAKeyValue>), \
         PKCS#1 PEM (BEGIN RSA PRIVATE KEY) or PKCS#8 PEM (BEGIN PRIVATE KEY)"
    )]
    UnknownFormat,
    #[error(
        "encrypted PKCS#8 keys are not supported; decrypt it first \
         (openssl pkcs8 -in KEY -out PLAIN.pem)"
    )]
    Encrypted,
    #[error("RSA XML key is not well-formed XML (near byte {position})")]
    MalformedXml { position: u64 },
    #[error("RSA XML key: the root element is not <RSAKeyValue>")]
    NotRsaKeyValue,
    #[error("RSA XML key: element <{element}> {problem}")]
    Element {
        element: &'static str,
        problem: ElementProblem,
    },
    #[error("{format} key cannot be decoded: {reason}")]
    Pem {
        format: &'static str,
        reason: String,
    },
    #[error("modulus is {bits} bits; at least {MIN_KEY_BITS} required")]
    TooSmall { bits: usize },
    #[error("{element} is a {bits}-bit number; keys larger than {MAX_KEY_BITS} bits are refused")]
    TooLarge { element: &'static str, bits: usize },
    #[error(
        "the key text is {bytes} bytes; a private key is far shorter (at most {MAX_KEY_TEXT_BYTES})"
    )]
    TextTooLarge { bytes: usize },
    #[error("RSA XML key: DOCTYPE declarations are refused (entities are never expanded)")]
    DocType,
    #[error("{0}")]
    Inconsistent(&'static str),
    #[error("the RSA key was rejected: {0}")]
    Invalid(String),
    #[error("the key failed its sign/verify self-test: its private and public halves do not match")]
    SelfTest,
    #[error("the key cannot be encoded as {0}")]
    Encode(&'static str),
}

/// What is wrong with one element of an RSA XML key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementProblem {
    Missing,
    Duplicated,
    NotBase64,
    Empty,
    HasChildren,
}

impl fmt::Display for ElementProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Missing => "is missing",
            Self::Duplicated => "appears more than once",
            Self::NotBase64 => "is not valid base64",
            Self::Empty => "is empty",
            Self::HasChildren => "contains other elements; it must hold only base64 text",
        })
    }
}

/// The partner's RSA private key, ready to sign. `Debug` shows only its size.
#[derive(Clone)]
pub struct PartnerKey {
    signing: Rs256Signer,
    public: PublicKey,
    public_pem: String,
}

impl fmt::Debug for PartnerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PartnerKey(RSA {} bits)", self.bits())
    }
}

impl PartnerKey {
    /// Reads a key file in any of the accepted formats.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|e| KeyError::Read {
            path: path.display().to_string(),
            reason: match e.kind() {
                std::io::ErrorKind::InvalidData => "the file is not UTF-8 text".to_owned(),
                _ => e.to_string(),
            },
        })?;
        Self::parse(&text)
    }

    /// Reads the key named by the configuration (a file, or the key inline).
    pub fn from_source(source: &PrivateKeySource) -> Result<Self, KeyError> {
        match source {
            PrivateKeySource::File(path) => Self::from_file(path),
            PrivateKeySource::Inline(text) => Self::parse(text.expose_secret()),
        }
    }

    /// Parses RSA XML, PKCS#1 PEM or PKCS#8 PEM, recognised by content.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        if text.len() > MAX_KEY_TEXT_BYTES {
            return Err(KeyError::TextTooLarge { bytes: text.len() });
        }
        let text = text.trim_start_matches('\u{feff}').trim();
        let key = if text.contains("-----BEGIN RSA PRIVATE KEY-----") {
            PrivateKey::from_pkcs1_pem(text).map_err(|e| KeyError::Pem {
                format: "PKCS#1 PEM",
                reason: e.to_string(),
            })?
        } else if text.contains("-----BEGIN PRIVATE KEY-----") {
            PrivateKey::from_pkcs8_pem(text).map_err(|e| KeyError::Pem {
                format: "PKCS#8 PEM",
                reason: e.to_string(),
            })?
        } else if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err(KeyError::Encrypted);
        } else if text.contains("RSAKeyValue") {
            parse_xml(text)?
        } else {
            return Err(KeyError::UnknownFormat);
        };
        Self::from_private_key(key)
    }

    /// Accepts a key built elsewhere (tests, the simulator), with the same checks as a parsed one.
    pub fn from_private_key(key: PrivateKey) -> Result<Self, KeyError> {
        let bits = key.n().bit_width_vartime() as usize;
        if bits < MIN_KEY_BITS {
            return Err(KeyError::TooSmall { bits });
        }
        if bits > MAX_KEY_BITS {
            return Err(KeyError::TooLarge {
                element: "the modulus",
                bits,
            });
        }
        let public = key.to_public_key();
        let signing = Rs256Signer::new(key).map_err(|e| KeyError::Invalid(e.to_string()))?;
        let probe = b"partner key self-test";
        let signature = signing.sign(probe);
        if !Rs256Verifier::new(public.clone()).verifies_portable(probe, &signature) {
            return Err(KeyError::SelfTest);
        }
        let public_pem = public
            .to_public_key_pem(LineEnding::LF)
            .map_err(|_| KeyError::Encode("SubjectPublicKeyInfo PEM"))?;
        Ok(Self {
            signing,
            public,
            public_pem,
        })
    }

    /// The modulus size in bits.
    pub fn bits(&self) -> usize {
        self.public.n().bit_width_vartime() as usize
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 over `message`.
    pub fn sign_sha256(&self, message: &[u8]) -> Vec<u8> {
        self.signing.sign(message)
    }

    /// The signer, to see which implementation signs or to sign with the `rsa` crate for comparison.
    pub fn signer(&self) -> &Rs256Signer {
        &self.signing
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The public key as `BEGIN PUBLIC KEY` (SubjectPublicKeyInfo) PEM: what the Developer Portal holds.
    pub fn public_key_pem(&self) -> &str {
        &self.public_pem
    }

    /// The private key as `BEGIN PRIVATE KEY` (PKCS#8) PEM.
    pub fn to_pkcs8_pem(&self) -> Result<SecretString, KeyError> {
        let pem = self.signing.private_key().to_pkcs8_pem(LineEnding::LF);
        secret_pem(pem, "PKCS#8 PEM")
    }

    /// The private key as `BEGIN RSA PRIVATE KEY` (PKCS#1) PEM.
    pub fn to_pkcs1_pem(&self) -> Result<SecretString, KeyError> {
        let pem = self.signing.private_key().to_pkcs1_pem(LineEnding::LF);
        secret_pem(pem, "PKCS#1 PEM")
    }
}

/// An encoded private key as a secret; `format` names the encoding that failed.
fn secret_pem<E>(
    pem: Result<impl std::ops::Deref<Target = String>, E>,
    format: &'static str,
) -> Result<SecretString, KeyError> {
    let pem = pem.map_err(|_| KeyError::Encode(format))?;
    Ok(SecretString::from(pem.as_str()))
}

/// The elements of `<RSAKeyValue>`, in the order .NET writes them.
const ELEMENTS: [&str; 8] = ["Modulus", "Exponent", "P", "Q", "DP", "DQ", "InverseQ", "D"];
const MODULUS: usize = 0;
const EXPONENT: usize = 1;
const P: usize = 2;
const Q: usize = 3;
const DP: usize = 4;
const DQ: usize = 5;
const INVERSE_Q: usize = 6;
const D: usize = 7;

/// The raw big-endian integers of an RSA XML key, leading zero bytes removed.
struct XmlComponents([Option<Vec<u8>>; 8]);

impl XmlComponents {
    fn required(&self, index: usize) -> Result<BoxedUint, KeyError> {
        self.bytes(index)
            .map(BoxedUint::from_be_slice_vartime)
            .ok_or(KeyError::Element {
                element: ELEMENTS[index],
                problem: ElementProblem::Missing,
            })
    }

    fn bytes(&self, index: usize) -> Option<&[u8]> {
        self.0[index].as_deref()
    }
}

fn parse_xml(text: &str) -> Result<PrivateKey, KeyError> {
    let components = read_xml_components(text)?;
    let n_bytes = components.bytes(MODULUS).ok_or(KeyError::Element {
        element: "Modulus",
        problem: ElementProblem::Missing,
    })?;
    let bits = bit_length(n_bytes);
    if bits < MIN_KEY_BITS {
        return Err(KeyError::TooSmall { bits });
    }
    let n = components.required(MODULUS)?;
    let e = components.required(EXPONENT)?;
    let d = components.required(D)?;
    let primes = match (components.bytes(P), components.bytes(Q)) {
        (Some(p), Some(q)) => {
            if !product_equals(p, q, n_bytes) {
                return Err(KeyError::Inconsistent("P·Q does not equal Modulus"));
            }
            vec![
                BoxedUint::from_be_slice_vartime(p),
                BoxedUint::from_be_slice_vartime(q),
            ]
        }
        (None, None) => Vec::new(),
        (Some(_), None) => {
            return Err(KeyError::Element {
                element: "Q",
                problem: ElementProblem::Missing,
            });
        }
        (None, Some(_)) => {
            return Err(KeyError::Element {
                element: "P",
                problem: ElementProblem::Missing,
            });
        }
    };
    let key = PrivateKey::from_components(n, e, d, primes)
        .map_err(|e| KeyError::Invalid(e.to_string()))?;
    check_crt(&key, &components)?;
    Ok(key)
}

/// DP, DQ and InverseQ are redundant; when given they must agree with the key derived from the rest.
fn check_crt(key: &PrivateKey, components: &XmlComponents) -> Result<(), KeyError> {
    let checks: [(usize, Option<BoxedUint>, &'static str); 3] = [
        (DP, key.dp().cloned(), "DP does not equal D mod (P−1)"),
        (DQ, key.dq().cloned(), "DQ does not equal D mod (Q−1)"),
        (
            INVERSE_Q,
            key.crt_coefficient(),
            "InverseQ does not equal Q⁻¹ mod P",
        ),
    ];
    for (index, derived, message) in checks {
        let Some(given) = components.bytes(index) else {
            continue;
        };
        let matches = derived.is_some_and(|v| v.to_be_bytes_trimmed_vartime().as_ref() == given);
        if !matches {
            return Err(KeyError::Inconsistent(message));
        }
    }
    Ok(())
}

/// Whether p·q = n, all three big-endian without leading zeros.
fn product_equals(p: &[u8], q: &[u8], n: &[u8]) -> bool {
    let width = u32::try_from((p.len() + q.len()) * 8)
        .unwrap_or(u32::MAX)
        .next_multiple_of(64);
    let Ok(wide_p) = BoxedUint::from_be_slice(p, width) else {
        return false;
    };
    let product = wide_p.wrapping_mul(BoxedUint::from_be_slice_vartime(q));
    product.to_be_bytes_trimmed_vartime().as_ref() == n
}

fn bit_length(be_trimmed: &[u8]) -> usize {
    match be_trimmed.first() {
        Some(first) => (be_trimmed.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
        None => 0,
    }
}

/// Reads the eight elements of `<RSAKeyValue>` whatever their order and namespace prefix.
fn read_xml_components(text: &str) -> Result<XmlComponents, KeyError> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut values: [Option<Vec<u8>>; 8] = Default::default();
    let mut depth = 0usize;
    let mut current: Option<(usize, String)> = None;
    loop {
        let position = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|_| KeyError::MalformedXml { position })?;
        match event {
            Event::Start(start) if depth == 0 => {
                if start.local_name().as_ref() != "RSAKeyValue" {
                    return Err(KeyError::NotRsaKeyValue);
                }
                depth = 1;
            }
            Event::Empty(start) if depth == 0 => {
                if start.local_name().as_ref() != "RSAKeyValue" {
                    return Err(KeyError::NotRsaKeyValue);
                }
                return Err(KeyError::Element {
                    element: "Modulus",
                    problem: ElementProblem::Missing,
                });
            }
            Event::Start(start) => {
                if let Some((index, _)) = &current {
                    return Err(KeyError::Element {
                        element: ELEMENTS[*index],
                        problem: ElementProblem::HasChildren,
                    });
                }
                depth += 1;
                if depth == 2
                    && let Some(index) = element_index(start.local_name().as_ref())
                {
                    if values[index].is_some() {
                        return Err(duplicated(index));
                    }
                    current = Some((index, String::new()));
                }
            }
            Event::Empty(start) => {
                if let Some((index, _)) = &current {
                    return Err(KeyError::Element {
                        element: ELEMENTS[*index],
                        problem: ElementProblem::HasChildren,
                    });
                }
                if depth == 1
                    && let Some(index) = element_index(start.local_name().as_ref())
                {
                    if values[index].is_some() {
                        return Err(duplicated(index));
                    }
                    return Err(KeyError::Element {
                        element: ELEMENTS[index],
                        problem: ElementProblem::Empty,
                    });
                }
            }
            Event::Text(content) => {
                if let Some((_, buffer)) = &mut current {
                    buffer.push_str(&content.xml10_content());
                }
            }
            Event::CData(content) => {
                if let Some((_, buffer)) = &mut current {
                    buffer.push_str(&content.xml10_content());
                }
            }
            Event::GeneralRef(_) => {
                if let Some((index, _)) = &current {
                    return Err(KeyError::Element {
                        element: ELEMENTS[*index],
                        problem: ElementProblem::NotBase64,
                    });
                }
            }
            Event::End(_) => {
                if let Some((index, buffer)) = current.take() {
                    values[index] = Some(decode_element(index, &buffer)?);
                }
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    break;
                }
            }
            Event::Eof => {
                if depth != 0 {
                    return Err(KeyError::MalformedXml {
                        position: reader.buffer_position(),
                    });
                }
                return Err(KeyError::NotRsaKeyValue);
            }
            Event::DocType(_) => return Err(KeyError::DocType),
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
        }
    }
    Ok(XmlComponents(values))
}

fn duplicated(index: usize) -> KeyError {
    KeyError::Element {
        element: ELEMENTS[index],
        problem: ElementProblem::Duplicated,
    }
}

fn element_index(local_name: &str) -> Option<usize> {
    ELEMENTS.iter().position(|name| *name == local_name)
}

fn decode_element(index: usize, text: &str) -> Result<Vec<u8>, KeyError> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return Err(KeyError::Element {
            element: ELEMENTS[index],
            problem: ElementProblem::Empty,
        });
    }
    let bytes = XML_BASE64
        .decode(compact.as_bytes())
        .map_err(|_| KeyError::Element {
            element: ELEMENTS[index],
            problem: ElementProblem::NotBase64,
        })?;
    // Keep at least one byte so that a zero value stays a (rejected) number rather than nothing.
    let first_nonzero = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    let number = &bytes[first_nonzero..];
    // Refused before any arithmetic: multiplying or exponentiating such numbers would take hours.
    let bits = bit_length(number);
    if bits > MAX_KEY_BITS {
        return Err(KeyError::TooLarge {
            element: ELEMENTS[index],
            bits,
        });
    }
    Ok(number.to_vec())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    fn sample(name: &str) -> String {
        std::fs::read_to_string(format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    fn element(xml: &str, name: &str) -> String {
        let open = format!("<{name}>");
        let start = xml.find(&open).unwrap() + open.len();
        let end = xml[start..].find('<').unwrap() + start;
        xml[start..end].to_owned()
    }

    fn with_element(xml: &str, name: &str, content: &str) -> String {
        let old = format!("<{name}>{}</{name}>", element(xml, name));
        xml.replace(&old, &format!("<{name}>{content}</{name}>"))
    }

    fn without_element(xml: &str, name: &str) -> String {
        xml.replace(&format!("<{name}>{}</{name}>", element(xml, name)), "")
    }

    fn error(text: &str) -> String {
        PartnerKey::parse(text).unwrap_err().to_string()
    }

    /// Protocol §10.1: the PKCS#1 PEM that Python `cryptography` derives from ServiceConsoleCert.xml.
    const SERVICE_CONSOLE_PKCS1: &str = "-----BEGIN RSA PRIVATE KEY-----
MIICWwIBAAKBgQDcDtTseDtwANitbvT8dnz9muef62VN3ux1Etz9xiwX5MfQKaV2
+NaBW4GW8bCbirmw4iUNGmwGjh4iGTexN3N20WE8VCgP5m5HzPyIj6gWcioLPVXF
wfxBcs0zSBmTYN27pcbxBuk56ZivknUq8Wwim5/MmodZjCCwXMzMq4zlPQIDAQAB
AoGAAtVHDP9URpIgOAVmboyo+cvhgQfTD1BYK36xbSv8u9cEcovitzgnbNVsgvC8
JRiBYQNcVkGZk/EG9snr02KDIEWeKUJF0NRLRFKioKE0Y/4slBw8HFLImJlHv9Et
vlBtJADFuTlzfItFD8pxZZUC2HJ92hiiGKxVJBaoqFb+DnECQQD4VVlLNcxPAv+R
gGa8s0+ZEJ6HkOZbk6lzNCTB2bBkXcuwNazoTuNQQTANZyS/rWExVuuKJ9o+YWud
IJVGkGXNAkEA4toDhQRwAeLKC2jv43xXBdSKbLuGdTlfrZKBAbfPhEnM8SzW1wK2
PwvHk91lQ752+mNmkVaubeOMt47JSbYNMQJAFm2m7esC89PifyKopLxRIRLmLnpA
w96XPEdmVnexva7W+agvYJ/XWeU5UMyS/hjLoWgnR8gHpwCndn593OyntQJAfp55
gHFto1/Wrm+wFiV83UA402AIOL4BbXxsjWzvY0NeJO+GKxTUbHRCvYHB2AIjnraE
tXLQgX2VOY91QrNewQJAVDLQmmhXXpcLInpytmwJ+SPeeBzh65tpijEWJK21EeNF
+kxx3lI/Kd63HeylzK7V4Rn1oBQuRNwrW7U/LdIjUw==
-----END RSA PRIVATE KEY-----
";

    /// Protocol §10.1: the same key's public half.
    const SERVICE_CONSOLE_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDcDtTseDtwANitbvT8dnz9muef
62VN3ux1Etz9xiwX5MfQKaV2+NaBW4GW8bCbirmw4iUNGmwGjh4iGTexN3N20WE8
VCgP5m5HzPyIj6gWcioLPVXFwfxBcs0zSBmTYN27pcbxBuk56ZivknUq8Wwim5/M
modZjCCwXMzMq4zlPQIDAQAB
-----END PUBLIC KEY-----
";

    #[test]
    fn the_three_sample_keys_parse() {
        for name in [
            "partner-private-key.xml",
            "service-console-key.xml",
            "localhost-private-key.xml",
        ] {
            let key = PartnerKey::parse(&sample(name)).unwrap();
            assert_eq!(key.bits(), 1024, "{name}");
            assert_eq!(format!("{key:?}"), "PartnerKey(RSA 1024 bits)");
        }
    }

    #[test]
    fn xml_converts_to_the_published_pkcs1_and_public_pem() {
        let key = PartnerKey::parse(&sample("service-console-key.xml")).unwrap();
        assert_eq!(
            key.to_pkcs1_pem().unwrap().expose_secret(),
            SERVICE_CONSOLE_PKCS1
        );
        assert_eq!(key.public_key_pem(), SERVICE_CONSOLE_PUBLIC);
    }

    #[test]
    fn pkcs1_and_pkcs8_pem_read_back_to_the_same_key() {
        let xml = PartnerKey::parse(&sample("partner-private-key.xml")).unwrap();
        let pkcs8 = xml.to_pkcs8_pem().unwrap();
        assert!(
            pkcs8
                .expose_secret()
                .starts_with("-----BEGIN PRIVATE KEY-----\n")
        );
        let from_pkcs8 = PartnerKey::parse(pkcs8.expose_secret()).unwrap();
        let from_pkcs1 = PartnerKey::parse(xml.to_pkcs1_pem().unwrap().expose_secret()).unwrap();
        let from_published = PartnerKey::parse(SERVICE_CONSOLE_PKCS1).unwrap();
        assert_eq!(from_pkcs8.public_key(), xml.public_key());
        assert_eq!(from_pkcs1.public_key(), xml.public_key());
        assert_eq!(from_published.public_key_pem(), SERVICE_CONSOLE_PUBLIC);
        assert_eq!(from_pkcs8.sign_sha256(b"x"), xml.sign_sha256(b"x"));
    }

    #[test]
    fn pem_with_bom_and_crlf_is_read() {
        let crlf = format!("\u{feff}{}", SERVICE_CONSOLE_PKCS1.replace('\n', "\r\n"));
        let key = PartnerKey::parse(&crlf).unwrap();
        assert_eq!(key.public_key_pem(), SERVICE_CONSOLE_PUBLIC);
    }

    #[test]
    fn xml_in_the_wild_is_read() {
        let plain = sample("service-console-key.xml");
        let modulus = element(&plain, "Modulus");
        let wrapped: String = modulus
            .as_bytes()
            .chunks(40)
            .map(|c| format!("\r\n      {}", std::str::from_utf8(c).unwrap()))
            .collect();
        let mut padded = vec![0u8, 0u8];
        padded.extend(STANDARD.decode(&modulus).unwrap());
        let messy = format!(
            "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<!-- partner key -->\r\n\
             <k:RSAKeyValue xmlns:k=\"urn:example\">\r\n  <k:D>{}</k:D>\r\n  <!-- the modulus -->\r\n  \
             <k:Modulus>{wrapped}\r\n  </k:Modulus>\r\n  <k:InverseQ>{}</k:InverseQ>\r\n  \
             <k:Exponent>\tAQAB\t</k:Exponent>\r\n  <k:P>{}</k:P>\r\n  <k:Q>{}</k:Q>\r\n  \
             <k:DQ>{}</k:DQ>\r\n  <k:DP>{}</k:DP>\r\n  <Unrelated>ignored</Unrelated>\r\n</k:RSAKeyValue>\r\n",
            element(&plain, "D"),
            element(&plain, "InverseQ"),
            element(&plain, "P"),
            element(&plain, "Q"),
            element(&plain, "DQ"),
            element(&plain, "DP"),
        );
        let key = PartnerKey::parse(&messy).unwrap();
        assert_eq!(key.public_key_pem(), SERVICE_CONSOLE_PUBLIC);
        let leading_zeros = with_element(&plain, "Modulus", &STANDARD.encode(&padded));
        assert_eq!(
            PartnerKey::parse(&leading_zeros).unwrap().public_key_pem(),
            SERVICE_CONSOLE_PUBLIC
        );
    }

    #[test]
    fn a_key_without_primes_is_recovered_from_n_e_d() {
        let plain = sample("partner-private-key.xml");
        let mut bare = plain.clone();
        for name in ["P", "Q", "DP", "DQ", "InverseQ"] {
            bare = without_element(&bare, name);
        }
        let full = PartnerKey::parse(&plain).unwrap();
        let recovered = PartnerKey::parse(&bare).unwrap();
        assert_eq!(recovered.sign_sha256(b"same"), full.sign_sha256(b"same"));
    }

    #[test]
    fn element_problems_are_named_without_content() {
        let plain = sample("partner-private-key.xml");
        let p = element(&plain, "P");
        let cases = [
            (
                with_element(&plain, "P", "not*base64"),
                "element <P> is not valid base64",
            ),
            (without_element(&plain, "D"), "element <D> is missing"),
            (without_element(&plain, "Q"), "element <Q> is missing"),
            (with_element(&plain, "DQ", "  "), "element <DQ> is empty"),
            (
                plain.replace("</RSAKeyValue>", &format!("<P>{p}</P></RSAKeyValue>")),
                "element <P> appears more than once",
            ),
            (
                with_element(&plain, "Exponent", "<b>AQAB</b>"),
                "element <Exponent> contains other elements",
            ),
            (
                format!("<KeyPair>{plain}</KeyPair>"),
                "RSA XML key: the root element is not <RSAKeyValue>",
            ),
            (plain.replace("</RSAKeyValue>", ""), "not well-formed XML"),
        ];
        for (xml, expected) in cases {
            let message = error(&xml);
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
            assert!(!message.contains(&p[..12]), "{message:?} echoes the key");
        }
    }

    #[test]
    fn inconsistent_keys_are_refused() {
        let plain = sample("partner-private-key.xml");
        let other = sample("service-console-key.xml");
        let wrong_p = with_element(&plain, "P", &element(&other, "P"));
        assert_eq!(error(&wrong_p), "P·Q does not equal Modulus");
        let wrong_dp = with_element(&plain, "DP", &element(&other, "DP"));
        assert_eq!(error(&wrong_dp), "DP does not equal D mod (P−1)");
        let wrong_dq = with_element(&plain, "DQ", &element(&other, "DQ"));
        assert_eq!(error(&wrong_dq), "DQ does not equal D mod (Q−1)");
        let wrong_qinv = with_element(&plain, "InverseQ", &element(&other, "InverseQ"));
        assert_eq!(error(&wrong_qinv), "InverseQ does not equal Q⁻¹ mod P");
        let wrong_d = with_element(&plain, "D", &element(&other, "D"));
        assert!(PartnerKey::parse(&wrong_d).is_err());
    }

    #[test]
    fn small_keys_are_refused_with_their_size() {
        let small = format!(
            "<RSAKeyValue><Modulus>{}</Modulus><Exponent>AQAB</Exponent><D>AQ==</D></RSAKeyValue>",
            STANDARD.encode([0xC5u8; 64])
        );
        assert_eq!(error(&small), "modulus is 512 bits; at least 1024 required");
    }

    #[test]
    fn other_formats_are_named() {
        assert!(error("hello").contains("no known format"));
        assert!(
            error(
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----"
            )
            .contains("decrypt it first")
        );
        assert!(
            error("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----")
                .starts_with("PKCS#1 PEM key cannot be decoded")
        );
    }

    /// Parses `text` and checks that it fails, within a bound far above what a healthy parse takes.
    fn refused_quickly(text: &str) -> KeyError {
        let started = std::time::Instant::now();
        let error = PartnerKey::parse(text).unwrap_err();
        let took = started.elapsed();
        assert!(
            took < std::time::Duration::from_secs(2),
            "{error} took {took:?}"
        );
        error
    }

    #[test]
    fn hostile_xml_keys_are_refused_quickly_with_a_clear_error() {
        let plain = sample("partner-private-key.xml");
        for cut in [20, plain.len() / 2, plain.len() - 3] {
            let error = refused_quickly(&plain[..cut]);
            assert!(
                matches!(error, KeyError::MalformedXml { .. }),
                "cut at {cut}: {error}"
            );
        }
        let renamed = plain.replace("Modulus>", "Mod>");
        assert_eq!(
            refused_quickly(&renamed),
            KeyError::Element {
                element: "Modulus",
                problem: ElementProblem::Missing
            }
        );
        let laughs = format!(
            "<?xml version=\"1.0\"?><!DOCTYPE RSAKeyValue [<!ENTITY a \"AAAA\">{}]>{}",
            (b'b'..=b'j')
                .map(|c| {
                    let previous = char::from(c - 1);
                    format!(
                        "<!ENTITY {} \"{}\">",
                        char::from(c),
                        format!("&{previous};").repeat(10)
                    )
                })
                .collect::<String>(),
            with_element(&plain, "Modulus", "&j;")
        );
        assert_eq!(refused_quickly(&laughs), KeyError::DocType);
    }

    #[test]
    fn huge_numbers_are_refused_before_any_arithmetic() {
        let plain = sample("partner-private-key.xml");
        // 40 KiB of base64 (a 245,760-bit number): P·Q alone would take seconds, the self-test hours.
        let huge = STANDARD.encode(vec![0xC5u8; 30 * 1024]);
        for name in ["Modulus", "Exponent", "D", "P"] {
            let error = refused_quickly(&with_element(&plain, name, &huge));
            assert!(
                matches!(error, KeyError::TooLarge { .. }),
                "{name}: {error}"
            );
        }
        let bare = ["P", "Q", "DP", "DQ", "InverseQ"]
            .iter()
            .fold(plain.clone(), |xml, name| without_element(&xml, name));
        let error = refused_quickly(&with_element(&bare, "Modulus", &huge));
        assert!(matches!(error, KeyError::TooLarge { .. }), "{error}");
        let megabyte = with_element(
            &plain,
            "Modulus",
            &STANDARD.encode(vec![0xC5u8; 768 * 1024]),
        );
        assert_eq!(
            refused_quickly(&megabyte),
            KeyError::TextTooLarge {
                bytes: megabyte.len()
            }
        );
    }

    #[test]
    fn larger_keys_are_accepted() {
        let generated = PrivateKey::new(&mut rand::rng(), 2048).unwrap();
        let key = PartnerKey::from_private_key(generated).unwrap();
        let again = PartnerKey::parse(key.to_pkcs8_pem().unwrap().expose_secret()).unwrap();
        assert_eq!(again.bits(), 2048);
        assert_eq!(format!("{again:?}"), "PartnerKey(RSA 2048 bits)");
    }

    #[test]
    fn sources_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.xml");
        std::fs::write(&path, sample("localhost-private-key.xml")).unwrap();
        let from_file = PartnerKey::from_source(&PrivateKeySource::File(path)).unwrap();
        let inline = PartnerKey::from_source(&PrivateKeySource::Inline(SecretString::from(
            sample("localhost-private-key.xml"),
        )))
        .unwrap();
        assert_eq!(from_file.public_key(), inline.public_key());
        let missing = dir.path().join("absent.xml");
        let message = PartnerKey::from_file(&missing).unwrap_err().to_string();
        assert!(message.contains("absent.xml"), "{message}");
    }
}
