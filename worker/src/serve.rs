//! The worker's side of the IPC: handshake, then one task per instance.

use crate::WorkerError;
use crate::programs::{ProgramKey, SharedProgram, SharedPrograms};
use arcella_core::artifact::{ArtifactKind, Program};
use arcella_core::engine::EngineSet;
use arcella_core::engine::file_code::{self, FileCode};
use arcella_core::fingerprint::EngineFingerprint;
use arcella_core::host::calls::HostCalls;
use arcella_core::host::keyvalue::proxy::Proxy;
use arcella_core::host::typed::proxy::CallProxy;
use arcella_core::host::typed::value::{from_wire, to_wire};
use arcella_core::host::typed::{CallError, ProviderHandle};
use arcella_core::host::{ConfigValues, Denial, HostServices};
use arcella_core::protocol::host_call::MAX_HOST_PAYLOAD;
use arcella_core::protocol::worker::{
    self, FromWorker, InstanceId, InstanceSpec, InstanceUsage, Link, MAX_INSTANCE_USAGES, ToWorker,
    WORKER_PROTOCOL_VERSION, Walls, WorkerUsage, receive, send,
};
use arcella_core::run::{self, HealthCheck, Invocation, LogBook, Output, StopFlag, Usage, ticker::EpochTicker};
use arcella_core::sys::process::OwnResidentMemory;
use arcella_core::sys::seqpacket::SeqPacket;
use arcella_core::wasmtime::{self, Engine};

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Messages queued for the daemon; when full, guest log lines are dropped
/// (never replies or exits, which wait for room).
const OUTBOX: usize = 256;

/// Configurations kept for instances not started yet (the daemon sends
/// one just before each start, so more than a few is a confused daemon).
const MAX_PENDING_CONFIGS: usize = 16;

struct Running {
    task: smol::Task<()>,
    stop: StopFlag,
    health: Arc<HealthCheck>,
    name: String,
    /// What its `wasi:config` calls read; replaced by `ToWorker::Config`.
    config: ConfigValues,
    /// A provider's entrance, where `ToWorker::Call`s go.
    provide: Option<Arc<ProviderHandle>>,
    /// Where `ToWorker::Deliver` puts messages for its handler (it
    /// subscribes to topics); the daemon sends one at a time.
    deliveries: Option<async_channel::Sender<arcella_core::protocol::messaging::BusMessage>>,
    /// Its memory and CPU time, counted by the run; reported in `Pong`.
    usage: Arc<Usage>,
    /// The shared program it runs, released when it ends or is cancelled.
    program_key: Option<ProgramKey>,
}

#[derive(Default)]
struct Instances {
    running: HashMap<InstanceId, Running>,
    /// The programs the running instances use, one per code file.
    programs: SharedPrograms,
    ticker: Option<EpochTicker>,
    /// `ToWorker::Config` that came before its `Start`.
    configs: HashMap<InstanceId, ConfigValues>,
}

/// What a worker forked from a template has loaded already: the
/// template's engines and the one program it holds, shared with the
/// template and its other children copy-on-write.
pub struct Preloaded {
    pub engines: EngineSet,
    pub program: Program,
    /// Its code file's key, which the daemon's starts of it will match.
    pub key: Option<ProgramKey>,
    /// Its code file, open while the program is loaded.
    pub code: Arc<File>,
    /// The descriptors the program holds (the file its memory images are
    /// mapped from), which the worker must not close.
    pub held: Vec<std::os::fd::RawFd>,
}

/// What the handshake settled, for serving.
pub struct Greeted {
    engines: EngineSet,
    /// The template's program, for the first start of its code.
    preloaded: Option<(ProgramKey, SharedProgram)>,
    resident: OwnResidentMemory,
    profile: arcella_core::engine::EngineProfile,
    group: String,
}

