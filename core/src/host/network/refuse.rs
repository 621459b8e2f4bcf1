//! Socket creation without a grant, reported: wasmtime-wasi answers
//! access-denied by itself when TCP or UDP is off, but silently. For an
//! instance without TCP (or UDP) rules, its `create-tcp-socket` (or
//! `create-udp-socket`) is shadowed by one that reports the denial and
//! answers the same access-denied, so the audit trail sees the attempt.
//! No socket is created either way (a worker without network rules has no
//! `socket` system call at all).

use super::NetworkRules;
use crate::host::{Capability, ComponentState, HostServices};
use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddressFamily};
use wasmtime_wasi::p2::bindings::sockets::{network, tcp_create_socket, udp_create_socket};
use wasmtime_wasi::p2::{SocketError, SocketResult, TcpSocket, UdpSocket};

/// Replaces socket creation for the protocols `rules` do not grant.
pub fn link(linker: &mut Linker<ComponentState>, rules: &NetworkRules) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let linked = (|| {
        if !rules.tcp() {
            tcp_create_socket::add_to_linker::<ComponentState, Refuse>(linker, refusing)?;
        }
        if !rules.udp_allowed() {
            udp_create_socket::add_to_linker::<ComponentState, Refuse>(linker, refusing)?;
        }
        Ok(())
    })();
    linker.allow_shadowing(false);
    linked
}

fn refusing(state: &mut ComponentState) -> Refusing<'_> {
    Refusing {
        services: &state.services,
    }
}

struct Refuse;

impl HasData for Refuse {
    type Data<'a> = Refusing<'a>;
}

struct Refusing<'a> {
    services: &'a HostServices,
}

fn family(family: IpAddressFamily) -> &'static str {
    match family {
        IpAddressFamily::Ipv4 => "IPv4",
        IpAddressFamily::Ipv6 => "IPv6",
    }
}

/// Needed by the bindings for the error type; only `convert_error_code`
/// is reached (through the shadowed functions).
impl network::Host for Refusing<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        error.downcast()
    }

    fn network_error_code(&mut self, _err: Resource<wasmtime::Error>) -> wasmtime::Result<Option<ErrorCode>> {
        Ok(None)
    }
}

impl network::HostNetwork for Refusing<'_> {
    fn drop(&mut self, _this: Resource<network::Network>) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl tcp_create_socket::Host for Refusing<'_> {
    fn create_tcp_socket(&mut self, address_family: IpAddressFamily) -> SocketResult<Resource<TcpSocket>> {
        self.services.deny(
            Capability::Network,
            format!(
                "create an {} TCP socket: [capabilities.network] has no connect or listen rule",
                family(address_family)
            ),
        );
        Err(ErrorCode::AccessDenied.into())
    }
}

impl udp_create_socket::Host for Refusing<'_> {
    async fn create_udp_socket(&mut self, address_family: IpAddressFamily) -> SocketResult<Resource<UdpSocket>> {
        self.services.deny(
            Capability::Network,
            format!(
                "create an {} UDP socket: [capabilities.network] has no udp rule",
                family(address_family)
            ),
        );
        Err(ErrorCode::AccessDenied.into())
    }
}
