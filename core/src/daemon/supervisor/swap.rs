//! Replacing the running version: the swap (start-first or stop-first),
//! the health window, automatic rollback and `arcella rollback`.
//!
//! The record on disk always names the version that should run (written
//! before the swap), and the previous one, so a crash at any point leaves
//! a module running its old or its new version after the restart.

use super::{Loaded, State, Supervisor, internal, not_found, unix_now};
use crate::manifest::UpdateStrategy;
use crate::protocol::{DesiredState, ErrorKind, Isolation, ModuleState, RemoteError, UpdateOutcome, UpdateReport};
use crate::run::{self, StopFlag};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The previous version's instance while the new one comes up.
pub(super) struct Outgoing {
    task: smol::Task<()>,
    stop_flag: Option<StopFlag>,
    stop_notice: Option<async_channel::Sender<()>>,
    generation: u64,
    instance: super::Instance,
    /// Asked to stop already.
    released: bool,
}

impl Outgoing {
    /// Whether it runs in the daemon's process.
    pub(super) fn in_process(&self) -> bool {
        self.instance.in_process
    }

    /// Whether it imports the shutdown call.
    pub(super) fn hears_shutdown(&self) -> bool {
        self.instance.hears_shutdown
    }

    /// Asks it to stop (daemon shutdown) and hands over its task to wait on.
    pub(super) fn stop_now(self) -> smol::Task<()> {
        if let Some(flag) = &self.stop_flag {
            flag.store(true, Ordering::Relaxed);
        }
        if let Some(notice) = &self.stop_notice {
            let _ = notice.try_send(());
        }
        self.task
    }
}

/// A new version in its health window; `previous` is what a rollback runs.
pub(super) struct Probation {
    token: u64,
    previous: Loaded,
}

impl Supervisor {
    /// Runs `loaded` (already the current version in the slot) in place of
    /// whatever instance runs now, by the new version's `update.strategy`.
    /// With `probation`, the new version gets a health window in which a
    /// failure rolls back to the given previous version. Called on a
    /// blocking-pool thread: a stop-first swap waits there for the old
    /// instance to finish.
    pub(super) fn swap_in(&self, id: &str, loaded: Loaded, probation: Option<(Loaded, Duration)>) {
        let strategy = loaded.manifests.deployment.update.strategy;
        if strategy == UpdateStrategy::StopFirst {
            let asked = self.wind_down(&mut self.lock(), id, "stopped for the new version");
            if asked {
                self.wait_while_stopping(id);
            }
        }
        let mut state = self.lock();
        match strategy {
            UpdateStrategy::StopFirst => self.halt(&mut state, id, "replaced by the new version"),
            UpdateStrategy::StartFirst => self.set_aside(&mut state, id),
        }
        let in_process = loaded.manifests.deployment.isolation == Isolation::Main;
        self.launch(&mut state, id, loaded);
        if let Some((previous, window)) = probation {
            self.begin_probation(&mut state, id, previous, window);
        }
        if in_process {
            // It runs as of now; a worker module runs once its worker says so.
            self.release_outgoing(&mut state, id);
        }
    }

    /// Moves the running instance aside (start-first), to be asked to stop
    /// once the new one runs. A pending restart is simply cancelled.
    fn set_aside(&self, state: &mut State, id: &str) {
        let Some(slot) = state.modules.get_mut(id) else { return };
        let running = matches!(
            slot.state,
            ModuleState::Running | ModuleState::Starting | ModuleState::Stopping
        );
        let older = slot.outgoing.take();
        let task = slot.task.take();
        match (task, slot.instance.take()) {
            (Some(task), Some(instance)) if running => {
                slot.outgoing = Some(Outgoing {
                    task,
                    stop_flag: slot.stop_flag.take(),
                    stop_notice: slot.stop_notice.take(),
                    generation: slot.generation,
                    instance,
                    released: false,
                });
                slot.host = None;
                // A fresh generation for the new instance; the old one's
                // exit is routed to `outgoing_ended`.
                slot.generation += 1;
            }
            (other, _) => drop(other),
        }
        // An update during an update: the oldest goes at once.
        drop(older);
        self.refresh_ticker(state);
    }

