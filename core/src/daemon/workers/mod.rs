//! Worker processes for untrusted modules: one per group, started on
//! demand by spawn + exec of `arcella-worker`, jailed (docs/security.md),
//! spoken to over a seqpacket socket pair. A worker whose last instance
//! ends is told to exit; the next start in its group starts a new one.
//!
//! Every request has a deadline (`workers.ipc_timeout`): a worker that
//! misses one is deemed hung and terminated (SIGTERM, then SIGKILL after
//! `workers.kill_grace`), and its instances fail like crashed ones.

pub(crate) mod churn;
mod config;
mod deliver;
mod process;
mod provider;
mod template;
mod uids;

pub use config::{GroupConfig, GroupLimits, WorkerConfig};

use crate::engine::EngineProfile;
use crate::fingerprint::EngineFingerprint;
use crate::protocol::worker::{InstanceId, InstanceSpec, ToWorker, Walls, WorkerUsage};
use crate::run::Grants;
use crate::run::{LogBook, RunError};
use crate::sys::cgroup::CgroupParent;
use crate::sys::process::Ended;
use process::{Outgoing, Pending, Worker, with_deadline};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Why a worker could not be had.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("{0}")]
    Binary(String),
    #[error("{0}")]
    User(String),
    #[error(transparent)]
    Uid(#[from] uids::UidError),
    #[error("cannot start a worker for group `{group}`: {source}")]
    Spawn {
        group: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the worker for group `{group}` could not start: {reason}")]
    Refused { group: String, reason: String },
    #[error("the worker for group `{group}` (pid {pid}) did not answer within {}", crate::run::humanize(*.timeout))]
    Timeout {
        group: String,
        pid: u32,
        timeout: std::time::Duration,
    },
    #[error("the worker for group `{group}` is gone")]
    Gone { group: String },
}

/// Which worker hosts an instance (shown by `status`), and the
/// instance's number there (its usage in the worker's `Pong`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub group: String,
    pub pid: u32,
    pub instance: InstanceId,
}

/// One instance to run in a worker.
pub struct RemoteRun {
    pub group: String,
    pub spec: InstanceSpec,
    /// The verified code file, passed to the worker as a descriptor.
    pub code: std::fs::File,
    pub book: LogBook,
    /// Receives once when the instance should finish (graceful stop).
    pub stop: async_channel::Receiver<()>,
    /// Called once the guest runs, with the worker that hosts it.
    pub on_started: Box<dyn FnOnce(Host) + Send>,
    /// Health questions for the guest, passed on to the worker.
    pub health: Option<Arc<crate::run::HealthCheck>>,
    /// Serves the instance's host calls and denials that come back from
    /// the worker.
    pub host: crate::host::HostServices,
    /// Rings when `host.config` changed: its values go to the worker.
    pub config_changed: async_channel::Receiver<()>,
    /// For a provider: where its calls arrive, to be passed on to the worker.
    pub provide: Option<Arc<crate::host::typed::ProviderHandle>>,
}

impl std::fmt::Debug for RemoteRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteRun")
            .field("group", &self.group)
            .field("module", &self.spec.name)
            .finish_non_exhaustive()
    }
}

/// The code an instance runs, as [`WorkerPool::attach`] needs it to pick
/// a template.
#[derive(Clone, Copy)]
struct Code<'a> {
    file: &'a std::fs::File,
    metered: bool,
    kind: crate::artifact::ArtifactKind,
}

/// What woke an instance's loop in [`WorkerPool::run`].
enum Wake {
    /// A stop (`Some(true)`; `Some(false)`: no stop will come) or a
    /// health question (`None`).
    Asked(Option<bool>),
    /// The configuration changed (`false`: no change will come).
    Config(bool),
}

/// All workers; cheap to clone.
#[derive(Clone, Debug)]
pub struct WorkerPool {
    inner: Arc<PoolInner>,
}