/// The handshake, on the blocking socket and before any thread of the
/// runtime starts: the walls (Landlock) bind only the calling thread and
/// the threads it starts later, and the kernel gives a new user namespace
/// (the mount-namespace walls) only to a single-threaded process, so they
/// go up while there is one thread.
pub fn greet(link: &SeqPacket, preloaded: Option<Preloaded>) -> Result<Greeted, WorkerError> {
    // Opened before the walls go up: they forbid /proc (a mount namespace
    // hides it; the descriptor keeps reading this process's statm).
    let resident = OwnResidentMemory::open()?;
    let mut buf = worker::receive_buffer();
    let (len, code_dir) = link.recv(&mut buf)?;
    if len == 0 {
        return Err(WorkerError::NoLink);
    }
    let message: ToWorker = worker::decode(&buf[..len])
        .map_err(|e| WorkerError::NoHello(format!("a message that does not decode: {e}")))?;
    let ToWorker::Hello {
        version,
        group,
        profile,
        fingerprint,
        seccomp,
        walls,
        http_roots,
    } = message
    else {
        return Err(WorkerError::NoHello(format!("{message:?}")));
    };
    let reply = |message: &FromWorker| -> Result<(), WorkerError> {
        let bytes = worker::encode(message).map_err(std::io::Error::other)?;
        link.send(&bytes, None)?;
        Ok(())
    };
    // Before the walls: nothing here reads a file, but the roots must be in
    // place before any guest makes a request.
    if let Err(e) = arcella_core::host::http::trust_roots(&http_roots) {
        log::warn!("[http] ca_file from the daemon: {e}; https requests trust Mozilla's roots only");
    }
    let (engines, program) = match preloaded {
        Some(Preloaded {
            engines,
            program,
            key,
            code,
            ..
        }) => (
            Some(engines),
            key.map(|key| (key, SharedProgram { program, _code: code })),
        ),
        None => (None, None),
    };
    match handshake(version, &profile, &fingerprint, seccomp, &walls, code_dir, engines) {
        Ok((engines, seccomp, walls)) => {
            reply(&FromWorker::Ready {
                version: WORKER_PROTOCOL_VERSION,
                pid: std::process::id(),
                seccomp,
                walls,
            })?;
            Ok(Greeted {
                engines,
                preloaded: program,
                resident,
                profile,
                group,
            })
        }
        Err(reason) => {
            reply(&FromWorker::Refused { reason: reason.clone() })?;
            Err(WorkerError::Refused(reason))
        }
    }
}

pub async fn serve(
    link: SeqPacket,
    greeted: Greeted,
    executor: Arc<smol::Executor<'static>>,
) -> Result<(), WorkerError> {
    let link: Link = Arc::new(smol::Async::new(link)?);
    let mut buf = worker::receive_buffer();
    let Greeted {
        engines,
        preloaded,
        resident,
        profile,
        group,
    } = greeted;
    let (outbox, queued) = async_channel::bounded::<FromWorker>(OUTBOX);
    let writer = executor.spawn(write_loop(link.clone(), queued));
    let mut loaded = Instances::default();
    if let Some((key, program)) = preloaded {
        // The template's copy, for the start this worker was forked for.
        loaded.programs.offer(key, program);
    }
    let instances = Arc::new(Mutex::new(loaded));
    let calls = Arc::new(HostCalls::new(outbox.clone()));
    let context = Context {
        calls,
        engines,
        resident,
        profile,
        outbox,
        instances,
        executor,
        group,
    };
    while let Some((message, fd)) = receive(&link, &mut buf).await? {
        context.handle(message, fd).await;
    }
    // The daemon closed the link: nothing more to do for it.
    drop(context);
    writer.cancel().await;
    Ok(())
}

