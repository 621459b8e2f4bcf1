//! `wasi:http` 0.2 (wasmtime-wasi-http 48.0.8), with the `http` cargo
//! feature:
//! - **outgoing** requests go through Arcella's own connector
//!   ([`outgoing`]): the host resolves the name, checks every address
//!   against the instance's `[capabilities.network] connect` rules (a name
//!   rule never opens loopback, as for sockets), connects to the address
//!   it checked and speaks TLS (rustls with ring, [`tls`]) under the
//!   original name. Nothing is granted by default.
//! - **incoming** requests: a component exporting
//!   `wasi:http/incoming-handler` is served on the address its deployment's
//!   `[http] listen` names ([`ServeGrant`]; the serving loop is
//!   `crate::run::http`), each request in a fresh instance under the
//!   module's limits.
//!
//! The grant types are here without the feature too, so a build without
//! HTTP can refuse an `[http]` deployment by name.

pub mod grant;
#[cfg(feature = "http")]
pub mod outgoing;
#[cfg(feature = "http")]
pub mod tls;

pub use grant::{ServeGrant, ServeGrantError};

#[cfg(feature = "http")]
pub use state::HttpState;

#[cfg(feature = "http")]
mod state {
    use super::outgoing::Outbound;
    use crate::host::network::NetworkRules;
    use crate::host::{ComponentState, HostServices};
    use wasmtime::component::Linker;
    use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

    /// One instance's `wasi:http` state: wasmtime-wasi-http's context and
    /// the connector its outgoing requests use.
    pub struct HttpState {
        ctx: WasiHttpCtx,
        outbound: Outbound,
    }

    impl std::fmt::Debug for HttpState {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("HttpState").finish_non_exhaustive()
        }
    }

    impl HttpState {
        /// Requests may reach exactly what `rules` let a socket connect to.
        pub fn new(rules: &NetworkRules, services: &HostServices) -> Self {
            Self {
                ctx: WasiHttpCtx::new(),
                outbound: Outbound::new(rules, services),
            }
        }
    }

    impl WasiHttpView for ComponentState {
        fn http(&mut self) -> WasiHttpCtxView<'_> {
            WasiHttpCtxView {
                ctx: &mut self.http.ctx,
                table: &mut self.table,
                hooks: &mut self.http.outbound,
            }
        }
    }

    /// Links `wasi:http/types` and `wasi:http/outgoing-handler`.
    pub fn link(linker: &mut Linker<ComponentState>) -> wasmtime::Result<()> {
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
    }
}

#[cfg(feature = "http")]
pub use state::link;

/// The most bytes of extra roots (they travel in a worker's Hello).
pub const MAX_ROOTS_BYTES: usize = 6 * 1024;

/// Checks a PEM file's worth of extra roots for guests' https requests.
pub fn check_roots(pem: &[u8]) -> Result<(), String> {
    #[cfg(feature = "http")]
    {
        tls::parse(pem).map(drop).map_err(|e| e.to_string())
    }
    #[cfg(not(feature = "http"))]
    {
        let _ = pem;
        Err("is given, but this build has no wasi:http (the `http` cargo feature); remove [http] ca_file".to_owned())
    }
}

/// Trusts extra roots for guests' https requests in this process (the
/// daemon from its config, a worker from its handshake); empty: none.
pub fn trust_roots(pem: &[u8]) -> Result<(), String> {
    if pem.is_empty() {
        return Ok(());
    }
    #[cfg(feature = "http")]
    {
        tls::trust(pem).map_err(|e| e.to_string())
    }
    #[cfg(not(feature = "http"))]
    {
        check_roots(pem)
    }
}
