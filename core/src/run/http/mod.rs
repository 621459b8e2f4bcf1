//! Serving a component's `wasi:http/incoming-handler` on its `[http]
//! listen` address: the module's "run" when its grants carry a
//! [`ServeGrant`], in the daemon or in its worker alike.
//!
//! Every request gets a fresh instance of the pre-linked component (as
//! `wasmtime serve` and Spin do for wasi:http 0.2: a request never sees
//! state another left behind), in its own store under the module's memory
//! limit, fuel and grants. At most `instances` requests are handled at
//! once; the next waits for a slot. A request's handler runs until
//! `request_timeout`: a response not begun by then gets 504 and the
//! instance is dropped; a handler that traps or returns without a response
//! gets 500 and a line in the module's log. Connections beyond
//! [`MAX_CONNECTIONS`] wait in the kernel's backlog, and a connection that
//! sends no request head within [`HEAD_TIMEOUT`] (or the request timeout,
//! if shorter) is closed, so idle clients cannot hold the slots.
//!
//! Everything runs inside the module's own future (a nested executor), so
//! stopping or cancelling the module closes the listener and ends every
//! request with it.

use super::owned::Owned;
use super::{GuestFailure, Invocation, LogSink, Output, component_pre, component_store};
use crate::host::http::ServeGrant;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::StatusCode;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use smol::lock::Semaphore;
use std::convert::Infallible;
use std::sync::{Arc, Weak};
use std::time::Instant;
use wasmtime::Engine;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::{WasiBody, WasiHttpView};

mod timer;

/// Connections served at once per module.
pub const MAX_CONNECTIONS: usize = 128;
/// How long a connection may take to send a request's head (also while
/// idle between requests).
pub const HEAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// One module's server: what every request's instance is made from.
struct Server {
    engine: Engine,
    command: Owned,
    sinks: Option<(LogSink, LogSink)>,
    grant: ServeGrant,
    pre: ProxyPre<crate::host::ComponentState>,
    /// One permit per request being handled (`instances`).
    slots: Arc<Semaphore>,
    /// One permit per open connection.
    connections: Arc<Semaphore>,
    /// Where connections and handlers run: inside the module's future,
    /// which holds the only strong reference (dropping it ends them all).
    executor: Weak<smol::Executor<'static>>,
}

/// Serves until the module is stopped (its future dropped); returns only
/// when serving cannot begin or the listener fails.
pub(super) async fn serve(
    engine: &Engine,
    component: &crate::run::PreparedComponent,
    command: &Invocation<'_>,
    sinks: Option<(LogSink, LogSink)>,
    grant: ServeGrant,
) -> Result<i32, GuestFailure> {
    let pre = component_pre(component, command)?;
    let pre = ProxyPre::new(pre).map_err(|e| {
        GuestFailure::NotACommand(format!(
            "[http] serves wasi:http/incoming-handler, but the component does not export it: {e:#}"
        ))
    })?;
    let listener = listen(grant).map_err(GuestFailure::Serve)?;
    let bound = listener
        .local_addr()
        .map_or_else(|_| grant.listen.to_string(), |a| a.to_string());
    note(command, &format!("serving HTTP on {bound}"));
    let executor = Arc::new(smol::Executor::new());
    let server = Arc::new(Server {
        engine: engine.clone(),
        command: Owned::of(command),
        sinks,
        grant,
        pre,
        slots: Arc::new(Semaphore::new(usize::from(grant.instances))),
        connections: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
        executor: Arc::downgrade(&executor),
    });
    executor.run(accept_loop(server, &executor, listener)).await
}

fn listen(grant: ServeGrant) -> Result<tokio::net::TcpListener, String> {
    let cannot = |e: std::io::Error| format!("cannot listen on {} ([http] listen): {e}", grant.listen);
    let listener = std::net::TcpListener::bind(grant.listen).map_err(cannot)?;
    listener.set_nonblocking(true).map_err(cannot)?;
    tokio::net::TcpListener::from_std(listener).map_err(cannot)
}