fn handshake(
    version: u16,
    profile: &arcella_core::engine::EngineProfile,
    fingerprint: &str,
    seccomp: bool,
    walls: &Walls,
    code_dir: Option<OwnedFd>,
    preloaded: Option<EngineSet>,
) -> Result<(EngineSet, String, String), String> {
    agree(version, profile, fingerprint)?;
    let engines = match preloaded {
        // A template's child: its engines are the ones its program was
        // loaded with, which must be the daemon's.
        Some(engines) => {
            let theirs = EngineFingerprint::of(&engines.profile(false)).to_string();
            let wanted = EngineFingerprint::of(&profile.clone().with_fuel(false)).to_string();
            if theirs != wanted {
                return Err(format!(
                    "the template this worker was forked from runs engine {theirs}, the daemon asks for {wanted}"
                ));
            }
            engines
        }
        // Both fuel variants; the metered engine is made when first needed.
        None => EngineSet::sharing_code_files(profile).map_err(|e| e.to_string())?,
    };
    // Before seccomp, which forbids the Landlock and mount system calls.
    let walled = crate::walls::install(walls, code_dir).map_err(|e| e.to_string())?;
    let report = if !seccomp {
        "seccomp is off (workers.seccomp = false)".to_owned()
    } else {
        match crate::seccomp::install(walls.network) {
            Ok(crate::seccomp::Sandboxed::Filtered { syscalls }) => {
                format!("seccomp allowlist of {syscalls} system calls installed")
            }
            Ok(crate::seccomp::Sandboxed::Unsupported { arch }) => {
                format!("seccomp is not available on {arch}: the worker relies on its process jail alone")
            }
            Err(e) => return Err(format!("cannot install the seccomp allowlist: {e}")),
        }
    };
    Ok((engines, report, walled))
}

/// Whether the daemon's protocol `version` and engine `fingerprint` are
/// this binary's; the reason to refuse if not.
pub fn agree(version: u16, profile: &arcella_core::engine::EngineProfile, fingerprint: &str) -> Result<(), String> {
    if version != WORKER_PROTOCOL_VERSION {
        return Err(format!(
            "the daemon speaks worker protocol {version}, this arcella-worker speaks {WORKER_PROTOCOL_VERSION}; \
             install the arcella-worker built with the daemon"
        ));
    }
    let ours = EngineFingerprint::of(profile).to_string();
    if ours != fingerprint {
        return Err(format!(
            "engine fingerprint {ours} differs from the daemon's {fingerprint}; \
             install the arcella-worker built with the daemon"
        ));
    }
    Ok(())
}

struct Context {
    /// Host calls waiting for the daemon (key-value).
    calls: Arc<HostCalls>,
    engines: EngineSet,
    resident: OwnResidentMemory,
    profile: arcella_core::engine::EngineProfile,
    outbox: async_channel::Sender<FromWorker>,
    instances: Arc<Mutex<Instances>>,
    executor: Arc<smol::Executor<'static>>,
    group: String,
}

