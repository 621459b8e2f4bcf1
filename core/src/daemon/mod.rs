//! The daemon: keeps modules installed and running, managed over a local
//! Unix socket. `run` is the whole lifecycle: open the data directory, load
//! the registry, start what should run, serve the socket until SIGTERM or
//! SIGINT, then stop modules within the grace period.

pub mod audit;
pub mod config;
pub mod fleet_logs;
pub mod guests;
pub mod interface;
pub mod kvstores;
pub mod paths;
pub mod registry;
pub mod remote;
pub mod server;
pub mod supervisor;
pub mod uploads;
pub mod wiring;
pub mod workers;

use crate::artifact::ArtifactStore;
use crate::engine::EngineSet;
use crate::fingerprint::EngineFingerprint;
use config::DaemonConfig;
use registry::Registry;
use smol::stream::StreamExt;
use std::path::Path;
use std::sync::Arc;
use supervisor::Supervisor;
use uploads::Uploads;

/// Why the daemon could not start (or had to stop).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("another arcella daemon is already serving {0}; stop it first or pick another --socket")]
    AlreadyRunning(String),
    #[error(
        "another arcella daemon ({}) is using the data directory {dir}; stop it first, or give this one \
         its own --data-dir (data_dir in arcella.toml)",
        .pid.map_or_else(|| "pid unknown".to_owned(), |pid| format!("pid {pid}"))
    )]
    DataDirInUse { dir: String, pid: Option<u32> },
    #[error("cannot lock the data directory: {0}")]
    Lock(crate::sys::lock::LockError),
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    #[error(transparent)]
    Store(#[from] crate::artifact::StoreError),
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
    #[error("{0}")]
    Remote(#[from] crate::protocol::RemoteError),
    #[error(transparent)]
    Audit(#[from] audit::AuditError),
    #[error("cannot start the thread that runs in-process modules: {0}")]
    GuestThread(#[source] std::io::Error),
    #[error("cannot make the daemon non-dumpable (prctl PR_SET_DUMPABLE): {0}")]
    Undumpable(#[source] std::io::Error),
    #[error("[access] {0}")]
    SocketGroup(String),
}

/// The group the socket is given to (`[access] socket_gid` or
/// `socket_group`), checked to be one this process can give it to: a
/// daemon that is not root (the packaged unit's) only can give its own
/// groups. `arcella daemon --check` asks this too.
pub fn socket_group(access: &config::Access) -> Result<Option<u32>, DaemonError> {
    let gid = match (&access.socket_gid, &access.socket_group) {
        (Some(gid), _) => *gid,
        (None, Some(name)) => crate::sys::user::group_id(name)
            .map_err(|e| DaemonError::SocketGroup(format!("socket_group = \"{name}\": cannot look it up: {e}")))?
            .ok_or_else(|| DaemonError::SocketGroup(format!("socket_group = \"{name}\": no such group")))?,
        (None, None) => return Ok(None),
    };
    if crate::sys::user::may_give_to_group(gid) {
        return Ok(Some(gid));
    }
    let shown = match &access.socket_group {
        Some(name) => format!("socket_group = \"{name}\" (gid {gid})"),
        None => format!("socket_gid = {gid}"),
    };
    Err(DaemonError::SocketGroup(format!(
        "{shown}: this daemon runs as uid {} and is not in that group, so it cannot give the socket to it; \
         name a group the daemon's user is in (under the packaged unit: socket_group = \"arcella\"), or run \
         the daemon as root",
        crate::sys::user::effective_uid()
    )))
}

/// How long after it is ready the daemon lets go of the code its start-up
/// ran: long enough for its threads' first turns (each faults back the
/// code it touches, 64 KiB around every page), short enough to be done
/// before anyone measures an idle daemon.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(200);

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl Fn(std::io::Error) -> DaemonError + 'a {
    move |source| DaemonError::Io {
        what,
        path: path.display().to_string(),
        source,
    }
}

/// Runs the daemon until a termination signal; blocks the calling thread.
pub fn run(config: DaemonConfig) -> Result<(), DaemonError> {
    run_with(config, Box::new(|_| {}))
}

/// Called once the supervisor is up, before the socket serves: where the
/// binary attaches remote managers (the MQTT agent).
pub type OnReady = Box<dyn FnOnce(Supervisor) + Send>;

/// [`run`], with `on_ready` called once the modules are loaded.
pub fn run_with(config: DaemonConfig, on_ready: OnReady) -> Result<(), DaemonError> {
    // Before any thread starts: one malloc arena, not 64 MiB per thread.
    crate::sys::memory::limit_malloc_arenas();
    // Before any guest runs: no other process of our uid (a worker that
    // escaped wasmtime) may read or write this one's memory.
    crate::sys::process::make_undumpable().map_err(DaemonError::Undumpable)?;
    match crate::sys::files::raise_open_files_limit() {
        Ok(limit) => log::debug!("open-file limit: {limit}"),
        Err(e) => log::warn!(
            "cannot raise the open-file limit: {e}; keeping {}",
            crate::sys::files::open_files_limit()
        ),
    }
    // Two executors on two threads (guests.rs): this thread is the control
    // plane's and never polls guest code; in-process guests run on theirs.
    let guests = guests::GuestThread::start().map_err(DaemonError::GuestThread)?;
    let control = Arc::new(smol::Executor::new());
    let served = smol::block_on(control.run(serve(config, control.clone(), guests.executor(), on_ready)));
    // After shutdown: whatever is left on the guest thread is dropped.
    drop(guests);
    served
}

async fn serve(
    config: DaemonConfig,
    control: Arc<smol::Executor<'static>>,
    guests: Arc<smol::Executor<'static>>,
    on_ready: OnReady,
) -> Result<(), DaemonError> {
    crate::sys::fs::create_private_dir(&config.data_dir)
        .map_err(io_err("cannot create the data directory", &config.data_dir))?;
    // Before anything in the data directory is read or cleaned up: one
    // daemon per data directory. Held until the process ends.
    let _data_lock = crate::sys::lock::DirLock::acquire(&config.data_dir).map_err(|e| match e {
        crate::sys::lock::LockError::Held { pid, .. } => DaemonError::DataDirInUse {
            dir: config.data_dir.display().to_string(),
            pid,
        },
        other => DaemonError::Lock(other),
    })?;
    // Before any module is loaded: 4 GiB reservations under a small
    // `ulimit -v` would fail every start with an anonymous mmap error.
    config
        .engine
        .check_address_space(crate::sys::memory::address_space_limit())?;
    let engines = EngineSet::new(&config.engine)?;
    let store = ArtifactStore::open(&config.data_dir)?;
    let registry = Registry::open(&config.data_dir)?;
    let uploads = Uploads::open(&config.data_dir).map_err(io_err("cannot prepare uploads in", &config.data_dir))?;
    let grace = config.shutdown_grace;
    let socket = config.socket.clone();
    let access = config.access.clone();
    let executors = supervisor::Executors {
        control: control.clone(),
        guests,
    };
    let audit = audit::Audit::start(&config.data_dir, config.audit.max_size, &control)?;
    audit.note(
        crate::protocol::audit::Actor::Daemon,
        "daemon-started",
        None,
        Ok(()),
        &format!("arcella {}", env!("CARGO_PKG_VERSION")),
    );
    let supervisor = Supervisor::new(engines, config.clone(), store, registry, uploads, executors, audit);
    supervisor.load_registry()?;
    let (listener, bound) = bind(&socket, socket_group(&access)?)?;
    let mut signals = async_signal::Signals::new([async_signal::Signal::Term, async_signal::Signal::Int])
        .map_err(io_err("cannot watch signals for", &socket))?;
    log::info!(
        "arcella {} serving {} (data {}, engine {}, {} modules)",
        env!("CARGO_PKG_VERSION"),
        socket.display(),
        config.data_dir.display(),
        EngineFingerprint::of(&config.engine),
        supervisor.list().len()
    );
    supervisor.start_desired();
    supervisor.watch_disk_quotas();
    on_ready(supervisor.clone());
    let server = server::Server::new(supervisor.clone(), access, control);
    // The socket listens (connections queue until accepted): tell systemd
    // (Type=notify) that clients may come.
    match crate::sys::notify::ready() {
        Ok(true) => log::debug!("told the service manager READY=1"),
        Ok(false) => {}
        Err(e) => log::warn!("cannot notify the service manager that the daemon is ready: {e}"),
    }
    // Start-up is done: the code it ran (and the verbs' code the CLI
    // shares the binary with) need not stay resident. Once the threads
    // have settled into their idle waits ([`SETTLE`]), or each one's first
    // turn would fault ~64 KiB back per code page it touches.
    let settled = async {
        smol::Timer::after(SETTLE).await;
        match crate::sys::memory::keep_only_used_code() {
            Ok(bytes) => log::debug!("code pages: {} KiB advised to be kept only as used", bytes / 1024),
            Err(e) => log::debug!("cannot advise the code pages ({e}); they stay as the kernel maps them"),
        }
        std::future::pending::<()>().await;
    };
    let signal = smol::future::or(
        async {
            server::accept_loop(listener, server).await;
            None
        },
        smol::future::or(async { signals.next().await.and_then(Result::ok) }, async {
            settled.await;
            None
        }),
    )
    .await;
    log::info!(
        "{} received: stopping modules (grace {})",
        signal.map_or("signal".into(), |s| format!("{s:?}")),
        crate::run::humanize(grace)
    );
    if let Err(e) = crate::sys::notify::stopping() {
        log::debug!("cannot notify the service manager of the shutdown: {e}");
    }
    supervisor.shutdown(grace).await;
    // Only the socket this daemon bound: once the listener closed, another
    // daemon may have taken the path over (it saw a stale socket).
    if crate::sys::fs::file_id(&socket).is_ok_and(|id| id == bound) {
        let _ = std::fs::remove_file(&socket);
    } else {
        log::info!(
            "{} is no longer the socket this daemon bound; left in place",
            socket.display()
        );
    }
    log::info!("stopped");
    Ok(())
}

/// Binds the socket with owner-only (or group) permissions, replacing a
/// stale socket file but never a live daemon's; returns the listener and
/// the socket file's identity.
fn bind(path: &Path, group: Option<u32>) -> Result<(smol::net::unix::UnixListener, (u64, u64)), DaemonError> {
    // `--socket arcella.sock` names the current directory, which exists
    // (its parent is "", which does not).
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        crate::sys::fs::create_private_dir(dir).map_err(io_err("cannot create the socket directory", dir))?;
        if let Some(gid) = group {
            crate::sys::fs::set_group(dir, gid)
                .map_err(io_err("cannot give the socket directory to its group", dir))?;
            crate::sys::fs::set_mode(dir, 0o750)
                .map_err(io_err("cannot open the socket directory to its group", dir))?;
        }
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(DaemonError::AlreadyRunning(path.display().to_string()));
        }
        std::fs::remove_file(path).map_err(io_err("cannot remove the stale socket", path))?;
    }
    let listener = smol::net::unix::UnixListener::bind(path).map_err(io_err("cannot listen on", path))?;
    match group {
        Some(gid) => {
            crate::sys::fs::set_group(path, gid).map_err(io_err("cannot give the socket to its group", path))?;
            crate::sys::fs::set_mode(path, 0o660).map_err(io_err("cannot set the mode of", path))?;
        }
        None => crate::sys::fs::set_mode(path, 0o600).map_err(io_err("cannot set the mode of", path))?,
    }
    let id = crate::sys::fs::file_id(path).map_err(io_err("cannot inspect", path))?;
    Ok((listener, id))
}