async fn accept_loop(
    server: Arc<Server>,
    executor: &smol::Executor<'static>,
    listener: tokio::net::TcpListener,
) -> Result<i32, GuestFailure> {
    loop {
        let permit = server.connections.acquire_arc().await;
        let (stream, _peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of descriptors or memory for a moment: the client retries.
            Err(e) if is_transient(&e) => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
            Err(e) => return Err(GuestFailure::Serve(format!("accepting HTTP connections failed: {e}"))),
        };
        let _ = stream.set_nodelay(true);
        let server = server.clone();
        executor
            .spawn(async move {
                let _permit = permit;
                let head_timeout = HEAD_TIMEOUT.min(server.grant.request_timeout);
                let service = service_fn(|request| {
                    let server = server.clone();
                    async move { server.handle(request).await }
                });
                // A client that vanishes or speaks garbage ends only its own connection.
                let _ = http1::Builder::new()
                    .timer(timer::TokioTimer)
                    .header_read_timeout(head_timeout)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            })
            .detach();
    }
}

fn is_transient(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(nix::libc::EMFILE | nix::libc::ENFILE | nix::libc::ENOBUFS | nix::libc::ENOMEM)
    ) || e.kind() == std::io::ErrorKind::ConnectionAborted
}

/// Why a request got no answer from the guest: the status and the text.
type Refusal = (StatusCode, String);

impl Server {
    async fn handle(&self, request: hyper::Request<Incoming>) -> Result<hyper::Response<WasiBody>, Infallible> {
        let what = format!("{} {}", request.method(), request.uri().path());
        Ok(match self.respond(request).await {
            Ok(response) => response,
            Err((status, text)) => {
                note(&self.command.invocation(), &format!("http {what}: {status}: {text}"));
                plain(status, text)
            }
        })
    }

    async fn respond(&self, request: hyper::Request<Incoming>) -> Result<hyper::Response<WasiBody>, Refusal> {
        let internal = |e: String| (StatusCode::INTERNAL_SERVER_ERROR, e);
        let executor = self
            .executor
            .upgrade()
            .ok_or_else(|| internal("the module is stopping".to_owned()))?;
        let slot = self.slots.acquire_arc().await;
        let deadline = Instant::now() + self.grant.request_timeout;
        let command = self.command.invocation();
        let mut store = component_store(&self.engine, &command, self.sinks.clone(), Some(deadline))
            .map_err(|e| internal(self.explain(e)))?;
        let request = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)
            .map_err(|e| internal(format!("{e:#}")))?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let out = store
            .data_mut()
            .http()
            .new_response_outparam(tx)
            .map_err(|e| internal(format!("{e:#}")))?;
        let pre = self.pre.clone();
        let timer = tokio::time::sleep_until(deadline.into());
        // The handler keeps running after its response's head is sent (it
        // writes the body), so it is a task of its own, holding the slot.
        let call = executor.spawn(async move {
            let _slot = slot;
            let handler = async move {
                let proxy = pre.instantiate_async(&mut store).await?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, request, out)
                    .await
            };
            smol::future::or(async { handler.await.map_err(Some) }, async {
                timer.await;
                Err(None)
            })
            .await
        });
        drop(executor);
        let timeout = crate::run::humanize(self.grant.request_timeout);
        let late = || {
            (
                StatusCode::GATEWAY_TIMEOUT,
                format!("the handler did not respond within [http] request_timeout = {timeout}"),
            )
        };
        match tokio::time::timeout_at(deadline.into(), rx).await {
            Ok(Ok(Ok(response))) => {
                call.detach();
                Ok(response)
            }
            Ok(Ok(Err(code))) => {
                call.detach();
                Err(internal(format!("the handler answered with an error: {code:?}")))
            }
            // The handler ended without setting a response: why?
            Ok(Err(_)) => match call.await {
                Ok(()) => Err(internal("the handler returned without a response".to_owned())),
                // Interrupted at its deadline by the epoch check.
                Err(Some(e)) if e.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) => Err(late()),
                Err(Some(e)) => Err(internal(self.explain(GuestFailure::from(e)))),
                Err(None) => Err(late()),
            },
            Err(_) => {
                drop(call);
                Err(late())
            }
        }
    }

    /// A failure in the words the module's other failures use.
    fn explain(&self, failure: GuestFailure) -> String {
        failure.explain(&self.command.invocation()).to_string()
    }
}

fn plain(status: StatusCode, text: String) -> hyper::Response<WasiBody> {
    let body = Full::new(Bytes::from(text + "\n"))
        .map_err(|never: Infallible| match never {})
        .boxed_unsync();
    let mut response = hyper::Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    response
}

/// A line about the module in its log (or on stderr for `arcella run`).
fn note(command: &Invocation<'_>, text: &str) {
    match command.output {
        Output::Capture(book) => book.note(text),
        Output::Inherit => eprintln!("{}: {text}", command.name),
    }
}
