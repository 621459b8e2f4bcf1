//! Install, update and remove; loading the registry at startup.
//!
//! Order of an install, so that a crash at any point leaves the module
//! fully installed or absent: the upload is verified; the artifact is
//! verified and written to the store; the manifests are validated against
//! the artifact; and only then is the module record written (atomically).
//! Artifacts left without a record are collected at the next start.

use super::{Loaded, Slot, Supervisor, internal, not_found};
use crate::artifact::{self, InputKind, Program, format};
use crate::daemon::interface;
use crate::daemon::registry::{ModuleRecord, VersionRecord};
use crate::manifest::{self, ManifestError, Validated};
use crate::protocol::{
    Collected, DesiredState, ErrorKind, InstallSpec, ModuleState, RemoteError, UpdateOutcome, UpdateReport,
};
use crate::run::LogBook;
use std::collections::BTreeSet;

fn invalid_artifact(message: impl Into<String>) -> RemoteError {
    RemoteError::new(ErrorKind::InvalidArtifact, message)
}

fn invalid_manifest(e: ManifestError) -> RemoteError {
    RemoteError::new(ErrorKind::InvalidManifest, e.to_string())
}

impl Supervisor {
    /// Loads every module record; modules that cannot be loaded stay
    /// listed as failed with the reason, their files untouched.
    pub fn load_registry(&self) -> Result<(), RemoteError> {
        let (records, broken) = self
            .inner
            .registry
            .load_all()
            .map_err(|e| internal("reading the registry", e))?;
        for e in &broken {
            log::error!("{e}");
        }
        for mut record in records {
            let id = record.id.clone();
            let logs = LogBook::new(&id, Some(self.log_listener()));
            let fits = self.check_engine_unchanged(&id, &record.current);
            // The engine changed: a source kept here is compiled again.
            let fits = match fits {
                Err(e) => match self.recompile_kept(&mut record) {
                    Some(Ok(())) => Ok(()),
                    Some(Err(failed)) => Err(RemoteError::new(
                        failed.kind,
                        format!(
                            "{}; compiling its kept source again failed: {}",
                            e.message, failed.message
                        ),
                    )),
                    None => Err(e),
                },
                ok => ok,
            };
            let loaded = fits.and_then(|()| self.load_version(&record.current));
            let (loaded, state, last_error) = match loaded {
                Ok(loaded) => (Some(loaded), ModuleState::Stopped, None),
                Err(e) => {
                    log::error!("module `{id}` cannot be loaded: {e}");
                    (
                        None,
                        ModuleState::Failed {
                            reason: e.message.clone(),
                        },
                        Some(e.message),
                    )
                }
            };
            let resume = match (&record.last_update, &record.previous, &loaded) {
                (
                    Some(UpdateReport {
                        outcome: UpdateOutcome::Probation { .. },
                        ..
                    }),
                    Some(previous),
                    Some(new),
                ) => {
                    let window = new.manifests.deployment.update.health_window;
                    self.check_engine_unchanged(&id, previous)
                        .and_then(|()| self.load_version(previous))
                        .ok()
                        .map(|previous| (previous, window))
                }
                _ => None,
            };
            let slot = new_slot(record, loaded, state, logs, last_error);
            self.lock().modules.insert(id.clone(), slot);
            if let Some((previous, window)) = resume {
                // The daemon stopped during a health window: the window
                // starts again, with the same way back.
                self.resume_probation(&id, previous, window);
            }
        }
        if broken.is_empty() {
            self.collect_garbage();
        } else {
            log::warn!("unreadable module records: artifact garbage collection skipped so nothing is lost");
        }
        Ok(())
    }

