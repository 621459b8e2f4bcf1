//! A provider's run (`kind = "provider"`): instead of `wasi:cli/run`, the
//! module serves calls from other modules, arriving through its
//! [`ProviderHandle`], until it is stopped.
//!
//! Each instance serves one call at a time; the handle's `instances`
//! bounds how many run at once (a call waits for a free one, within its
//! deadline). Instances are kept between calls (a provider may keep state
//! in them, as a service would). A call's arguments are checked against
//! the function's types before the guest runs; a call that traps or
//! passes its deadline fails for its caller alone, and its instance is
//! dropped (a trapped instance cannot be entered again) and replaced by a
//! fresh one on a later call: the provider itself keeps serving.
//!
//! Everything runs inside the module's own future (a nested executor), as
//! the HTTP server does: stopping the module ends every call with it, and
//! their callers hear "stopped during the call".

use super::owned::Owned;
use super::{GuestFailure, Invocation, LogSink, Output, component_pre, component_store};
use crate::host::ComponentState;
use crate::host::typed::shape::check_value;
use crate::host::typed::{CallError, CallRequest, ProviderHandle};
use smol::lock::Semaphore;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use wasmtime::component::{Instance, InstancePre, Val};
use wasmtime::{Engine, Store, UpdateDeadline};

/// An instance between calls.
struct Ready {
    store: Store<ComponentState>,
    instance: Instance,
}

/// One provider's pool: what each instance is made from, and the idle ones.
struct Pool {
    engine: Engine,
    command: Owned,
    sinks: Option<(LogSink, LogSink)>,
    pre: InstancePre<ComponentState>,
    idle: Mutex<Vec<Ready>>,
    /// One permit per instance in a call.
    slots: Semaphore,
}

/// Serves calls until the module is stopped (its future dropped); returns
/// only when serving cannot begin.
pub(super) async fn serve(
    engine: &Engine,
    component: &super::PreparedComponent,
    command: &Invocation<'_>,
    sinks: Option<(LogSink, LogSink)>,
    handle: Arc<ProviderHandle>,
) -> Result<i32, GuestFailure> {
    let offered = crate::host::typed::offered(engine, component);
    if offered.is_empty() {
        return Err(GuestFailure::NotACommand(
            "a provider exports an interface for other modules to call (`acme:thermo/sensor@1.0.0`, say), and this \
             component exports none"
                .to_owned(),
        ));
    }
    let pool = Arc::new(Pool {
        engine: engine.clone(),
        command: Owned::of(command),
        sinks,
        pre: component_pre(component, command)?,
        idle: Mutex::new(Vec::new()),
        slots: Semaphore::new(usize::from(handle.instances)),
    });
    // One instance at once: a provider that cannot start fails its start.
    let first = pool.instantiate().await?;
    pool.idle().push(first);
    let names: Vec<&str> = offered.iter().map(|(name, _)| name.as_str()).collect();
    note(
        command,
        &format!("providing {} ({} instance(s))", names.join(", "), handle.instances),
    );
    let executor = Arc::new(smol::Executor::new());
    let requests = handle.requests();
    executor
        .run(async {
            while let Ok(request) = requests.recv().await {
                executor.spawn(pool.clone().serve_one(request)).detach();
            }
            // Closed: the provider is being stopped; wait to be dropped.
            std::future::pending::<()>().await;
        })
        .await;
    Ok(0)
}

impl Pool {
    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Ready>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn instantiate(&self) -> Result<Ready, GuestFailure> {
        let command = self.command.invocation();
        let mut store = component_store(&self.engine, &command, self.sinks.clone(), None)?;
        let instance = self.pre.instantiate_async(&mut store).await?;
        Ok(Ready { store, instance })
    }

