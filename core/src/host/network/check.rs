//! Enforcing [`NetworkRules`] through wasmtime-wasi's socket address check,
//! which is asked before every bind, listen, connect, send and receive.
//!
//! What each use is checked against:
//! - `TcpConnect`: `connect` rules; `UdpSend` and `UdpReceive`: `udp` rules.
//! - `TcpBind`, `UdpBind`: an ephemeral bind (unspecified address, port 0,
//!   what every client socket does implicitly) is always allowed once the
//!   protocol is; a bind to anything else needs a `listen` rule.
//! - `TcpListen`: `listen` rules (an unbound listen asks for port 0: only a
//!   rule with port `*` allows it).
//! - `TcpAccept`: allowed (the listen rule is the grant; clients of an
//!   allowed listener are not filtered by address).
//!
//! A `listen` rule on an unspecified address (`0.0.0.0`, `[::]`) also
//! allows binding any single address of that family (that exposes less);
//! a rule on one address never allows the unspecified one.
//!
//! A name rule matches an address only if resolving the name (here, where
//! the socket lives, within [`RESOLVE_TIMEOUT`], cached for
//! [`RESOLVE_TTL`]) gives that address, and never matches a loopback,
//! unspecified, link-local, multicast or broadcast address
//! ([`super::rules::is_special`]): a name whose DNS answer turns into
//! 127.0.0.1 must not open the device's own services.
//!
//! Every refusal is reported as a [`Capability::Network`] denial, except
//! dropped incoming datagrams (a peer could flood the audit trail).

use super::rules::{HostPattern, Rule, is_special};
use super::{NetworkRules, RuleList};
use crate::host::{Capability, HostServices};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::sockets::SocketAddrUse;

/// How long one name resolution may take before the rule does not match.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a resolution is reused.
pub const RESOLVE_TTL: Duration = Duration::from_secs(10);

/// Sets `builder` up for exactly these rules: TCP, UDP and name lookups
/// enabled only when granted, and every address checked.
pub fn apply(builder: &mut WasiCtxBuilder, rules: &NetworkRules, services: &HostServices) {
    builder
        .allow_tcp(rules.tcp())
        .allow_udp(rules.udp_allowed())
        .allow_ip_name_lookup(rules.lookup);
    if !rules.tcp() && !rules.udp_allowed() {
        // No socket can be created; wasmtime-wasi's default check denies all.
        return;
    }
    let checker = Arc::new(Checker {
        rules: rules.clone(),
        services: services.clone(),
        resolved: Mutex::new(HashMap::new()),
    });
    builder.socket_addr_check(move |addr, usage| {
        let checker = checker.clone();
        Box::pin(async move { checker.allows(addr, usage).await })
    });
}

/// Names resolved lately: when, and to what.
type Resolved = HashMap<String, (Instant, Arc<[IpAddr]>)>;

/// One instance's rules and where its refusals go.
#[derive(Debug)]
pub struct Checker {
    rules: NetworkRules,
    services: HostServices,
    resolved: Mutex<Resolved>,
}

