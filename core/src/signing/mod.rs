//! Ed25519 signatures (ed25519-dalek) by operator keys (`arcella keygen`),
//! checked by a device against the keys its config trusts. Three things
//! are signed, each under a context of its own so that a signature made
//! for one can never be taken for another: an artifact's sha256
//! (`arcella sign`, here), a remote request (`request.rs`) and a whole
//! desired-state document (`document.rs`); operator tools also sign the
//! records they leave for each other (`record.rs`).
//!
//! Files are text, one line each, so they survive copy-paste and email:
//! a secret key is `arcella-ed25519-secret <64 hex>`, a public key is its
//! 64 hex digits, a signature is `<public key hex> <signature hex>`.

pub mod document;
pub mod record;
pub mod request;

use crate::digest::{self, Sha256Digest};
use crate::protocol::fleet::Signature;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use std::io::Read;

pub use crate::protocol::fleet::ArtifactSignature;

/// What an artifact signature covers: a fixed context, then the sha256.
const ARTIFACT_CONTEXT: &[u8] = b"arcella-artifact-v1:";
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
    #[error("{0} is not signed, and this device only accepts signed ones over MQTT")]
    Unsigned(&'static str),
    #[error("{what} is signed by key {key}, which this device does not trust (not in [mqtt] trusted_keys)")]
    Untrusted { what: &'static str, key: String },
    #[error("{what}: the signature by key {key} does not match (tampered, or signed for something else)")]
    Invalid { what: &'static str, key: String },
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

/// Signs `message` under `context`.
pub(crate) fn sign_statement(key: &SigningKey, context: &[u8], message: &[u8]) -> Signature {
    Signature {
        key: key.verifying_key().to_bytes(),
        signature: key.sign(&[context, message].concat()).to_bytes().to_vec(),
    }
}

/// Signs an artifact's digest.
pub fn sign(key: &SigningKey, sha256: &Sha256Digest) -> ArtifactSignature {
    sign_statement(key, ARTIFACT_CONTEXT, sha256)
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

/// Which keys a device trusts, for artifacts, requests and documents
/// that arrive over MQTT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustPolicy {
    pub trusted_keys: Vec<[u8; 32]>,
    /// Accept unsigned artifacts (signed ones must still verify). Requests
    /// and documents are always signed.
    pub allow_unsigned: bool,
}

impl TrustPolicy {
    /// Whether an artifact with this digest and signature may be installed.
    pub fn check(&self, sha256: &Sha256Digest, signature: Option<&ArtifactSignature>) -> Result<(), SigningError> {
        match signature {
            None if self.allow_unsigned => Ok(()),
            None => Err(SigningError::Unsigned("the artifact")),
            Some(signature) => self.verify("the artifact", ARTIFACT_CONTEXT, sha256, signature),
        }
    }

    /// Whether `signature` is a trusted key's over `message` under `context`;
    /// `what` names the thing signed in the error.
    pub(crate) fn verify(
        &self,
        what: &'static str,
        context: &[u8],
        message: &[u8],
        signature: &Signature,
    ) -> Result<(), SigningError> {
        let key_hex = digest::hex(&signature.key);
        if !self.trusted_keys.contains(&signature.key) {
            return Err(SigningError::Untrusted { what, key: key_hex });
        }
        let invalid = || SigningError::Invalid {
            what,
            key: key_hex.clone(),
        };
        let key = VerifyingKey::from_bytes(&signature.key).map_err(|_| invalid())?;
        let bytes: [u8; 64] = signature.signature.as_slice().try_into().map_err(|_| invalid())?;
        key.verify_strict(
            &[context, message].concat(),
            &ed25519_dalek::Signature::from_bytes(&bytes),
        )
        .map_err(|_| invalid())
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
            Err(SigningError::Invalid { .. })
        ));
        let stranger = generate().unwrap();
        assert!(matches!(
            policy.check(&sha, Some(&sign(&stranger, &sha))),
            Err(SigningError::Untrusted { key, .. }) if key == digest::hex(stranger.verifying_key().as_bytes())
        ));
        assert!(matches!(policy.check(&sha, None), Err(SigningError::Unsigned(_))));
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