    async fn serve_one(self: Arc<Self>, request: CallRequest) {
        let _slot = self.slots.acquire().await;
        let ready = self.idle().pop();
        let ready = match ready {
            Some(ready) => ready,
            None => match self.instantiate().await {
                Ok(ready) => ready,
                Err(failure) => {
                    let message = failure.explain(&self.command.invocation()).to_string();
                    let _ = request.reply.try_send(Err(CallError::Trapped {
                        provider: self.command.name.clone(),
                        function: request.function,
                        message: format!("no instance could be started: {message}"),
                    }));
                    return;
                }
            },
        };
        let CallRequest {
            export,
            function,
            args,
            deadline,
            reply,
        } = request;
        let named = format!("{export}#{function}");
        let (answer, keep) = self.call(ready, &export, &function, args, deadline).await;
        if let Err(e) = &answer
            && !matches!(e, CallError::BadValues { .. })
        {
            note(&self.command.invocation(), &format!("call {named}: {e}"));
        }
        if let Some(ready) = keep {
            self.idle().push(ready);
        }
        let _ = reply.try_send(answer);
    }

    /// Makes one call; gives the instance back unless it cannot be used
    /// again (it trapped, or was interrupted at the deadline).
    async fn call(
        &self,
        mut ready: Ready,
        export: &str,
        function: &str,
        args: Vec<Val>,
        deadline: Instant,
    ) -> (Result<Vec<Val>, CallError>, Option<Ready>) {
        let provider = self.command.name.clone();
        let bad = |why: String| CallError::BadValues {
            function: format!("{export}#{function}"),
            why,
        };
        let Ready { store, instance } = &mut ready;
        let func = instance
            .get_export_index(&mut *store, None, export)
            .and_then(|iface| instance.get_export_index(&mut *store, Some(&iface), function))
            .and_then(|index| instance.get_func(&mut *store, index));
        let Some(func) = func else {
            return (Err(bad(format!("`{provider}` has no such function"))), Some(ready));
        };
        let ty = func.ty(&*store);
        let params: Vec<(String, wasmtime::component::types::Type)> =
            ty.params().map(|(name, t)| (name.to_owned(), t)).collect();
        if params.len() != args.len() {
            let why = format!("it takes {} argument(s), the call passed {}", params.len(), args.len());
            return (Err(bad(why)), Some(ready));
        }
        if let Some(why) = args
            .iter()
            .zip(&params)
            .find_map(|(v, (name, t))| check_value(v, t).map(|why| format!("parameter `{name}`: {why}")))
        {
            return (Err(bad(why)), Some(ready));
        }
        let mut results = vec![Val::Bool(false); ty.results().len()];
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            Ok(if Instant::now() >= deadline {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Yield(1)
            })
        });
        let called = smol::future::or(
            async { Some(func.call_async(&mut *store, &args, &mut results).await) },
            async {
                smol::Timer::at(deadline).await;
                None
            },
        )
        .await;
        let function = format!("{export}#{function}");
        match called {
            Some(Ok(())) => (Ok(results), Some(ready)),
            Some(Err(e)) if e.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) => (
                Err(CallError::Timeout {
                    provider,
                    function,
                    timeout: "its deadline".to_owned(),
                }),
                None,
            ),
            Some(Err(e)) => {
                let message = GuestFailure::from(e).explain(&self.command.invocation()).to_string();
                (
                    Err(CallError::Trapped {
                        provider,
                        function,
                        message,
                    }),
                    None,
                )
            }
            None => (
                Err(CallError::Timeout {
                    provider,
                    function,
                    timeout: "its deadline".to_owned(),
                }),
                None,
            ),
        }
    }
}

/// A line about the module in its log (or on stderr for `arcella run`).
fn note(command: &Invocation<'_>, text: &str) {
    match command.output {
        Output::Capture(book) => book.note(text),
        Output::Inherit => eprintln!("{}: {text}", command.name),
    }
}

#[cfg(all(test, feature = "compiler"))]
mod tests {
    use crate::artifact::Program;
    use crate::engine::{EngineProfile, new_engine};
    use crate::host::HostServices;
    use crate::host::typed::{CallError, ProviderHandle};
    use crate::run::{self, Grants, Invocation, Limits, LogBook, Output, ticker::EpochTicker};
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    use wasmtime::component::{Component, Val};

