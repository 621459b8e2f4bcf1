//! Typed calls between components: a provider module exports an interface
//! (`acme:thermo/sensor@1.2.0`), a consumer module imports it, and the
//! daemon links the two across isolation. This is the host side every
//! consumer imports through, linked by one function for both sides of the
//! process boundary ([`link`]): each function of an interface the daemon
//! does not provide itself becomes a host function that hands its
//! arguments to the instance's [`Calls`], which is the daemon's router
//! in-process (daemon/wiring.rs) or the proxy to it in a worker
//! ([`proxy::CallProxy`]). On the provider's side, calls arrive through a
//! [`ProviderHandle`] and are served by `run::provider`.
//!
//! Values are wasmtime's dynamic [`Val`]s, checked against the provider's
//! function types before its code runs ([`shape::check_value`]); between
//! processes they travel as [`value::WireVal`].

pub mod handle;
pub mod proxy;
pub mod shape;
pub mod value;
pub mod version;

pub use handle::{CallRequest, ProviderHandle};

use crate::host::ComponentState;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, Val};

/// Why a call between modules failed. The consumer's call traps with this
/// message; the provider is not harmed by a bad call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum CallError {
    #[error("`{import}` is not linked for this module (its deployment's [imports] does not grant it)")]
    NotLinked { import: String },
    #[error("no provider of `{import}` answered within the call timeout of {timeout}: {why}")]
    NoProvider {
        import: String,
        timeout: String,
        why: String,
    },
    #[error("`{provider}` did not answer `{function}` within the call timeout of {timeout}")]
    Timeout {
        provider: String,
        function: String,
        timeout: String,
    },
    #[error("`{provider}` trapped in `{function}`: {message}")]
    Trapped {
        provider: String,
        function: String,
        message: String,
    },
    #[error("`{function}` does not take these values: {why}")]
    BadValues { function: String, why: String },
    #[error("`{provider}` stopped during the call to `{function}`")]
    Stopped { provider: String, function: String },
    #[error("the call could not be passed on: {0}")]
    Refused(String),
    /// The provider stopped (or its new version never came up) while the
    /// call was still queued: no code of it ran, so the router passes the
    /// call on to the version that runs next, within the caller's timeout.
    #[error("`{provider}` stopped before it took the call to `{function}`")]
    Unserved { provider: String, function: String },
}

/// Boxed future of a call's answer.
pub type CallFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<Val>, CallError>> + Send + 'a>>;

/// Who answers a consumer's calls: the daemon's router, or the worker's
/// proxy to it.
pub trait Calls: Send + Sync {
    /// Calls `function` of the interface the consumer imports as `import`.
    fn call<'a>(&'a self, import: &'a str, function: &'a str, args: Vec<Val>) -> CallFuture<'a>;
}

/// Whether an import is one a provider module may serve: anything outside
/// the daemon's own namespaces (`wasi:`, `arcella:`) that it does not
/// provide itself.
pub fn from_provider(import: &str) -> bool {
    !import.starts_with("wasi:")
        && !import.starts_with("arcella:")
        && crate::host::provided::why_missing(import).is_some()
}

/// The imports of `component` that providers must serve, with their types.
pub fn needed(engine: &wasmtime::Engine, component: &Component) -> Vec<(String, ComponentItem)> {
    component
        .component_type()
        .imports(engine)
        .filter(|(name, _)| from_provider(name))
        .map(|(name, item)| (name.to_owned(), item.ty))
        .collect()
}

/// The interfaces `component` exports for other modules to call (every
/// export but `wasi:` ones such as `wasi:cli/run`).
pub fn offered(engine: &wasmtime::Engine, component: &Component) -> Vec<(String, ComponentItem)> {
    component
        .component_type()
        .exports(engine)
        .filter(|(name, item)| !name.starts_with("wasi:") && matches!(item.ty, ComponentItem::ComponentInstance(_)))
        .map(|(name, item)| (name.to_owned(), item.ty))
        .collect()
}

/// Links every import of `component` that a provider serves to `calls`.
pub fn link(
    linker: &mut Linker<ComponentState>,
    engine: &wasmtime::Engine,
    component: &Component,
    calls: Arc<dyn Calls>,
) -> wasmtime::Result<()> {
    for (import, item) in needed(engine, component) {
        let ComponentItem::ComponentInstance(instance) = item else {
            continue;
        };
        let mut root = linker.root();
        let mut linked = root.instance(&import)?;
        for (function, item) in instance.exports(engine) {
            if !matches!(item.ty, ComponentItem::ComponentFunc(_)) {
                continue;
            }
            let calls = calls.clone();
            let import = import.clone();
            let function_name = function.to_owned();
            linked.func_new_async(function, move |_store, _ty, params, results| {
                let calls = calls.clone();
                let import = import.clone();
                let function = function_name.clone();
                Box::new(async move {
                    let answer = calls.call(&import, &function, params.to_vec()).await?;
                    if answer.len() != results.len() {
                        return Err(wasmtime::Error::msg(format!(
                            "`{import}#{function}` answered {} value(s) where {} were expected",
                            answer.len(),
                            results.len()
                        )));
                    }
                    for (slot, value) in results.iter_mut().zip(answer) {
                        *slot = value;
                    }
                    Ok(())
                })
            })?;
        }
    }
    Ok(())
}
