//! A module's runtime configuration (`wasi:config`): the current
//! version's `[config]` with the operator's values (`arcella config set`)
//! layered over it. Operator values live in the module's record, so they
//! survive daemon restarts, updates and rollbacks; `unset` returns a key
//! to the deployment's value (or to absent). A change reaches the running
//! instance at once: in-process by replacing its shared map, in a worker
//! by a `ToWorker::Config` message; `[restart] on_config_change = true`
//! restarts the module instead.

use super::{Slot, Supervisor, internal, not_found};
use crate::daemon::registry::ModuleRecord;
use crate::manifest::{DeploymentManifest, check_config_entry, check_config_key, check_config_size};
use crate::protocol::{ConfigEntry, ConfigSource, ErrorKind, ModuleConfig, RemoteError};
use std::collections::BTreeMap;

/// The most keys one `SetConfig` may name.
pub const MAX_CONFIG_CHANGES: usize = 256;

/// The configuration an instance of `record` running `deployment` reads.
pub(super) fn effective(record: &ModuleRecord, deployment: &DeploymentManifest) -> BTreeMap<String, String> {
    let mut values = deployment.config.clone();
    values.extend(record.config.iter().map(|(k, v)| (k.clone(), v.clone())));
    values
}

fn bad(message: String) -> RemoteError {
    RemoteError::new(ErrorKind::BadRequest, message)
}

impl Supervisor {
    /// `arcella config MODULE [get KEY]`.
    pub fn config(&self, id: &str, key: Option<&str>) -> Result<ModuleConfig, RemoteError> {
        let state = self.lock();
        let slot = state.modules.get(id).ok_or_else(|| not_found(id))?;
        let mut view = view_of(id, slot, false);
        if let Some(key) = key {
            view.entries.retain(|e| e.key == key);
            if view.entries.is_empty() {
                return Err(RemoteError::new(
                    ErrorKind::NotFound,
                    format!(
                        "module `{id}` has no config key `{key}` (see `arcella config {id}`; set one with \
                         `arcella config {id} set {key}=VALUE`)"
                    ),
                ));
            }
        }
        Ok(view)
    }

    /// `arcella config MODULE set K=V…` / `unset K…`: checked whole, then
    /// written durably, then given to the running instance. Nothing
    /// changes when any part is refused.
    pub fn set_config(
        &self,
        id: &str,
        set: &[(String, String)],
        unset: &[String],
    ) -> Result<ModuleConfig, RemoteError> {
        if set.len() + unset.len() > MAX_CONFIG_CHANGES {
            return Err(bad(format!(
                "{} changes in one request; at most {MAX_CONFIG_CHANGES}",
                set.len() + unset.len()
            )));
        }
        for (key, value) in set {
            check_config_entry(key, value).map_err(|m| bad(format!("config key `{}` {m}", key.escape_debug())))?;
        }
        for key in unset {
            check_config_key(key).map_err(|m| bad(format!("config key `{}` {m}", key.escape_debug())))?;
        }
        let _changes = self.lock_changes();
        let mut state = self.lock();
        let slot = state.modules.get_mut(id).ok_or_else(|| not_found(id))?;
        let mut record = slot.record.clone();
        for key in unset {
            record.config.remove(key);
        }
        for (key, value) in set {
            record.config.insert(key.clone(), value.clone());
        }
        let deployment = slot.loaded.as_ref().map(|l| &l.manifests.deployment);
        let values = deployment.map_or_else(|| record.config.clone(), |d| effective(&record, d));
        check_config_size(&values).map_err(|m| bad(format!("module `{id}`'s configuration would {m}")))?;
        let restart_on_change = deployment.is_some_and(|d| d.restart.on_config_change);
        let changed = record.config != slot.record.config;
        if changed {
            self.inner
                .registry
                .save(&record)
                .map_err(|e| internal("saving the module record", e))?;
            slot.record = record;
            let keys: Vec<&str> = set
                .iter()
                .map(|(k, _)| k.as_str())
                .chain(unset.iter().map(String::as_str))
                .collect();
            slot.logs.note(&format!("config changed: {}", keys.join(", ")));
        }
        let running = slot.task.is_some() && slot.instance.is_some();
        let restart = changed && running && restart_on_change;
        if changed && !restart {
            if let Some(live) = &slot.config {
                live.replace(values);
            }
            if let Some(notice) = &slot.config_notice {
                let _ = notice.try_send(());
            }
        }
        let view = view_of(id, slot, restart);
        if restart {
            self.halt(
                &mut state,
                id,
                "restarting: its configuration changed ([restart] on_config_change)",
            );
            let loaded = state.modules.get(id).and_then(|s| s.loaded.clone());
            if let Some(loaded) = loaded {
                self.launch(&mut state, id, loaded);
            }
        }
        Ok(view)
    }
}

/// What `config` shows of a slot.
fn view_of(id: &str, slot: &Slot, restarted: bool) -> ModuleConfig {
    let mut entries: BTreeMap<&str, ConfigEntry> = BTreeMap::new();
    if let Some(loaded) = &slot.loaded {
        for (key, value) in &loaded.manifests.deployment.config {
            entries.insert(
                key,
                ConfigEntry {
                    key: key.clone(),
                    value: value.clone(),
                    source: ConfigSource::Deployment,
                },
            );
        }
    }
    for (key, value) in &slot.record.config {
        entries.insert(
            key,
            ConfigEntry {
                key: key.clone(),
                value: value.clone(),
                source: ConfigSource::Operator,
            },
        );
    }
    ModuleConfig {
        module: id.to_owned(),
        entries: entries.into_values().collect(),
        restarted,
    }
}
