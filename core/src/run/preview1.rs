//! What a WASI preview 1 module runs with: its store's state, and the
//! linker of every p1 function plus Arcella's shutdown call, resolved
//! against the module once ([`PreparedModule`]) and kept with it.
//!
//! Building the linker (every p1 function, each a boxed closure under an
//! interned name) and checking the module's imports against it took 170 µs
//! of the daemon's 500 µs from `start` to a guest's first output: the
//! largest part. A [`wasmtime::InstancePre`] does both once per loaded
//! module; each start then only instantiates it.

use super::limits::GuestLimiter;
use super::{HealthCheck, SHUTDOWN_IMPORT, StopFlag, answer_health};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use wasmtime::{Engine, InstancePre, Linker, Module};
use wasmtime_wasi::p1::WasiP1Ctx;

/// A preview 1 instance's store state.
pub(crate) struct P1State {
    pub wasi: WasiP1Ctx,
    pub limiter: GuestLimiter,
    pub stop: Option<StopFlag>,
    pub health: Option<Arc<HealthCheck>>,
}

/// A loaded core module with its imports resolved against the p1 linker
/// at its first instantiation; clones share that resolution. Reads as the
/// [`Module`] it holds.
#[derive(Clone)]
pub struct PreparedModule {
    module: Module,
    pre: Arc<OnceLock<InstancePre<P1State>>>,
}

impl PreparedModule {
    pub fn new(module: Module) -> Self {
        Self {
            module,
            pre: Arc::default(),
        }
    }

    /// The module ready to instantiate, resolved on first use. Two first
    /// starts at once both resolve it; one result is kept.
    pub(crate) fn instance_pre(&self) -> wasmtime::Result<InstancePre<P1State>> {
        if let Some(pre) = self.pre.get() {
            return Ok(pre.clone());
        }
        let pre = linker(self.module.engine())?.instantiate_pre(&self.module)?;
        Ok(self.pre.get_or_init(|| pre).clone())
    }
}

impl std::fmt::Debug for PreparedModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedModule")
            .field("resolved", &self.pre.get().is_some())
            .finish_non_exhaustive()
    }
}

impl From<Module> for PreparedModule {
    fn from(module: Module) -> Self {
        Self::new(module)
    }
}

impl std::ops::Deref for PreparedModule {
    type Target = Module;

    fn deref(&self) -> &Module {
        &self.module
    }
}

/// Every WASI preview 1 function, and [`SHUTDOWN_IMPORT`] (answering a
/// pending health question on the way).
fn linker(engine: &Engine) -> wasmtime::Result<Linker<P1State>> {
    let mut linker: Linker<P1State> = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_async(&mut linker, |state| &mut state.wasi)?;
    let (module_name, function) = SHUTDOWN_IMPORT;
    linker.func_wrap_async(
        module_name,
        function,
        |mut caller: wasmtime::Caller<'_, P1State>, (): ()| -> Box<dyn std::future::Future<Output = i32> + Send + '_> {
            Box::new(async move {
                answer_health(&mut caller).await;
                i32::from(
                    caller
                        .data()
                        .stop
                        .as_ref()
                        .is_some_and(|flag| flag.load(Ordering::Relaxed)),
                )
            })
        },
    )?;
    Ok(linker)
}
