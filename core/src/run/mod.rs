//! Runs a WASI command to completion: a preview-1 module's `_start` or a
//! preview-2 component's `wasi:cli/run`, under [`Limits`] and [`Grants`].
//!
//! Guests run as wasmtime async calls, in the engine their program was
//! loaded into (which says whether fuel is metered). The epoch callback makes
//! a CPU-bound guest yield every [`ticker::EPOCH_PERIOD`] and stops it at
//! its deadline; a guest blocked inside a host call is stopped by racing a
//! timer against it. wasmtime-wasi needs a tokio context for its host
//! calls: in the daemon and workers it comes from `async_compat::Compat`
//! (one tokio thread); [`run_blocking`] (`arcella run`) drives a
//! current-thread tokio runtime on the calling thread instead, so a run
//! without a timeout starts no helper thread at all.

pub mod capture;
pub mod grants;
#[cfg(feature = "http")]
mod http;
pub mod limits;
mod messaging;
mod owned;
pub mod preview1;
pub mod preview2;
mod provider;
pub mod ticker;
pub mod usage;

pub use capture::{LogBook, LogSink};
pub use grants::{DirGrant, GrantError, Grants, parse_env};
pub use limits::{
    HandleLimitExceeded, HostOutOfMemory, Limits, MAX_HOST_HANDLES, MemoryLimitExceeded, TableLimitExceeded,
};
pub use usage::Usage;

use crate::artifact::Program;
use crate::engine::EngineProfile;
use crate::host::{ComponentState, HostServices};
use limits::GuestLimiter;
use preview1::{P1State, PreparedModule};
pub(crate) use preview2::PreparedComponent;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, Trap, UpdateDeadline};
use wasmtime_wasi::p2::bindings::Command;
use wasmtime_wasi::{I32Exit, WasiView};

/// Why a guest did not finish with an exit code of its own.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{module}: fuel exhausted: the guest used all {fuel} units of its fuel budget")]
    Fuel { module: String, fuel: u64 },
    #[error("{module}: {cause}")]
    Memory { module: String, cause: MemoryLimitExceeded },
    #[error("{module}: {cause}")]
    HostMemory { module: String, cause: HostOutOfMemory },
    #[error("{module}: {cause}")]
    Tables { module: String, cause: TableLimitExceeded },
    #[error("{module}: {cause}")]
    Handles { module: String, cause: HandleLimitExceeded },
    #[error("{module}: stack overflow: the guest exceeded the {max_stack}-byte wasm stack limit")]
    Stack { module: String, max_stack: usize },
    #[error("{module}: timeout: the guest ran longer than {}", humanize(*.timeout))]
    Timeout { module: String, timeout: Duration },
    #[error("{module}: wasm trap: {message}")]
    Trap { module: String, message: String },
    #[error("{module}: not a WASI command: {reason}")]
    NotACommand { module: String, reason: String },
    #[error("{module}: cannot link: {reason}")]
    Link { module: String, reason: String },
    /// A typed call to a provider failed; the consumer traps with it.
    #[error("{module}: wasm trap: a call to a provider failed: {cause}")]
    Call {
        module: String,
        cause: crate::host::typed::CallError,
    },
    #[error("{module}: {source}")]
    Grant {
        module: String,
        #[source]
        source: GrantError,
    },
    #[error("{module}: cannot start the guest: {message}")]
    Setup { module: String, message: String },
    #[error(
        "{module}: a fuel limit ({fuel}) needs an artifact with fuel metering, and this one was compiled \
         without it: recompile its source with `arcella compile SOURCE.wasm -o OUT.cwasm --fuel` (plus the \
         --target or --board you used), or drop the fuel limit"
    )]
    NotMetered { module: String, fuel: u64 },
    /// Reported by (or about) the worker process that ran the guest; the
    /// message names the module.
    #[error("{message}")]
    Remote { message: String },
}

