//! One worker process: starting it jailed, the handshake, and the tasks
//! that carry messages to and from it.

use super::{PoolInner, WorkerError};
use crate::protocol::LogStream;
use crate::protocol::host_call::{HostReply, HostRequest, MAX_CALLS_IN_FLIGHT};
use crate::protocol::worker::{
    FromWorker, InstanceId, Link, ToWorker, WORKER_PROTOCOL_VERSION, Walls, WorkerUsage, receive, receive_buffer, send,
};
use crate::run::LogBook;
use crate::sys::process::{self as proc, Ended, Jail};
use crate::sys::seqpacket::SeqPacket;
use smol::io::AsyncReadExt;
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// A message for the worker, with the descriptor it carries.
pub(super) struct Outgoing {
    pub message: ToWorker,
    pub fd: Option<OwnedFd>,
}

/// Where a running instance's news goes.
pub(super) struct Pending {
    pub name: String,
    pub book: LogBook,
    pub health: Option<std::sync::Arc<crate::run::HealthCheck>>,
    /// The daemon-side services of this instance (denials, key-value, …).
    pub host: crate::host::HostServices,
    pub started: Option<async_channel::Sender<()>>,
    pub done: async_channel::Sender<Result<i32, String>>,
    /// Where the worker's `Handled` for this instance goes (deliver.rs).
    pub handled: Option<async_channel::Sender<Result<(), String>>>,
}

#[derive(Default)]
pub(super) struct Table {
    pub instances: HashMap<InstanceId, Pending>,
    pub pings: HashMap<u32, async_channel::Sender<WorkerUsage>>,
    /// Set when the worker is told to go (idle, or daemon shutdown); no
    /// new instance may attach.
    pub retiring: bool,
    /// Set once the process has ended.
    pub ended: Option<Ended>,
    /// Host calls being served for this worker (at most
    /// [`MAX_CALLS_IN_FLIGHT`]: a worker cannot queue unbounded work here).
    pub calls_in_flight: usize,
    /// Typed calls sent to providers in this worker, waiting for replies.
    pub calls_out: HashMap<
        u32,
        async_channel::Sender<Result<Vec<crate::host::typed::value::WireVal>, crate::host::typed::CallError>>,
    >,
    pub next_call_out: u32,
}

