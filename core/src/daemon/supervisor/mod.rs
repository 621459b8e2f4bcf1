//! The supervisor: every installed module, its state, its running
//! instance, its logs; and the followers who want to hear about them.
//!
//! One `Mutex<State>` guards all of it; it is never held across an await.
//! In-process instances run as tasks on the guest thread's executor, the
//! supervisor's own tasks (timers, worker instances' bookkeeping) on the
//! control executor (daemon/guests.rs); instances report back
//! through [`Supervisor::on_exit`]; a generation number per module makes
//! reports from a superseded instance harmless.

mod admission;
mod config;
mod engine_changed;
mod install;
pub mod journal;
mod kv;
mod lifecycle;
mod queries;
mod quota;
mod services;
mod swap;
mod telemetry;
mod wiring;

pub use lifecycle::StartBegun;

use super::config::DaemonConfig;
use super::registry::{ModuleRecord, Registry};
use super::uploads::Uploads;
use super::workers::{Host, WorkerPool};
use crate::artifact::{ArtifactStore, Program};
use crate::engine::EngineSet;
use crate::manifest::Validated;
use crate::protocol::{ErrorKind, Event, ModuleState, RemoteError};
use crate::run::LogBook;
use crate::run::ticker::EpochTicker;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// Events queued per follower before new ones are dropped for it.
const FOLLOWER_QUEUE: usize = 256;

/// Handle to the supervisor; cheap to clone.
#[derive(Clone, Debug)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

struct Inner {
    /// One engine per fuel variant (engine/set.rs).
    engines: EngineSet,
    config: DaemonConfig,
    store: ArtifactStore,
    registry: Registry,
    uploads: Uploads,
    /// The control plane's executor: timers and workers' links; never guest code.
    executor: Arc<smol::Executor<'static>>,
    /// The guest thread's executor: in-process instances and nothing else.
    guests: Arc<smol::Executor<'static>>,
    workers: WorkerPool,
    started: Instant,
    state: Mutex<State>,
    /// Its own lock, so log lines (written while `state` may be held) can
    /// reach followers. Lock order: `state`, then `followers`.
    followers: Mutex<Vec<Follower>>,
    /// Serializes install, update and remove (which run on blocking-pool
    /// threads), so two of them never race on one module id. Taken before
    /// `state`, and never on the executor thread.
    changes: Mutex<()>,
    /// Tells health windows apart.
    tokens: std::sync::atomic::AtomicU64,
    /// How many module lines reach the daemon's log (journal.rs).
    journal: crate::daemon::workers::churn::Churn,
    /// Who changed what, denials, starts and exits (`daemon/audit`).
    audit: super::audit::Audit,
    /// Modules' key-value state (daemon/kvstores.rs).
    kv: super::kvstores::KvStores,
    /// The running providers of typed calls (daemon/wiring.rs).
    wiring: Arc<super::wiring::Wiring>,
    /// The device's message bus (`wasi:messaging`, host/messaging/bus.rs).
    bus: Arc<crate::host::messaging::bus::Bus>,
    /// Wakes the disk-quota measurement when an instance starts (quota.rs):
    /// with nothing quota'd running it sleeps without a timer.
    quota_wake: quota::Wake,
    /// Which log lines reach the fleet (with `[mqtt]`).
    fleet_logs: Option<crate::daemon::fleet_logs::FleetLogs>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("data_dir", &self.config.data_dir)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    modules: BTreeMap<String, Slot>,
    /// Advances the epoch while an instance runs in this process (timeouts,
    /// yielding); see `refresh_ticker`.
    ticker: Option<EpochTicker>,
    /// Set once the daemon is stopping: exits are final, nothing restarts.
    shutting_down: bool,
}

struct Follower {
    module: Option<String>,
    /// The fleet's follower (the MQTT agent): log lines pass the fleet's
    /// filter (`daemon/fleet_logs.rs`).
    fleet: bool,
    tx: async_channel::Sender<Event>,
}

