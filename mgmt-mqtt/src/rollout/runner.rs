//! Driving a rollout from its retained state to its end: each wave's
//! devices given the entry, their verdicts and soak, the group's
//! document at the end, or the devices' return on abort. Every step is
//! saved before the next, so a run killed anywhere resumes.

use super::follow::Watcher;
use super::state::{self, DeviceProgress, DeviceStatus, RolloutPhase, RolloutState};
use super::{Event, RolloutError};
use crate::deploy::{self, Documents, Outcome, Signer};
use crate::operator::{Operator, Target};
use std::time::Instant;

/// Failure reasons are cut to this many characters in the state.
const REASON_LEN: usize = 200;

pub(super) struct Runner<'a> {
    operator: &'a Operator,
    signer: &'a Signer,
    pub(super) state: RolloutState,
    documents: Documents,
    watcher: Watcher<'a>,
}

impl<'a> Runner<'a> {
    /// A run of `state`, building on `documents` and watching the fleet
    /// through `watcher`.
    pub(super) fn new(
        operator: &'a Operator,
        signer: &'a Signer,
        state: RolloutState,
        documents: Documents,
        watcher: Watcher<'a>,
    ) -> Self {
        Self {
            operator,
            signer,
            state,
            documents,
            watcher,
        }
    }

    pub(super) fn save(&mut self) -> Result<(), RolloutError> {
        self.state.updated = crate::json::now_secs();
        Ok(state::save(self.operator, &self.signer.key, &self.state)?)
    }

