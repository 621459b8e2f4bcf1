//! Starting, stopping, exits, restarts with backoff, shutdown.

use super::{Instance, Loaded, Slot, State, Supervisor, not_found, unix_now};
use crate::daemon::workers::{Host, RemoteRun};
use crate::manifest::{DeploymentManifest, RestartPolicy};
use crate::protocol::worker::InstanceSpec;
use crate::protocol::{DesiredState, ErrorKind, Event, Isolation, ModuleKind, ModuleState, RemoteError};
use crate::run::{self, DirGrant, Grants, Invocation, Limits, Output, RunError};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How [`Supervisor::begin_start`] left a start.
#[derive(Debug, Clone, Copy)]
pub enum StartBegun {
    /// The instance runs (`launched` now, or already running); `decision`
    /// is the module's count of decisions then.
    Running { launched: bool, decision: u64 },
    /// The previous instance is still stopping: the start waits for it.
    Stopping,
}

/// A run at least this long resets the failure count.
const STABLE_RUN: Duration = Duration::from_secs(10);

impl Supervisor {
    /// Starts a module (no-op if running) and remembers that it should run.
    /// Called on a blocking-pool thread: it may wait for a stopping
    /// instance to end.
    pub fn start(&self, id: &str) -> Result<(), RemoteError> {
        let begun = self.begin_start(id)?;
        self.finish_start(id, begun)
    }

    /// The part of a start that touches memory only, for the socket
    /// server's own thread: launches the instance (unless it runs, or is
    /// still stopping), so the guest's first output waits for no other
    /// thread. [`Self::finish_start`], on a blocking-pool thread, saves
    /// the record.
    pub fn begin_start(&self, id: &str) -> Result<StartBegun, RemoteError> {
        let mut state = self.lock();
        let slot = state.modules.get_mut(id).ok_or_else(|| not_found(id))?;
        // A start while the instance is still stopping (a `stop` just
        // before, within the grace) waits for it to end: it would find the
        // task still there, and be forgotten when the instance ends.
        if slot.state == ModuleState::Stopping {
            return Ok(StartBegun::Stopping);
        }
        let (launched, decision) = self.launch_to_start(&mut state, id)?;
        Ok(StartBegun::Running { launched, decision })
    }

    /// Ends a start [`Self::begin_start`] began: waits for a stopping
    /// instance and launches, then saves that the module should run.
    /// Blocking (the save ends in an fsync).
    ///
    /// The instance starts before its record is saved, so the guest's
    /// first output does not wait for the disk (an fsync: about 0.5 ms
    /// here, tens of ms on an SD card). The request is answered only once
    /// the record is durable, and a record that cannot be saved stops the
    /// instance again: a failed start leaves nothing running. A stop
    /// decided in between (another connection's) stands: its record is
    /// not overwritten.
    pub fn finish_start(&self, id: &str, begun: StartBegun) -> Result<(), RemoteError> {
        let (launched, decision) = match begun {
            StartBegun::Running { launched, decision } => (launched, decision),
            StartBegun::Stopping => {
                self.wait_while_stopping(id);
                self.launch_to_start(&mut self.lock(), id)?
            }
        };
        let mut state = self.lock();
        let slot = state.modules.get_mut(id).ok_or_else(|| not_found(id))?;
        if slot.decisions != decision {
            return Ok(());
        }
        let provider = slot.loaded.as_ref().map(|l| l.manifests.deployment.kind) == Some(ModuleKind::Provider);
        if let Err(e) = self.set_desired(slot, DesiredState::Running) {
            if launched {
                self.halt(&mut state, id, "stopped: its record could not be saved");
                if provider {
                    self.provider_gone(&mut state, id);
                }
            }
            return Err(e);
        }
        Ok(())
    }