/// Formats a duration the way a person would write it.
pub fn humanize(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// One run of a command.
#[derive(Debug)]
pub struct Invocation<'a> {
    /// Shown in every message about this guest.
    pub name: &'a str,
    pub program: &'a Program,
    pub grants: &'a Grants,
    pub limits: &'a Limits,
    /// The profile `engine` was built from.
    pub profile: &'a EngineProfile,
    /// Where the guest's stdout and stderr go.
    pub output: &'a Output,
    /// The export a core module is started through (default `_start`).
    /// Components always start through `wasi:cli/run`.
    pub entrypoint: Option<&'a str>,
    /// Raised when the guest should finish (see [`SHUTDOWN_IMPORT`]).
    pub stop: Option<StopFlag>,
    /// Asks a core module for its health (see [`HEALTH_EXPORT`]).
    pub health: Option<Arc<HealthCheck>>,
    /// The backends of the host interfaces (key-value, config, …) and
    /// where denials go.
    pub host: &'a HostServices,
    /// For a provider (`kind = "provider"`): where its calls arrive; the
    /// run serves them until stopped instead of calling `wasi:cli/run`.
    pub provide: Option<std::sync::Arc<crate::host::typed::ProviderHandle>>,
    /// Where the run counts the linear memory its stores hold and the
    /// time its code runs (usage.rs), for whoever started it to read.
    pub usage: Option<Arc<Usage>>,
}

/// A core module's optional health export: `(func (export
/// "arcella_health") (result i32))`, 0 when healthy. The host cannot call
/// into a guest busy in `_start`, so it calls the export re-entrantly from
/// the guest's next call to the shutdown import (which a module with this
/// export must import; install checks it).
pub const HEALTH_EXPORT: &str = "arcella_health";

/// Where a [`HealthCheck`]'s verdicts arrive: `Err` says what is wrong.
pub type HealthVerdicts = async_channel::Receiver<Result<(), String>>;

/// One pending question "are you healthy?" to a running core module.
#[derive(Debug)]
pub struct HealthCheck {
    requested: AtomicBool,
    asked: (async_channel::Sender<()>, async_channel::Receiver<()>),
    verdicts: async_channel::Sender<Result<(), String>>,
}

impl HealthCheck {
    /// A check and where its verdicts arrive.
    pub fn new() -> (Arc<Self>, HealthVerdicts) {
        let (verdicts, arrive) = async_channel::bounded(1);
        let check = Self {
            requested: AtomicBool::new(false),
            asked: async_channel::bounded(1),
            verdicts,
        };
        (Arc::new(check), arrive)
    }

    /// Asks for a verdict at the guest's next shutdown-import call.
    pub fn request(&self) {
        self.requested.store(true, Ordering::Relaxed);
        let _ = self.asked.0.try_send(());
    }

    /// Resolves when [`HealthCheck::request`] is called (for whoever must
    /// pass the question on, such as the daemon's side of a worker).
    pub async fn asked(&self) {
        let _ = self.asked.1.recv().await;
    }

    /// Hands in a verdict obtained elsewhere (a worker's).
    pub fn deliver(&self, verdict: Result<(), String>) {
        let _ = self.verdicts.try_send(verdict);
    }
}

/// Calls the guest's health export, if asked; `Err` names what is wrong.
async fn answer_health(caller: &mut wasmtime::Caller<'_, P1State>) {
    let Some(check) = caller.data().health.clone() else {
        return;
    };
    if !check.requested.swap(false, Ordering::Relaxed) {
        return;
    }
    let export = caller.get_export(HEALTH_EXPORT).and_then(wasmtime::Extern::into_func);
    let verdict = match export.map(|f| f.typed::<(), i32>(&*caller)) {
        None => Ok(()),
        Some(Err(e)) => Err(format!("its `{HEALTH_EXPORT}` export has the wrong type: {e}")),
        Some(Ok(health)) => match health.call_async(&mut *caller, ()).await {
            Ok(0) => Ok(()),
            Ok(code) => Err(format!(
                "its health export `{HEALTH_EXPORT}` returned {code} (unhealthy)"
            )),
            Err(e) => Err(format!("its health export `{HEALTH_EXPORT}` failed: {e:#}")),
        },
    };
    let _ = check.verdicts.try_send(verdict);
}

/// Raised by the daemon when an instance should stop.
pub type StopFlag = Arc<AtomicBool>;

/// The import through which a core module asks whether it should stop:
/// `(import "arcella" "shutdown_requested" (func (result i32)))`, 1 once
/// the daemon wants the instance to finish (stop, or daemon shutdown). A
/// service polls it between units of work and returns from `_start`; one
/// that does not is stopped anyway when the grace period ends.
pub const SHUTDOWN_IMPORT: (&str, &str) = ("arcella", "shutdown_requested");

/// The same call for components: `shutdown-requested: func() -> bool` in
/// this interface (wit/deps/service/lifecycle.wit).
pub const SHUTDOWN_INTERFACE: &str = crate::host::lifecycle::INTERFACE;

