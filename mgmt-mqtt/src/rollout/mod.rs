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
mod runner;
pub mod state;

pub use claim::{Claim, Ticket, holders};
pub use plan::{Amount, Plan, PlanError, parse_waves};

use crate::deploy::{self, Build, Documents, ModuleSpec, Signer};
use crate::operator::{DeviceView, Operator, OperatorError, Target};
use arcella_core::digest;
use follow::Watcher;
use runner::Runner;
use state::{DeviceProgress, DeviceStatus, RolloutPhase, RolloutState};
use std::collections::BTreeMap;
use std::time::Duration;

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
        let unfinished = found.state.filter(|s| !s.phase.is_over());
        if let Some(s) = unfinished.as_ref().filter(|s| s.id != id) {
            return Err(RolloutError::Unfinished {
                group,
                module: s.entry.id.clone(),
                phase: describe(s),
                operator: s.operator.clone(),
            });
        }
        // The broker's documents and the fleet, gathered once for the run
        // (the documents first: gathering them takes what the watcher's
        // subscriptions would bring).
        let documents = Documents::all(operator)?;
        let watcher = Watcher::new(operator)?;
        let (state, resumed) = match unfinished {
            Some(s) => (s, true),
            None => {
                let fresh = Fresh {
                    plan,
                    release,
                    id,
                    fleet: watcher.fleet(),
                    documents: &documents,
                };
                (begin(operator, signer, ticket, fresh)?, false)
            }
        };
        let runner = Runner::new(operator, signer, state, documents, watcher);
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
        let mut runner = Runner::new(
            operator,
            signer,
            state,
            Documents::all(operator)?,
            Watcher::new(operator)?,
        );
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
/// What a new rollout starts from.
struct Fresh<'a> {
    plan: &'a Plan,
    release: Release<'a>,
    id: String,
    fleet: &'a BTreeMap<String, DeviceView>,
    documents: &'a Documents,
}

fn begin(
    operator: &Operator,
    signer: &Signer,
    ticket: &Ticket,
    fresh: Fresh<'_>,
) -> Result<RolloutState, RolloutError> {
    let Fresh {
        plan,
        release,
        id,
        fleet,
        documents,
    } = fresh;
    let group = ticket.group.clone();
    let mut members = deploy::targets(fleet, &Target::Group(group.clone()));
    members.sort();
    if members.is_empty() {
        return Err(RolloutError::NoDevices(group));
    }
    // A device whose own document pins the module keeps its pin.
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