    /// The new version runs: ask the old one to finish (within the grace
    /// period), or cancel it if it cannot hear the request.
    pub(super) fn release_outgoing(&self, state: &mut State, id: &str) {
        let Some(slot) = state.modules.get_mut(id) else { return };
        let Some(outgoing) = slot.outgoing.as_mut().filter(|o| !o.released) else {
            return;
        };
        outgoing.released = true;
        let generation = outgoing.generation;
        if !outgoing.instance.hears_shutdown {
            self.drop_outgoing(state, id, generation, "previous version cancelled: the new one runs");
            return;
        }
        if let Some(flag) = &outgoing.stop_flag {
            flag.store(true, Ordering::Relaxed);
        }
        if let Some(notice) = &outgoing.stop_notice {
            let _ = notice.try_send(());
        }
        let grace = self.inner.config.shutdown_grace;
        slot.logs.note(&format!(
            "the new version runs; previous version {} asked to stop (grace {})",
            outgoing.instance.version,
            run::humanize(grace)
        ));
        self.after(grace, id, move |supervisor, state, id| {
            let why = format!(
                "previous version did not stop within {}; cancelled",
                run::humanize(grace)
            );
            supervisor.drop_outgoing(state, id, generation, &why);
        });
    }

    fn drop_outgoing(&self, state: &mut State, id: &str, generation: u64, why: &str) {
        let Some(slot) = state.modules.get_mut(id) else { return };
        if slot.outgoing.as_ref().is_none_or(|o| o.generation != generation) {
            return;
        }
        drop(slot.outgoing.take());
        slot.logs.note(why);
        self.refresh_ticker(state);
    }

    /// The exit of an instance that is no longer current: the previous
    /// version finishing after a swap (anything else is stale).
    pub(super) fn outgoing_ended<T, E: std::fmt::Display>(
        &self,
        state: &mut State,
        id: &str,
        generation: u64,
        outcome: &Result<T, E>,
    ) {
        let Some(slot) = state.modules.get_mut(id) else { return };
        let Some(outgoing) = slot.outgoing.take_if(|o| o.generation == generation) else {
            return;
        };
        outgoing.task.detach();
        let how = match outcome {
            Ok(_) => "stopped cleanly".to_owned(),
            Err(e) => format!("stopped: {e}"),
        };
        slot.logs
            .note(&format!("previous version {} {how}", outgoing.instance.version));
        self.refresh_ticker(state);
    }

    fn begin_probation(&self, state: &mut State, id: &str, previous: Loaded, window: Duration) {
        let Some(slot) = state.modules.get_mut(id) else { return };
        let token = self.inner.tokens.fetch_add(1, Ordering::Relaxed);
        slot.probation = Some(Probation { token, previous });
        slot.logs
            .note(&format!("health window {} begins", run::humanize(window)));
        let supervisor = self.clone();
        let id_owned = id.to_owned();
        self.inner
            .executor
            .spawn(async move {
                smol::Timer::after(window).await;
                let verdict = supervisor.ask_health(&id_owned).await;
                let mut state = supervisor.lock();
                let current = state
                    .modules
                    .get(&id_owned)
                    .and_then(|s| s.probation.as_ref())
                    .is_some_and(|p| p.token == token);
                if !current {
                    return;
                }
                match verdict {
                    Ok(()) => supervisor.probation_passed(&mut state, &id_owned),
                    Err(reason) => {
                        supervisor.halt(&mut state, &id_owned, &format!("unhealthy: {reason}"));
                        supervisor.roll_back(&mut state, &id_owned, &reason);
                    }
                }
            })
            .detach();
    }

    /// After a daemon restart in the middle of a health window: the window
    /// starts again for the version now current.
    pub(super) fn resume_probation(&self, id: &str, previous: Loaded, window: Duration) {
        let mut state = self.lock();
        if let Some(slot) = state.modules.get_mut(id) {
            slot.logs
                .note("the daemon restarted during this version's health window");
        }
        self.begin_probation(&mut state, id, previous, window);
    }

    /// The running instance's answer from its health export; `Ok` for a
    /// module without one. One that does not answer in time is unhealthy.
    async fn ask_health(&self, id: &str) -> Result<(), String> {
        let pending = {
            let state = self.lock();
            state.modules.get(id).and_then(|s| s.health.clone())
        };
        let Some((check, verdicts)) = pending else {
            return Ok(());
        };
        check.request();
        let limit = self.inner.config.workers.ipc_timeout;
        let answer = smol::future::or(async { verdicts.recv().await.ok() }, async {
            smol::Timer::after(limit).await;
            None
        })
        .await;
        answer.unwrap_or_else(|| {
            Err(format!(
                "its health export `{}` was not called within {} (the module did not call `{}.{}`)",
                run::HEALTH_EXPORT,
                run::humanize(limit),
                run::SHUTDOWN_IMPORT.0,
                run::SHUTDOWN_IMPORT.1
            ))
        })
    }

