//! Installed modules, persisted one file each under `<data>/modules/`.
//!
//! A module exists exactly when its record file does. Records are written
//! last in an install (after the artifact is in the store), atomically, so
//! a crash leaves every module fully installed or absent.

use crate::protocol::{DesiredState, UpdateReport};
use crate::sys::fs as sysfs;
use crate::sys::reserve::DiskReserve;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// One installed version of a module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    pub version: String,
    /// Code digest (hex) of its artifact in the store.
    pub artifact: String,
    pub component_toml: Option<String>,
    pub deployment_toml: String,
}

/// What the daemon remembers about a module across restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleRecord {
    pub id: String,
    pub desired: DesiredState,
    pub current: VersionRecord,
    /// The version `update` replaced, kept for rollback.
    pub previous: Option<VersionRecord>,
    /// Versions before `previous`, newest first, kept by `retain_versions`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub older: Vec<VersionRecord>,
    /// The last update or rollback and its outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update: Option<UpdateReport>,
    /// Operator values of the runtime configuration (`arcella config
    /// set`), layered over the current version's `[config]`. Kept by the
    /// module, not a version: they survive update and rollback.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub config: std::collections::BTreeMap<String, String>,
}

impl ModuleRecord {
    /// Every version this record keeps, current first.
    pub fn versions(&self) -> impl Iterator<Item = &VersionRecord> {
        std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .chain(self.older.iter())
    }
}

/// Why the registry could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("module registry {dir}: {source}")]
    Io {
        dir: String,
        #[source]
        source: io::Error,
    },
    #[error("module record {file} is unreadable ({reason}); the module is skipped, its file kept for inspection")]
    Corrupt { file: String, reason: String },
}

/// The directory of module records.
#[derive(Debug, Clone)]
pub struct Registry {
    dir: PathBuf,
    /// Space kept for these records on a full disk.
    reserve: DiskReserve,
}

const EXT: &str = "toml";

impl Registry {
    pub fn open(data_dir: &Path) -> Result<Self, RegistryError> {
        let dir = data_dir.join("modules");
        let io_err = |source| RegistryError::Io {
            dir: dir.display().to_string(),
            source,
        };
        fs::create_dir_all(&dir).map_err(io_err)?;
        sysfs::remove_stale_temps(&dir).map_err(io_err)?;
        let reserve = DiskReserve::at(data_dir);
        reserve.keep();
        Ok(Self { dir, reserve })
    }

    fn io_err(&self) -> impl Fn(io::Error) -> RegistryError + '_ {
        |source| RegistryError::Io {
            dir: self.dir.display().to_string(),
            source,
        }
    }

    /// Every record, and the records that could not be read.
    pub fn load_all(&self) -> Result<(Vec<ModuleRecord>, Vec<RegistryError>), RegistryError> {
        let mut records = Vec::new();
        let mut broken = Vec::new();
        let mut paths: Vec<PathBuf> = fs::read_dir(&self.dir)
            .map_err(self.io_err())?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == EXT))
            .collect();
        paths.sort();
        for path in paths {
            match self.read(&path) {
                Ok(record) => records.push(record),
                Err(e) => broken.push(e),
            }
        }
        Ok((records, broken))
    }

    fn read(&self, path: &Path) -> Result<ModuleRecord, RegistryError> {
        let corrupt = |reason: String| RegistryError::Corrupt {
            file: path.display().to_string(),
            reason,
        };
        let text = fs::read_to_string(path).map_err(|e| corrupt(e.to_string()))?;
        let record: ModuleRecord = toml::from_str(&text).map_err(|e| corrupt(e.message().to_owned()))?;
        let expected = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        if expected.as_deref() != Some(record.id.as_str()) {
            return Err(corrupt(format!("it describes module `{}`", record.id)));
        }
        Ok(record)
    }

    /// Writes a record atomically and durably.
    pub fn save(&self, record: &ModuleRecord) -> Result<(), RegistryError> {
        let text = toml::to_string(record).map_err(|e| self.io_err()(io::Error::other(e)))?;
        let name = format!("{}.{EXT}", record.id);
        self.reserve
            .write_with("saving a module record", || {
                sysfs::write_atomic(&self.dir, &name, text.as_bytes())
            })
            .map_err(self.io_err())?;
        Ok(())
    }

    /// Removes a record durably.
    pub fn remove(&self, id: &str) -> Result<(), RegistryError> {
        let path = self.dir.join(format!("{id}.{EXT}"));
        self.reserve
            .write_with("removing a module record", || sysfs::remove_durably(&path))
            .map_err(self.io_err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> ModuleRecord {
        ModuleRecord {
            id: id.into(),
            desired: DesiredState::Running,
            current: VersionRecord {
                version: "1.0.0".into(),
                artifact: "ab".repeat(32),
                component_toml: Some("name = \"x\"\nversion = \"1\"\n".into()),
                deployment_toml: "trusted = true\n".into(),
            },
            previous: None,
            older: Vec::new(),
            last_update: None,
            config: Default::default(),
        }
    }

    #[test]
    fn a_record_with_history_and_an_update_report_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::open(dir.path()).unwrap();
        let mut full = record("full");
        full.config = [("greeting", "hi \"there\"\n"), ("db.url", "x=y")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into();
        full.previous = Some(full.current.clone());
        full.older = vec![full.current.clone(), full.current.clone()];
        for outcome in [
            crate::protocol::UpdateOutcome::Probation { until: 9 },
            crate::protocol::UpdateOutcome::Succeeded,
            crate::protocol::UpdateOutcome::RolledBack {
                reason: "trap \"x\"\nline".into(),
            },
            crate::protocol::UpdateOutcome::Reverted,
        ] {
            full.last_update = Some(UpdateReport {
                from: "1.0.0".into(),
                to: "1.1.0".into(),
                at: 7,
                outcome,
            });
            registry.save(&full).unwrap();
            assert_eq!(registry.load_all().unwrap().0, vec![full.clone()]);
        }
    }

    #[test]
    fn records_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::open(dir.path()).unwrap();
        registry.save(&record("b")).unwrap();
        registry.save(&record("a")).unwrap();
        let (records, broken) = registry.load_all().unwrap();
        assert!(broken.is_empty());
        assert_eq!(records, vec![record("a"), record("b")]);
        registry.remove("a").unwrap();
        assert_eq!(registry.load_all().unwrap().0, vec![record("b")]);
    }

    #[test]
    fn a_corrupt_record_is_reported_and_the_others_load() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::open(dir.path()).unwrap();
        registry.save(&record("good")).unwrap();
        fs::write(dir.path().join("modules/bad.toml"), "id = ").unwrap();
        let (records, broken) = registry.load_all().unwrap();
        assert_eq!(records, vec![record("good")]);
        assert_eq!(broken.len(), 1);
        assert!(broken[0].to_string().contains("bad.toml"));
    }
}