impl Context {
    async fn handle(&self, message: ToWorker, fd: Option<OwnedFd>) {
        match message {
            ToWorker::Start { instance, spec } => self.start(instance, spec, fd).await,
            ToWorker::Stop { instance } => {
                if let Some(running) = lock(&self.instances).running.get(&instance) {
                    running.stop.store(true, Ordering::Relaxed);
                }
            }
            ToWorker::CheckHealth { instance } => {
                if let Some(running) = lock(&self.instances).running.get(&instance) {
                    running.health.request();
                }
            }
            ToWorker::Cancel { instance } => {
                let running = {
                    let mut instances = lock(&self.instances);
                    let running = instances.running.remove(&instance);
                    if instances.running.is_empty() {
                        instances.ticker = None;
                    }
                    running
                };
                if let Some(running) = running {
                    if let Some(handle) = &running.provide {
                        handle.close();
                    }
                    // Returns once the run (its store and program) is
                    // dropped, on this, the worker's only executor thread.
                    running.task.cancel().await;
                    if let Some(key) = &running.program_key {
                        lock(&self.instances).programs.release(key);
                    }
                    file_code::sweep();
                    let outcome = Err(format!("{}: cancelled", running.name));
                    let _ = self.outbox.send(FromWorker::Exited { instance, outcome }).await;
                }
            }
            ToWorker::Ping { id } => {
                let (instances, per_instance) = {
                    let instances = lock(&self.instances);
                    let per_instance = instances
                        .running
                        .iter()
                        .take(MAX_INSTANCE_USAGES)
                        .map(|(&instance, running)| InstanceUsage {
                            instance,
                            memory: running.usage.memory(),
                            cpu_ms: running.usage.cpu_ms(),
                        })
                        .collect();
                    (instances.running.len() as u32, per_instance)
                };
                let usage = WorkerUsage {
                    resident_bytes: self.resident.bytes().unwrap_or(0),
                    instances,
                    per_instance,
                };
                let _ = self.outbox.send(FromWorker::Pong { id, usage }).await;
            }
            ToWorker::HostReply { call, reply } => self.calls.deliver(call, reply),
            ToWorker::Call {
                instance,
                call,
                export,
                function,
                args,
                timeout_ms,
            } => {
                let handle = lock(&self.instances)
                    .running
                    .get(&instance)
                    .and_then(|r| r.provide.clone());
                let outbox = self.outbox.clone();
                let group = self.group.clone();
                self.executor
                    .spawn(async move {
                        let result = match handle {
                            Some(handle) => {
                                let deadline = std::time::Instant::now() + std::time::Duration::from_millis(timeout_ms);
                                let timeout = run::humanize(std::time::Duration::from_millis(timeout_ms));
                                handle
                                    .call(&export, &function, from_wire(args), deadline, &timeout)
                                    .await
                                    .and_then(|answer| wire_answer(&function, &answer))
                            }
                            // Gone before the call arrived (a version that
                            // failed to start, a stop racing the call): no
                            // code of it ran, so the daemon's router passes
                            // the call on to the version that runs next.
                            None => Err(CallError::Unserved {
                                provider: format!("provider instance {instance} of worker `{group}`"),
                                function: function.clone(),
                            }),
                        };
                        let _ = outbox.send(FromWorker::CallReply { call, result }).await;
                    })
                    .detach();
            }
            ToWorker::Deliver { instance, message } => {
                let sender = lock(&self.instances)
                    .running
                    .get(&instance)
                    .and_then(|r| r.deliveries.clone());
                match sender {
                    Some(sender) => {
                        if sender.try_send(message).is_err() {
                            log::warn!("worker `{}`: a message for a busy handler dropped", self.group);
                        }
                    }
                    None => {
                        let outcome = Err("no handler for it in this worker".to_owned());
                        let _ = self.outbox.send(FromWorker::Handled { instance, outcome }).await;
                    }
                }
            }
            ToWorker::Hello { .. } => log::warn!("worker `{}`: a second Hello ignored", self.group),
            ToWorker::Config { instance, values } => {
                let values = values.into_iter().collect();
                let mut instances = lock(&self.instances);
                if let Some(running) = instances.running.get(&instance) {
                    running.config.replace(values);
                } else {
                    if instances.configs.len() >= MAX_PENDING_CONFIGS {
                        instances.configs.clear();
                    }
                    instances.configs.insert(instance, ConfigValues::new(values));
                }
            }
        }
    }

