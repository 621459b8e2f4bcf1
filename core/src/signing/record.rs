//! Operator records signed whole: what one operator tool leaves on the
//! broker for another (a staged rollout's state), under a context of its
//! own, so that a record's signature can never pass for a document's or
//! an artifact's. Devices never read these.

use super::{SigningError, TrustPolicy, sign_statement};
use crate::protocol::fleet::SignedDocument;
use ed25519_dalek::SigningKey;

const CONTEXT: &[u8] = b"arcella-operator-record-v1:";

/// Signs `body` (a record's postcard bytes).
pub fn sign(key: &SigningKey, body: Vec<u8>) -> SignedDocument {
    let signature = sign_statement(key, CONTEXT, &body);
    SignedDocument { body, signature }
}

/// The record's bytes, if a key of `policy` signed them.
pub fn open<'a>(policy: &TrustPolicy, signed: &'a SignedDocument) -> Result<&'a [u8], SigningError> {
    policy.verify("the operator record", CONTEXT, &signed.body, &signed.signature)?;
    Ok(&signed.body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::generate;

    #[test]
    fn a_record_opens_only_as_signed_and_never_as_a_document() {
        let key = generate().unwrap();
        let policy = TrustPolicy {
            trusted_keys: vec![key.verifying_key().to_bytes()],
            allow_unsigned: false,
        };
        let signed = sign(&key, b"wave 2".to_vec());
        assert_eq!(open(&policy, &signed).unwrap(), b"wave 2");
        let mut tampered = signed.clone();
        tampered.body[0] ^= 1;
        assert!(matches!(open(&policy, &tampered), Err(SigningError::Invalid { .. })));
        let stranger = generate().unwrap();
        assert!(matches!(
            open(&policy, &sign(&stranger, b"wave 2".to_vec())),
            Err(SigningError::Untrusted { .. })
        ));
        // The same bytes signed as a desired-state document do not pass.
        let as_document = SignedDocument {
            body: signed.body.clone(),
            signature: sign_statement(&key, b"arcella-desired-v1:", &signed.body),
        };
        assert!(open(&policy, &as_document).is_err());
    }
}
