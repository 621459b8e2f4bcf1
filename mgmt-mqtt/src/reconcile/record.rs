//! What the reconciler has taken and applied, kept in
//! `<data>/fleet/applied` so a restarted daemon neither redoes finished
//! work nor forgets which modules the fleet owns (only those are ever
//! removed by a desired state; modules installed by hand are left alone).

use arcella_core::protocol::fleet::DesiredDocument;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

const FILE: &str = "applied";

/// The reconciler's durable state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The latest accepted document of the device's group, with its name.
    pub group: Option<(String, DesiredDocument)>,
    /// The latest accepted document for this device.
    pub device: Option<DesiredDocument>,
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

impl Record {
    /// The record in `dir`; a missing one is empty, an unreadable one is
    /// set aside (`applied.bad`) and reported, never fatal.
    pub fn load(dir: &Path) -> Self {
        let path = dir.join(FILE);
        let Ok(bytes) = std::fs::read(&path) else {
            return Self::default();
        };
        match postcard::from_bytes(&bytes) {
            Ok(record) => record,
            Err(e) => {
                log::error!(
                    "{}: unreadable ({e}); set aside as applied.bad, starting afresh",
                    path.display()
                );
                let _ = std::fs::rename(&path, dir.join("applied.bad"));
                Self::default()
            }
        }
    }

    /// Writes the record durably (temp file, fsync, rename).
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let bytes = postcard::to_stdvec(self).map_err(std::io::Error::other)?;
        arcella_core::sys::fs::write_atomic(dir, FILE, &bytes).map(|_| ())
    }

    /// The version accepted from a source (`None` for the device itself).
    pub fn version_of(&self, group: Option<&str>) -> Option<u64> {
        match group {
            None => self.device.as_ref().map(|d| d.version),
            Some(name) => self.group.as_ref().filter(|(n, _)| n == name).map(|(_, d)| d.version),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_survives_a_save_and_a_damaged_one_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let mut record = Record {
            device: Some(DesiredDocument {
                version: 7,
                modules: vec![],
            }),
            ..Record::default()
        };
        record.managed.insert(
            "m".into(),
            Applied {
                artifact: [1; 32],
                manifests: [2; 32],
            },
        );
        record.save(dir.path()).unwrap();
        assert_eq!(Record::load(dir.path()), record);
        assert_eq!(record.version_of(None), Some(7));
        std::fs::write(dir.path().join(FILE), b"\xff\xff\xff").unwrap();
        assert_eq!(Record::load(dir.path()), Record::default());
        assert!(dir.path().join("applied.bad").exists());
    }
}
