//! Taking a desired-state document: signed whole by a trusted key,
//! addressed to this device (or its group), a version above the one taken
//! from that source and not absurdly far above it. A repeat of the
//! document taken changes nothing; anything else is refused, logged and
//! reported (`Convergence::refused`) and leaves what runs untouched.

use super::Reconciler;
use super::record::source_name;
use arcella_core::protocol::fleet::{
    DesiredDocument, DocumentId, DocumentTarget, MAX_VERSION_JUMP, Refusal, RefusedDocument, SignedDocument,
};
use arcella_core::signing::{TrustPolicy, document};

/// A document that may be taken.
#[derive(Debug)]
pub(super) struct Taken {
    pub signed: SignedDocument,
    pub document: DesiredDocument,
    pub id: DocumentId,
}

/// What to do with a document that arrived for `expected`, given the
/// version and digest last taken from that source: `Ok(None)` for a
/// repeat of it, `Err` with the claimed version (0 if unknown) and why.
pub(super) fn judge(
    trust: &TrustPolicy,
    expected: &DocumentTarget,
    taken: Option<DocumentId>,
    payload: &[u8],
) -> Result<Option<Taken>, (u64, Refusal)> {
    let signed: SignedDocument = crate::wire::decode(payload).map_err(|e| (0, Refusal::Unreadable(e.to_string())))?;
    let id = DocumentId {
        // Filled in below, once the body is known to be signed.
        version: 0,
        sha256: document::sha256(&signed),
    };
    if let Some(taken) = taken
        && taken.sha256 == id.sha256
    {
        return Ok(None);
    }
    // A refusal names the version the document claims, signed or not.
    let claimed = document::read_unverified(&signed).map_or(0, |d| d.version);
    let document = document::open(trust, &signed).map_err(|r| (claimed, r))?;
    let version = document.version;
    if &document.target != expected {
        return Err((
            version,
            Refusal::WrongTarget {
                target: document.target.to_string(),
            },
        ));
    }
    let applied = taken.map_or(0, |t| t.version);
    if version == 0 {
        return Err((version, Refusal::BadVersion { applied }));
    }
    match taken {
        Some(t) if version < t.version => return Err((version, Refusal::Stale { applied })),
        Some(t) if version == t.version => return Err((version, Refusal::Conflict)),
        _ => {}
    }
    if version - applied > MAX_VERSION_JUMP {
        return Err((version, Refusal::BadVersion { applied }));
    }
    Ok(Some(Taken {
        signed,
        document,
        id: DocumentId { version, ..id },
    }))
}