/// A live worker process.
pub(super) struct Worker {
    pub group: String,
    pub pid: u32,
    /// Who it runs as.
    pub uid: u32,
    /// The only host directories it can open.
    pub walls: Walls,
    pub outbox: async_channel::Sender<Outgoing>,
    pub table: Mutex<Table>,
    /// The template it was forked from, kept running while it lives.
    pub template: Option<Arc<super::template::Template>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("group", &self.group)
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

/// Messages queued for one worker before senders wait.
const OUTBOX: usize = 64;

impl Worker {
    pub fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks the process to go: SIGTERM now, SIGKILL after `grace` if it
    /// is still there. Its reader notices the end and reports it.
    pub fn terminate(self: &Arc<Self>, pool: &PoolInner, why: &str) {
        if self.table().ended.is_some() {
            return;
        }
        log::warn!("worker `{}` (pid {}) {why}; terminating it", self.group, self.pid);
        proc::signal(self.pid, false);
        let worker = self.clone();
        let grace = pool.config.kill_grace;
        pool.executor
            .spawn(async move {
                smol::Timer::after(grace).await;
                if worker.table().ended.is_none() {
                    log::warn!(
                        "worker `{}` (pid {}) ignored SIGTERM for {}; killing it",
                        worker.group,
                        worker.pid,
                        crate::run::humanize(grace)
                    );
                    proc::signal(worker.pid, true);
                }
            })
            .detach();
    }
}

/// Starts a worker for `group` and completes the handshake.
pub(super) async fn spawn(
    pool: &Arc<PoolInner>,
    group: &str,
    mut walls: Walls,
    template: Option<Arc<super::template::Template>>,
) -> Result<Arc<Worker>, WorkerError> {
    walls.kind = pool.config.filesystem_walls;
    let spawn_err = |source| WorkerError::Spawn {
        group: group.to_owned(),
        source,
    };
    let binary = pool.binary.clone().map_err(WorkerError::Binary)?;
    let user = match &pool.uids {
        Some(book) => {
            let uid = book.uid_of(group)?;
            Some((uid, uid))
        }
        None => pool.user.clone().map_err(WorkerError::User)?,
    };
    let limits = pool.config.limits_for(group);
    let cgroup_procs = pool.cgroups().and_then(|parent| {
        parent
            .worker_group(group, limits.memory, limits.pids)
            .map_err(|e| log::warn!("worker `{group}`: no cgroup ({e}); rlimits only"))
            .ok()
    });
    let jail = Jail {
        user,
        data_limit: Some(limits.memory),
        open_files: limits.open_files,
        cgroup_procs,
    };
    // Forked from the template that holds its code, if there is one;
    // else (or if the template fails) spawned and exec'd.
    let forked = match &template {
        Some(held) => {
            let (ours, theirs) = SeqPacket::pair().map_err(spawn_err)?;
            match held.fork(pool, group, &jail, theirs.into_owned_fd()).await {
                Ok((pid, stderr)) => Some((ours, pid, stderr)),
                Err(e) => {
                    log::warn!(
                        "worker `{group}`: the template (pid {}) could not fork it ({e}); starting it afresh",
                        held.pid
                    );
                    super::template::forget(pool, held);
                    None
                }
            }
        }
        None => None,
    };
    let (ours, pid, stderr, template) = match forked {
        Some((ours, pid, stderr)) => (ours, pid, Some(stderr), template),
        None => {
            let (ours, theirs) = SeqPacket::pair().map_err(spawn_err)?;
            let mut child =
                proc::spawn_jailed(&binary, &["--group", group], theirs.into_owned_fd(), &jail).map_err(spawn_err)?;
            (ours, child.id(), child.stderr.take().map(OwnedFd::from), None)
        }
    };
    let link: Link = Arc::new(smol::Async::new(ours).map_err(spawn_err)?);
    let hello = ToWorker::Hello {
        version: WORKER_PROTOCOL_VERSION,
        group: group.to_owned(),
        profile: pool.profile.clone(),
        fingerprint: pool.fingerprint.clone(),
        seccomp: pool.config.seccomp,
        walls: walls.clone(),
        http_roots: pool.http_roots.clone(),
    };
    // The group's code directory, which its walls let it read beneath.
    let code_dir = pool.code_links.as_ref().and_then(|links| {
        links
            .group_dir(group)
            .and_then(|dir| crate::sys::fs::open_dir_path(&dir))
            .map_err(|e| {
                log::warn!("worker `{group}`: no code directory ({e}); its components' memory images are its own copy")
            })
            .ok()
    });
    let handshake = async {
        send(&link, &hello, code_dir).await?;
        let reply = receive::<FromWorker>(&link, &mut receive_buffer()).await?;
        Ok::<_, std::io::Error>(reply.map(|(message, _)| message))
    };
    let reply = with_deadline(pool.config.ipc_timeout, handshake).await;
    let failed = |reason: String| {
        proc::signal(pid, true);
        let _ = reap_blocking(pid);
        WorkerError::Refused {
            group: group.to_owned(),
            reason,
        }
    };
    let (seccomp, walls_report) = match reply {
        Some(Ok(Some(FromWorker::Ready {
            version,
            seccomp,
            walls,
            ..
        }))) if version == WORKER_PROTOCOL_VERSION => (seccomp, walls),
        Some(Ok(Some(FromWorker::Refused { reason }))) => return Err(failed(reason)),
        Some(Ok(Some(other))) => return Err(failed(format!("it opened with {other:?}"))),
        Some(Ok(None)) => {
            let ended = reap_blocking(pid).map_or_else(|e| e.to_string(), |e| e.to_string());
            let detail = match stderr {
                Some(pipe) => first_line(pipe).await,
                None => String::new(),
            };
            return Err(WorkerError::Refused {
                group: group.to_owned(),
                reason: format!("it {ended} before the handshake{detail}"),
            });
        }
        Some(Err(e)) => return Err(failed(format!("the handshake failed: {e}"))),
        None => {
            return Err(failed(format!(
                "it did not finish the handshake within {}",
                crate::run::humanize(pool.config.ipc_timeout)
            )));
        }
    };
    let seccomp_up = seccomp.starts_with("seccomp allowlist");
    super::note_sandbox(&pool.said_seccomp, group, pid, &seccomp, seccomp_up);
    // "Landlock walls up: …" or "mount-namespace walls up: …"; anything
    // else says why there are none.
    let walls_up = walls_report.contains("walls up");
    super::note_sandbox(&pool.said_walls, group, pid, &walls_report, walls_up);
    let (outbox, queued) = async_channel::bounded(OUTBOX);
    let worker = Arc::new(Worker {
        group: group.to_owned(),
        pid,
        uid: user.map_or_else(crate::sys::user::effective_uid, |(uid, _)| uid),
        walls,
        outbox,
        table: Mutex::new(Table::default()),
        template,
    });
    pool.executor.spawn(write_loop(link.clone(), queued)).detach();
    pool.executor
        .spawn(read_loop(pool.clone(), worker.clone(), link))
        .detach();
    if let Some(pipe) = stderr {
        pool.executor.spawn(relay_stderr(group.to_owned(), pid, pipe)).detach();
    }
    Ok(worker)
}

async fn write_loop(link: Link, queued: async_channel::Receiver<Outgoing>) {
    while let Ok(Outgoing { message, fd }) = queued.recv().await {
        if let Err(e) = send(&link, &message, fd).await {
            log::debug!("worker link closed while sending: {e}");
            return;
        }
    }
    // The outbox closed: the worker reads end of stream and exits.
    let _ = link.get_ref().close_write();
}

async fn read_loop(pool: Arc<PoolInner>, worker: Arc<Worker>, link: Link) {
    let mut buf = receive_buffer();
    let why = loop {
        match receive::<FromWorker>(&link, &mut buf).await {
            Ok(Some((message, _))) => dispatch(&pool, &worker, message),
            Ok(None) => break None,
            Err(e) => break Some(e.to_string()),
        }
    };
    if let Some(why) = &why {
        // A worker that sends garbage is not trusted with anything more.
        log::error!("worker `{}` (pid {}): {why}", worker.group, worker.pid);
        proc::signal(worker.pid, true);
    }
    drop(link);
    let ended = reap(&pool, worker.pid).await;
    pool.worker_ended(&worker, ended);
}

fn dispatch(pool: &Arc<PoolInner>, worker: &Arc<Worker>, message: FromWorker) {
    let mut table = worker.table();
    match message {
        FromWorker::Started { instance } => {
            if let Some(started) = table.instances.get_mut(&instance).and_then(|p| p.started.take()) {
                let _ = started.try_send(());
            }
        }
        FromWorker::Exited { instance, outcome } => {
            if let Some(pending) = table.instances.remove(&instance) {
                let _ = pending.done.try_send(outcome);
            }
            if table.instances.is_empty() {
                drop(table);
                pool.retire_if_idle(worker);
            }
        }
        FromWorker::Log { instance, stream, text } => {
            if let Some(pending) = table.instances.get(&instance) {
                let stream = if stream == LogStream::Daemon {
                    LogStream::Stderr
                } else {
                    stream
                };
                pending.book.record(stream, &text);
            }
        }
        FromWorker::Health { instance, verdict } => {
            if let Some(check) = table.instances.get(&instance).and_then(|p| p.health.as_ref()) {
                check.deliver(verdict);
            }
        }
        FromWorker::Denied { instance, denial } => {
            if let Some(pending) = table.instances.get(&instance) {
                pending.host.deny(denial.capability, denial.bounded().detail);
            }
        }
        FromWorker::CallReply { call, result } => {
            if let Some(waiting) = table.calls_out.remove(&call) {
                let _ = waiting.try_send(result);
            }
        }
        FromWorker::Handled { instance, outcome } => {
            if let Some(handled) = table.instances.get(&instance).and_then(|p| p.handled.as_ref()) {
                // Bounded(1) and one message in flight: a second one is a
                // confused (or hostile) worker, and is dropped.
                let _ = handled.try_send(outcome);
            }
        }
        FromWorker::Pong { id, usage } => {
            if let Some(reply) = table.pings.remove(&id) {
                let _ = reply.try_send(usage);
            }
        }
        FromWorker::HostCall {
            instance,
            call,
            request,
        } => {
            let host = table.instances.get(&instance).map(|p| p.host.clone());
            let busy = table.calls_in_flight >= MAX_CALLS_IN_FLIGHT;
            if !busy {
                table.calls_in_flight += 1;
            }
            drop(table);
            serve_host_call(pool, worker, call, host.filter(|_| !busy), busy, request);
        }
        FromWorker::Ready { .. } | FromWorker::Refused { .. } => {
            log::warn!(
                "worker `{}` (pid {}) repeated its handshake; ignored",
                worker.group,
                worker.pid
            );
        }
    }
}

/// Serves one host call off the read loop (the daemon-side backend runs
/// its blocking work on the blocking pool) and queues the reply.
fn serve_host_call(
    pool: &Arc<PoolInner>,
    worker: &Arc<Worker>,
    call: u32,
    host: Option<crate::host::HostServices>,
    busy: bool,
    request: HostRequest,
) {
    let worker = worker.clone();
    pool.executor
        .spawn(async move {
            let reply = match host {
                Some(host) => host.serve(request).await,
                None if busy => HostReply::Refused(format!(
                    "more than {MAX_CALLS_IN_FLIGHT} host calls in flight from this worker"
                )),
                None => HostReply::Refused("no such instance in this worker".to_owned()),
            };
            if !busy {
                worker.table().calls_in_flight -= 1;
            }
            let message = ToWorker::HostReply { call, reply };
            let _ = worker.outbox.send(Outgoing { message, fd: None }).await;
        })
        .detach();
}

/// Waits for the process to be reapable (it has closed its end, so it is
/// exiting); kills it if it lingers.
async fn reap(pool: &PoolInner, pid: u32) -> Ended {
    let mut waited = Duration::ZERO;
    let mut step = Duration::from_millis(1);
    let mut killed = false;
    loop {
        match proc::try_reap(pid) {
            Ok(Some(ended)) => return ended,
            Ok(None) => {}
            Err(e) => {
                log::error!("cannot reap worker pid {pid}: {e}");
                return Ended::Exited(-1);
            }
        }
        if waited >= pool.config.kill_grace && !killed {
            proc::signal(pid, true);
            killed = true;
        }
        smol::Timer::after(step).await;
        waited += step;
        step = (step * 2).min(Duration::from_millis(100));
    }
}

fn reap_blocking(pid: u32) -> std::io::Result<Ended> {
    loop {
        if let Some(ended) = proc::try_reap(pid)? {
            return Ok(ended);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Logs the worker's own stderr (its runtime's messages, never guest
/// output), line by line, bounded.
pub(super) async fn relay_stderr(group: String, pid: u32, pipe: OwnedFd) {
    let Ok(mut pipe) = smol::Async::new(std::fs::File::from(pipe)) else {
        return;
    };
    let mut line = Vec::new();
    let mut buf = [0u8; 512];
    while let Ok(n) = pipe.read(&mut buf).await {
        if n == 0 {
            break;
        }
        for &byte in &buf[..n] {
            if byte == b'\n' || line.len() >= crate::run::capture::LINE_MAX {
                log::warn!("worker `{group}` (pid {pid}): {}", String::from_utf8_lossy(&line));
                line.clear();
            }
            if byte != b'\n' {
                line.push(byte);
            }
        }
    }
    if !line.is_empty() {
        log::warn!("worker `{group}` (pid {pid}): {}", String::from_utf8_lossy(&line));
    }
}

/// The first line a worker that died at start wrote (why it died).
async fn first_line(pipe: OwnedFd) -> String {
    let Ok(mut pipe) = smol::Async::new(std::fs::File::from(pipe)) else {
        return String::new();
    };
    let mut buf = vec![0u8; 1024];
    let n = with_deadline(Duration::from_millis(200), pipe.read(&mut buf))
        .await
        .and_then(Result::ok)
        .unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]);
    match text.lines().next() {
        Some(line) if !line.is_empty() => format!(": {line}"),
        _ => String::new(),
    }
}

/// `Some(output)` if `future` finishes within `limit`.
pub(super) async fn with_deadline<T>(limit: Duration, future: impl std::future::Future<Output = T>) -> Option<T> {
    smol::future::or(async { Some(future.await) }, async {
        smol::Timer::after(limit).await;
        None
    })
    .await
}