    /// Launches the instance unless one runs: whether it did, and the
    /// module's count of decisions.
    fn launch_to_start(&self, state: &mut State, id: &str) -> Result<(bool, u64), RemoteError> {
        let slot = state.modules.get_mut(id).ok_or_else(|| not_found(id))?;
        let loaded = slot.loaded.clone().ok_or_else(|| {
            RemoteError::new(
                ErrorKind::Unavailable,
                format!(
                    "module `{id}` cannot start: {}",
                    slot.last_error.clone().unwrap_or_default()
                ),
            )
        })?;
        let launched = slot.task.is_none();
        let decision = slot.decisions;
        if launched {
            slot.failures = 0;
            self.launch(state, id, loaded);
        }
        Ok((launched, decision))
    }

    /// Stops a module and remembers that it should stay stopped. A
    /// running instance is asked to finish and given the grace period.
    pub fn stop(&self, id: &str) -> Result<(), RemoteError> {
        let mut state = self.lock();
        let slot = state.modules.get_mut(id).ok_or_else(|| not_found(id))?;
        self.set_desired(slot, DesiredState::Stopped)?;
        let provider = slot.loaded.as_ref().map(|l| l.manifests.deployment.kind) == Some(ModuleKind::Provider);
        self.wind_down(&mut state, id, "stopped on request");
        if provider {
            self.provider_gone(&mut state, id);
        }
        Ok(())
    }

    /// Asks the running instance to finish within the grace period (state
    /// `Stopping`; cancelled when the grace runs out), or halts it at once
    /// if it cannot hear the request. Returns whether it was asked.
    pub(super) fn wind_down(&self, state: &mut State, id: &str, why: &str) -> bool {
        let Some(slot) = state.modules.get_mut(id) else {
            return false;
        };
        // Whether the running instance (not the version loaded since, in
        // an update) listens for the request.
        let hears = slot.instance.as_ref().is_some_and(|i| i.hears_shutdown);
        let Some(flag) = slot
            .stop_flag
            .clone()
            .filter(|_| hears && slot.task.is_some() && slot.state == ModuleState::Running)
        else {
            self.halt(state, id, why);
            return false;
        };
        flag.store(true, Ordering::Relaxed);
        if let Some(notice) = &slot.stop_notice {
            let _ = notice.try_send(());
        }
        let grace = self.inner.config.shutdown_grace;
        slot.logs
            .note(&format!("asked to stop (grace {})", run::humanize(grace)));
        let generation = slot.generation;
        self.after(grace, id, move |supervisor, state, id| {
            let overdue = state
                .modules
                .get(id)
                .is_some_and(|s| s.generation == generation && s.state == ModuleState::Stopping);
            if overdue {
                let why = format!("did not stop within {}; cancelled", run::humanize(grace));
                supervisor.halt(state, id, &why);
            }
        });
        self.set_state(state, id, ModuleState::Stopping);
        true
    }

    /// Runs `then` with the state locked once `delay` has passed (a grace
    /// period's end); `then` checks that what it is about still holds.
    pub(super) fn after(
        &self,
        delay: Duration,
        id: &str,
        then: impl FnOnce(&Supervisor, &mut State, &str) + Send + 'static,
    ) {
        let supervisor = self.clone();
        let id = id.to_owned();
        self.inner
            .executor
            .spawn(async move {
                smol::Timer::after(delay).await;
                let mut state = supervisor.lock();
                then(&supervisor, &mut state, &id);
            })
            .detach();
    }

    /// Stops (if running) and starts again.
    /// Stops the module as `stop` does (a guest that hears the shutdown
    /// call gets it, and the grace period to finish), then starts it.
    /// Called on a blocking-pool thread: it waits for the instance to end.
    pub fn restart(&self, id: &str) -> Result<(), RemoteError> {
        let asked = {
            let mut state = self.lock();
            if !state.modules.contains_key(id) {
                return Err(not_found(id));
            }
            self.wind_down(&mut state, id, "restarting on request")
        };
        if asked {
            self.wait_while_stopping(id);
        }
        self.halt(&mut self.lock(), id, "restarting on request");
        self.start(id)
    }

