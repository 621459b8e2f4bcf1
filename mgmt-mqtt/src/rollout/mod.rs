//! Staged rollouts: a module's new version reaches a group wave by wave.
//!
//! A wave's devices get the new entry in their own documents (a device's
//! entries win over its group's), then each must be healthy, and stay
//! healthy and online through the wave's soak, before the next wave
//! starts. A device that fails, rolls back, refuses the document, has no
//! verdict in time, or is offline at any look during its soak counts as a
//! failure; past the plan's tolerance the rollout aborts and every device
//! already given the entry has it taken out of its own document again,
//! which returns it to the group's (previous) entry. When every wave has
//! passed, the group's document gets the entry and the devices' own
//! documents drop it (nothing changes on them: the entry is the same).
//!
//! The state is retained on the broker after every step (`state.rs`), so
//! running the same command again resumes; one run per group at a time
//! (`claim.rs`).

mod claim;
mod follow;
pub mod plan;
pub mod state;

pub use claim::{Claim, Ticket, holders};
pub use plan::{Amount, Plan, PlanError, parse_waves};

use crate::deploy::{self, Build, Documents, ModuleSpec, Outcome, Signer};
use crate::operator::{Operator, OperatorError, Target};
use arcella_core::digest;
use follow::Watcher;
use state::{DeviceProgress, DeviceStatus, RolloutPhase, RolloutState};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Failure reasons are cut to this many characters in the state.
const REASON_LEN: usize = 200;

/// Why a rollout did not complete.
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    #[error(transparent)]
    Operator(#[from] OperatorError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(
        "no device of group {0} has reported its state: nothing to roll out to (are its devices online, with `[mqtt] group = \"{0}\"`?)"
    )]
    NoDevices(String),
    #[error(
        "{operator} is running a rollout to group {group} now (since {since}, Unix seconds); nothing was changed: wait for it to end, or stop that run (its claim ends with its connection); `arcella fleet rollout status --to-group {group}` shows it"
    )]
    Busy {
        group: String,
        operator: String,
        since: u64,
    },
    #[error(
        "another rollout to group {0} is starting at this moment; nothing was changed: run the command again in a few seconds"
    )]
    Contended(String),
    #[error(
        "group {group} has an unfinished rollout of {module} ({phase}, started by {operator}): run that rollout's command again to resume it, or `arcella fleet rollout abort --to-group {group}` to return its devices to the previous document; nothing was changed"
    )]
    Unfinished {
        group: String,
        module: String,
        phase: String,
        operator: String,
    },
    #[error(
        "the rollout to group {group} aborted: {reason}; {restored} device(s) back on the previous document{pending}"
    )]
    Aborted {
        group: String,
        reason: String,
        restored: usize,
        pending: String,
    },
    #[error("group {0} has no rollout on the broker (or none signed by a key given with --key/--trust)")]
    NoRollout(String),
    #[error("the rollout to group {0} is already over ({1}): nothing to abort")]
    AlreadyOver(String, &'static str),
}

/// What a run reports as it goes.
#[derive(Debug)]
pub enum Event<'a> {
    /// A rollout begins (or resumes).
    Started {
        state: &'a RolloutState,
        resumed: bool,
    },
    /// Something on the broker was left alone, and why.
    Note(String),
    Wave {
        index: usize,
        state: &'a RolloutState,
    },
    /// A device's status changed.
    Device {
        id: &'a str,
        progress: &'a DeviceProgress,
    },
    Soaking {
        index: usize,
        soak: Duration,
    },
    Aborting {
        reason: &'a str,
    },
    Finished {
        state: &'a RolloutState,
    },
}

/// A rollout's module and where its artifacts come from.
#[derive(Debug)]
pub struct Release<'a> {
    pub builds: &'a [Build<'a>],
    /// The module's `.wasm`, when the artifacts were compiled from it here.
    pub source: Option<&'a [u8]>,
    pub chunk_len: u32,
    pub module: ModuleSpec,
}