impl Checker {
    /// A checker without [`apply`] (tests, benches).
    pub fn new(rules: NetworkRules, services: HostServices) -> Self {
        Self {
            rules,
            services,
            resolved: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `usage` of `addr` is allowed; reports the refusal if not.
    pub async fn allows(&self, addr: SocketAddr, usage: SocketAddrUse) -> bool {
        let (verb, list) = match usage {
            SocketAddrUse::TcpAccept => return true,
            SocketAddrUse::TcpConnect => ("connect", RuleList::Connect),
            SocketAddrUse::UdpSend => ("send udp", RuleList::Udp),
            SocketAddrUse::UdpReceive => return self.remote_allowed(addr, RuleList::Udp).await.is_ok(),
            SocketAddrUse::TcpBind | SocketAddrUse::UdpBind if is_ephemeral(addr) => return true,
            SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => ("bind", RuleList::Listen),
            SocketAddrUse::TcpListen => ("listen", RuleList::Listen),
        };
        let verdict = match list {
            RuleList::Listen => self.bind_allowed(addr),
            _ => self.remote_allowed(addr, list).await,
        };
        match verdict {
            Ok(()) => true,
            Err(note) => {
                let key = list.key();
                self.services.deny(
                    Capability::Network,
                    format!("{verb} {addr}: no rule in [capabilities.network] {key} allows it{note}"),
                );
                false
            }
        }
    }

    /// Whether a TCP connection to `addr` is allowed, without reporting a
    /// refusal (the caller reports one for the whole request): `Err`
    /// carries a note on why a name rule did not count. For `wasi:http`,
    /// whose host-side connector checks each address a name resolves to.
    pub async fn connect_verdict(&self, addr: SocketAddr) -> Result<(), String> {
        self.remote_allowed(addr, RuleList::Connect).await
    }

    /// Records what the host just resolved `name` to (the HTTP connector
    /// resolves a request's host itself), so a name rule for it is
    /// checked against those very addresses instead of a second lookup.
    pub fn remember(&self, name: &str, addrs: &[IpAddr]) {
        let addrs: Arc<[IpAddr]> = addrs.iter().map(|ip| ip.to_canonical()).collect();
        let mut cache = self.cache();
        if cache.len() > 64 {
            cache.clear();
        }
        cache.insert(name.to_ascii_lowercase(), (Instant::now(), addrs));
    }

    /// A local address against the `listen` rules.
    fn bind_allowed(&self, addr: SocketAddr) -> Result<(), String> {
        let ip = addr.ip().to_canonical();
        let covered = self.rules.listen.iter().any(|rule| {
            rule.ports.contains(addr.port())
                && match rule.host {
                    HostPattern::Addr(a) => a == ip || (a.is_unspecified() && a.is_ipv4() == ip.is_ipv4()),
                    _ => false,
                }
        });
        if covered { Ok(()) } else { Err(String::new()) }
    }

    /// A remote address against `connect` or `udp` rules. `Err` carries a
    /// note for the denial (why a name rule did not count).
    async fn remote_allowed(&self, addr: SocketAddr, list: RuleList) -> Result<(), String> {
        let rules = self.rules.list(list);
        let port_ok = |rule: &&Rule| rule.ports.contains(addr.port());
        if rules.iter().filter(port_ok).any(|rule| rule.covers_ip(addr.ip())) {
            return Ok(());
        }
        let names: Vec<&str> = rules
            .iter()
            .filter(port_ok)
            .filter_map(|rule| match &rule.host {
                HostPattern::Name(name) => Some(name.as_str()),
                _ => None,
            })
            .collect();
        let Some(first) = names.first() else {
            return Err(String::new());
        };
        let ip = addr.ip().to_canonical();
        if is_special(ip) {
            return Err(format!(
                " (the name rule for `{first}` does not count: a name never opens a loopback, link-local, \
                 multicast or unspecified address; add an IP rule such as \"{addr}\" if this is meant)"
            ));
        }
        for name in names {
            if self.resolve(name).await.contains(&ip) {
                return Ok(());
            }
        }
        Err(String::new())
    }

    /// The addresses `name` resolves to (empty if it does not, in time).
    async fn resolve(&self, name: &str) -> Arc<[IpAddr]> {
        let now = Instant::now();
        if let Some((when, addrs)) = self.cache().get(name)
            && now.duration_since(*when) < RESOLVE_TTL
        {
            return addrs.clone();
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Arc::from([]);
        }
        let lookup = tokio::net::lookup_host((name, 0));
        let addrs: Arc<[IpAddr]> = match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
            Ok(Ok(found)) => found.map(|a| a.ip().to_canonical()).collect(),
            _ => Arc::from([]),
        };
        self.remember(name, &addrs);
        addrs
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Resolved> {
        self.resolved.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The implicit bind of a client socket: any local address, any port.
fn is_ephemeral(addr: SocketAddr) -> bool {
    addr.port() == 0 && addr.ip().is_unspecified()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::Denial;

    fn checker(connect: &[&str], listen: &[&str], udp: &[&str]) -> (Checker, Arc<Mutex<Vec<Denial>>>) {
        let s = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let rules = NetworkRules::parse(&s(connect), &s(listen), &s(udp), false).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let services = HostServices {
            denials: Some(Arc::new(move |d| sink.lock().unwrap().push(d))),
            ..HostServices::default()
        };
        (Checker::new(rules, services), seen)
    }

    fn allows(checker: &Checker, addr: &str, usage: SocketAddrUse) -> bool {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(checker.allows(addr.parse().unwrap(), usage))
    }

    #[test]
    fn connect_rules_match_address_and_port() {
        let (c, seen) = checker(&["10.0.0.0/8:502", "127.0.0.1:1883", "[::1]:8000-8099"], &[], &[]);
        assert!(allows(&c, "10.1.2.3:502", SocketAddrUse::TcpConnect));
        assert!(allows(&c, "127.0.0.1:1883", SocketAddrUse::TcpConnect));
        assert!(allows(&c, "[::1]:8050", SocketAddrUse::TcpConnect));
        assert!(allows(&c, "[::ffff:10.9.9.9]:502", SocketAddrUse::TcpConnect));
        assert!(
            allows(&c, "0.0.0.0:0", SocketAddrUse::TcpBind),
            "a client's implicit bind"
        );
        assert!(!allows(&c, "10.1.2.3:503", SocketAddrUse::TcpConnect));
        assert!(!allows(&c, "11.0.0.1:502", SocketAddrUse::TcpConnect));
        assert!(!allows(&c, "127.0.0.1:1884", SocketAddrUse::TcpConnect));
        assert!(
            !allows(&c, "10.1.2.3:502", SocketAddrUse::UdpSend),
            "connect rules are TCP only"
        );
        assert!(!allows(&c, "0.0.0.0:8080", SocketAddrUse::TcpBind), "no listen rule");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 5);
        assert_eq!(
            seen[0].detail,
            "connect 10.1.2.3:503: no rule in [capabilities.network] connect allows it"
        );
        assert!(
            seen[3].detail.starts_with("send udp 10.1.2.3:502"),
            "{}",
            seen[3].detail
        );
        assert!(seen[4].detail.starts_with("bind 0.0.0.0:8080"), "{}", seen[4].detail);
    }

    #[test]
    fn a_name_never_opens_loopback() {
        let (c, seen) = checker(&["localhost:1883"], &[], &[]);
        assert!(!allows(&c, "127.0.0.1:1883", SocketAddrUse::TcpConnect));
        assert!(!allows(&c, "[::1]:1883", SocketAddrUse::TcpConnect));
        let detail = &seen.lock().unwrap()[0].detail;
        assert!(
            detail.contains("never opens a loopback") && detail.contains("127.0.0.1:1883"),
            "{detail}"
        );
    }

    #[test]
    fn listen_rules_match_the_bind_address() {
        let (c, _) = checker(&[], &["0.0.0.0:8080", "127.0.0.1:*"], &[]);
        assert!(allows(&c, "0.0.0.0:8080", SocketAddrUse::TcpBind));
        assert!(allows(&c, "0.0.0.0:8080", SocketAddrUse::TcpListen));
        assert!(
            allows(&c, "10.0.0.7:8080", SocketAddrUse::TcpBind),
            "one address of all"
        );
        assert!(allows(&c, "127.0.0.1:40000", SocketAddrUse::TcpListen));
        assert!(allows(&c, "127.0.0.1:9", SocketAddrUse::UdpBind));
        assert!(!allows(&c, "0.0.0.0:8081", SocketAddrUse::TcpListen));
        assert!(
            !allows(&c, "0.0.0.0:0", SocketAddrUse::TcpListen),
            "an unbound listen needs port *"
        );
        assert!(!allows(&c, "[::]:8080", SocketAddrUse::TcpListen), "no family crossing");
        let (one, _) = checker(&[], &["127.0.0.1:8080"], &[]);
        assert!(
            !allows(&one, "0.0.0.0:8080", SocketAddrUse::TcpBind),
            "one address never opens all"
        );
        assert!(allows(&one, "1.2.3.4:5", SocketAddrUse::TcpAccept));
    }

    #[test]
    fn udp_receives_are_dropped_quietly() {
        let (c, seen) = checker(&[], &[], &["10.0.0.5:5683"]);
        assert!(allows(&c, "10.0.0.5:5683", SocketAddrUse::UdpSend));
        assert!(allows(&c, "10.0.0.5:5683", SocketAddrUse::UdpReceive));
        assert!(!allows(&c, "10.0.0.6:5683", SocketAddrUse::UdpReceive));
        assert!(seen.lock().unwrap().is_empty());
    }
}