    /// The new version stayed healthy: the update succeeded.
    pub(super) fn probation_passed(&self, state: &mut State, id: &str) {
        let Some(slot) = state.modules.get_mut(id) else { return };
        if slot.probation.take().is_none() {
            return;
        }
        let mut record = slot.record.clone();
        if let Some(report) = &mut record.last_update {
            report.outcome = UpdateOutcome::Succeeded;
        }
        if let Err(e) = self.inner.registry.save(&record) {
            log::error!("module `{id}`: cannot record the update's success: {e}");
        }
        slot.logs
            .note(&format!("version {} passed its health window", record.current.version));
        slot.record = record;
    }

    /// The new version failed in its health window: the previous one
    /// becomes current again and runs. Called with the failed instance
    /// already ended.
    pub(super) fn roll_back(&self, state: &mut State, id: &str, reason: &str) {
        let Some(slot) = state.modules.get_mut(id) else { return };
        let Some(probation) = slot.probation.take() else { return };
        let mut record = slot.record.clone();
        let Some(previous) = record.previous.take() else { return };
        let failed = std::mem::replace(&mut record.current, previous);
        record.previous = Some(failed.clone());
        if let Some(report) = &mut record.last_update {
            report.outcome = UpdateOutcome::RolledBack {
                reason: reason.to_owned(),
            };
        }
        self.inner.audit.note(
            crate::protocol::audit::Actor::Daemon,
            "rolled-back",
            Some(id),
            Err(reason),
            &format!("version {} back to {}", failed.version, record.current.version),
        );
        if let Err(e) = self.inner.registry.save(&record) {
            log::error!(
                "module `{id}`: cannot record the rollback (it runs version {} anyway): {e}",
                record.current.version
            );
        }
        let message = format!(
            "version {} failed within its health window ({reason}); rolled back to {}",
            failed.version, record.current.version
        );
        log::warn!("module `{id}`: {message}");
        slot.logs.note(&message);
        slot.last_error = Some(message);
        slot.failures = 0;
        slot.record = record;
        slot.loaded = Some(probation.previous.clone());
        drop(slot.outgoing.take());
        let run_it = slot.record.desired == DesiredState::Running;
        self.refresh_ticker(state);
        if run_it {
            self.launch(state, id, probation.previous);
        }
    }

    /// `arcella rollback ID`: the previous version becomes current again
    /// (and runs, if the module should run); the current one becomes the
    /// previous, so the change can be undone the same way.
    pub fn rollback(&self, id: &str) -> Result<crate::protocol::ModuleSummary, RemoteError> {
        let _changes = self.lock_changes();
        let (previous, cached) = {
            let mut state = self.lock();
            let slot = state.modules.get_mut(id).ok_or_else(|| not_found(id))?;
            let previous = slot.record.previous.clone().ok_or_else(|| {
                RemoteError::new(
                    ErrorKind::BadRequest,
                    format!("module `{id}` has no previous version to roll back to (it was never updated)"),
                )
            })?;
            (previous, slot.probation.as_ref().map(|p| p.previous.clone()))
        };
        let loaded = match cached {
            Some(loaded) => loaded,
            None => {
                self.check_engine_unchanged(id, &previous)?;
                self.load_version(&previous)?
            }
        };
        let run_it = {
            let mut state = self.lock();
            let slot = state.modules.get_mut(id).ok_or_else(|| not_found(id))?;
            let mut record = slot.record.clone();
            let Some(previous) = record.previous.take() else {
                return Err(RemoteError::new(ErrorKind::BadRequest, "the previous version vanished"));
            };
            let left = std::mem::replace(&mut record.current, previous);
            record.last_update = Some(UpdateReport {
                from: left.version.clone(),
                to: record.current.version.clone(),
                at: unix_now(),
                outcome: UpdateOutcome::Reverted,
            });
            record.previous = Some(left);
            self.inner
                .registry
                .save(&record)
                .map_err(|e| internal("saving the module record", e))?;
            slot.logs.note(&format!(
                "rolled back by hand: {} -> {}",
                record.previous.as_ref().map_or("?", |v| v.version.as_str()),
                record.current.version
            ));
            slot.probation = None;
            slot.failures = 0;
            slot.last_error = None;
            slot.record = record;
            slot.loaded = Some(loaded.clone());
            slot.record.desired == DesiredState::Running
        };
        if run_it {
            self.swap_in(id, loaded, None);
        } else {
            self.halt(&mut self.lock(), id, "rolled back (stays stopped)");
        }
        self.summary(id)
    }
}