impl Reconciler {
    /// Takes a document if it may be taken; returns whether it was (and
    /// the device must converge again).
    pub(super) fn take_document(&mut self, group: Option<String>, payload: &[u8]) -> bool {
        if group.is_some() && group != self.settings.group {
            return false;
        }
        // An empty retained message clears the topic: nothing to do.
        if payload.is_empty() {
            return false;
        }
        let source = source_name(group.as_deref());
        let expected = match &group {
            Some(name) => DocumentTarget::Group(name.clone()),
            None => DocumentTarget::Device(self.topics.device().to_owned()),
        };
        let taken = self.record.taken_from(group.as_deref());
        match judge(&self.settings.gate.trust, &expected, taken, payload) {
            Ok(None) => false,
            Ok(Some(Taken { signed, document, id })) => {
                log::info!(
                    "desired state version {} from {source} taken ({} module(s))",
                    id.version,
                    document.modules.len()
                );
                // A refusal this document supersedes is no news any more.
                if self
                    .status
                    .refused
                    .as_ref()
                    .is_some_and(|r| r.source == source && r.version <= id.version)
                {
                    self.status.refused = None;
                }
                self.record.taken.insert(source, id);
                match group {
                    Some(name) => {
                        self.status.group_document = Some(id);
                        self.record.group = Some((name, signed));
                    }
                    None => {
                        self.status.device_document = Some(id);
                        self.record.device = Some(signed);
                    }
                }
                self.record.finished = false;
                self.save();
                self.publish_applied();
                self.dirty = true;
                true
            }
            Err((version, reason)) => {
                log::warn!("desired state version {version} from {source} refused: {reason}; nothing changed");
                self.status.refused = Some(RefusedDocument {
                    source,
                    version,
                    reason,
                });
                self.publish_status();
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arcella_core::signing::generate;
    use ed25519_dalek::SigningKey;

    fn payload(key: &SigningKey, target: &DocumentTarget, version: u64) -> Vec<u8> {
        let document = DesiredDocument {
            target: target.clone(),
            version,
            modules: vec![],
        };
        crate::wire::encode(&document::sign(key, &document)).unwrap()
    }

    fn refusal(result: Result<Option<Taken>, (u64, Refusal)>) -> Refusal {
        result.unwrap_err().1
    }

    #[test]
    fn versions_only_go_up_by_sane_steps() {
        let key = generate().unwrap();
        let trust = TrustPolicy {
            trusted_keys: vec![key.verifying_key().to_bytes()],
            allow_unsigned: false,
        };
        let me = DocumentTarget::Device("gw1".into());
        let first = judge(&trust, &me, None, &payload(&key, &me, 5)).unwrap().unwrap();
        let held = Some(first.id);
        // The same document again: nothing to do.
        assert!(judge(&trust, &me, held, &payload(&key, &me, 5)).unwrap().is_none());
        assert_eq!(
            refusal(judge(&trust, &me, held, &payload(&key, &me, 4))),
            Refusal::Stale { applied: 5 }
        );
        // Signed by a stranger: a signature refusal, whatever its version.
        let stranger = payload(&generate().unwrap(), &me, 6);
        assert!(matches!(
            refusal(judge(&trust, &me, held, &stranger)),
            Refusal::Signature(_)
        ));
        // The version taken, with other content.
        let forged_same = DocumentId {
            version: 5,
            sha256: [9; 32],
        };
        assert_eq!(
            refusal(judge(&trust, &me, Some(forged_same), &payload(&key, &me, 5))),
            Refusal::Conflict
        );
        for absurd in [0, u64::MAX, 5 + (1 << 40), 5 + MAX_VERSION_JUMP + 1] {
            assert_eq!(
                refusal(judge(&trust, &me, held, &payload(&key, &me, absurd))),
                Refusal::BadVersion { applied: 5 },
                "{absurd}"
            );
        }
        assert!(
            judge(&trust, &me, held, &payload(&key, &me, 5 + MAX_VERSION_JUMP))
                .unwrap()
                .is_some()
        );
        assert_eq!(
            refusal(judge(&trust, &me, None, &payload(&key, &me, u64::MAX))),
            Refusal::BadVersion { applied: 0 }
        );
    }

    #[test]
    fn documents_for_others_forged_or_cut_are_refused() {
        let key = generate().unwrap();
        let trust = TrustPolicy {
            trusted_keys: vec![key.verifying_key().to_bytes()],
            allow_unsigned: true,
        };
        let me = DocumentTarget::Device("gw1".into());
        for other in [
            DocumentTarget::Device("gw2".into()),
            DocumentTarget::Group("gw1".into()),
        ] {
            assert!(matches!(
                refusal(judge(&trust, &me, None, &payload(&key, &other, 1))),
                Refusal::WrongTarget { .. }
            ));
        }
        let good = payload(&key, &me, 1);
        let cut = &good[..good.len() - 3];
        assert!(matches!(refusal(judge(&trust, &me, None, cut)), Refusal::Unreadable(_)));
        // A byte of the signed body flipped (the length prefix still fits).
        let mut flipped = good.clone();
        let at = flipped.len() / 3;
        flipped[at] ^= 1;
        assert!(judge(&trust, &me, None, &flipped).is_err());
        assert!(matches!(
            refusal(judge(&trust, &me, None, b"garbage")),
            Refusal::Unreadable(_)
        ));
    }
}