    /// Runs the rollout from its phase to its end.
    pub(super) fn drive(mut self, on: &mut dyn FnMut(Event<'_>)) -> Result<RolloutState, RolloutError> {
        loop {
            match self.state.phase.clone() {
                RolloutPhase::Wave { index, .. } => {
                    let index = index as usize;
                    self.state.phase = if let Some(reason) = self.wave(index, on)? {
                        RolloutPhase::Aborting { reason }
                    } else if index + 1 < self.state.waves.len() {
                        RolloutPhase::Wave {
                            index: index as u32 + 1,
                            soak_until: None,
                        }
                    } else {
                        RolloutPhase::Finishing
                    };
                    self.save()?;
                }
                RolloutPhase::Finishing => {
                    self.finish()?;
                    on(Event::Finished { state: &self.state });
                }
                RolloutPhase::Aborting { reason } => {
                    on(Event::Aborting { reason: &reason });
                    self.restore(on)?;
                    self.state.phase = RolloutPhase::Aborted { reason };
                    self.save()?;
                    on(Event::Finished { state: &self.state });
                }
                RolloutPhase::Done => return Ok(self.state),
                RolloutPhase::Aborted { reason } => {
                    let (restored, pending): (Vec<_>, Vec<_>) = self
                        .state
                        .devices
                        .iter()
                        .filter(|(_, d)| d.version.is_some())
                        .partition(|(_, d)| d.status == DeviceStatus::Restored);
                    let pending = if pending.is_empty() {
                        String::new()
                    } else {
                        let names: Vec<String> = pending
                            .iter()
                            .map(|(id, d)| format!("{id} ({})", d.status.reason().unwrap_or("not confirmed")))
                            .collect();
                        format!("; not yet confirmed: {}", names.join(", "))
                    };
                    return Err(RolloutError::Aborted {
                        group: self.state.group.clone(),
                        reason,
                        restored: restored.len(),
                        pending,
                    });
                }
            }
        }
    }

    /// Wave `index`: its devices given the entry, their verdicts, then
    /// the soak. Returns why the rollout must abort, if it must.
    fn wave(&mut self, index: usize, on: &mut dyn FnMut(Event<'_>)) -> Result<Option<String>, RolloutError> {
        let ids = self.state.waves[index].clone();
        on(Event::Wave {
            index,
            state: &self.state,
        });
        // Given the entry (a resumed wave: those not given it yet).
        let entry = self.state.entry.clone();
        for id in &ids {
            if self.progress(id).version.is_some() {
                continue;
            }
            let target = Target::Device(id.clone());
            let given = deploy::change_from(self.operator, self.signer, &mut self.documents, &target, |m| {
                deploy::put(m, entry.clone());
            });
            let p = self.progress_mut(id);
            match given {
                Ok(version) => {
                    p.version = Some(version);
                    p.status = DeviceStatus::Updating;
                }
                Err(e) => {
                    p.status = DeviceStatus::Failed;
                    p.failure = Some(cut(&format!("its document could not be changed: {e}")));
                }
            }
            on(Event::Device {
                id,
                progress: self.progress(id),
            });
        }
        self.save()?;
        if let Some(reason) = self.over_threshold() {
            return Ok(Some(reason));
        }
        // Verdicts.
        let deadline = Instant::now() + self.state.plan.wave_timeout;
        loop {
            let mut verdicts = Vec::new();
            let mut waiting = false;
            for id in &ids {
                let p = self.progress(id);
                let (DeviceStatus::Updating, Some(version)) = (&p.status, p.version) else {
                    continue;
                };
                let late = Instant::now() >= deadline;
                let failure = match self.watcher.outcome(id, version) {
                    Outcome::Converged => None,
                    Outcome::Failed(reasons) => Some(reasons.join("; ")),
                    Outcome::Offline if late => Some("offline: no verdict in time".to_owned()),
                    Outcome::Pending(what) if late => Some(format!("no verdict in time ({what})")),
                    Outcome::Offline | Outcome::Pending(_) => {
                        waiting = true;
                        continue;
                    }
                };
                verdicts.push((id.clone(), failure));
            }
            if let Some(reason) = self.settle_all(verdicts, on)? {
                return Ok(Some(reason));
            }
            if !waiting {
                break;
            }
            self.watcher.pump(deadline)?;
        }
        // The soak: healthy and online throughout, looked at whenever the
        // broker says anything and at its end.
        let soak = self.state.soak();
        let until = Instant::now() + soak;
        self.state.phase = RolloutPhase::Wave {
            index: index as u32,
            soak_until: Some(crate::json::now_secs() + soak.as_secs()),
        };
        self.save()?;
        on(Event::Soaking { index, soak });
        loop {
            let mut verdicts = Vec::new();
            for id in &ids {
                let p = self.progress(id);
                let (DeviceStatus::Healthy, Some(version)) = (&p.status, p.version) else {
                    continue;
                };
                let failure = if !self.watcher.online(id) {
                    Some("went offline during the soak: not seen healthy through it".to_owned())
                } else {
                    match self.watcher.outcome(id, version) {
                        Outcome::Converged => continue,
                        Outcome::Failed(reasons) => Some(format!("during the soak: {}", reasons.join("; "))),
                        Outcome::Offline => Some("went offline during the soak".to_owned()),
                        Outcome::Pending(what) => Some(format!("during the soak: {what}")),
                    }
                };
                verdicts.push((id.clone(), failure));
            }
            if let Some(reason) = self.settle_all(verdicts, on)? {
                return Ok(Some(reason));
            }
            if Instant::now() >= until {
                return Ok(None);
            }
            self.watcher.pump(until)?;
        }
    }

    /// Every wave passed: the group's document gets the entry, then each
    /// device's own document drops it (the same entry: nothing changes).
    fn finish(&mut self) -> Result<(), RolloutError> {
        let entry = self.state.entry.clone();
        let group = Target::Group(self.state.group.clone());
        deploy::change_from(self.operator, self.signer, &mut self.documents, &group, |m| {
            deploy::put(m, entry.clone());
        })?;
        self.drop_entries(|_| true)?;
        self.state.phase = RolloutPhase::Done;
        self.save()
    }

    /// Takes the entry out of the own documents of the devices given it
    /// (and not yet taken back) that `which` selects.
    fn drop_entries(&mut self, which: impl Fn(&DeviceProgress) -> bool) -> Result<(), RolloutError> {
        let module = self.state.entry.id.clone();
        let ids: Vec<String> = self
            .state
            .devices
            .iter()
            .filter(|(_, d)| d.version.is_some() && d.restore_version.is_none() && which(d))
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            let target = Target::Device(id.clone());
            let version = deploy::change_from(self.operator, self.signer, &mut self.documents, &target, |m| {
                m.retain(|e| e.id != module);
            })?;
            self.progress_mut(&id).restore_version = Some(version);
        }
        Ok(())
    }

    /// Abort: the devices given the entry return to the group's entry;
    /// followed until each confirms, or the wave timeout.
    fn restore(&mut self, on: &mut dyn FnMut(Event<'_>)) -> Result<(), RolloutError> {
        self.drop_entries(|_| true)?;
        let given: Vec<String> = self
            .state
            .devices
            .iter()
            .filter(|(_, d)| d.version.is_some() && d.status != DeviceStatus::Restored)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &given {
            self.progress_mut(id).status = DeviceStatus::RestorePending {
                reason: "published".into(),
            };
        }
        self.save()?;
        let deadline = Instant::now() + self.state.plan.wave_timeout;
        loop {
            let mut pending = false;
            let mut changed = false;
            for id in &given {
                let p = self.progress(id).clone();
                let (Some(given_version), Some(version)) = (p.version, p.restore_version) else {
                    continue;
                };
                if p.status == DeviceStatus::Restored {
                    continue;
                }
                // A device that never took the entry (it refused it, or
                // was away) is where it was; the retained document no
                // longer has it.
                let never_took = self.watcher.taken(id).is_none_or(|t| t < given_version);
                let status = match self.watcher.outcome(id, version) {
                    Outcome::Converged => DeviceStatus::Restored,
                    _ if never_took => DeviceStatus::Restored,
                    Outcome::Failed(reasons) => DeviceStatus::RestorePending {
                        reason: cut(&reasons.join("; ")),
                    },
                    Outcome::Offline => DeviceStatus::RestorePending {
                        reason: "offline: it returns to the previous document when it is back".into(),
                    },
                    Outcome::Pending(what) => {
                        pending = true;
                        DeviceStatus::RestorePending { reason: cut(&what) }
                    }
                };
                if status != p.status {
                    self.progress_mut(id).status = status;
                    changed = true;
                    on(Event::Device {
                        id,
                        progress: self.progress(id),
                    });
                }
            }
            if changed {
                self.save()?;
            }
            if !pending || Instant::now() >= deadline {
                return Ok(());
            }
            self.watcher.pump(deadline)?;
        }
    }

    /// Records each device's verdict (`None`: healthy; else why it
    /// fails), says so, saves the state once; returns why the rollout
    /// must abort, if it must.
    fn settle_all(
        &mut self,
        verdicts: Vec<(String, Option<String>)>,
        on: &mut dyn FnMut(Event<'_>),
    ) -> Result<Option<String>, RolloutError> {
        if verdicts.is_empty() {
            return Ok(self.over_threshold());
        }
        for (id, failure) in verdicts {
            let p = self.progress_mut(&id);
            match failure {
                None => p.status = DeviceStatus::Healthy,
                Some(reason) => {
                    p.status = DeviceStatus::Failed;
                    p.failure = Some(cut(&reason));
                }
            }
            on(Event::Device {
                id: &id,
                progress: self.progress(&id),
            });
        }
        self.save()?;
        Ok(self.over_threshold())
    }

    /// Why the rollout must abort, once its failures pass the plan's.
    fn over_threshold(&self) -> Option<String> {
        let failures = self.state.failures();
        let tolerated = self.state.tolerated();
        if failures <= tolerated {
            return None;
        }
        let named: Vec<String> = self
            .state
            .devices
            .iter()
            .filter_map(|(id, d)| Some(format!("{id}: {}", d.failure.as_deref()?)))
            .take(3)
            .collect();
        Some(format!(
            "{failures} failure(s), more than the {tolerated} tolerated (--max-failures {}): {}{}",
            self.state.plan.max_failures,
            named.join("; "),
            if failures > 3 { "; …" } else { "" }
        ))
    }

    fn progress(&self, id: &str) -> &DeviceProgress {
        &self.state.devices[id]
    }

    fn progress_mut(&mut self, id: &str) -> &mut DeviceProgress {
        self.state
            .devices
            .get_mut(id)
            .unwrap_or_else(|| unreachable!("every wave's device has a progress entry"))
    }
}

fn cut(reason: &str) -> String {
    match reason.char_indices().nth(REASON_LEN) {
        Some((at, _)) => format!("{}…", &reason[..at]),
        None => reason.to_owned(),
    }
}