    async fn start(&self, instance: InstanceId, spec: InstanceSpec, fd: Option<OwnedFd>) {
        let config = lock(&self.instances).configs.remove(&instance).unwrap_or_default();
        // The daemon gives a fuel-metered artifact a fuel limit (unbounded
        // if its deployment sets none), and refuses a limit without metering.
        let engine = self
            .engines
            .engine(spec.limits.fuel.is_some())
            .map_err(|e| format!("{}: {e}", spec.name));
        let program = match (fd, engine) {
            (_, Err(reason)) => Err(reason),
            (Some(fd), Ok(engine)) => self
                .program(engine, &spec, File::from(fd))
                .map_err(|e| format!("{}: {e}", spec.name)),
            (None, Ok(_)) => Err(format!("{}: the start request came without its code file", spec.name)),
        };
        let (program, program_key) = match program {
            Ok(program) => program,
            Err(reason) => {
                let _ = self
                    .outbox
                    .send(FromWorker::Exited {
                        instance,
                        outcome: Err(reason),
                    })
                    .await;
                return;
            }
        };
        let stop: StopFlag = Arc::new(AtomicBool::new(false));
        let outbox = self.outbox.clone();
        let relay = self.outbox.clone();
        let book = LogBook::relay(
            &spec.name,
            Arc::new(move |line| {
                let _ = relay.try_send(FromWorker::Log {
                    instance,
                    stream: line.stream,
                    text: line.text.clone(),
                });
            }),
        );
        let (health, verdicts) = HealthCheck::new();
        let relay_verdicts = self.outbox.clone();
        self.executor
            .spawn(async move {
                // Ends when the instance (and its check) is gone.
                while let Ok(verdict) = verdicts.recv().await {
                    let _ = relay_verdicts.send(FromWorker::Health { instance, verdict }).await;
                }
            })
            .detach();
        let profile = self.profile.clone().with_fuel(spec.limits.fuel.is_some());
        let instances = self.instances.clone();
        let flag = stop.clone();
        let check = health.clone();
        let name = spec.name.clone();
        let denied = self.outbox.clone();
        let (deliveries, inbox) = if spec.grants.subscribe.is_empty() {
            (None, None)
        } else {
            let (sender, messages) = async_channel::bounded(1);
            let inbox = arcella_core::host::messaging::backend::Relayed {
                messages,
                outbox: self.outbox.clone(),
                instance,
            };
            (Some(sender), Some(inbox))
        };
        let host = HostServices {
            denials: Some(Arc::new(move |denial: Denial| {
                let denial = denial.bounded();
                let _ = denied.try_send(FromWorker::Denied { instance, denial });
            })),
            config: config.clone(),
            logs: Some(book.clone()),
            // The daemon keeps the state; this worker only forwards.
            keyvalue: Some(Arc::new(Proxy {
                calls: self.calls.clone(),
                instance,
            })),
            // Calls to providers go through the daemon, which links them.
            calls: Some(Arc::new(CallProxy {
                calls: self.calls.clone(),
                instance,
            })),
            messaging: Some(Arc::new(arcella_core::host::messaging::proxy::Proxy {
                calls: self.calls.clone(),
                instance,
            })),
            inbox: inbox.map(|inbox| Arc::new(inbox) as Arc<dyn arcella_core::host::messaging::backend::Inbox>),
        };
        let provide = spec
            .provider_instances
            .map(|instances| Arc::new(ProviderHandle::new(&spec.name, instances)));
        let provide_kept = provide.clone();
        let usage = Usage::new();
        let counted = usage.clone();
        let task = self.executor.spawn(async move {
            let output = Output::Capture(book);
            let invocation = Invocation {
                name: &spec.name,
                program: &program,
                grants: &spec.grants,
                limits: &spec.limits,
                profile: &profile,
                output: &output,
                entrypoint: spec.entrypoint.as_deref(),
                stop: Some(flag),
                health: Some(check),
                host: &host,
                provide: provide.clone(),
                usage: Some(counted),
            };
            let outcome = run::run(&invocation).await.map_err(|e| e.to_string());
            {
                let mut instances = lock(&instances);
                instances.running.remove(&instance);
                if let Some(key) = &program_key {
                    instances.programs.release(key);
                }
                if instances.running.is_empty() {
                    instances.ticker = None;
                }
            }
            // The last instance of an artifact unmaps its code here, now
            // that wasmtime's drop of it (on this thread) is over.
            drop(program);
            file_code::sweep();
            let _ = outbox.send(FromWorker::Exited { instance, outcome }).await;
        });
        {
            let mut instances = lock(&self.instances);
            if instances.ticker.is_none() {
                match self.engines.ticker() {
                    Ok(ticker) => instances.ticker = Some(ticker),
                    Err(e) => log::error!("cannot start the epoch thread: {e}; timeouts will not fire"),
                }
            }
            instances.running.insert(
                instance,
                Running {
                    task,
                    stop,
                    health,
                    name,
                    config,
                    provide: provide_kept,
                    deliveries,
                    usage,
                    program_key,
                },
            );
        }
        let _ = self.outbox.send(FromWorker::Started { instance }).await;
    }
}