pub(crate) struct PoolInner {
    config: WorkerConfig,
    binary: Result<PathBuf, String>,
    user: Result<Option<(u32, u32)>, String>,
    /// A uid per group (root only, `workers.uids`).
    uids: Option<uids::UidBook>,
    profile: EngineProfile,
    fingerprint: String,
    executor: Arc<smol::Executor<'static>>,
    /// Looked for at the first worker start (and said once if absent).
    cgroups: std::sync::OnceLock<Option<CgroupParent>>,
    workers: Mutex<BTreeMap<String, Arc<Worker>>>,
    /// Workers told to exit (nothing left to run) that have not ended yet:
    /// shutdown waits for them too. Each leaves when it ends.
    leaving: Mutex<Vec<Arc<Worker>>>,
    /// One spawn at a time, so two starts in a group share one worker.
    spawning: smol::lock::Mutex<()>,
    next_instance: AtomicU64,
    next_ping: AtomicU32,
    said_seccomp: AtomicBool,
    said_walls: AtomicBool,
    /// Set once the daemon stops: workers ending then are not failures.
    stopping: AtomicBool,
    /// How often workers' starts and ends are logged, per group.
    churn: churn::Churn,
    /// Extra roots for guests' https requests (`[http] ca_file`), given
    /// to every worker in its Hello.
    http_roots: Vec<u8>,
    /// Where each group's links to its code files are: a worker may read
    /// beneath its group's directory (see `artifact/group_links.rs`).
    code_links: Option<crate::artifact::group_links::GroupLinks>,
    /// The templates workers are forked from, by the code they hold
    /// (`template.rs`); each lives while a worker forked from it does.
    templates: Mutex<std::collections::HashMap<template::CodeKey, std::sync::Weak<template::Template>>>,
}

impl std::fmt::Debug for PoolInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("binary", &self.binary)
            .finish_non_exhaustive()
    }
}

impl WorkerPool {
    /// A pool with no workers yet. Problems that only matter once a worker
    /// is needed (no binary, no such user) are kept and reported then.
    /// `data_dir` keeps the uids given to groups (`workers.uids`); without
    /// it every worker runs as `workers.user`.
    pub fn new(
        config: &WorkerConfig,
        profile: &EngineProfile,
        executor: Arc<smol::Executor<'static>>,
        data_dir: Option<&std::path::Path>,
        http_roots: Vec<u8>,
        code_links: Option<crate::artifact::group_links::GroupLinks>,
    ) -> Self {
        let uids = match (uids::parse_range(&config.uids), data_dir) {
            (Ok(range), Some(dir)) if crate::sys::user::effective_uid() == 0 => {
                Some(uids::UidBook::open(range, dir.to_owned()))
            }
            _ => None,
        };
        let inner = PoolInner {
            config: config.clone(),
            binary: find_binary(config),
            user: worker_user(&config.user),
            uids,
            profile: profile.clone(),
            fingerprint: EngineFingerprint::of(profile).to_string(),
            executor,
            cgroups: std::sync::OnceLock::new(),
            workers: Mutex::new(BTreeMap::new()),
            leaving: Mutex::new(Vec::new()),
            spawning: smol::lock::Mutex::new(()),
            next_instance: AtomicU64::new(1),
            next_ping: AtomicU32::new(1),
            said_seccomp: AtomicBool::new(false),
            said_walls: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            churn: churn::Churn::default(),
            http_roots,
            code_links,
            templates: Mutex::new(std::collections::HashMap::new()),
        };
        Self { inner: Arc::new(inner) }
    }