/// Whether `program` imports the shutdown call ([`SHUTDOWN_IMPORT`] or
/// [`SHUTDOWN_INTERFACE`]): only then is a stop worth a grace period.
pub fn hears_shutdown(program: &Program) -> bool {
    let (module, function) = SHUTDOWN_IMPORT;
    match program {
        Program::Module(m) => m.imports().any(|i| i.module() == module && i.name() == function),
        Program::Component(c) => c
            .component_type()
            .imports(c.engine())
            .any(|(name, _)| name == SHUTDOWN_INTERFACE),
    }
}

/// Where a guest's output goes.
#[derive(Debug, Clone)]
pub enum Output {
    /// The process's own stdin/stdout/stderr (`arcella run`).
    Inherit,
    /// Lines into a module's log book (the daemon); no stdin.
    Capture(LogBook),
}

impl Output {
    fn sinks(&self) -> Option<(LogSink, LogSink)> {
        match self {
            Self::Inherit => None,
            Self::Capture(book) => Some((
                book.sink(crate::protocol::LogStream::Stdout),
                book.sink(crate::protocol::LogStream::Stderr),
            )),
        }
    }
}

/// Runs a command and returns its exit code, blocking this thread, which
/// also drives wasmtime-wasi's tokio context (a current-thread runtime).
/// Only a timeout starts a thread: the epoch ticker.
pub fn run_blocking(command: &Invocation<'_>) -> Result<i32, RunError> {
    let setup = |message: String| RunError::Setup {
        module: command.name.to_owned(),
        message,
    };
    // A deadline needs the epoch to advance: the run's, or each HTTP request's.
    let _ticker = match command
        .limits
        .timeout
        .or(command.grants.http.map(|h| h.request_timeout))
    {
        Some(_) => Some(
            ticker::EpochTicker::start(command.program.engine())
                .map_err(|e| setup(format!("cannot start the epoch thread: {e}")))?,
        ),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| setup(format!("cannot make the tokio context wasmtime-wasi needs: {e}")))?;
    runtime.block_on(run(command))
}

/// Runs a command to completion on the current executor, in the engine its
/// program was loaded into.
///
/// Needs a tokio context for wasmtime-wasi (wrap in `async_compat::Compat`)
/// and, if `limits.timeout` is set, an [`ticker::EpochTicker`] on that
/// engine.
pub async fn run(command: &Invocation<'_>) -> Result<i32, RunError> {
    let engine = command.program.engine();
    // A message handler's timeout bounds each message (messaging.rs).
    let deadline = match command.host.inbox {
        Some(_) => None,
        None => command.limits.timeout.map(|t| Instant::now() + t),
    };
    let sinks = command.output.sinks();
    // Everything of the guest (its instance, a provider's pool, HTTP
    // handlers, message handlers) runs inside this one future: the epoch
    // ticks while it is polled, and not while it waits (ticker.rs), and
    // the time its polls take is the instance's CPU time (usage.rs).
    let guest = ticker::ticking(usage::timed(command.usage.clone(), async {
        match command.program {
            Program::Module(module) => run_module(engine, module, command, sinks.clone(), deadline).await,
            Program::Component(component) => run_component(engine, component, command, sinks.clone(), deadline).await,
        }
    }));
    let result = match deadline {
        Some(deadline) => {
            // Catches a guest blocked in a host call, where no epoch check
            // runs. A tokio timer: the tokio context wasmtime-wasi needs is
            // there anyway, so `arcella run --timeout` needs no async-io
            // thread for it.
            let timer = async {
                tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await;
                Err(GuestFailure::TimedOut)
            };
            smol::future::or(guest, timer).await
        }
        None => guest.await,
    };
    if let Some((stdout, stderr)) = &sinks {
        stdout.flush_partial();
        stderr.flush_partial();
    }
    result.map_err(|failure| failure.explain(command))
}

/// What went wrong, before it is given the module's name.
enum GuestFailure {
    TimedOut,
    NotMetered(u64),
    Wasmtime(wasmtime::Error),
    Grant(GrantError),
    NotACommand(String),
    Link(String),
    /// Serving HTTP could not begin (the listen address).
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    Serve(String),
}

impl From<wasmtime::Error> for GuestFailure {
    fn from(e: wasmtime::Error) -> Self {
        Self::Wasmtime(e)
    }
}

impl From<GrantError> for GuestFailure {
    fn from(e: GrantError) -> Self {
        Self::Grant(e)
    }
}

