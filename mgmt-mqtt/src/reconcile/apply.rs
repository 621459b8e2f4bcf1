//! One pass of convergence: the merged documents, module by module. A
//! module installed or updated here starts its health window; the
//! verdict comes from watching it (`watch.rs`).

use super::fetch::FetchEnd;
use super::watch::{Watch, unix_now};
use super::{Applied, Inbox, Reconciler};
use arcella_core::digest;
use arcella_core::protocol::fleet::{DesiredDocument, DesiredModule, Phase, Step};
use arcella_core::protocol::{ErrorKind, InstallSpec, ModuleState, Request, Response};
use std::time::Duration;

/// The health window of a module installed fresh, when its deployment
/// cannot be read (the install then fails anyway).
const DEFAULT_WINDOW: Duration = Duration::from_secs(5);

/// How a module's turn ended.
enum Outcome {
    Done(Step),
    Superseded,
}

impl Reconciler {
    /// The modules of the group's document, overridden by the device's.
    fn merged(&self) -> Vec<DesiredModule> {
        let (group, device) = self.record.documents();
        let mut modules: Vec<DesiredModule> = group.map(|d| d.modules).unwrap_or_default();
        for module in device.iter().flat_map(|d| d.modules.iter()) {
            match modules.iter_mut().find(|m| m.id == module.id) {
                Some(slot) => *slot = module.clone(),
                None => modules.push(module.clone()),
            }
        }
        modules
    }

    /// Brings every module to its desired state; stops early (leaving
    /// `dirty` set) when a newer document arrives meanwhile.
    pub(super) fn apply(&mut self, inbox: &Inbox) {
        let modules = self.merged();
        self.status.modules = modules
            .iter()
            .map(|m| arcella_core::protocol::fleet::ModuleProgress {
                id: m.id.clone(),
                step: Step::Pending,
            })
            .collect();
        self.watched.retain(|id, _| modules.iter().any(|m| &m.id == id));
        self.set_phase(Phase::Applying);
        for module in &modules {
            match self.converge(module, inbox) {
                Outcome::Done(step) => {
                    // A verdict against it stands until the next document.
                    if matches!(
                        step,
                        Step::Failed { .. } | Step::RolledBack { .. } | Step::NeedsArtifact { .. }
                    ) {
                        self.watched.remove(&module.id);
                    }
                    self.progress(&module.id, step);
                }
                Outcome::Superseded => return,
            }
            if self.dirty {
                return;
            }
        }
        let gone: Vec<String> = self
            .record
            .managed
            .keys()
            .filter(|id| !modules.iter().any(|m| &m.id == *id))
            .cloned()
            .collect();
        for id in gone {
            let step = match self
                .device
                .answer(&self.actor(), Request::Remove { module: id.clone() })
            {
                Ok(_) => Step::Removed,
                Err(e) if e.kind == ErrorKind::NotFound => Step::Removed,
                Err(e) => Step::Failed { reason: e.message },
            };
            if step == Step::Removed {
                self.record.managed.remove(&id);
                self.save();
            }
            self.watched.remove(&id);
            self.progress(&id, step);
        }
        self.record.finished = true;
        self.save();
        self.settle_phase();
    }

    fn converge(&mut self, module: &DesiredModule, inbox: &Inbox) -> Outcome {
        let engines = self.device.engines();
        // No artifact of the document fits this device's engine: say
        // which engine needs one (`fleet rebuild` reads it).
        let Some(artifact) = module.artifact_for(&engines) else {
            return Outcome::Done(needs_artifact(&engines));
        };
        let wanted = Applied {
            artifact: artifact.sha256,
            manifests: manifests_digest(module),
        };
        let (state, engine) = self.status_of(&module.id).unzip();
        let installed = state.is_some();
        if installed && self.record.managed.get(&module.id) == Some(&wanted) {
            // Installed from this entry, for an engine the device no longer
            // runs (Arcella upgraded, board or [engine] changed).
            if engine.flatten().is_some_and(|e| !engines.contains(&e)) {
                return Outcome::Done(needs_artifact(&engines));
            }
            return Outcome::Done(self.keep(module, state));
        }
        if let Err(reason) =
            crate::gate::remote_deployment_allowed(&module.deployment_toml, self.settings.gate.allow_remote_trusted)
        {
            return Outcome::Done(Step::Failed {
                reason: format!("{reason}; nothing installed"),
            });
        }
        if let Err(e) = self
            .settings
            .gate
            .trust
            .check(&artifact.sha256, artifact.signature.as_ref())
        {
            return Outcome::Done(Step::Failed {
                reason: format!("{e}; nothing installed"),
            });
        }
        match self.fetch(&module.id, artifact, inbox) {
            Ok(()) => {}
            Err(FetchEnd::Superseded) => return Outcome::Superseded,
            Err(FetchEnd::Failed(reason)) => return Outcome::Done(Step::Failed { reason }),
        }
        self.progress(&module.id, Step::Installing);
        let spec = InstallSpec {
            upload: artifact.sha256,
            component_toml: module.component_toml.clone(),
            deployment_toml: Some(module.deployment_toml.clone()),
        };
        let request = if installed {
            Request::Update {
                module: module.id.clone(),
                spec,
            }
        } else {
            Request::Install(spec)
        };
        if let Err(e) = self.device.answer(&self.actor(), request) {
            return Outcome::Done(Step::Failed { reason: e.message });
        }
        self.record.managed.insert(module.id.clone(), wanted);
        self.save();
        // Installing or updating changed its state: ask again.
        let state = self.state_of(&module.id);
        if let Err(reason) = self.set_running(&module.id, module.run, state) {
            return Outcome::Done(Step::Failed { reason });
        }
        Outcome::Done(self.begin_window(module, installed))
    }