    /// Waits (on a blocking-pool thread) until the module is no longer
    /// `Stopping`: its instance heard the shutdown call and ended, or the
    /// grace period ran out and it was cancelled.
    pub(super) fn wait_while_stopping(&self, id: &str) {
        let deadline = Instant::now() + self.inner.config.shutdown_grace + Duration::from_millis(200);
        while Instant::now() < deadline && self.lock().modules.get(id).map(|s| &s.state) == Some(&ModuleState::Stopping)
        {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Saves what the module should be; every call is a decision that
    /// supersedes a start begun before it (`finish_start`).
    pub(super) fn set_desired(&self, slot: &mut Slot, desired: DesiredState) -> Result<(), RemoteError> {
        slot.decisions += 1;
        if slot.record.desired != desired {
            let mut record = slot.record.clone();
            record.desired = desired;
            self.inner
                .registry
                .save(&record)
                .map_err(|e| super::internal("saving the module record", e))?;
            slot.record = record;
        }
        Ok(())
    }

    /// Cancels a running instance or pending restart; the state becomes
    /// `Stopped`.
    pub(super) fn halt(&self, state: &mut State, id: &str, why: &str) {
        let Some(slot) = state.modules.get_mut(id) else { return };
        slot.generation += 1;
        // Dropping the task cancels it: wasmtime unwinds the guest's fiber.
        drop(slot.task.take());
        slot.stop_flag = None;
        slot.stop_notice = None;
        slot.config = None;
        slot.config_notice = None;
        slot.host = None;
        slot.health = None;
        if let Some(generation) = slot.instance.take().and_then(|i| i.provides) {
            self.inner.wiring.unregister(id, generation);
        }
        drop(slot.outgoing.take());
        slot.logs.note(why);
        self.set_state(state, id, ModuleState::Stopped);
        self.refresh_ticker(state);
    }

    /// Spawns an instance of `id` under a new generation.
    pub(super) fn launch(&self, state: &mut State, id: &str, loaded: Loaded) {
        let links = match self.links_for(state, id, &loaded) {
            Ok(links) => links,
            Err(unlinked) => return self.unlinked(state, id, unlinked),
        };
        let Some(slot) = state.modules.get_mut(id) else { return };
        slot.generation += 1;
        let generation = slot.generation;
        slot.started_at = Some(unix_now());
        let provides = (loaded.manifests.deployment.kind == ModuleKind::Provider).then_some(generation);
        let in_process = loaded.manifests.deployment.isolation == Isolation::Main;
        // Read by `telemetry`; a worker counts its own instances' usage.
        let usage = in_process.then(run::Usage::new);
        slot.instance = Some(Instance {
            version: loaded.manifests.version.clone(),
            hears_shutdown: loaded.hears_shutdown,
            in_process,
            links: links.clone(),
            provides,
            usage: usage.clone(),
        });
        if let Some(fleet_logs) = &self.inner.fleet_logs {
            fleet_logs.set_module(id, loaded.manifests.deployment.logs.forward);
        }
        if loaded
            .manifests
            .deployment
            .capabilities
            .dirs
            .iter()
            .any(|d| d.quota.is_some())
        {
            self.inner.quota_wake.wake();
        }
        slot.logs
            .note(&format!("starting version {}", loaded.manifests.version));
        let book = slot.logs.clone();
        let config =
            crate::host::ConfigValues::new(super::config::effective(&slot.record, &loaded.manifests.deployment));
        slot.config = Some(config.clone());
        slot.config_notice = None;
        let stop: run::StopFlag = Arc::new(AtomicBool::new(false));
        slot.stop_flag = Some(stop.clone());
        let health = loaded.has_health.then(run::HealthCheck::new);
        let check = health.as_ref().map(|(check, _)| check.clone());
        slot.health = health;
        if loaded.manifests.deployment.isolation == Isolation::Worker {
            let (notice, stop_asked) = async_channel::bounded(1);
            slot.stop_notice = Some(notice);
            let (config_notice, config_changed) = async_channel::bounded(1);
            slot.config_notice = Some(config_notice);
            let artifact = slot.record.current.artifact.clone();
            let services = self.with_router(id, &loaded, links, self.services_for(id, &book, config));
            let provide = provides.map(|generation| self.register_provider(id, &loaded, generation));
            let task = self.launch_in_worker(
                id,
                generation,
                loaded,
                artifact,
                (book, services, config_changed),
                (stop_asked, check, provide),
            );
            if let Some(slot) = state.modules.get_mut(id) {
                slot.task = Some(task);
            }
            self.set_state(state, id, ModuleState::Running);
            if provides.is_some() {
                self.wake_waiting(state);
            }
            return;
        }
        let supervisor = self.clone();
        let profile = self.inner.engines.profile(loaded.metered);
        let id_owned = id.to_owned();
        let services = self.with_router(id, &loaded, links, self.services_for(id, &book, config));
        let provide = provides.map(|generation| self.register_provider(id, &loaded, generation));
        // On the guest thread: never where the control plane runs.
        let task = self.inner.guests.spawn(async move {
            let deployment = &loaded.manifests.deployment;
            let began = Instant::now();
            let services = match supervisor.with_backends(&id_owned, deployment, services).await {
                Ok(services) => services,
                Err(e) => return supervisor.on_exit(&id_owned, generation, Err(e), began.elapsed()),
            };
            let grants = grants_for(&id_owned, deployment);
            let limits = limits_for(deployment, &supervisor.inner.config.module_defaults, loaded.metered);
            let output = Output::Capture(book);
            let invocation = Invocation {
                name: &id_owned,
                program: &loaded.program,
                grants: &grants,
                limits: &limits,
                profile: &profile,
                output: &output,
                entrypoint: Some(&loaded.manifests.entrypoint),
                stop: Some(stop),
                health: check,
                host: &services,
                provide: provide.clone(),
                usage,
            };
            // However the run ends (or is cancelled), its calls fail at once.
            let _closing = provide.map(crate::host::typed::handle::CloseOnDrop);
            let outcome = run::run(&invocation).await;
            supervisor.on_exit(&id_owned, generation, outcome, began.elapsed());
        });
        if let Some(slot) = state.modules.get_mut(id) {
            slot.task = Some(task);
        }
        self.refresh_ticker(state);
        self.set_state(state, id, ModuleState::Running);
        if provides.is_some() {
            self.wake_waiting(state);
        }
    }

    /// A module that cannot be linked now: `waiting` for a provider, or
    /// failed for good (an import cycle).
    fn unlinked(&self, state: &mut State, id: &str, unlinked: super::wiring::Unlinked) {
        let Some(slot) = state.modules.get_mut(id) else { return };
        match unlinked {
            super::wiring::Unlinked::Waiting(reason) => {
                if slot.state != (ModuleState::Waiting { reason: reason.clone() }) {
                    slot.logs.note(&format!("waiting: {reason}"));
                }
                self.set_state(state, id, ModuleState::Waiting { reason });
            }
            super::wiring::Unlinked::Cycle(reason) => {
                slot.logs.note(&reason);
                slot.last_error = Some(reason.clone());
                self.set_state(state, id, ModuleState::Failed { reason });
            }
        }
    }

    /// Runs the epoch thread exactly while some instance runs in this
    /// process (workers advance their own epochs): the need is derived
    /// from the slots, so no count can drift.
    pub(super) fn refresh_ticker(&self, state: &mut State) {
        let needed = state.modules.values().any(|slot| {
            slot.instance.as_ref().is_some_and(|i| i.in_process)
                || slot.outgoing.as_ref().is_some_and(|o| o.in_process())
        });
        match (needed, state.ticker.is_some()) {
            (true, false) => match self.inner.engines.ticker() {
                Ok(ticker) => state.ticker = Some(ticker),
                Err(e) => log::error!("cannot start the epoch thread: {e}; timeouts will not fire"),
            },
            (false, true) => state.ticker = None,
            _ => {}
        }
    }

    /// An instance finished: record why, then follow the restart policy
    /// (or, for a new version in its health window, roll back).
    fn on_exit(&self, id: &str, generation: u64, outcome: Result<i32, RunError>, ran: Duration) {
        let mut state = self.lock();
        let shutting_down = state.shutting_down;
        let Some(slot) = state.modules.get_mut(id) else { return };
        if slot.generation != generation {
            self.outgoing_ended(&mut state, id, generation, &outcome);
            return;
        }
        if let Some(provided) = slot.instance.take().and_then(|i| i.provides) {
            self.inner.wiring.unregister(id, provided);
        }
        if let Some(task) = slot.task.take() {
            task.detach();
        }
        slot.stop_flag = None;
        slot.stop_notice = None;
        slot.config = None;
        slot.config_notice = None;
        slot.host = None;
        slot.health = None;
        let Some(loaded) = slot.loaded.clone() else { return };
        let deployment = &loaded.manifests.deployment;
        if slot.state == ModuleState::Stopping || shutting_down {
            let how = match &outcome {
                Ok(code) => format!("stopped cleanly (exit code {code})"),
                Err(err) => format!("stopped: {err}"),
            };
            slot.logs.note(&how);
            if let Ok(code) = outcome {
                slot.last_exit = Some(code);
            }
            self.refresh_ticker(&mut state);
            self.set_state(&mut state, id, ModuleState::Stopped);
            return;
        }
        let failed = match &outcome {
            Ok(code) => {
                slot.last_exit = Some(*code);
                slot.logs.note(&format!("exited with code {code}"));
                *code != 0
            }
            Err(err) => {
                slot.last_error = Some(err.to_string());
                slot.logs.note(&err.to_string());
                true
            }
        };
        if slot.probation.is_some() {
            if failed {
                let reason = slot
                    .last_error
                    .clone()
                    .filter(|_| outcome.is_err())
                    .unwrap_or_else(|| format!("exited with code {}", slot.last_exit.unwrap_or_default()));
                self.refresh_ticker(&mut state);
                self.set_state(&mut state, id, ModuleState::Stopped);
                self.roll_back(&mut state, id, &reason);
                return;
            }
            if deployment.kind == ModuleKind::Command {
                // A command that ran to completion cleanly is healthy.
                self.probation_passed(&mut state, id);
            }
        }
        let Some(slot) = state.modules.get_mut(id) else { return };
        if ran >= STABLE_RUN || !failed {
            slot.failures = 0;
        }
        if failed {
            slot.failures += 1;
        }
        let restart = slot.record.desired == DesiredState::Running
            && match deployment.restart.policy {
                RestartPolicy::Never => false,
                RestartPolicy::OnFailure => failed,
                RestartPolicy::Always => true,
            };
        let settled = match (&outcome, failed) {
            (Ok(code), _) if deployment.kind == ModuleKind::Command || !restart => ModuleState::Exited { code: *code },
            (Err(err), _) if !restart => ModuleState::Failed {
                reason: err.to_string(),
            },
            _ => ModuleState::Stopped,
        };
        self.refresh_ticker(&mut state);
        if !restart {
            self.set_state(&mut state, id, settled);
            if deployment.kind == ModuleKind::Provider {
                self.provider_gone(&mut state, id);
            }
            return;
        }
        let Some(slot) = state.modules.get_mut(id) else { return };
        if slot.failures > deployment.restart.max_restarts {
            let reason = format!(
                "crash loop: {} failures in a row (restart.max_restarts = {}); last: {}",
                slot.failures,
                deployment.restart.max_restarts,
                slot.last_error
                    .clone()
                    .or_else(|| slot.last_exit.map(|c| format!("exit code {c}")))
                    .unwrap_or_default()
            );
            slot.logs.note(&reason);
            slot.last_error = Some(reason.clone());
            self.set_state(&mut state, id, ModuleState::Failed { reason });
            if deployment.kind == ModuleKind::Provider {
                self.provider_gone(&mut state, id);
            }
            return;
        }
        let delay = backoff(deployment, slot.failures);
        slot.restarts += 1;
        slot.generation += 1;
        let attempt = slot.restarts;
        let generation = slot.generation;
        let supervisor = self.clone();
        let id_owned = id.to_owned();
        slot.task = Some(self.inner.executor.spawn(async move {
            smol::Timer::after(delay).await;
            supervisor.restart_after_backoff(&id_owned, generation);
        }));
        self.set_state(
            &mut state,
            id,
            ModuleState::BackingOff {
                attempt,
                in_ms: delay.as_millis() as u64,
            },
        );
    }

    fn restart_after_backoff(&self, id: &str, generation: u64) {
        let mut state = self.lock();
        let Some(slot) = state.modules.get_mut(id) else { return };
        if slot.generation != generation || slot.record.desired != DesiredState::Running {
            return;
        }
        if let Some(task) = slot.task.take() {
            task.detach();
        }
        if let Some(loaded) = slot.loaded.clone() {
            self.launch(&mut state, id, loaded);
        }
    }

    /// Starts every module whose desired state is running (at startup).
    pub fn start_desired(&self) {
        let ids: Vec<String> = self
            .lock()
            .modules
            .iter()
            .filter(|(_, slot)| slot.record.desired == DesiredState::Running && slot.loaded.is_some())
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            if let Err(e) = self.start(&id) {
                log::warn!("{e}");
                let mut state = self.lock();
                if let Some(slot) = state.modules.get_mut(&id) {
                    slot.last_error = Some(e.message.clone());
                }
                self.set_state(&mut state, &id, ModuleState::Failed { reason: e.message });
            }
        }
    }

    /// Daemon shutdown: asks every running instance that can hear it to
    /// finish, waits up to `grace` for them, then cancels the rest; one
    /// that cannot hear it (no shutdown import) is cancelled at once, as
    /// `stop` does. Desired states on disk are untouched, so the same
    /// modules run after the next start.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.workers.begin_shutdown();
        let mut tasks: Vec<(String, smol::Task<()>)> = Vec::new();
        let mut deaf: Vec<smol::Task<()>> = Vec::new();
        {
            let mut state = self.lock();
            state.shutting_down = true;
            for (id, slot) in state.modules.iter_mut() {
                if let Some(flag) = &slot.stop_flag {
                    flag.store(true, Ordering::Relaxed);
                }
                if let Some(notice) = &slot.stop_notice {
                    let _ = notice.try_send(());
                }
                let hears = slot.instance.as_ref().is_some_and(|i| i.hears_shutdown);
                if let Some(task) = slot.task.take() {
                    if hears {
                        slot.logs.note("daemon shutting down");
                        tasks.push((id.clone(), task));
                    } else {
                        slot.logs
                            .note("daemon shutting down: cancelled (it does not import the shutdown call)");
                        deaf.push(task);
                    }
                }
                if let Some(outgoing) = slot.outgoing.take() {
                    if outgoing.hears_shutdown() {
                        tasks.push((id.clone(), outgoing.stop_now()));
                    } else {
                        deaf.push(outgoing.stop_now());
                    }
                }
            }
        }
        // Cancelled now, and waited for (a worker instance's cancel is one
        // message), so nothing outlives the guest thread.
        for task in deaf {
            task.cancel().await;
        }
        let deadline = Instant::now() + grace;
        for (id, task) in tasks {
            let left = deadline.saturating_duration_since(Instant::now());
            let finished = smol::future::or(
                async {
                    task.await;
                    true
                },
                async {
                    smol::Timer::after(left).await;
                    false
                },
            )
            .await;
            if !finished {
                log::warn!("module `{id}` did not stop within {}; cancelled", run::humanize(grace));
            }
        }
        self.lock().ticker = None;
        self.inner.workers.shutdown().await;
    }

