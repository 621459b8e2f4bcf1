//! Artifact signatures: Ed25519 (ed25519-dalek) over an artifact's sha256,
//! made on the build host (`arcella keygen`, `arcella sign`) and checked
//! by a device against the keys its config trusts before it installs
//! anything that arrived over MQTT.
//!
//! Files are text, one line each, so they survive copy-paste and email:
//! a secret key is `arcella-ed25519-secret <64 hex>`, a public key is its
//! 64 hex digits, a signature is `<public key hex> <signature hex>`.

use crate::digest::{self, Sha256Digest};
use crate::protocol::fleet::ArtifactSignature;
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use std::io::Read;

/// What is signed: a fixed context, so a signature made for an artifact
/// can never be taken for a signature over anything else.
const CONTEXT: &[u8] = b"arcella-artifact-v1:";
const SECRET_TAG: &str = "arcella-ed25519-secret";

/// Why a key, a signature or an artifact's trust was refused.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("cannot read random bytes for a key: {0}")]
    Random(#[source] std::io::Error),
    #[error("not an Arcella secret key (expected `{SECRET_TAG} <64 hex digits>`)")]
    MalformedSecret,
    #[error("not a public key: `{0}` (expected 64 hex digits)")]
    MalformedPublic(String),
    #[error("not a signature (expected `<public key hex> <128 hex digits>`)")]
    MalformedSignature,
    #[error("the artifact is not signed, and this device only installs signed artifacts over MQTT")]
    Unsigned,
    #[error("the artifact is signed by key {0}, which this device does not trust")]
    Untrusted(String),
    #[error("the artifact's signature by key {0} does not match its sha256 (tampered, or signed for another file)")]
    Invalid(String),
}

/// A new secret key from the kernel's random source.
pub fn generate() -> Result<SigningKey, SigningError> {
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .map_err(SigningError::Random)?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The secret key file's text.
pub fn secret_to_text(key: &SigningKey) -> String {
    format!("{SECRET_TAG} {}\n", digest::hex(key.as_bytes()))
}

pub fn secret_from_text(text: &str) -> Result<SigningKey, SigningError> {
    let hex = text
        .trim()
        .strip_prefix(SECRET_TAG)
        .ok_or(SigningError::MalformedSecret)?;
    let seed = digest::parse_hex(hex.trim()).ok_or(SigningError::MalformedSecret)?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The public key's text (what goes into a device's `trusted_keys`).
pub fn public_to_text(key: &VerifyingKey) -> String {
    digest::hex(key.as_bytes())
}

pub fn public_from_text(text: &str) -> Result<[u8; 32], SigningError> {
    let text = text.trim();
    let bytes = digest::parse_hex(text).ok_or_else(|| SigningError::MalformedPublic(text.to_owned()))?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| SigningError::MalformedPublic(text.to_owned()))?;
    Ok(bytes)
}

fn message(sha256: &Sha256Digest) -> Vec<u8> {
    [CONTEXT, sha256.as_slice()].concat()
}

/// Signs an artifact's digest.
pub fn sign(key: &SigningKey, sha256: &Sha256Digest) -> ArtifactSignature {
    ArtifactSignature {
        key: key.verifying_key().to_bytes(),
        signature: key.sign(&message(sha256)).to_bytes().to_vec(),
    }
}

/// A signature file's text.
pub fn signature_to_text(signature: &ArtifactSignature) -> String {
    format!(
        "{} {}\n",
        digest::hex(&signature.key),
        digest::hex(&signature.signature)
    )
}

pub fn signature_from_text(text: &str) -> Result<ArtifactSignature, SigningError> {
    let mut words = text.split_whitespace();
    let (Some(key), Some(signature), None) = (words.next(), words.next(), words.next()) else {
        return Err(SigningError::MalformedSignature);
    };
    let key = digest::parse_hex(key).ok_or(SigningError::MalformedSignature)?;
    let signature = digest::parse_hex_bytes(signature)
        .filter(|s| s.len() == 64)
        .ok_or(SigningError::MalformedSignature)?;
    Ok(ArtifactSignature { key, signature })
}

/// Which artifacts a device accepts over MQTT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustPolicy {
    pub trusted_keys: Vec<[u8; 32]>,
    /// Accept unsigned artifacts (signed ones must still verify).
    pub allow_unsigned: bool,
}

impl TrustPolicy {
    /// Whether an artifact with this digest and signature may be installed.
    pub fn check(&self, sha256: &Sha256Digest, signature: Option<&ArtifactSignature>) -> Result<(), SigningError> {
        let Some(signature) = signature else {
            return if self.allow_unsigned {
                Ok(())
            } else {
                Err(SigningError::Unsigned)
            };
        };
        let key_hex = digest::hex(&signature.key);
        if !self.trusted_keys.contains(&signature.key) {
            return Err(SigningError::Untrusted(key_hex));
        }
        let key = VerifyingKey::from_bytes(&signature.key).map_err(|_| SigningError::Invalid(key_hex.clone()))?;
        let bytes: [u8; 64] = signature
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| SigningError::Invalid(key_hex.clone()))?;
        key.verify(&message(sha256), &ed25519_dalek::Signature::from_bytes(&bytes))
            .map_err(|_| SigningError::Invalid(key_hex))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusting(key: &SigningKey) -> TrustPolicy {
        TrustPolicy {
            trusted_keys: vec![key.verifying_key().to_bytes()],
            allow_unsigned: false,
        }
    }

    #[test]
    fn a_signature_by_a_trusted_key_verifies_and_survives_its_text_form() {
        let key = generate().unwrap();
        let key = secret_from_text(&secret_to_text(&key)).unwrap();
        let sha = digest::sha256(b"artifact");
        let signature = signature_from_text(&signature_to_text(&sign(&key, &sha))).unwrap();
        trusting(&key).check(&sha, Some(&signature)).unwrap();
        let public = public_from_text(&public_to_text(&key.verifying_key())).unwrap();
        assert_eq!(public, signature.key);
    }

    #[test]
    fn tampered_untrusted_and_unsigned_artifacts_are_refused_by_name() {
        let key = generate().unwrap();
        let sha = digest::sha256(b"artifact");
        let signature = sign(&key, &sha);
        let policy = trusting(&key);
        let other = digest::sha256(b"tampered");
        assert!(matches!(
            policy.check(&other, Some(&signature)),
            Err(SigningError::Invalid(_))
        ));
        let stranger = generate().unwrap();
        assert!(matches!(
            policy.check(&sha, Some(&sign(&stranger, &sha))),
            Err(SigningError::Untrusted(k)) if k == digest::hex(stranger.verifying_key().as_bytes())
        ));
        assert!(matches!(policy.check(&sha, None), Err(SigningError::Unsigned)));
        let lenient = TrustPolicy {
            allow_unsigned: true,
            ..policy.clone()
        };
        lenient.check(&sha, None).unwrap();
        // Allowing unsigned artifacts does not excuse a bad signature.
        assert!(lenient.check(&other, Some(&signature)).is_err());
    }

    #[test]
    fn malformed_key_and_signature_texts_are_refused() {
        assert!(secret_from_text("nope").is_err());
        assert!(public_from_text("abc").is_err());
        assert!(signature_from_text("aa bb").is_err());
        assert!(signature_from_text("").is_err());
    }
}