/// Runs (or resumes) a rollout of `release` to `group`; `ticket` must be
/// the one whose last will `operator`'s connection carries.
pub fn run(
    operator: &Operator,
    signer: &Signer,
    ticket: &Ticket,
    plan: &Plan,
    release: Release<'_>,
    on: &mut dyn FnMut(Event<'_>),
) -> Result<RolloutState, RolloutError> {
    let group = ticket.group.clone();
    let id = rollout_id(&group, plan, &release);
    take(operator, ticket)?;
    let result = (|| {
        let found = state::load(operator, &signer.trust, &group)?;
        if let Some(why) = found.ignored {
            on(Event::Note(why));
        }
        let (state, resumed) = match found.state {
            Some(s) if !s.phase.is_over() && s.id != id => {
                return Err(RolloutError::Unfinished {
                    group,
                    module: s.entry.id.clone(),
                    phase: describe(&s),
                    operator: s.operator,
                });
            }
            Some(s) if !s.phase.is_over() => (s, true),
            _ => (begin(operator, signer, ticket, plan, release, id)?, false),
        };
        let runner = Runner::new(operator, signer, state)?;
        on(Event::Started {
            state: &runner.state,
            resumed,
        });
        runner.drive(on)
    })();
    ticket.release(operator);
    result
}

/// Aborts the group's unfinished rollout: its devices return to the
/// previous document.
pub fn abort(
    operator: &Operator,
    signer: &Signer,
    ticket: &Ticket,
    reason: &str,
    on: &mut dyn FnMut(Event<'_>),
) -> Result<RolloutState, RolloutError> {
    take(operator, ticket)?;
    let result = (|| {
        let found = state::load(operator, &signer.trust, &ticket.group)?;
        if let Some(why) = found.ignored {
            on(Event::Note(why));
        }
        let state = found
            .state
            .ok_or_else(|| RolloutError::NoRollout(ticket.group.clone()))?;
        if state.phase.is_over() {
            return Err(RolloutError::AlreadyOver(ticket.group.clone(), state.phase.word()));
        }
        let mut runner = Runner::new(operator, signer, state)?;
        if !matches!(runner.state.phase, RolloutPhase::Aborting { .. }) {
            runner.state.phase = RolloutPhase::Aborting {
                reason: reason.to_owned(),
            };
            runner.save()?;
        }
        runner.drive(on)
    })();
    ticket.release(operator);
    result
}

fn take(operator: &Operator, ticket: &Ticket) -> Result<(), RolloutError> {
    ticket.take(operator).map_err(|other| match other {
        Some(c) if c.since < ticket.claim.since => RolloutError::Busy {
            group: ticket.group.clone(),
            operator: c.operator,
            since: c.since,
        },
        _ => RolloutError::Contended(ticket.group.clone()),
    })
}

/// What identifies a rollout: its group, module, artifacts and plan.
fn rollout_id(group: &str, plan: &Plan, release: &Release<'_>) -> String {
    let m = &release.module;
    let artifacts: Vec<(Option<&str>, [u8; 32])> = release
        .builds
        .iter()
        .map(|b| (b.fingerprint.as_deref(), digest::sha256(b.artifact)))
        .collect();
    let source = release.source.map(digest::sha256);
    let key = (
        group,
        &m.id,
        &m.component_toml,
        &m.deployment_toml,
        m.run,
        artifacts,
        source,
        plan,
    );
    let bytes = postcard::to_stdvec(&key).unwrap_or_default();
    digest::hex(&digest::sha256(&bytes))[..16].to_owned()
}

/// A new rollout: the group's devices split into waves, the artifacts
/// published; returns its first state, saved.
fn begin(
    operator: &Operator,
    signer: &Signer,
    ticket: &Ticket,
    plan: &Plan,
    release: Release<'_>,
    id: String,
) -> Result<RolloutState, RolloutError> {
    let group = ticket.group.clone();
    let fleet = operator.devices(Duration::from_millis(500))?;
    let mut members = deploy::targets(&fleet, &Target::Group(group.clone()));
    members.sort();
    if members.is_empty() {
        return Err(RolloutError::NoDevices(group));
    }
    // A device whose own document pins the module keeps its pin.
    let documents = Documents::all(operator)?;
    let mut skipped = Vec::new();
    members.retain(|device| {
        let own = documents.newest(&signer.trust, &Target::Device(device.clone()));
        let pinned = own.is_some_and(|d| d.modules.iter().any(|m| m.id == release.module.id));
        if pinned {
            skipped.push((
                device.clone(),
                format!(
                    "its own document pins {}: `arcella fleet undeploy --to-device {device} {}` hands it to the group",
                    release.module.id, release.module.id
                ),
            ));
        }
        !pinned
    });
    let waves = plan.assign(&members)?;
    let entry = deploy::publish_entry(
        operator,
        release.builds,
        release.source,
        release.chunk_len,
        release.module,
    )?;
    let devices = waves
        .iter()
        .enumerate()
        .flat_map(|(wave, ids)| {
            ids.iter().map(move |id| {
                (
                    id.clone(),
                    DeviceProgress {
                        wave: wave as u32,
                        version: None,
                        restore_version: None,
                        status: DeviceStatus::Waiting,
                        failure: None,
                    },
                )
            })
        })
        .collect();
    let now = crate::json::now_secs();
    let state = RolloutState {
        id,
        group,
        operator: ticket.claim.operator.clone(),
        started: now,
        updated: now,
        plan: plan.clone(),
        entry,
        waves,
        devices,
        phase: RolloutPhase::Wave {
            index: 0,
            soak_until: None,
        },
        skipped,
    };
    state::save(operator, &signer.key, &state)?;
    Ok(state)
}

/// A one-line account of where a rollout is.
pub fn describe(s: &RolloutState) -> String {
    match &s.phase {
        RolloutPhase::Wave { index, soak_until } => format!(
            "wave {}/{} {}",
            index + 1,
            s.waves.len(),
            if soak_until.is_some() { "soaking" } else { "updating" }
        ),
        RolloutPhase::Aborting { reason } => format!("aborting: {reason}"),
        RolloutPhase::Aborted { reason } => format!("aborted: {reason}"),
        other => other.word().to_owned(),
    }
}

struct Runner<'a> {
    operator: &'a Operator,
    signer: &'a Signer,
    state: RolloutState,
    documents: Documents,
    watcher: Watcher<'a>,
}

impl<'a> Runner<'a> {
    fn new(operator: &'a Operator, signer: &'a Signer, state: RolloutState) -> Result<Self, RolloutError> {
        Ok(Self {
            operator,
            signer,
            state,
            documents: Documents::all(operator)?,
            watcher: Watcher::new(operator)?,
        })
    }

    fn save(&mut self) -> Result<(), RolloutError> {
        self.state.updated = crate::json::now_secs();
        Ok(state::save(self.operator, &self.signer.key, &self.state)?)
    }

    /// Runs the rollout from its phase to its end.
    fn drive(mut self, on: &mut dyn FnMut(Event<'_>)) -> Result<RolloutState, RolloutError> {
        loop {
            match self.state.phase.clone() {
                RolloutPhase::Wave { index, .. } => {
                    let index = index as usize;
                    if let Some(reason) = self.wave(index, on)? {
                        self.state.phase = RolloutPhase::Aborting { reason };
                        self.save()?;
                    } else if index + 1 < self.state.waves.len() {
                        self.state.phase = RolloutPhase::Wave {
                            index: index as u32 + 1,
                            soak_until: None,
                        };
                        self.save()?;
                    } else {
                        self.state.phase = RolloutPhase::Finishing;
                        self.save()?;
                    }
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

/// Counts of a state's devices by status word, for summaries.
pub fn tally(state: &RolloutState) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for d in state.devices.values() {
        *counts.entry(d.status.word()).or_insert(0) += 1;
    }
    counts
}