    /// The task that runs one instance of a worker module: the code file
    /// is opened and re-verified off the executor, then handed to the
    /// group's worker.
    fn launch_in_worker(
        &self,
        id: &str,
        generation: u64,
        loaded: Loaded,
        artifact: String,
        (book, services, config_changed): (
            crate::run::LogBook,
            crate::host::HostServices,
            async_channel::Receiver<()>,
        ),
        (stop_asked, health, provide): (
            async_channel::Receiver<()>,
            Option<Arc<run::HealthCheck>>,
            Option<Arc<crate::host::typed::ProviderHandle>>,
        ),
    ) -> smol::Task<()> {
        let supervisor = self.clone();
        let id_owned = id.to_owned();
        self.inner.executor.spawn(async move {
            let _closing = provide.clone().map(crate::host::typed::handle::CloseOnDrop);
            let began = Instant::now();
            let deployment = &loaded.manifests.deployment;
            let store = supervisor.inner.store.clone();
            let group = deployment.group.clone();
            let code = crate::offload::offload(move || store.open_code_in_group(&artifact, &group)).await;
            let services = supervisor.with_backends(&id_owned, deployment, services).await;
            let outcome = match (code, services) {
                (Err(e), _) => Err(RunError::Setup {
                    module: id_owned.clone(),
                    message: e.to_string(),
                }),
                (_, Err(e)) => Err(e),
                (Ok(code), Ok(services)) => {
                    let host_of = supervisor.clone();
                    let host_id = id_owned.clone();
                    let request = RemoteRun {
                        group: deployment.group.clone(),
                        spec: InstanceSpec {
                            name: id_owned.clone(),
                            kind: loaded.program.kind(),
                            grants: grants_for(&id_owned, deployment),
                            limits: limits_for(deployment, &supervisor.inner.config.module_defaults, loaded.metered),
                            entrypoint: Some(loaded.manifests.entrypoint.clone()),
                            provider_instances: provide.as_ref().map(|p| p.instances),
                        },
                        code,
                        book,
                        stop: stop_asked,
                        on_started: Box::new(move |host| host_of.hosted(&host_id, generation, host)),
                        health,
                        host: services,
                        config_changed,
                        provide: provide.clone(),
                    };
                    supervisor.inner.workers.run(request).await
                }
            };
            supervisor.on_exit(&id_owned, generation, outcome, began.elapsed());
        })
    }

