//! One pass of convergence: the merged documents, module by module.

use super::fetch::FetchEnd;
use super::{Applied, Inbox, Reconciler};
use arcella_core::digest;
use arcella_core::protocol::fleet::{DesiredModule, Phase, Step};
use arcella_core::protocol::{ErrorKind, InstallSpec, ModuleState, Request, Response};

/// How a module's turn ended.
enum Outcome {
    Done(Step),
    Superseded,
}

impl Reconciler {
    /// The modules of the group's document, overridden by the device's.
    fn merged(&self) -> Vec<DesiredModule> {
        let mut modules: Vec<DesiredModule> = self
            .record
            .group
            .as_ref()
            .map(|(_, d)| d.modules.clone())
            .unwrap_or_default();
        for module in self.record.device.iter().flat_map(|d| d.modules.iter()) {
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
                step: Step::Waiting,
            })
            .collect();
        self.set_phase(Phase::Applying);
        let mut failed = false;
        for module in &modules {
            match self.converge(module, inbox) {
                Outcome::Done(step) => {
                    failed |= matches!(step, Step::Failed { .. });
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
            let step = match self.device.answer(Request::Remove { module: id.clone() }) {
                Ok(_) => Step::Removed,
                Err(e) if e.kind == ErrorKind::NotFound => Step::Removed,
                Err(e) => Step::Failed { reason: e.message },
            };
            if step == Step::Removed {
                self.record.managed.remove(&id);
                self.save();
            }
            failed |= matches!(step, Step::Failed { .. });
            self.progress(&id, step);
        }
        self.record.finished = true;
        self.save();
        self.set_phase(if failed { Phase::Failed } else { Phase::Converged });
    }

    fn converge(&mut self, module: &DesiredModule, inbox: &Inbox) -> Outcome {
        let wanted = Applied {
            artifact: module.artifact.sha256,
            manifests: manifests_digest(module),
        };
        let state = self.state_of(&module.id);
        let installed = state.is_some();
        if installed && self.record.managed.get(&module.id) == Some(&wanted) {
            return Outcome::Done(self.set_running(&module.id, module.run, state));
        }
        if let Err(e) = self
            .settings
            .trust
            .check(&module.artifact.sha256, module.artifact.signature.as_ref())
        {
            return Outcome::Done(Step::Failed {
                reason: format!("{e}; nothing installed"),
            });
        }
        match self.fetch(&module.id, &module.artifact, inbox) {
            Ok(()) => {}
            Err(FetchEnd::Superseded) => return Outcome::Superseded,
            Err(FetchEnd::Failed(reason)) => return Outcome::Done(Step::Failed { reason }),
        }
        self.progress(&module.id, Step::Installing);
        let spec = InstallSpec {
            upload: module.artifact.sha256,
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
        if let Err(e) = self.device.answer(request) {
            return Outcome::Done(Step::Failed { reason: e.message });
        }
        self.record.managed.insert(module.id.clone(), wanted);
        self.save();
        // Installing or updating changed its state: ask again.
        let state = self.state_of(&module.id);
        Outcome::Done(self.set_running(&module.id, module.run, state))
    }

    /// An installed module's state, `None` if it is not installed.
    fn state_of(&self, id: &str) -> Option<ModuleState> {
        match self.device.answer(Request::Status { module: id.to_owned() }) {
            Ok(Response::Status(status)) => Some(status.summary.state),
            Ok(_) => Some(ModuleState::Stopped),
            Err(_) => None,
        }
    }

    /// Starts or stops an installed module (in `state`) as desired.
    fn set_running(&self, id: &str, run: bool, state: Option<ModuleState>) -> Step {
        let Some(state) = state else {
            return Step::Failed {
                reason: format!("`{id}` is not installed"),
            };
        };
        let running = matches!(
            state,
            ModuleState::Running | ModuleState::Starting | ModuleState::BackingOff { .. }
        );
        let request = match (run, running) {
            (true, false) if matches!(state, ModuleState::Exited { .. }) => None,
            (true, false) => Some(Request::Start { module: id.to_owned() }),
            (false, true) => Some(Request::Stop { module: id.to_owned() }),
            _ => None,
        };
        if let Some(request) = request
            && let Err(e) = self.device.answer(request)
        {
            return Step::Failed { reason: e.message };
        }
        if run { Step::Running } else { Step::Stopped }
    }
}

/// What identifies a module's manifests.
fn manifests_digest(module: &DesiredModule) -> [u8; 32] {
    let mut text = module.component_toml.clone().unwrap_or_default().into_bytes();
    text.push(0);
    text.extend_from_slice(module.deployment_toml.as_bytes());
    digest::sha256(&text)
}