    /// Re-creates a stored version's program and manifests.
    pub(super) fn load_version(&self, version: &VersionRecord) -> Result<Loaded, RemoteError> {
        let (program, metered) = self
            .inner
            .store
            .load_in(&self.inner.engines, &version.artifact)
            .map_err(|e| invalid_artifact(e.to_string()))?;
        let header = self
            .inner
            .store
            .header(&version.artifact)
            .map_err(|e| invalid_artifact(e.to_string()))?;
        let manifests = self.validate(
            &program,
            &header.source_name,
            version.component_toml.as_deref(),
            &version.deployment_toml,
        )?;
        if let Some(fuel) = manifests.deployment.limits.fuel
            && !metered
        {
            return Err(invalid_artifact(format!(
                "deployment.toml sets limits.fuel = {fuel}, but the artifact ({}) was compiled without fuel \
                 metering: recompile it with `arcella compile {} -o OUT.cwasm --fuel` (plus the --board or --target \
                 you used), or remove limits.fuel",
                header.fingerprint, header.source_name
            )));
        }
        Ok(Loaded::new(program, manifests, metered))
    }

    fn validate(
        &self,
        program: &Program,
        source_name: &str,
        component_toml: Option<&str>,
        deployment_toml: &str,
    ) -> Result<Validated, RemoteError> {
        let interface = interface::describe(program, source_name);
        let component = component_toml
            .map(|text| manifest::parse_component(text, "component.toml"))
            .transpose()
            .map_err(invalid_manifest)?;
        let deployment = manifest::parse_deployment(deployment_toml, "deployment.toml").map_err(invalid_manifest)?;
        if interface.kind == artifact::ArtifactKind::Component {
            // Imports of other modules' interfaces go to providers, where granted.
            let host_missing: Vec<String> = interface
                .imports
                .iter()
                .filter(|i| !crate::host::typed::from_provider(i))
                .cloned()
                .collect();
            let missing = crate::host::provided::missing_imports(&host_missing);
            let linking = super::wiring::check_imports(program, &deployment);
            if !missing.is_empty() {
                // Both problems at once, so one rebuild or edit fixes all.
                let mut refusal = crate::host::provided::refusal(&missing);
                if let Err(also) = linking {
                    refusal = format!("{refusal}; and {also}");
                }
                return Err(RemoteError::new(ErrorKind::Unavailable, refusal));
            }
            linking.map_err(|e| RemoteError::new(ErrorKind::InvalidManifest, e))?;
        }
        let validated = manifest::validate(component, deployment, &interface).map_err(invalid_manifest)?;
        let engine_stack = self.inner.config.engine.max_wasm_stack as u64;
        if let Some(stack) = validated.deployment.limits.stack
            && stack != engine_stack
        {
            // wasmtime sets the stack limit per engine, not per module.
            return Err(RemoteError::new(
                ErrorKind::InvalidManifest,
                format!(
                    "deployment.toml: limits.stack = {stack}: the stack limit is the daemon engine's ({engine_stack} bytes, \
                     [engine] max_wasm_stack in its config) for every module; per-module stack limits are not available \
                     yet, so remove the key or set it to {engine_stack}"
                ),
            ));
        }
        if let Program::Module(module) = program
            && module.get_export(crate::run::HEALTH_EXPORT).is_some()
            && !module
                .imports()
                .any(|i| (i.module(), i.name()) == crate::run::SHUTDOWN_IMPORT)
        {
            let (import_module, import_name) = crate::run::SHUTDOWN_IMPORT;
            return Err(RemoteError::new(
                ErrorKind::InvalidManifest,
                format!(
                    "the module exports `{}` but does not import `{import_module}.{import_name}`: its health can only \
                     be asked from inside that call, so import it (and call it between units of work)",
                    crate::run::HEALTH_EXPORT
                ),
            ));
        }
        if !validated.deployment.r#async {
            return Err(RemoteError::new(
                ErrorKind::InvalidManifest,
                "deployment.toml: async = false (a dedicated thread) is not available yet; remove the key: trusted \
                 modules run as async tasks on the daemon's guest thread and yield to each other every 10 ms",
            ));
        }
        let served = validated.deployment.http.is_some();
        if validated.deployment.kind == crate::protocol::ModuleKind::Provider {
            return Ok(validated);
        }
        let start = if served {
            crate::manifest::INCOMING_HANDLER
        } else {
            "wasi:cli/run"
        };
        let handles_messages = validated.entrypoint == crate::host::messaging::HANDLER;
        if interface.kind == artifact::ArtifactKind::Component
            && !validated.entrypoint.starts_with(start)
            && !handles_messages
        {
            let how = if served {
                "with [http], components are started through wasi:http/incoming-handler"
            } else {
                "components are started through wasi:cli/run today (or wasi:http/incoming-handler, with [http])"
            };
            return Err(RemoteError::new(
                ErrorKind::InvalidManifest,
                format!("deployment.toml: entrypoint `{}`: {how}", validated.entrypoint),
            ));
        }
        Ok(validated)
    }

    /// Verifies an upload, stores its artifact, validates the manifests
    /// (missing ones are `current`'s, in an update) and admits it. Returns
    /// the version to record, without its version string.
    fn stage(
        &self,
        spec: &InstallSpec,
        current: Option<&VersionRecord>,
    ) -> Result<(VersionRecord, Loaded), RemoteError> {
        let deployment_toml = match (&spec.deployment_toml, current) {
            (Some(text), _) => text.clone(),
            (None, Some(current)) => current.deployment_toml.clone(),
            (None, None) => {
                return Err(RemoteError::new(
                    ErrorKind::InvalidManifest,
                    "deployment.toml: missing: an install needs one (--deployment FILE)",
                ));
            }
        };
        let component_toml = match (&spec.component_toml, current) {
            (Some(text), _) => Some(text.clone()),
            (None, Some(current)) => current.component_toml.clone(),
            (None, None) => None,
        };
        let path = self.inner.uploads.completed(&spec.upload)?;
        let bytes = std::fs::read(&path).map_err(|e| internal("reading the upload", e))?;
        let artifact_id = match InputKind::of(&bytes) {
            InputKind::Artifact => {
                let artifact = format::decode(&bytes).map_err(|e| invalid_artifact(format!("the artifact: {e}")))?;
                artifact::load::check_variant(
                    &artifact.header,
                    &self.inner.engines,
                    std::path::Path::new("the artifact"),
                    self.board_name(),
                )
                .map_err(|e| invalid_artifact(e.to_string()))?;
                self.put_artifact(&artifact)?
            }
            InputKind::Wasm(_) | InputKind::Wat => {
                // Fuel metering only for a module with a fuel limit.
                let metered = manifest::parse_deployment(&deployment_toml, "deployment.toml")
                    .is_ok_and(|d| d.limits.fuel.is_some());
                self.compile_upload(&bytes, metered)?
            }
            other => return Err(invalid_artifact(format!("the uploaded file is {}", other.describe()))),
        };
        let mut version = VersionRecord {
            version: String::new(),
            artifact: artifact_id,
            component_toml,
            deployment_toml,
        };
        let admitted = self.load_version(&version).and_then(|loaded| {
            self.admit_deployment(&loaded.manifests.id, &loaded.manifests.deployment)?;
            Ok(loaded)
        });
        match admitted {
            Ok(loaded) => {
                version.version = loaded.manifests.version.clone();
                Ok((version, loaded))
            }
            Err(e) => {
                // Whatever this stored, nothing refers to it.
                self.collect_garbage();
                Err(e)
            }
        }
    }

    /// Stores a verified artifact, if the disk budget has room for it.
    fn put_artifact(&self, artifact: &artifact::ArtifactRef<'_>) -> Result<String, RemoteError> {
        let id = artifact.header.id();
        if !self.inner.store.contains(&id) {
            // The code, its sealed header, and a page for the directory.
            let needed = artifact.code.len() as u64 + 4096;
            self.admit_disk(needed, "the artifact")?;
        }
        self.inner.store.put(artifact).map_err(|e| {
            let full = matches!(&e, artifact::StoreError::Io { source, .. } if is_disk_full(source));
            if full {
                RemoteError::new(
                    ErrorKind::ResourceExhausted,
                    format!("the disk filled up while storing the artifact ({e}); nothing was changed"),
                )
            } else {
                internal("storing the artifact", e)
            }
        })
    }

    /// The board this daemon's engine is, if it names one.
    fn board_name(&self) -> Option<&str> {
        let board = &self.inner.config.board;
        (board != crate::board::GENERIC).then_some(board.as_str())
    }

    /// Compiles an uploaded `.wasm` for this daemon's engine and stores
    /// the artifact with the source kept beside it.
    #[cfg(feature = "compiler")]
    fn compile_upload(&self, bytes: &[u8], metered: bool) -> Result<String, RemoteError> {
        self.compile_and_keep(bytes, "module.wasm", metered)
    }

    #[cfg(feature = "compiler")]
    fn compile_and_keep(&self, source: &[u8], name: &str, metered: bool) -> Result<String, RemoteError> {
        let profile = self.inner.engines.profile(metered);
        let compiled =
            artifact::compile::compile(&profile, source, name).map_err(|e| invalid_artifact(e.to_string()))?;
        let artifact = artifact::ArtifactRef {
            header: compiled.header,
            code: &compiled.code,
        };
        let id = self.put_artifact(&artifact)?;
        if self.inner.store.source(&id).is_none() {
            self.admit_disk(
                source.len() as u64,
                "the module's source (kept to compile it again when the engine changes)",
            )?;
            self.inner
                .store
                .put_source(&id, source)
                .map_err(|e| internal("keeping the module's source", e))?;
        }
        Ok(id)
    }

    /// A module whose artifact no longer fits the engine, given a new one
    /// compiled from the source kept beside it (a build with the compiler;
    /// `None`: nothing kept, or no compiler). The record is saved.
    #[cfg(feature = "compiler")]
    fn recompile_kept(&self, record: &mut ModuleRecord) -> Option<Result<(), RemoteError>> {
        let source = self.inner.store.source(&record.current.artifact)?;
        let name = self.inner.store.header(&record.current.artifact).ok()?.source_name;
        let metered = manifest::parse_deployment(&record.current.deployment_toml, "deployment.toml")
            .is_ok_and(|d| d.limits.fuel.is_some());
        Some((|| {
            let id = self.compile_and_keep(&source, &name, metered)?;
            let mut updated = record.clone();
            updated.current.artifact = id;
            self.inner
                .registry
                .save(&updated)
                .map_err(|e| internal("saving the module record", e))?;
            log::info!(
                "module `{}`: its engine changed; compiled again from its kept source ({name}) for engine {}",
                record.id,
                self.inner.engines.fingerprints()[usize::from(metered)]
            );
            *record = updated;
            Ok(())
        })())
    }

    #[cfg(not(feature = "compiler"))]
    fn recompile_kept(&self, _record: &mut ModuleRecord) -> Option<Result<(), RemoteError>> {
        None
    }

    #[cfg(not(feature = "compiler"))]
    fn compile_upload(&self, _bytes: &[u8], _metered: bool) -> Result<String, RemoteError> {
        Err(invalid_artifact(format!(
            "this daemon has no compiler (a device build): upload an artifact compiled for engine {} \
             (on a build host: arcella compile module.wasm -o module.cwasm {}, then install module.cwasm)",
            crate::EngineFingerprint::of(&self.inner.config.engine),
            match self.board_name() {
                Some(board) => format!("--board {board}"),
                None => format!("--target {}", self.inner.config.engine.target.resolved()),
            }
        )))
    }

    /// Installs a new module; starts it if its deployment says autostart.
    pub fn install(&self, spec: &InstallSpec) -> Result<crate::protocol::ModuleSummary, RemoteError> {
        let _changes = self.lock_changes();
        let installed = self.lock().modules.len();
        if installed >= super::queries::MAX_MODULES {
            self.inner.uploads.discard(&spec.upload);
            return Err(RemoteError::new(
                ErrorKind::ResourceExhausted,
                format!(
                    "the daemon already holds {installed} modules, its limit (`list` answers with all of them \
                     in one frame); remove one first"
                ),
            ));
        }
        let (version, loaded) = self
            .stage(spec, None)
            .inspect_err(|_| self.inner.uploads.discard(&spec.upload))?;
        let id = loaded.manifests.id.clone();
        if let Some(existing) = self.lock().modules.get(&id) {
            return Err(RemoteError::new(
                ErrorKind::AlreadyExists,
                format!(
                    "module `{id}` is already installed (version {}); to replace it, run the same install with --replace",
                    existing.record.current.version
                ),
            ));
        }
        let autostart = loaded.manifests.deployment.startup.autostart;
        let record = ModuleRecord {
            id: id.clone(),
            desired: if autostart {
                DesiredState::Running
            } else {
                DesiredState::Stopped
            },
            current: version,
            previous: None,
            older: Vec::new(),
            last_update: None,
            config: Default::default(),
        };
        self.inner
            .registry
            .save(&record)
            .map_err(|e| internal("saving the module record", e))?;
        self.inner.uploads.discard(&spec.upload);
        let logs = LogBook::new(&id, Some(self.log_listener()));
        logs.note(&format!("installed version {}", record.current.version));
        self.lock().modules.insert(
            id.clone(),
            new_slot(record, Some(loaded), ModuleState::Stopped, logs, None),
        );
        if autostart {
            self.start_or_record(&id);
        }
        self.summary(&id)
    }

    /// Replaces a module's version, keeping the old one as `previous`.
    /// Everything about the new version is checked and stored before the
    /// running one is touched; then the swap, then the health window.
    pub fn update(&self, id: &str, spec: &InstallSpec) -> Result<crate::protocol::ModuleSummary, RemoteError> {
        let _changes = self.lock_changes();
        let current = self
            .lock()
            .modules
            .get(id)
            .map(|slot| slot.record.current.clone())
            .ok_or_else(|| not_found(id))?;
        let (version, loaded) = self
            .stage(spec, Some(&current))
            .inspect_err(|_| self.inner.uploads.discard(&spec.upload))?;
        if loaded.manifests.id != id {
            self.collect_garbage();
            return Err(RemoteError::new(
                ErrorKind::InvalidManifest,
                format!(
                    "the new version is module `{}`, not `{id}`: update replaces a module with a version of itself",
                    loaded.manifests.id
                ),
            ));
        }
        let window = loaded.manifests.deployment.update.health_window;
        let retain = self.inner.config.retain_versions as usize;
        let (old, run_it) = {
            let mut state = self.lock();
            let Some(slot) = state.modules.get_mut(id) else {
                return Err(not_found(id));
            };
            let mut record = slot.record.clone();
            let old = record.current.clone();
            if let Some(previous) = record.previous.take() {
                record.older.insert(0, previous);
                record.older.truncate(retain);
            }
            record.previous = Some(old.clone());
            record.current = version;
            let run_it = record.desired == DesiredState::Running;
            let watched = run_it && !window.is_zero() && slot.loaded.is_some();
            record.last_update = Some(UpdateReport {
                from: old.version.clone(),
                to: record.current.version.clone(),
                at: super::unix_now(),
                outcome: if watched {
                    UpdateOutcome::Probation {
                        until: super::unix_now() + window.as_secs().max(1),
                    }
                } else {
                    UpdateOutcome::Succeeded
                },
            });
            self.inner
                .registry
                .save(&record)
                .map_err(|e| internal("saving the module record", e))?;
            slot.logs
                .note(&format!("updating {} -> {}", old.version, record.current.version));
            slot.record = record;
            slot.last_error = None;
            slot.failures = 0;
            slot.probation = None;
            let old = slot.loaded.replace(loaded.clone()).filter(|_| watched);
            (old, run_it)
        };
        self.inner.uploads.discard(&spec.upload);
        if run_it {
            self.swap_in(id, loaded, old.map(|previous| (previous, window)));
        } else {
            self.halt(&mut self.lock(), id, "replaced by the new version (stays stopped)");
        }
        self.collect_garbage();
        self.summary(id)
    }

    /// Stops and uninstalls a module; its artifacts are collected.
    pub fn remove(&self, id: &str) -> Result<(), RemoteError> {
        let _changes = self.lock_changes();
        let mut state = self.lock();
        if !state.modules.contains_key(id) {
            return Err(not_found(id));
        }
        self.halt(&mut state, id, "removed");
        self.inner
            .registry
            .remove(id)
            .map_err(|e| internal("removing the module record", e))?;
        state.modules.remove(id);
        if let Some(fleet_logs) = &self.inner.fleet_logs {
            fleet_logs.remove_module(id);
        }
        self.provider_gone(&mut state, id);
        drop(state);
        self.collect_garbage();
        Ok(())
    }

    /// Starts a freshly installed or updated module; a failure to start
    /// is recorded in its state rather than undoing the install.
    fn start_or_record(&self, id: &str) {
        if let Err(e) = self.start(id) {
            let mut state = self.lock();
            if let Some(slot) = state.modules.get_mut(id) {
                slot.last_error = Some(e.message.clone());
                slot.logs.note(&e.message);
            }
            self.set_state(&mut state, id, ModuleState::Failed { reason: e.message });
        }
    }

    /// `arcella gc`: deletes artifacts no module record refers to and
    /// completed uploads nobody installed within an hour.
    pub fn gc(&self) -> Collected {
        let _changes = self.lock_changes();
        let mut collected = self.collect_garbage();
        let (uploads, bytes) = self.inner.uploads.remove_stale(std::time::Duration::from_secs(3600));
        collected.uploads = uploads;
        collected.bytes += bytes;
        collected
    }

    /// Deletes stored artifacts no module record refers to (current,
    /// previous, and the older versions `retain_versions` keeps).
    pub(super) fn collect_garbage(&self) -> Collected {
        let referenced: BTreeSet<String> = self
            .lock()
            .modules
            .values()
            .flat_map(|slot| slot.record.versions().map(|v| v.artifact.clone()).collect::<Vec<_>>())
            .collect();
        let mut collected = Collected {
            artifacts: Vec::new(),
            bytes: 0,
            uploads: 0,
        };
        let Ok(stored) = self.inner.store.list() else {
            return collected;
        };
        for id in stored.into_iter().filter(|id| !referenced.contains(id)) {
            let size = self.inner.store.size_of(&id);
            match self.inner.store.remove(&id) {
                Ok(()) => {
                    log::info!("removed unreferenced artifact {}", &id[..12.min(id.len())]);
                    collected.bytes += size;
                    collected.artifacts.push(id);
                }
                Err(e) => log::warn!("cannot remove unreferenced artifact {id}: {e}"),
            }
        }
        collected
    }
}

/// ENOSPC or EDQUOT.
fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(28 | 122))
}

fn new_slot(
    record: ModuleRecord,
    loaded: Option<Loaded>,
    state: ModuleState,
    logs: LogBook,
    last_error: Option<String>,
) -> Slot {
    Slot {
        record,
        loaded,
        state,
        task: None,
        stop_flag: None,
        stop_notice: None,
        config: None,
        config_notice: None,
        host: None,
        outgoing: None,
        probation: None,
        instance: None,
        health: None,
        generation: 0,
        logs,
        failures: 0,
        decisions: 0,
        restarts: 0,
        last_exit: None,
        last_error,
        started_at: None,
    }
}
