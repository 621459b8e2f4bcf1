//! The host interfaces a component imports, one file per interface (as
//! wasmtime keeps one crate per WASI proposal), and the one function that
//! links them: [`link_component`].
//!
//! Each interface has an in-process backend and, where its state lives in
//! the daemon (key-value, config, audit), a proxy over the worker IPC; the
//! choice is made by what the caller puts in [`HostServices`], so the
//! linker is the same on both sides of the process boundary.
//!
//! Capabilities are deny-by-default: an interface whose grant is absent
//! answers access-denied (or its equivalent) and reports a [`Denial`].

pub mod calls;
pub mod config;
pub mod denial;
pub mod http;
pub mod keyvalue;
pub mod lifecycle;
pub mod logging;
pub mod messaging;
pub mod network;
pub mod provided;
pub mod typed;

pub use config::ConfigValues;
pub use denial::{Capability, Denial, DenialSink};

use crate::run::StopFlag;
use crate::run::limits::GuestLimiter;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// What the host gives one instance beyond WASI's own context: where its
/// denials go and (per interface) the backend serving it. Cheap to clone.
#[derive(Clone, Default)]
pub struct HostServices {
    /// Where denials are reported; `None` drops them (unit tests).
    pub denials: Option<DenialSink>,
    /// The instance's runtime configuration (`wasi:config`), replaced
    /// while it runs when the operator changes it.
    pub config: ConfigValues,
    /// The module's log, for `wasi:logging` lines; `None` writes them to
    /// stderr (`arcella run`).
    pub logs: Option<crate::run::LogBook>,
    /// Who serves `wasi:keyvalue`: the module's store in the daemon, or
    /// the proxy to it in a worker; `None`: no store granted (every
    /// `open` is refused).
    pub keyvalue: Option<std::sync::Arc<dyn keyvalue::backend::KeyValue>>,
    /// Who answers the instance's calls to provider modules (typed
    /// calls): the daemon's router, or the proxy to it in a worker; `None`
    /// (`arcella run`): imports only providers could serve are refused.
    pub calls: Option<std::sync::Arc<dyn typed::Calls>>,
    /// Who serves `wasi:messaging` publishes: the bus in the daemon, or
    /// the proxy to it in a worker; `None`: no publishing granted.
    pub messaging: Option<std::sync::Arc<dyn messaging::backend::Messaging>>,
    /// Where the instance's messaging handler gets its messages (it
    /// subscribes to topics); `None`: it subscribes to nothing.
    pub inbox: Option<std::sync::Arc<dyn messaging::backend::Inbox>>,
}

impl std::fmt::Debug for HostServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostServices")
            .field("denials", &self.denials.is_some())
            .field("config", &self.config)
            .field("logs", &self.logs.is_some())
            .field("keyvalue", &self.keyvalue.is_some())
            .field("calls", &self.calls.is_some())
            .field("messaging", &self.messaging.is_some())
            .field("inbox", &self.inbox.is_some())
            .finish()
    }
}

impl HostServices {
    /// Reports a denial, if anyone listens.
    pub fn deny(&self, capability: Capability, detail: impl Into<String>) {
        if let Some(sink) = &self.denials {
            sink(Denial {
                capability,
                detail: detail.into(),
            });
        }
    }
}

/// A component instance's store data.
pub struct ComponentState {
    pub ctx: WasiCtx,
    pub table: ResourceTable,
    pub limiter: GuestLimiter,
    pub stop: Option<StopFlag>,
    pub services: HostServices,
    /// `wasi:http`: the context and the connector of outgoing requests.
    #[cfg(feature = "http")]
    pub http: http::HttpState,
}

impl std::fmt::Debug for ComponentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentState").finish_non_exhaustive()
    }
}

impl WasiView for ComponentState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// Links every host interface Arcella provides into a component linker:
/// WASI preview 2 and Arcella's own. In-process and in a worker alike.
pub fn link_component(linker: &mut Linker<ComponentState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    lifecycle::link(linker)?;
    config::link(linker)?;
    logging::link(linker)?;
    keyvalue::link(linker)?;
    messaging::link(linker)?;
    #[cfg(feature = "http")]
    http::link(linker)?;
    Ok(())
}