impl GuestFailure {
    fn explain(self, command: &Invocation<'_>) -> RunError {
        let module = command.name.to_owned();
        let err = match self {
            Self::TimedOut => return timeout(command),
            Self::NotMetered(fuel) => return RunError::NotMetered { module, fuel },
            Self::Grant(source) => return RunError::Grant { module, source },
            Self::NotACommand(reason) => return RunError::NotACommand { module, reason },
            Self::Link(reason) => return RunError::Link { module, reason },
            Self::Serve(message) => return RunError::Setup { module, message },
            Self::Wasmtime(err) => err,
        };
        if let Some(cause) = err.downcast_ref::<crate::host::typed::CallError>() {
            return RunError::Call {
                module,
                cause: cause.clone(),
            };
        }
        if let Some(cause) = err.downcast_ref::<MemoryLimitExceeded>() {
            return RunError::Memory { module, cause: *cause };
        }
        if let Some(cause) = err.downcast_ref::<TableLimitExceeded>() {
            return RunError::Tables { module, cause: *cause };
        }
        if let Some(wasmtime::component::ResourceTableError::Full) = err.downcast_ref() {
            return RunError::Handles {
                module,
                cause: HandleLimitExceeded {
                    limit: MAX_HOST_HANDLES,
                },
            };
        }
        if let Some(cause) = err.downcast_ref::<HostOutOfMemory>() {
            return RunError::HostMemory {
                module,
                cause: cause.clone(),
            };
        }
        match err.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => RunError::Fuel {
                module,
                fuel: command.limits.fuel.unwrap_or(u64::MAX),
            },
            Some(Trap::StackOverflow) => RunError::Stack {
                module,
                max_stack: command.profile.max_wasm_stack,
            },
            Some(Trap::Interrupt) => timeout(command),
            Some(_) => RunError::Trap {
                module,
                message: format!("{err:?}"),
            },
            None => RunError::Setup {
                module,
                message: format!("{err:#}"),
            },
        }
    }
}

fn timeout(command: &Invocation<'_>) -> RunError {
    RunError::Timeout {
        module: command.name.to_owned(),
        timeout: command.limits.timeout.unwrap_or_default(),
    }
}

/// The exit code of a guest that returned or called `exit`, or the failure.
fn exit_code(result: Result<(), wasmtime::Error>) -> Result<i32, GuestFailure> {
    match result {
        Ok(()) => Ok(0),
        Err(err) => match err.downcast_ref::<I32Exit>() {
            Some(exit) => Ok(exit.0),
            None => Err(err.into()),
        },
    }
}

/// Applies fuel and the epoch deadline to a fresh store.
fn prepare<T: 'static>(
    store: &mut Store<T>,
    command: &Invocation<'_>,
    deadline: Option<Instant>,
) -> Result<(), GuestFailure> {
    let limits = command.limits;
    // The engine meters fuel exactly when the store has a fuel gauge.
    let metered = store.get_fuel().is_ok();
    match (metered, limits.fuel) {
        (true, fuel) => store.set_fuel(fuel.unwrap_or(u64::MAX))?,
        (false, Some(fuel)) => return Err(GuestFailure::NotMetered(fuel)),
        (false, None) => {}
    }
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| match deadline {
        Some(deadline) if Instant::now() >= deadline => Ok(UpdateDeadline::Interrupt),
        _ => Ok(UpdateDeadline::Yield(1)),
    });
    Ok(())
}

async fn run_module(
    engine: &Engine,
    module: &PreparedModule,
    command: &Invocation<'_>,
    sinks: Option<(LogSink, LogSink)>,
    deadline: Option<Instant>,
) -> Result<i32, GuestFailure> {
    let entrypoint = command.entrypoint.unwrap_or("_start");
    if module.get_export(entrypoint).is_none() {
        return Err(GuestFailure::NotACommand(format!(
            "the module exports no `{entrypoint}` function (is it a reactor or a library?)"
        )));
    }
    let mut wasi = command.grants.wasi_builder(sinks, command.host)?.build_p1();
    wasi.ctx().table.set_max_capacity(MAX_HOST_HANDLES);
    let mut store = Store::new(
        engine,
        P1State {
            wasi,
            limiter: GuestLimiter::new(command.limits.max_memory, command.usage.clone()),
            stop: command.stop.clone(),
            health: command.health.clone(),
        },
    );
    store.limiter(|state| &mut state.limiter);
    prepare(&mut store, command, deadline)?;
    let pre = module.instance_pre()?;
    let instance = pre.instantiate_async(&mut store).await?;
    let start = instance.get_typed_func::<(), ()>(&mut store, entrypoint).map_err(|e| {
        GuestFailure::NotACommand(format!(
            "`{entrypoint}` is not a function taking and returning nothing: {e:#}"
        ))
    })?;
    exit_code(start.call_async(&mut store, ()).await)
}