    /// Records which worker hosts the instance `generation` of `id`.
    fn hosted(&self, id: &str, generation: u64, host: Host) {
        let mut state = self.lock();
        if let Some(slot) = state.modules.get_mut(id).filter(|s| s.generation == generation) {
            slot.logs
                .note(&format!("running in worker `{}` (pid {})", host.group, host.pid));
            slot.host = Some(host);
            // The new version runs: the one it replaces may go now.
            self.release_outgoing(&mut state, id);
        }
    }
}

/// Exponential: initial × 2^(n−1), capped.
fn backoff(deployment: &DeploymentManifest, failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
    deployment
        .restart
        .backoff_initial
        .saturating_mul(factor)
        .min(deployment.restart.backoff_max)
}

/// The deployment's limits; unset memory falls back to `[module_defaults]`,
/// then (in-process) to a built-in default (admission.rs). A fuel-metered
/// artifact without a fuel limit gets an unbounded one: a worker picks the
/// metered engine exactly when the limits carry fuel.
fn limits_for(deployment: &DeploymentManifest, defaults: &crate::board::ModuleDefaults, metered: bool) -> Limits {
    let fuel = match deployment.limits.fuel {
        None if metered => Some(u64::MAX),
        fuel => fuel,
    };
    Limits {
        fuel,
        max_memory: super::admission::memory_limit(deployment, defaults),
        timeout: deployment.limits.timeout,
    }
}