/// One installed module.
struct Slot {
    record: ModuleRecord,
    /// `None` when the record could not be loaded (see `last_error`).
    loaded: Option<Loaded>,
    state: ModuleState,
    task: Option<smol::Task<()>>,
    /// Raised to ask the running instance to finish.
    stop_flag: Option<crate::run::StopFlag>,
    /// Told when the instance should finish, for one in a worker.
    stop_notice: Option<async_channel::Sender<()>>,
    /// The running instance's runtime configuration (config.rs).
    config: Option<crate::host::ConfigValues>,
    /// Told when `config` changed, for an instance in a worker.
    config_notice: Option<async_channel::Sender<()>>,
    /// The worker hosting the running instance, if it runs in one.
    host: Option<Host>,
    /// The previous version's instance during a start-first swap, until
    /// it has stopped.
    outgoing: Option<swap::Outgoing>,
    /// Set while a new version is in its health window.
    probation: Option<swap::Probation>,
    /// The running instance (`None` once it has ended).
    instance: Option<Instance>,
    /// Asks the running instance's health export, if it has one.
    health: Option<(Arc<crate::run::HealthCheck>, crate::run::HealthVerdicts)>,
    generation: u64,
    logs: LogBook,
    /// Failures in a row, for the restart policy.
    failures: u32,
    restarts: u32,
    last_exit: Option<i32>,
    last_error: Option<String>,
    started_at: Option<u64>,
    /// Counts the decisions of what the module should be (`set_desired`):
    /// a start begun before one does not save over it.
    decisions: u64,
}

/// What the supervisor knows of a running instance.
struct Instance {
    version: String,
    /// Whether it imports the shutdown call.
    hears_shutdown: bool,
    /// In the daemon's process (not a worker): it needs the epoch thread.
    in_process: bool,
    /// A consumer's links: each provider-served import → provider module.
    links: BTreeMap<String, String>,
    /// For a provider: the start number its entrance is registered under.
    provides: Option<u64>,
    /// What it uses (memory, CPU time), counted by the run; `None` in a
    /// worker, which reports its instances' usage when pinged.
    usage: Option<Arc<crate::run::Usage>>,
}

/// A module's program and validated manifests.
#[derive(Clone)]
struct Loaded {
    program: Program,
    manifests: Validated,
    /// Whether it imports the shutdown call; one that cannot hear it is
    /// cancelled at once instead of waiting out the grace period.
    hears_shutdown: bool,
    /// Whether it exports the health call (core modules).
    has_health: bool,
    /// Whether its artifact meters fuel (compiled with `--fuel`).
    metered: bool,
    /// Imports that provider modules serve (typed calls).
    needs: Vec<String>,
    /// Interfaces it exports for other modules to call.
    offers: Vec<String>,
}

impl Loaded {
    fn new(program: Program, manifests: Validated, metered: bool) -> Self {
        // A provider is stopped at once: its calls fail for their callers.
        let hears_shutdown =
            crate::run::hears_shutdown(&program) && manifests.deployment.kind != crate::protocol::ModuleKind::Provider;
        let (needs, offers) = wiring::interfaces(&program);
        let has_health = match &program {
            Program::Module(m) => m.get_export(crate::run::HEALTH_EXPORT).is_some(),
            Program::Component(_) => false,
        };
        Self {
            program,
            manifests,
            hears_shutdown,
            has_health,
            metered,
            needs,
            offers,
        }
    }
}

/// Where the supervisor's tasks run (daemon/guests.rs).
#[derive(Clone, Debug)]
pub struct Executors {
    /// The control plane's: never polls guest code.
    pub control: Arc<smol::Executor<'static>>,
    /// The guest thread's: in-process instances only.
    pub guests: Arc<smol::Executor<'static>>,
}