    /// A module already installed from this entry: started or stopped as
    /// desired, and judged (a window still open stays open).
    fn keep(&mut self, module: &DesiredModule, state: Option<ModuleState>) -> Step {
        let was_running = state.as_ref().is_some_and(is_running);
        if let Err(reason) = self.set_running(&module.id, module.run, state) {
            return Step::Failed { reason };
        }
        if module.run && !was_running {
            return self.begin_window(module, false);
        }
        if let Some(watch) = self.watched.get_mut(&module.id) {
            watch.run = module.run;
            if let Some(until) = watch.until {
                return Step::HealthWindow { until };
            }
        }
        let observed = self.observe(&module.id);
        let watch = self
            .watched
            .entry(module.id.clone())
            .or_insert_with(|| Watch::new(module.run, None, false, observed.as_ref()));
        super::verdict::settled(observed.as_ref(), watch)
    }

    /// Starts watching a module just installed, updated or started.
    fn begin_window(&mut self, module: &DesiredModule, update: bool) -> Step {
        let observed = self.observe(&module.id);
        let window = arcella_core::manifest::parse_deployment(&module.deployment_toml, "deployment.toml")
            .map_or(DEFAULT_WINDOW, |d| d.update.health_window)
            .max(Duration::from_secs(1));
        let until = unix_now() + window.as_secs().max(1);
        let watch = Watch::new(module.run, module.run.then_some(until), update, observed.as_ref());
        let step = if module.run {
            Step::HealthWindow { until }
        } else {
            super::verdict::settled(observed.as_ref(), &watch)
        };
        self.watched.insert(module.id.clone(), watch);
        step
    }

    /// An installed module's state, `None` if it is not installed.
    fn state_of(&self, id: &str) -> Option<ModuleState> {
        self.status_of(id).map(|(state, _)| state)
    }

    /// An installed module's state, and the engine its artifact was
    /// compiled for, in one `status` (`None`: not installed).
    fn status_of(&self, id: &str) -> Option<(ModuleState, Option<String>)> {
        match self
            .device
            .answer(&self.actor(), Request::Status { module: id.to_owned() })
        {
            Ok(Response::Status(status)) => Some((status.summary.state, status.engine)),
            Ok(_) => Some((ModuleState::Stopped, None)),
            Err(_) => None,
        }
    }

    /// Starts or stops an installed module (in `state`) as desired.
    fn set_running(&self, id: &str, run: bool, state: Option<ModuleState>) -> Result<(), String> {
        let Some(state) = state else {
            return Err(format!("`{id}` is not installed"));
        };
        let request = match (run, is_running(&state)) {
            (true, false) if matches!(state, ModuleState::Exited { .. }) => None,
            (true, false) => Some(Request::Start { module: id.to_owned() }),
            (false, true) => Some(Request::Stop { module: id.to_owned() }),
            _ => None,
        };
        match request {
            Some(request) => self
                .device
                .answer(&self.actor(), request)
                .map(drop)
                .map_err(|e| e.message),
            None => Ok(()),
        }
    }
}

/// The step of a module no artifact of whose entry fits `engines`.
fn needs_artifact(engines: &[String]) -> Step {
    Step::NeedsArtifact {
        engine: engines.first().cloned().unwrap_or_else(|| "unknown".into()),
    }
}

fn is_running(state: &ModuleState) -> bool {
    matches!(
        state,
        ModuleState::Running | ModuleState::Starting | ModuleState::BackingOff { .. }
    )
}

/// What identifies a module's manifests.
fn manifests_digest(module: &DesiredModule) -> [u8; 32] {
    let mut text = module.component_toml.clone().unwrap_or_default().into_bytes();
    text.push(0);
    text.extend_from_slice(module.deployment_toml.as_bytes());
    digest::sha256(&text)
}

impl Reconciler {
    /// Who the audit trail names for changes made here: the fleet, by
    /// the signed documents being applied.
    pub(super) fn actor(&self) -> arcella_core::protocol::audit::Actor {
        let (group, device) = self.record.documents();
        let version = |d: Option<DesiredDocument>| d.map_or_else(|| "none".to_owned(), |d| format!("v{}", d.version));
        arcella_core::protocol::audit::Actor::Fleet {
            detail: format!("group document {}, device document {}", version(group), version(device)),
        }
    }
}