async fn run_component(
    engine: &Engine,
    component: &PreparedComponent,
    command: &Invocation<'_>,
    sinks: Option<(LogSink, LogSink)>,
    deadline: Option<Instant>,
) -> Result<i32, GuestFailure> {
    // With a router, imports of other modules' interfaces go to providers.
    let imports: Vec<String> = component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name.to_owned())
        .filter(|name| command.host.calls.is_none() || !crate::host::typed::from_provider(name))
        .collect();
    let missing = crate::host::provided::missing_imports(&imports);
    if !missing.is_empty() {
        return Err(GuestFailure::Link(crate::host::provided::refusal(&missing)));
    }
    if let Some(handle) = &command.provide {
        return provider::serve(engine, component, command, sinks, handle.clone()).await;
    }
    if let Some(inbox) = command.host.inbox.clone() {
        let serving = messaging::serve(engine, component, command, sinks.clone(), inbox);
        if !exports_run(engine, component) {
            return serving.await;
        }
        // Both: its own run beside the messages it handles.
        return smol::future::or(serving, run_cli(engine, component, command, sinks, deadline)).await;
    }
    #[cfg(feature = "http")]
    if let Some(grant) = command.grants.http {
        let serving = http::serve(engine, component, command, sinks.clone(), grant);
        if !exports_run(engine, component) {
            return serving.await;
        }
        // Both: its own run (a poller, say) beside the requests it serves;
        // the module ends when its run does.
        return smol::future::or(serving, run_cli(engine, component, command, sinks, deadline)).await;
    }
    run_cli(engine, component, command, sinks, deadline).await
}

/// Whether a component exports `wasi:cli/run` (any 0.2 version).
fn exports_run(engine: &Engine, component: &wasmtime::component::Component) -> bool {
    component
        .component_type()
        .exports(engine)
        .any(|(name, _)| name.starts_with("wasi:cli/run@"))
}

/// Runs a component's `wasi:cli/run` to its end.
async fn run_cli(
    engine: &Engine,
    component: &PreparedComponent,
    command: &Invocation<'_>,
    sinks: Option<(LogSink, LogSink)>,
    deadline: Option<Instant>,
) -> Result<i32, GuestFailure> {
    let mut store = component_store(engine, command, sinks, deadline)?;
    let pre = component_pre(component, command)?;
    let pre = wasmtime_wasi::p2::bindings::CommandPre::new(pre)
        .map_err(|e| GuestFailure::NotACommand(format!("the component does not export `wasi:cli/run`: {e:#}")))?;
    let command_instance: Command = pre.instantiate_async(&mut store).await?;
    let result = command_instance.wasi_cli_run().call_run(&mut store).await;
    match result {
        Ok(Ok(())) => Ok(0),
        Ok(Err(())) => Ok(1),
        Err(err) => exit_code(Err(err)),
    }
}

/// A fresh store for one instance of a component, under the command's
/// grants and limits.
fn component_store(
    engine: &Engine,
    command: &Invocation<'_>,
    sinks: Option<(LogSink, LogSink)>,
    deadline: Option<Instant>,
) -> Result<Store<ComponentState>, GuestFailure> {
    let ctx = command.grants.wasi_builder(sinks, command.host)?.build();
    let mut table = ResourceTable::new();
    table.set_max_capacity(MAX_HOST_HANDLES);
    let state = ComponentState {
        ctx,
        table,
        limiter: GuestLimiter::new(command.limits.max_memory, command.usage.clone()),
        stop: command.stop.clone(),
        services: command.host.clone(),
        #[cfg(feature = "http")]
        http: crate::host::http::HttpState::new(&command.grants.network, command.host),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limiter);
    prepare(&mut store, command, deadline)?;
    Ok(store)
}

/// The component ready to instantiate under the command's grants
/// (resolved once per grant shape: preview2.rs).
fn component_pre(
    component: &PreparedComponent,
    command: &Invocation<'_>,
) -> Result<wasmtime::component::InstancePre<ComponentState>, GuestFailure> {
    component.instance_pre(command)
}
