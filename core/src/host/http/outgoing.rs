//! Arcella's connector for a guest's outgoing `wasi:http` requests.
//!
//! wasmtime-wasi-http's own sender connects wherever the request says;
//! this one first decides where it may go: an IP literal is checked as it
//! is, a name is resolved here (within the network checker's timeout) and
//! each address it gives is checked against `[capabilities.network]
//! connect` as a socket's would be — an IP rule covering it, or a name
//! rule for a name that resolves to it, never a loopback, link-local or
//! unspecified address through a name. The connection tries the allowed
//! addresses in turn until one answers (never re-resolving), and TLS
//! verifies the certificate
//! against the name the guest asked for. A request nothing allows fails
//! with `HTTP-request-denied` and is reported as a network denial (scheme,
//! host and port only: paths and queries may hold secrets).
//!
//! Names are resolved by the host for HTTP whether or not the grant has
//! `lookup = true` (that flag is the guest's own `ip-name-lookup`).

use super::tls;
use crate::host::network::NetworkRules;
use crate::host::network::check::{Checker, RESOLVE_TIMEOUT};
use crate::host::{Capability, HostServices};
use http::uri::Scheme;
use http_body_util::BodyExt;
use rustls::pki_types::ServerName;
use std::future::{Future, poll_fn};
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// How long a connection (TCP and TLS) may take unless the guest says.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the response's head may take unless the guest says.
pub const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(60);

/// One instance's connector: its rules and where refusals go.
pub struct Outbound {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("rules", &self.shared.checker.is_some())
            .finish()
    }
}

struct Shared {
    /// `None`: no connect rule at all; every request is refused.
    checker: Option<Checker>,
    services: HostServices,
}

impl Outbound {
    pub fn new(rules: &NetworkRules, services: &HostServices) -> Self {
        let checker = (!rules.connect.is_empty()).then(|| Checker::new(rules.clone(), services.clone()));
        Self {
            shared: Arc::new(Shared {
                checker,
                services: services.clone(),
            }),
        }
    }
}

type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;
type Sent = Result<(http::Response<WasiBody>, IoFuture), Error>;

impl WasiHttpHooks for Outbound {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> Box<dyn Future<Output = Sent> + Send> {
        let shared = self.shared.clone();
        Box::new(async move { send(request, options, shared).await })
    }
}

trait Stream: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static> Stream for T {}

async fn send(mut request: http::Request<WasiBody>, options: Option<RequestOptions>, shared: Arc<Shared>) -> Sent {
    let uri = request.uri().clone();
    let https = uri.scheme() == Some(&Scheme::HTTPS);
    let host = uri.host().ok_or(Error::HttpRequestUriInvalid)?;
    let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let connect_timeout = options
        .and_then(|o| o.connect_timeout)
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    let first_byte_timeout = options
        .and_then(|o| o.first_byte_timeout)
        .unwrap_or(DEFAULT_FIRST_BYTE_TIMEOUT);

    let allowed = shared.choose(&host, port, https).await?;
    let tcp = connect_first(&allowed, connect_timeout).await?;
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Stream> = if https {
        let name = server_name(&host)?;
        let connector = tokio_rustls::TlsConnector::from(tls::client_config());
        match tokio::time::timeout(connect_timeout, connector.connect(name, tcp)).await {
            Ok(stream) => Box::new(stream.map_err(Error::Tls)?),
            Err(_) => return Err(Error::ConnectionTimeout),
        }
    } else {
        Box::new(tcp)
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // The request line carries the path only (no proxy in between).
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    *request.uri_mut() = path.parse().map_err(|_| Error::HttpRequestUriInvalid)?;

    // Drive the connection while waiting for the response's head; once it
    // is here, the connection's future carries the body.
    let mut conn = Some(Box::pin(conn));
    let mut response = pin!(tokio::time::timeout(first_byte_timeout, sender.send_request(request)));
    let response = poll_fn(|cx| {
        if let Poll::Ready(result) = response.as_mut().poll(cx) {
            return Poll::Ready(result);
        }
        if let Some(running) = conn.as_mut()
            && let Poll::Ready(ended) = running.as_mut().poll(cx)
        {
            conn = None;
            if let Err(e) = ended {
                return Poll::Ready(Ok(Err(e)));
            }
            return response.as_mut().poll(cx);
        }
        Poll::Pending
    })
    .await
    .map_err(|_| Error::ConnectionReadTimeout)??;
    let response = response.map(|body| body.map_err(Error::from).boxed_unsync());
    let io: IoFuture = Box::new(async move {
        match conn {
            Some(conn) => conn.await.map_err(Error::from),
            None => Ok(()),
        }
    });
    Ok((response, io))
}

/// A connection to the first of `addrs` that takes one (each within the
/// timeout), or the last failure.
async fn connect_first(addrs: &[SocketAddr], timeout: Duration) -> Result<TcpStream, Error> {
    let mut last = Error::ConnectionRefused;
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => last = Error::Connect(e),
            Err(_) => last = Error::ConnectionTimeout,
        }
    }
    Err(last)
}

impl Shared {
    /// The addresses to connect to for `host:port`: those it resolves to
    /// that a rule allows, in the resolver's order. Reports the refusal
    /// when none is.
    async fn choose(&self, host: &str, port: u16, https: bool) -> Result<Vec<SocketAddr>, Error> {
        let scheme = if https { "https" } else { "http" };
        let shown = if host.contains(':') {
            format!("{scheme}://[{host}]:{port}")
        } else {
            format!("{scheme}://{host}:{port}")
        };
        let Some(checker) = &self.checker else {
            self.services.deny(
                Capability::Network,
                format!("http request to {shown}: no rule in [capabilities.network] connect allows it (none is given)"),
            );
            return Err(Error::HttpRequestDenied);
        };
        let candidates: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port))).await {
                Ok(Ok(found)) => {
                    let found: Vec<SocketAddr> = found.collect();
                    let ips: Vec<IpAddr> = found.iter().map(|a| a.ip()).collect();
                    checker.remember(host, &ips);
                    found
                }
                Ok(Err(e)) => {
                    return Err(Error::DnsError {
                        rcode: Some(e.to_string()),
                        info_code: None,
                    });
                }
                Err(_) => return Err(Error::DnsTimeout),
            },
        };
        let mut note = String::new();
        let mut allowed = Vec::new();
        for addr in &candidates {
            match checker.connect_verdict(*addr).await {
                Ok(()) => allowed.push(*addr),
                Err(why) if note.is_empty() => note = why,
                Err(_) => {}
            }
        }
        if !allowed.is_empty() {
            return Ok(allowed);
        }
        let resolved = if host.parse::<IpAddr>().is_ok() {
            String::new()
        } else {
            let list: Vec<String> = candidates.iter().map(|a| a.ip().to_string()).collect();
            format!(" (resolved to {})", list.join(", "))
        };
        self.services.deny(
            Capability::Network,
            format!("http request to {shown}{resolved}: no rule in [capabilities.network] connect allows it{note}"),
        );
        Err(Error::HttpRequestDenied)
    }
}

/// The name TLS verifies: the host the guest asked for.
fn server_name(host: &str) -> Result<ServerName<'static>, Error> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ServerName::from(ip));
    }
    ServerName::try_from(host.to_owned()).map_err(|_| Error::HttpRequestUriInvalid)
}