fn grants_for(id: &str, deployment: &DeploymentManifest) -> Grants {
    let caps = &deployment.capabilities;
    let mut args = vec![id.to_owned()];
    args.extend(caps.args.iter().cloned());
    Grants {
        args,
        env: caps.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        dirs: caps
            .dirs
            .iter()
            .map(|d| DirGrant {
                host: d.host.clone(),
                guest: d.guest.clone(),
                read_only: d.read_only,
            })
            .collect(),
        // Checked at install; should a stored rule not parse after all,
        // the module gets no network rather than a wider one.
        network: caps.network.rules().unwrap_or_else(|(key, message)| {
            log::error!("{id}: capabilities.{key} {message}; the module gets no network");
            crate::host::network::NetworkRules::default()
        }),
        http: deployment.http.as_ref().and_then(|http| http.grant().ok()),
        subscribe: caps.messaging.as_ref().map(|m| m.subscribe.clone()).unwrap_or_default(),
    }
}

impl Supervisor {
    /// Sets a module's state and tells its followers.
    pub(super) fn set_state(&self, state: &mut State, id: &str, new: ModuleState) {
        let Some(slot) = state.modules.get_mut(id) else { return };
        if slot.state == new {
            return;
        }
        slot.state = new.clone();
        self.audit_state(id, &new, slot.last_error.as_deref());
        self.inner.broadcast(
            id,
            &Event::State {
                module: id.to_owned(),
                state: new,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut d = crate::manifest::parse_deployment("trusted = true\nisolation = \"main\"\n", "d.toml").unwrap();
        d.restart.backoff_initial = Duration::from_millis(100);
        d.restart.backoff_max = Duration::from_millis(500);
        let delays: Vec<u128> = (1..=5).map(|n| backoff(&d, n).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 500, 500]);
    }

    /// What broke: 17 KB of args were accepted at install, then the worker
    /// could not be sent the start message (16 KiB at most) and was killed
    /// every 5 s with its group's healthy modules. Whatever the manifest
    /// rules let through must encode, as the real start message, within
    /// the worker message limit.
    #[test]
    fn the_largest_deployment_the_rules_allow_fits_one_worker_start_message() {
        use crate::manifest::{MAX_CAPABILITIES_BYTES, MAX_NAME_LEN, MAX_SYMBOL_LEN};
        use crate::protocol::worker::{MAX_WORKER_MESSAGE, ToWorker, encode};
        let mut d = crate::manifest::parse_deployment("", "d.toml").unwrap();
        // One long argument, grown to the last byte the rule allows.
        d.capabilities.args = vec!["a".repeat(MAX_CAPABILITIES_BYTES - 16)];
        while d.check().is_ok() {
            d.capabilities.args[0].push('a');
        }
        d.capabilities.args[0].pop();
        let encoded = postcard::experimental::serialized_size(&d.capabilities).unwrap();
        assert!(encoded <= MAX_CAPABILITIES_BYTES && encoded + 8 > MAX_CAPABILITIES_BYTES);
        d.limits.fuel = Some(u64::MAX);
        d.limits.memory = Some(u64::MAX);
        d.limits.timeout = Some(Duration::MAX);
        let id = "x".repeat(MAX_NAME_LEN);
        let start = ToWorker::Start {
            instance: u64::MAX,
            spec: InstanceSpec {
                name: id.clone(),
                kind: crate::artifact::ArtifactKind::Component,
                grants: grants_for(&id, &d),
                limits: limits_for(&d, &Default::default(), true),
                entrypoint: Some("e".repeat(MAX_SYMBOL_LEN)),
                provider_instances: Some(u16::MAX),
            },
        };
        let bytes = encode(&start).expect("the start message fits");
        assert!(bytes.len() <= MAX_WORKER_MESSAGE, "{} bytes", bytes.len());
        // And one byte more is refused, naming the limit.
        d.capabilities.args[0].push('a');
        let refused = d.check().unwrap_err().to_string();
        assert!(
            refused.contains("12288 bytes") && refused.contains("16 KiB"),
            "{refused}"
        );
    }
}