/// A provider's answer for the wire, refused if it cannot fit a message.
fn wire_answer(
    function: &str,
    answer: &[arcella_core::wasmtime::component::Val],
) -> Result<Vec<arcella_core::host::typed::value::WireVal>, CallError> {
    let bad = |why: String| CallError::BadValues {
        function: function.to_owned(),
        why,
    };
    let wire = to_wire(answer).map_err(|e| bad(e.to_string()))?;
    let size = postcard::experimental::serialized_size(&wire).unwrap_or(usize::MAX);
    if size > MAX_HOST_PAYLOAD {
        return Err(bad(format!(
            "the answer takes {size} bytes; a call between modules carries at most {MAX_HOST_PAYLOAD}"
        )));
    }
    Ok(wire)
}

impl Context {
    /// The program of the code file the daemon passed: the one already
    /// loaded for another instance of the same file, else loaded now and
    /// kept while instances use it (and the key to release it by).
    fn program(
        &self,
        engine: &Engine,
        spec: &InstanceSpec,
        file: File,
    ) -> Result<(Program, Option<ProgramKey>), String> {
        // Code this thread's earlier drops were done with.
        file_code::sweep();
        let key = ProgramKey::of(&file, spec.limits.fuel.is_some());
        if let Some(key) = key
            && let Some(shared) = lock(&self.instances).programs.acquire(&key)
        {
            return Ok((shared.program, Some(key)));
        }
        // Kept open with the program, so that no other file takes its inode.
        let code = file.try_clone().map(Arc::new);
        let program = load(engine, self.engines.file_code(), spec.kind, file)?;
        let key = match (key, code) {
            (Some(key), Ok(code)) => {
                let shared = SharedProgram {
                    program: program.clone(),
                    _code: code,
                };
                lock(&self.instances).programs.insert(key, shared);
                Some(key)
            }
            _ => None,
        };
        Ok((program, key))
    }
}

/// Loads the code file the daemon verified and passed, so that workers
/// running the same artifact share its pages. A module: wasmtime maps the
/// file itself. A component: wasmtime opens it by its descriptor's name
/// (`/proc/self/fd/N`, which Landlock walls allow beneath the group's code
/// directory: `artifact/group_links.rs`), so that its memory images are
/// the file's pages too; where that cannot be (no `/proc` in a mount
/// namespace), the code is mapped here ([`file_code`]) and only the memory
/// images are the worker's own.
pub fn load(
    engine: &Engine,
    file_code: Option<&FileCode>,
    kind: ArtifactKind,
    mut file: File,
) -> Result<Program, String> {
    let failed = |e: wasmtime::Error| format!("cannot load its code: {e:#}");
    if kind == ArtifactKind::Module {
        // SAFETY: the file was hashed against its sealed header when it
        // entered the daemon's store; the daemon checked the engine
        // fingerprint and the file's size and wasmtime header before
        // passing the descriptor, and the store never rewrites a code file
        // in place.
        return unsafe { wasmtime::Module::deserialize_open_file(engine, file) }
            .map(|module| Program::Module(module.into()))
            .map_err(failed);
    }
    let by_name = format!("/proc/self/fd/{}", file.as_raw_fd());
    // SAFETY: as above; the name is this process's own descriptor of it.
    match unsafe { wasmtime::component::Component::deserialize_file(engine, &by_name) } {
        Ok(component) => return Ok(Program::Component(component.into())),
        Err(e) => log::debug!("{by_name}: {e:#}; loading the code without its file's name"),
    }
    if let Some(file_code) = file_code {
        // SAFETY: as above; `engine` is one of the set that owns `file_code`.
        return unsafe { file_code.load_component(engine, &file) }.map_err(|e| e.to_string());
    }
    // Pulley bytecode: read into memory (wasmtime never says when it is
    // done with bytecode it was lent).
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read its code: {e}"))?;
    // SAFETY: as above.
    unsafe { wasmtime::component::Component::deserialize(engine, &bytes) }
        .map(|component| Program::Component(component.into()))
        .map_err(failed)
}

fn lock(instances: &Mutex<Instances>) -> std::sync::MutexGuard<'_, Instances> {
    instances.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn write_loop(link: Link, queued: async_channel::Receiver<FromWorker>) {
    while let Ok(message) = queued.recv().await {
        if let Err(e) = send(&link, &message, None).await {
            log::error!("cannot reach the daemon: {e}");
            return;
        }
    }
}
