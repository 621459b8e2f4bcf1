//! `arcella:service/lifecycle` (wit/deps/service/lifecycle.wit): a component asks
//! whether the daemon wants it to finish.

use super::ComponentState;
use std::sync::atomic::Ordering;
use wasmtime::component::Linker;

/// The interface's name as a component imports it.
pub const INTERFACE: &str = "arcella:service/lifecycle@0.1.0";

/// Adds `shutdown-requested: func() -> bool`.
pub fn link(linker: &mut Linker<ComponentState>) -> wasmtime::Result<()> {
    linker.instance(INTERFACE)?.func_wrap(
        "shutdown-requested",
        |store: wasmtime::StoreContextMut<'_, ComponentState>, (): ()| -> wasmtime::Result<(bool,)> {
            Ok((store
                .data()
                .stop
                .as_ref()
                .is_some_and(|flag| flag.load(Ordering::Relaxed)),))
        },
    )?;
    Ok(())
}
