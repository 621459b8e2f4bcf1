//! `wasi:config/store@0.2.0-rc.1` (wit/deps/config, the version
//! wasmtime-wasi-config 48 links): a component reads its runtime
//! configuration.
//!
//! wasmtime-wasi-config's own host serves a map fixed when the instance
//! starts; here each instance reads a [`ConfigValues`] the daemon can
//! replace while it runs (`arcella config set`), so the guest's next `get`
//! sees the new value without a restart. In a worker the map is the
//! worker's copy, replaced by each `ToWorker::Config`.

use super::ComponentState;
use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};
use wasmtime::component::{HasSelf, Linker};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/deps/config",
        world: "wasi:config/imports",
    });
}

use bindings::wasi::config::store;

/// The interface's name as a component imports it.
pub const INTERFACE: &str = "wasi:config/store@0.2.0-rc.1";

/// One instance's configuration, shared between the host calls that read
/// it and whoever replaces it. Cheap to clone; readers never wait on a
/// writer for longer than a pointer swap.
#[derive(Clone, Default)]
pub struct ConfigValues(Arc<RwLock<Arc<BTreeMap<String, String>>>>);

impl std::fmt::Debug for ConfigValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigValues")
            .field("keys", &self.snapshot().len())
            .finish()
    }
}

impl ConfigValues {
    pub fn new(values: BTreeMap<String, String>) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(values))))
    }

    /// Replaces every value; the guest's next read sees the new ones.
    pub fn replace(&self, values: BTreeMap<String, String>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(values);
    }

    /// The values now.
    pub fn snapshot(&self) -> Arc<BTreeMap<String, String>> {
        self.0.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The values now, as `ToWorker::Config` carries them.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.snapshot().iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

impl store::Host for ComponentState {
    fn get(&mut self, key: String) -> Result<Option<String>, store::Error> {
        Ok(self.services.config.snapshot().get(&key).cloned())
    }

    fn get_all(&mut self) -> Result<Vec<(String, String)>, store::Error> {
        Ok(self.services.config.pairs())
    }
}

/// Adds `get` and `get-all`.
pub fn link(linker: &mut Linker<ComponentState>) -> wasmtime::Result<()> {
    store::add_to_linker::<_, HasSelf<ComponentState>>(linker, |state| state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replacement_is_seen_by_every_holder() {
        let values = ConfigValues::new(BTreeMap::from([("a".to_owned(), "1".to_owned())]));
        let reader = values.clone();
        let before = reader.snapshot();
        values.replace(BTreeMap::from([("a".to_owned(), "2".to_owned())]));
        assert_eq!(before["a"], "1", "a snapshot taken before stays as it was");
        assert_eq!(reader.snapshot()["a"], "2");
        assert_eq!(reader.pairs(), [("a".to_owned(), "2".to_owned())]);
    }
}