    /// Runs one instance to completion in its group's worker (started if
    /// need be). Dropping the future cancels the instance.
    pub async fn run(&self, request: RemoteRun) -> Result<i32, RunError> {
        let name = request.spec.name.clone();
        let failed = |message: String| RunError::Remote { message };
        let instance = self.inner.next_instance.fetch_add(1, Ordering::Relaxed);
        let (done_tx, done) = async_channel::bounded(1);
        let (started_tx, started) = async_channel::bounded(1);
        let health = request.health.clone();
        let config = request.host.config.clone();
        let inbox = request.host.inbox.clone();
        let (handled_tx, handled) = async_channel::bounded(1);
        let pending = Pending {
            name: name.clone(),
            book: request.book,
            health: request.health,
            host: request.host,
            started: Some(started_tx),
            done: done_tx,
            handled: inbox.is_some().then_some(handled_tx),
        };
        let code = Code {
            file: &request.code,
            metered: request.spec.limits.fuel.is_some(),
            kind: request.spec.kind,
        };
        let worker = self
            .attach(&request.group, instance, pending, &request.spec.grants, code)
            .await
            .map_err(|e| failed(format!("{name}: {e}")))?;
        let mut guard = CancelOnDrop {
            pool: self.inner.clone(),
            worker: worker.clone(),
            instance,
            armed: true,
        };
        // Before the start, so the guest's first read already sees it.
        let values = Outgoing {
            message: ToWorker::Config {
                instance,
                values: config.pairs(),
            },
            fd: None,
        };
        let start = Outgoing {
            message: ToWorker::Start {
                instance,
                spec: request.spec,
            },
            fd: Some(request.code.into()),
        };
        let gone = || {
            let group = worker.group.clone();
            failed(format!("{name}: {}", WorkerError::Gone { group }))
        };
        if worker.outbox.send(values).await.is_err() || worker.outbox.send(start).await.is_err() {
            guard.armed = false;
            return Err(gone());
        }
        let timeout = self.inner.config.ipc_timeout;
        let first = with_deadline(
            timeout,
            smol::future::or(async { started.recv().await.ok().map(|()| None) }, async {
                done.recv().await.ok().map(Some)
            }),
        )
        .await;
        match first {
            Some(Some(None)) => (request.on_started)(Host {
                group: worker.group.clone(),
                pid: worker.pid,
                instance,
            }),
            Some(Some(Some(outcome))) => {
                guard.armed = false;
                return outcome.map_err(failed);
            }
            Some(None) => {}
            None => worker.terminate(
                &self.inner,
                &format!(
                    "did not confirm the start of `{name}` within {}",
                    crate::run::humanize(timeout)
                ),
            ),
        }
        // A provider's calls go to the worker while the instance lives.
        let _forwarding = request
            .provide
            .clone()
            .map(|handle| provider::forward(&self.inner.executor, worker.clone(), instance, handle));
        // Messages for its handler, one at a time; dropped with the instance.
        let _deliveries = inbox.map(|inbox| {
            self.inner
                .executor
                .spawn(deliver::pump(worker.clone(), instance, inbox, handled))
        });
        let mut stop = Some(request.stop);
        let mut config_changed = Some(request.config_changed);
        let outcome = loop {
            let stop_asked = async {
                match &stop {
                    Some(rx) => Some(rx.recv().await.is_ok()),
                    None => std::future::pending().await,
                }
            };
            let health_asked = async {
                match &health {
                    Some(check) => {
                        check.asked().await;
                        None
                    }
                    None => std::future::pending().await,
                }
            };
            let config_rang = async {
                match &config_changed {
                    Some(rx) => rx.recv().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            let next = smol::future::or(async { Err(done.recv().await) }, async {
                Ok(smol::future::or(
                    async { Wake::Asked(smol::future::or(stop_asked, health_asked).await) },
                    async { Wake::Config(config_rang.await) },
                )
                .await)
            })
            .await;
            let message = match next {
                Err(outcome) => break outcome,
                Ok(Wake::Asked(Some(asked))) => {
                    stop = None;
                    if !asked {
                        continue;
                    }
                    ToWorker::Stop { instance }
                }
                Ok(Wake::Asked(None)) => ToWorker::CheckHealth { instance },
                Ok(Wake::Config(false)) => {
                    // The supervisor let go of this instance (replaced or halted).
                    config_changed = None;
                    continue;
                }
                Ok(Wake::Config(true)) => ToWorker::Config {
                    instance,
                    values: config.pairs(),
                },
            };
            if matches!(message, ToWorker::Config { .. }) {
                // A change must not be lost to a full outbox.
                let _ = worker.outbox.send(Outgoing { message, fd: None }).await;
            } else {
                let _ = worker.outbox.try_send(Outgoing { message, fd: None });
            }
        };
        guard.armed = false;
        match outcome {
            Ok(result) => result.map_err(failed),
            Err(_) => Err(gone()),
        }
    }

    /// The worker of `group` (started if there is none, or if its walls do
    /// not let `grants` in) with `instance` registered on it.
    /// A new worker is forked from the template that holds `code` if it
    /// is big enough (`workers.template_above`).
    async fn attach(
        &self,
        group: &str,
        instance: InstanceId,
        pending: Pending,
        grants: &Grants,
        code: Code<'_>,
    ) -> Result<Arc<Worker>, WorkerError> {
        let _one_spawn = self.inner.spawning.lock().await;
        let (pending, walls) = match self.inner.attach_existing(group, instance, pending, grants) {
            Ok(worker) => return Ok(worker),
            Err(unattached) => *unattached,
        };
        let template = template::template_for(&self.inner, group, code.file, code.metered, code.kind).await;
        let worker = process::spawn(&self.inner, group, walls, template).await?;
        worker.table().instances.insert(instance, pending);
        self.inner.workers().insert(group.to_owned(), worker.clone());
        let (pid, uid) = (worker.pid, worker.uid);
        let forked = worker
            .template
            .as_ref()
            .map_or_else(String::new, |t| format!(", forked from template {}", t.pid));
        self.inner.churn.log(group, log::Level::Info, || {
            format!("worker `{group}` started (pid {pid}, uid {uid}{forked})")
        });
        Ok(worker)
    }

    /// Resource use reported by `group`'s worker, if it runs.
    pub async fn usage(&self, group: &str) -> Result<Option<WorkerUsage>, WorkerError> {
        let Some(worker) = self.inner.workers().get(group).cloned() else {
            return Ok(None);
        };
        self.ping(worker).await.map(Some)
    }

    /// Resource use reported by the worker `pid`, if it runs: the current
    /// worker of its group or one still ending with its last instances.
    pub async fn usage_of(&self, pid: u32) -> Result<Option<WorkerUsage>, WorkerError> {
        let current = self.inner.workers().values().find(|w| w.pid == pid).cloned();
        let Some(worker) = current.or_else(|| self.inner.leaving().iter().find(|w| w.pid == pid).cloned()) else {
            return Ok(None);
        };
        self.ping(worker).await.map(Some)
    }

    /// Pings `worker` for its usage, within `workers.ipc_timeout`: one
    /// that does not answer by then is deemed hung and terminated.
    async fn ping(&self, worker: Arc<Worker>) -> Result<WorkerUsage, WorkerError> {
        let group = worker.group.as_str();
        let id = self.inner.next_ping.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = async_channel::bounded(1);
        {
            let mut table = worker.table();
            if table.ended.is_some() {
                return Err(WorkerError::Gone {
                    group: group.to_owned(),
                });
            }
            table.pings.insert(id, tx);
        }
        let ping = Outgoing {
            message: ToWorker::Ping { id },
            fd: None,
        };
        let timeout = self.inner.config.ipc_timeout;
        let answer = with_deadline(timeout, async {
            worker.outbox.send(ping).await.ok()?;
            rx.recv().await.ok()
        })
        .await;
        match answer {
            Some(Some(usage)) => Ok(usage),
            Some(None) => Err(WorkerError::Gone {
                group: group.to_owned(),
            }),
            None => {
                worker.table().pings.remove(&id);
                worker.terminate(&self.inner, "did not answer a ping");
                Err(WorkerError::Timeout {
                    group: group.to_owned(),
                    pid: worker.pid,
                    timeout,
                })
            }
        }
    }

    /// The pid of `group`'s worker, if one runs.
    pub fn pid_of(&self, group: &str) -> Option<u32> {
        self.inner.workers().get(group).map(|w| w.pid)
    }

    /// Daemon shutdown: every worker is told to exit (its instances have
    /// been cancelled by now) and killed if it has not within the grace.
    /// The daemon is stopping: workers that end from now on went with it,
    /// whatever was still registered on them.
    pub fn begin_shutdown(&self) {
        self.inner.stopping.store(true, Ordering::Relaxed);
    }

    pub async fn shutdown(&self) {
        self.begin_shutdown();
        let mut workers: Vec<Arc<Worker>> = std::mem::take(&mut *self.inner.workers()).into_values().collect();
        workers.extend(self.inner.leaving().iter().cloned());
        for worker in &workers {
            worker.table().retiring = true;
            worker.outbox.close();
        }
        let grace = self.inner.config.kill_grace;
        for worker in workers {
            let gone = with_deadline(grace, async {
                while worker.table().ended.is_none() {
                    smol::Timer::after(std::time::Duration::from_millis(5)).await;
                }
            })
            .await;
            if gone.is_none() {
                crate::sys::process::signal(worker.pid, true);
            }
        }
    }
}

impl PoolInner {
    /// Registers `instance` on the live worker of `group`; gives `pending`
    /// back, with the walls a new worker needs, if there is none (or it is
    /// on its way out, or its walls keep `grants` out). A worker whose
    /// walls are too narrow keeps its instances and ends with the last of
    /// them; the new one, walled for both, serves the group from now on.
    /// (Boxed: the pending instance carries its host services.)
    fn attach_existing(
        &self,
        group: &str,
        instance: InstanceId,
        pending: Pending,
        grants: &Grants,
    ) -> Result<Arc<Worker>, Box<(Pending, Walls)>> {
        let mut workers = self.workers();
        let mut walls = Walls::of(grants);
        if let Some(worker) = workers.get(group) {
            let mut table = worker.table();
            if !table.retiring && table.ended.is_none() {
                if worker.walls.covers(grants) {
                    table.instances.insert(instance, pending);
                    return Ok(worker.clone());
                }
                walls = worker.walls.widened(grants);
                log::info!(
                    "worker `{group}` (pid {}) is walled off from a directory or the network `{}` needs; \
                     a new worker takes the group's next starts, this one ends with its last module",
                    worker.pid,
                    pending.name
                );
            }
        }
        workers.remove(group);
        Err(Box::new((pending, walls)))
    }

    fn cgroups(&self) -> Option<&CgroupParent> {
        self.cgroups
            .get_or_init(|| match CgroupParent::detect() {
                Ok(parent) => Some(parent),
                Err(why) => {
                    log::info!("workers get no cgroup: {why}; their memory is bounded by rlimits (RLIMIT_DATA) only");
                    None
                }
            })
            .as_ref()
    }

    fn workers(&self) -> MutexGuard<'_, BTreeMap<String, Arc<Worker>>> {
        self.workers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn templates(
        &self,
    ) -> MutexGuard<'_, std::collections::HashMap<template::CodeKey, std::sync::Weak<template::Template>>> {
        self.templates.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn leaving(&self) -> MutexGuard<'_, Vec<Arc<Worker>>> {
        self.leaving.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A worker with nothing left to run is told to exit.
    fn retire_if_idle(&self, worker: &Arc<Worker>) {
        let mut workers = self.workers();
        let current = workers.get(&worker.group).is_some_and(|w| Arc::ptr_eq(w, worker));
        let mut table = worker.table();
        if table.instances.is_empty() && !table.retiring {
            table.retiring = true;
            worker.outbox.close();
            if current {
                workers.remove(&worker.group);
            }
            if table.ended.is_none() {
                self.leaving().push(worker.clone());
            }
        }
    }

    /// The process ended: every instance still on it fails with the reason.
    fn worker_ended(&self, worker: &Arc<Worker>, ended: Ended) {
        {
            let mut workers = self.workers();
            if workers.get(&worker.group).is_some_and(|w| Arc::ptr_eq(w, worker)) {
                workers.remove(&worker.group);
            }
        }
        let (group, pid) = (&worker.group, worker.pid);
        let stopping = self.stopping.load(Ordering::Relaxed);
        // Before `ended` is set: shutdown waits for it, and the daemon may
        // exit as soon as it is, so this line comes first.
        if stopping {
            log::info!("worker `{group}` (pid {pid}) {ended} as the daemon stops");
        }
        let (orphans, retiring) = {
            let mut table = worker.table();
            table.ended = Some(ended);
            table.pings.clear();
            (std::mem::take(&mut table.instances), table.retiring)
        };
        // After `ended` is set: a retirement that saw it unset has pushed
        // the worker by now (under the same table lock), and none will after.
        self.leaving().retain(|w| !Arc::ptr_eq(w, worker));
        if !stopping && retiring && orphans.is_empty() && ended == Ended::Exited(0) {
            self.churn.log(group, log::Level::Info, || {
                format!("worker `{group}` (pid {pid}) exited: no modules left")
            });
            return;
        } else if !stopping {
            let lost = orphans.len();
            self.churn.log(group, log::Level::Warn, || {
                format!("worker `{group}` (pid {pid}) {ended}; {lost} module(s) on it lost")
            });
        }
        for (_, pending) in orphans {
            let reason = format!(
                "{}: its worker (group `{}`, pid {}) {ended}",
                pending.name, worker.group, worker.pid
            );
            let _ = pending.done.try_send(Err(reason));
        }
    }
}

/// A worker's report on one layer of its sandbox: at debug level when
/// the layer is `up`, else once per daemon as a warning (`said`).
fn note_sandbox(said: &AtomicBool, group: &str, pid: u32, report: &str, up: bool) {
    if up {
        log::debug!("worker `{group}` (pid {pid}): {report}");
    } else if !said.swap(true, Ordering::Relaxed) {
        log::warn!("worker `{group}` (pid {pid}): {report}");
    }
}

/// Cancels an instance whose run was abandoned (module halted), and makes
/// sure a worker that does not confirm in time is terminated.
struct CancelOnDrop {
    pool: Arc<PoolInner>,
    worker: Arc<Worker>,
    instance: InstanceId,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let _ = self.worker.outbox.try_send(Outgoing {
            message: ToWorker::Cancel {
                instance: self.instance,
            },
            fd: None,
        });
        let pool = self.pool.clone();
        let worker = self.worker.clone();
        let instance = self.instance;
        let timeout = pool.config.ipc_timeout;
        self.pool
            .executor
            .spawn(async move {
                let confirmed = with_deadline(timeout, async {
                    while worker.table().instances.contains_key(&instance) && worker.table().ended.is_none() {
                        smol::Timer::after(std::time::Duration::from_millis(5)).await;
                    }
                })
                .await;
                if confirmed.is_none() {
                    worker.terminate(
                        &pool,
                        &format!("did not cancel an instance within {}", crate::run::humanize(timeout)),
                    );
                }
            })
            .detach();
    }
}

/// `workers.binary`, or `arcella-worker` beside the daemon's executable.
fn find_binary(config: &WorkerConfig) -> Result<PathBuf, String> {
    let path = match &config.binary {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .map_err(|e| format!("cannot locate the daemon's executable to find arcella-worker beside it: {e}"))?
            .with_file_name("arcella-worker"),
    };
    if !path.is_file() {
        return Err(format!(
            "the worker binary {} does not exist; install arcella-worker beside the daemon or set workers.binary",
            path.display()
        ));
    }
    Ok(path)
}

/// The uid/gid workers run as: `workers.user` when the daemon is root.
fn worker_user(user: &str) -> Result<Option<(u32, u32)>, String> {
    if crate::sys::user::effective_uid() != 0 {
        return Ok(None);
    }
    let found = crate::sys::user::lookup(user)
        .map_err(|e| format!("cannot look up workers.user `{user}`: {e}"))?
        .ok_or_else(|| format!("workers.user `{user}` does not exist on this system; create it or name another"))?;
    if found.0 == 0 {
        return Err(format!(
            "workers.user `{user}` is root; workers never run as root (name an unprivileged user)"
        ));
    }
    Ok(Some(found))
}