impl Supervisor {
    /// A supervisor over the given parts, with no modules loaded yet.
    pub fn new(
        engines: EngineSet,
        config: DaemonConfig,
        store: ArtifactStore,
        registry: Registry,
        uploads: Uploads,
        executors: Executors,
        audit: super::audit::Audit,
    ) -> Self {
        // Read once (checked when the configuration was loaded): trusted
        // here for in-process guests, handed to every worker in its Hello.
        let http_roots = config.http.roots().unwrap_or_default();
        if let Err(e) = crate::host::http::trust_roots(&http_roots) {
            log::error!("[http] ca_file: {e}; guests' https requests trust Mozilla's roots only");
        }
        let workers = WorkerPool::new(
            &config.workers,
            &config.engine,
            executors.control.clone(),
            Some(&config.data_dir),
            http_roots,
            Some(store.group_links()),
        );
        let kv = super::kvstores::KvStores::new(&config.data_dir);
        let fleet_logs = config
            .mqtt
            .as_ref()
            .map(|m| crate::daemon::fleet_logs::FleetLogs::new(m.logs, m.logs_per_minute));
        let inner = Inner {
            engines,
            workers,
            config,
            store,
            registry,
            uploads,
            executor: executors.control,
            guests: executors.guests,
            started: Instant::now(),
            state: Mutex::new(State::default()),
            followers: Mutex::new(Vec::new()),
            changes: Mutex::new(()),
            tokens: std::sync::atomic::AtomicU64::new(1),
            journal: Default::default(),
            audit,
            kv,
            wiring: Arc::default(),
            bus: crate::host::messaging::bus::Bus::new(),
            quota_wake: quota::Wake::default(),
            fleet_logs,
        };
        Self { inner: Arc::new(inner) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Held for the whole of an install, update or remove.
    fn lock_changes(&self) -> MutexGuard<'_, ()> {
        self.inner.changes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The audit trail.
    pub fn audit(&self) -> &super::audit::Audit {
        &self.inner.audit
    }

    /// Files arriving for install/update.
    pub fn uploads(&self) -> &Uploads {
        &self.inner.uploads
    }

    /// Registers a follower of one module's events (or all modules').
    pub fn follow(&self, module: Option<String>) -> Result<async_channel::Receiver<Event>, RemoteError> {
        if let Some(id) = &module
            && !self.lock().modules.contains_key(id)
        {
            return Err(not_found(id));
        }
        Ok(self.add_follower(module, false))
    }

    /// Every state change, and the log lines the fleet is sent
    /// (`[mqtt] logs`, a module's `[logs] forward`): the MQTT agent's
    /// `events`.
    pub fn follow_fleet(&self) -> async_channel::Receiver<Event> {
        self.add_follower(None, true)
    }

    fn add_follower(&self, module: Option<String>, fleet: bool) -> async_channel::Receiver<Event> {
        let (tx, rx) = async_channel::bounded(FOLLOWER_QUEUE);
        let mut followers = self.inner.followers.lock().unwrap_or_else(PoisonError::into_inner);
        followers.retain(|f| !f.tx.is_closed());
        followers.push(Follower { module, fleet, tx });
        rx
    }

    /// A listener that forwards a module's log lines to followers.
    fn log_listener(&self) -> crate::run::capture::LineListener {
        let weak = Arc::downgrade(&self.inner);
        Arc::new(move |line| {
            if let Some(inner) = weak.upgrade() {
                journal::forward(&inner.journal, line);
                inner.broadcast(&line.module, &Event::Log(line.clone()));
            }
        })
    }
}

impl Inner {
    /// Sends an event to every follower interested in `module`; a follower
    /// whose queue is full misses it rather than slowing the daemon.
    fn broadcast(&self, module: &str, event: &Event) {
        let followers = self.followers.lock().unwrap_or_else(PoisonError::into_inner);
        for follower in followers.iter() {
            if follower.module.as_deref().is_some_and(|m| m != module) {
                continue;
            }
            match (event, follower.fleet) {
                (Event::Log(line), true) => {
                    let admitted = self.fleet_logs.as_ref().map(|f| f.admit(line)).unwrap_or_default();
                    for line in admitted {
                        let _ = follower.tx.try_send(Event::Log(line));
                    }
                }
                _ => {
                    let _ = follower.tx.try_send(event.clone());
                }
            }
        }
    }
}

fn not_found(id: &str) -> RemoteError {
    RemoteError::new(
        ErrorKind::NotFound,
        format!("no module `{id}` is installed (see `arcella list`)"),
    )
}

fn internal(context: &str, e: impl std::fmt::Display) -> RemoteError {
    RemoteError::new(ErrorKind::Internal, format!("{context}: {e}"))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