    /// `acme:math/ops@1.0.0`: `add(a: u32, b: u32) -> u32`, `spin()`, `trap()`.
    const PROVIDER: &str = r#"(component
      (core module $m
        (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
        (func (export "spin") (loop br 0))
        (func (export "trap") unreachable))
      (core instance $i (instantiate $m))
      (func $add (param "a" u32) (param "b" u32) (result u32) (canon lift (core func $i "add")))
      (func $spin (canon lift (core func $i "spin")))
      (func $trap (canon lift (core func $i "trap")))
      (instance $out (export "add" (func $add)) (export "spin" (func $spin)) (export "trap" (func $trap)))
      (export "acme:math/ops@1.0.0" (instance $out)))"#;

    const OPS: &str = "acme:math/ops@1.0.0";

    /// Calls that do not fit the function's types never enter the guest;
    /// a call that spins or traps fails alone, and the next one is served.
    #[test]
    fn bad_values_are_refused_and_failed_calls_cost_only_their_instance() {
        let engine = new_engine(&EngineProfile::default()).unwrap();
        let _ticker = EpochTicker::start(&engine).unwrap();
        let program = Program::Component(Component::new(&engine, PROVIDER).unwrap().into());
        let handle = Arc::new(ProviderHandle::new("math", 1));
        let book = LogBook::new("math", None);
        let output = Output::Capture(book.clone());
        let (grants, limits, profile, host) = (
            Grants::default(),
            Limits::default(),
            EngineProfile::default(),
            HostServices::default(),
        );
        let serving = handle.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let invocation = Invocation {
                name: "math",
                program: &program,
                grants: &grants,
                limits: &limits,
                profile: &profile,
                output: &output,
                entrypoint: None,
                stop: None,
                health: None,
                host: &host,
                provide: Some(serving),
                usage: None,
            };
            let run = run::run(&invocation);
            let calls = async {
                let soon = || Instant::now() + Duration::from_secs(5);
                let add = |a: Val, b: Val| handle.call(OPS, "add", vec![a, b], soon(), "5s");
                assert_eq!(add(Val::U32(2), Val::U32(3)).await, Ok(vec![Val::U32(5)]));
                let wrong = add(Val::String("two".into()), Val::U32(3)).await.unwrap_err();
                assert!(
                    matches!(&wrong, CallError::BadValues { why, .. } if why.contains("parameter `a`: expected u32, got a string")),
                    "{wrong}"
                );
                let short = handle.call(OPS, "add", vec![Val::U32(1)], soon(), "5s").await.unwrap_err();
                assert!(short.to_string().contains("takes 2 argument(s)"), "{short}");
                let none = handle.call(OPS, "mul", vec![], soon(), "5s").await.unwrap_err();
                assert!(none.to_string().contains("no such function"), "{none}");
                let deadline = Instant::now() + Duration::from_millis(200);
                let spun = handle.call(OPS, "spin", vec![], deadline, "200ms").await.unwrap_err();
                assert!(matches!(spun, CallError::Timeout { .. }), "{spun}");
                let trapped = handle.call(OPS, "trap", vec![], soon(), "5s").await.unwrap_err();
                assert!(
                    matches!(&trapped, CallError::Trapped { message, .. } if message.contains("unreachable")),
                    "{trapped}"
                );
                // The instances that spun and trapped were replaced.
                assert_eq!(add(Val::U32(40), Val::U32(2)).await, Ok(vec![Val::U32(42)]));
            };
            smol::future::or(async { panic!("the provider ended: {:?}", run.await) }, calls).await;
        });
        let notes: Vec<String> = book.tail(0).into_iter().map(|l| l.text).collect();
        assert!(
            notes.iter().any(|n| n.contains("providing acme:math/ops@1.0.0")),
            "{notes:?}"
        );
        assert!(notes.iter().any(|n| n.contains("#trap")), "{notes:?}");
        // Closing the handle fails what comes next at once.
        handle.close();
        let closed = smol::block_on(handle.call(OPS, "add", vec![], Instant::now() + Duration::from_secs(5), "5s"));
        assert!(matches!(closed, Err(CallError::Stopped { .. })), "{closed:?}");
    }
}
