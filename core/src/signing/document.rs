//! Desired-state documents signed whole: the signature covers the exact
//! postcard bytes of the document (target, version, every module entry
//! with its manifests and artifact reference), and a device decodes only
//! bytes whose signature it has checked.

use super::{TrustPolicy, sign_statement};
use crate::digest;
use crate::protocol::fleet::{DesiredDocument, Refusal, SignedDocument};
use ed25519_dalek::SigningKey;

const CONTEXT: &[u8] = b"arcella-desired-v1:";

/// Signs a document.
pub fn sign(key: &SigningKey, document: &DesiredDocument) -> SignedDocument {
    // Serializing plain data into a Vec cannot fail.
    let body = postcard::to_stdvec(document).unwrap_or_default();
    let signature = sign_statement(key, CONTEXT, &body);
    SignedDocument { body, signature }
}

/// The document inside `signed`, if a trusted key signed it.
pub fn open(policy: &TrustPolicy, signed: &SignedDocument) -> Result<DesiredDocument, Refusal> {
    policy
        .verify("the desired-state document", CONTEXT, &signed.body, &signed.signature)
        .map_err(|e| Refusal::Signature(e.to_string()))?;
    postcard::from_bytes(&signed.body).map_err(|e| Refusal::Unreadable(e.to_string()))
}

/// The document's contents, without checking who signed it: for the
/// operator's own tools reading back what is on the broker.
pub fn read_unverified(signed: &SignedDocument) -> Option<DesiredDocument> {
    postcard::from_bytes(&signed.body).ok()
}

/// What identifies a signed document's content.
pub fn sha256(signed: &SignedDocument) -> [u8; 32] {
    digest::sha256(&signed.body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::fleet::DocumentTarget;
    use crate::signing::generate;

    #[test]
    fn a_document_opens_only_as_signed_by_a_trusted_key() {
        let key = generate().unwrap();
        let policy = TrustPolicy {
            trusted_keys: vec![key.verifying_key().to_bytes()],
            allow_unsigned: true,
        };
        let document = DesiredDocument {
            target: DocumentTarget::Device("gw1".into()),
            version: 3,
            modules: vec![],
        };
        let signed = sign(&key, &document);
        assert_eq!(open(&policy, &signed).unwrap(), document);
        // A version changed after signing.
        let mut forged = signed.clone();
        let mut altered = document.clone();
        altered.version = 10;
        forged.body = postcard::to_stdvec(&altered).unwrap();
        assert!(matches!(open(&policy, &forged), Err(Refusal::Signature(_))));
        // Truncated body; untrusted signer (allow_unsigned is for artifacts only).
        let mut cut = signed.clone();
        cut.body.pop();
        assert!(matches!(open(&policy, &cut), Err(Refusal::Signature(_))));
        let stranger = generate().unwrap();
        assert!(
            matches!(open(&policy, &sign(&stranger, &document)), Err(Refusal::Signature(m)) if m.contains("does not trust"))
        );
    }
}
