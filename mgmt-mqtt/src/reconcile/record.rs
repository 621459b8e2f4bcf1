//! What the reconciler has taken and applied, kept in
//! `<data>/fleet/desired-state` so a restarted daemon neither redoes
//! finished work, nor forgets which modules the fleet owns (only those
//! are ever removed by a desired state; modules installed by hand are
//! left alone), nor takes a document older than one it already took.

use arcella_core::protocol::fleet::{DesiredDocument, DocumentId, SignedDocument};
use arcella_core::signing::document;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

const FILE: &str = "desired-state";
/// The record of earlier releases (unsigned documents): only its versions
/// and managed modules are carried over.
const OLD_FILE: &str = "applied";

/// The reconciler's durable state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The latest accepted document of the device's group, with its name.
    pub group: Option<(String, SignedDocument)>,
    /// The latest accepted document for this device.
    pub device: Option<SignedDocument>,
    /// The highest version taken from each source (`device`, `group
    /// <name>`), never lowered, even when the document itself is gone.
    pub taken: BTreeMap<String, DocumentId>,
    /// Modules the fleet installed, and what they were installed from.
    pub managed: BTreeMap<String, Applied>,
    /// Whether the accepted documents have been applied to the end.
    pub finished: bool,
}

/// What one managed module was installed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub artifact: [u8; 32],
    /// sha256 of its component.toml and deployment.toml texts.
    pub manifests: [u8; 32],
}

/// The name of a document source in records, reports and logs.
pub fn source_name(group: Option<&str>) -> String {
    group.map_or_else(|| "device".to_owned(), |g| format!("group {g}"))
}

impl Record {
    /// The record in `dir`; a missing one is empty, an unreadable one is
    /// set aside (`.bad`) and reported, never fatal.
    pub fn load(dir: &Path) -> Self {
        let path = dir.join(FILE);
        match std::fs::read(&path) {
            Ok(bytes) => match postcard::from_bytes(&bytes) {
                Ok(record) => record,
                Err(e) => {
                    log::error!(
                        "{}: unreadable ({e}); set aside as {FILE}.bad, starting afresh",
                        path.display()
                    );
                    let _ = std::fs::rename(&path, dir.join(format!("{FILE}.bad")));
                    Self::default()
                }
            },
            Err(_) => Self::from_old(dir).unwrap_or_default(),
        }
    }

    /// Carries over an earlier release's record: the versions it took
    /// (so nothing older is taken again) and the modules it manages.
    fn from_old(dir: &Path) -> Option<Self> {
        let bytes = std::fs::read(dir.join(OLD_FILE)).ok()?;
        let old: OldRecord = postcard::from_bytes(&bytes).ok()?;
        let mut taken = BTreeMap::new();
        let id = |version| DocumentId {
            version,
            sha256: [0; 32],
        };
        if let Some((name, d)) = &old.group {
            taken.insert(source_name(Some(name)), id(d.version));
        }
        if let Some(d) = &old.device {
            taken.insert(source_name(None), id(d.version));
        }
        log::info!("fleet record of an earlier release carried over (versions and managed modules)");
        Some(Self {
            taken,
            managed: old.managed,
            ..Self::default()
        })
    }

    /// Writes the record durably (temp file, fsync, rename).
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let bytes = postcard::to_stdvec(self).map_err(std::io::Error::other)?;
        arcella_core::sys::fs::write_atomic(dir, FILE, &bytes).map(|_| ())
    }

    /// The highest version and digest taken from a source.
    pub fn taken_from(&self, group: Option<&str>) -> Option<DocumentId> {
        self.taken.get(&source_name(group)).copied()
    }

    /// The documents held, decoded (they were verified when taken).
    pub fn documents(&self) -> (Option<DesiredDocument>, Option<DesiredDocument>) {
        (
            self.group.as_ref().and_then(|(_, d)| document::read_unverified(d)),
            self.device.as_ref().and_then(document::read_unverified),
        )
    }
}

/// The earlier release's layout, for [`Record::from_old`] only.
#[derive(Deserialize)]
struct OldRecord {
    group: Option<(String, OldDocument)>,
    device: Option<OldDocument>,
    managed: BTreeMap<String, Applied>,
    #[allow(dead_code)]
    finished: bool,
}

/// Postcard is not self-describing: the old layout is spelled out whole
/// (its module entries are laid out as today's).
#[derive(Deserialize)]
struct OldDocument {
    version: u64,
    #[allow(dead_code)]
    modules: Vec<arcella_core::protocol::fleet::DesiredModule>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use arcella_core::protocol::fleet::DocumentTarget;

    #[test]
    fn a_record_survives_a_save_and_a_damaged_one_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let key = arcella_core::signing::generate().unwrap();
        let signed = document::sign(
            &key,
            &DesiredDocument {
                target: DocumentTarget::Device("d".into()),
                version: 7,
                modules: vec![],
            },
        );
        let mut record = Record {
            device: Some(signed.clone()),
            ..Record::default()
        };
        record.taken.insert(
            source_name(None),
            DocumentId {
                version: 7,
                sha256: document::sha256(&signed),
            },
        );
        record.managed.insert(
            "m".into(),
            Applied {
                artifact: [1; 32],
                manifests: [2; 32],
            },
        );
        record.save(dir.path()).unwrap();
        assert_eq!(Record::load(dir.path()), record);
        assert_eq!(record.taken_from(None).map(|d| d.version), Some(7));
        assert_eq!(record.documents().1.map(|d| d.version), Some(7));
        std::fs::write(dir.path().join(FILE), b"\xff\xff\xff").unwrap();
        // (the damaged record is set aside below)
        assert_eq!(Record::load(dir.path()), Record::default());
        assert!(dir.path().join("desired-state.bad").exists());
    }

    #[test]
    fn an_earlier_releases_record_keeps_its_versions_and_managed_modules() {
        #[derive(Serialize)]
        struct Old {
            group: Option<(String, OldDoc)>,
            device: Option<OldDoc>,
            managed: BTreeMap<String, Applied>,
            finished: bool,
        }
        #[derive(Serialize)]
        struct OldDoc {
            version: u64,
            modules: Vec<arcella_core::protocol::fleet::DesiredModule>,
        }
        let dir = tempfile::tempdir().unwrap();
        let mut managed = BTreeMap::new();
        let applied = Applied {
            artifact: [3; 32],
            manifests: [4; 32],
        };
        managed.insert("sensor".to_owned(), applied);
        let old = Old {
            group: Some((
                "north".into(),
                OldDoc {
                    version: 12,
                    modules: vec![],
                },
            )),
            device: Some(OldDoc {
                version: 4,
                modules: vec![],
            }),
            managed,
            finished: true,
        };
        std::fs::write(dir.path().join(OLD_FILE), postcard::to_stdvec(&old).unwrap()).unwrap();
        let record = Record::load(dir.path());
        assert_eq!(record.taken_from(Some("north")).map(|d| d.version), Some(12));
        assert_eq!(record.taken_from(None).map(|d| d.version), Some(4));
        assert_eq!(record.managed.get("sensor"), Some(&applied));
        assert!(record.device.is_none(), "unsigned documents are not carried over");
    }
}
