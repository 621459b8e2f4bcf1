//! Modules' key-value state, apart from their code: one redb file per
//! module at `<data>/state/<module>.redb`. It outlives restarts, updates,
//! rollbacks and `arcella remove`; only `arcella remove --purge-state`
//! deletes it. The daemon keeps one open handle per module, shared by its
//! running instances (in-process, or served to a worker) and the
//! operator's `arcella kv`, because redb lets one process open a file once.

use crate::host::keyvalue::store::{ModuleStore, OpenError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// Why state could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("cannot create the state directory {path}: {source}")]
    Dir { path: PathBuf, source: std::io::Error },
    #[error("cannot delete the state of `{module}` ({path}): {source}")]
    Purge {
        module: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The open databases, by module id.
#[derive(Debug)]
pub struct KvStores {
    dir: PathBuf,
    open: Mutex<HashMap<String, Arc<ModuleStore>>>,
}

impl KvStores {
    /// State under `<data_dir>/state`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("state"),
            open: Mutex::new(HashMap::new()),
        }
    }

    /// The file of `module`.
    pub fn path(&self, module: &str) -> PathBuf {
        self.dir.join(format!("{module}.redb"))
    }

    /// Whether `module` has state on disk.
    pub fn exists(&self, module: &str) -> bool {
        self.path(module).exists()
    }

    /// The module's database, opened (or created) on first use. Blocking:
    /// opening a file left by a crash may repair it.
    pub fn open(&self, module: &str) -> Result<Arc<ModuleStore>, StateError> {
        if let Some(store) = self.lock().get(module) {
            return Ok(store.clone());
        }
        crate::sys::fs::create_private_dir(&self.dir).map_err(|source| StateError::Dir {
            path: self.dir.clone(),
            source,
        })?;
        let mut open = self.lock();
        // Another thread may have opened it meanwhile.
        if let Some(store) = open.get(module) {
            return Ok(store.clone());
        }
        let path = self.path(module);
        let new = !path.exists();
        let store = Arc::new(ModuleStore::open(&path, module)?);
        if new {
            // The new file's name must survive a power cut too.
            crate::sys::fs::sync_dir(&self.dir).map_err(|source| StateError::Dir {
                path: self.dir.clone(),
                source,
            })?;
        }
        open.insert(module.to_owned(), store.clone());
        Ok(store)
    }

    /// Deletes the module's state (its instances must have ended).
    /// Returns whether there was any.
    pub fn purge(&self, module: &str) -> Result<bool, StateError> {
        drop(self.lock().remove(module));
        let path = self.path(module);
        if !path.exists() {
            return Ok(false);
        }
        crate::sys::fs::remove_durably(&path).map_err(|source| StateError::Purge {
            module: module.to_owned(),
            path,
            source,
        })?;
        Ok(true)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<ModuleStore>>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
