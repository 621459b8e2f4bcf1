//! One network rule, `HOST:PORT`, parsed once at install and matched by
//! address afterwards.
//!
//! The host part is an IP address (`10.0.0.5`, `[fd00::1]`), a network in
//! CIDR form (`10.0.0.0/8`, `[fd00::/16]`) or a DNS name
//! (`api.example.com`, `localhost`). The port part is a number
//! (`1`–`65535`), an inclusive range (`8000-8099`) or `*` (any port). IPv6
//! goes in brackets, so the last `:` always starts the port.
//!
//! No other wildcard exists, deliberately: `*.example.com` cannot be
//! enforced, because the check sees only the address a guest connects to,
//! never the name it looked up, and a name rule is matched by resolving
//! that very name. "Any host" is written as a network: `0.0.0.0/0:443`,
//! `[::/0]:443`.

use std::net::IpAddr;

/// What the host part of a rule names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// One address (IPv4-mapped IPv6 addresses are kept as IPv4).
    Addr(IpAddr),
    /// A network: every address whose first `prefix` bits equal `base`'s.
    Net { base: IpAddr, prefix: u8 },
    /// A DNS name, lower-case, matched by resolving it (see `check.rs`).
    Name(String),
}

/// Which ports a rule covers (both ends inclusive; `*` is `0..=65535`,
/// which includes the port 0 of an ephemeral bind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub const ANY: Self = Self {
        first: 0,
        last: u16::MAX,
    };

    pub fn contains(self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

/// One parsed rule, with the text it came from (for messages and for the
/// trip to a worker, which parses it again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub text: String,
    pub host: HostPattern,
    pub ports: PortRange,
}

/// Why a rule does not parse. Each message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("is empty; write HOST:PORT, for example \"api.example.com:443\" or \"10.0.0.0/8:502\"")]
    Empty,
    #[error("contains whitespace; write HOST:PORT without spaces")]
    Whitespace,
    #[error("has no port; write HOST:PORT, for example \"{0}:443\", or \"{0}:*\" for any port")]
    NoPort(String),
    #[error("has an empty host; write HOST:PORT with an address, network or name before the ':'")]
    EmptyHost,
    #[error("is an IPv6 address without brackets; write it as \"[{0}]:PORT\" (the last ':' starts the port)")]
    BareIpv6(String),
    #[error("has `[` without a matching `]:PORT`; write IPv6 as \"[::1]:80\" or \"[fd00::/16]:502\"")]
    Brackets,
    #[error("puts `{0}` in brackets, which are for IPv6 only; write an IPv4 address without them")]
    BracketedNotIpv6(String),
    #[error(
        "uses a wildcard host `{0}`, which cannot be enforced (the host sees only the address a guest \
         connects to, never the name it looked up); list each name, or give a network such as \
         \"0.0.0.0/0:PORT\" for any IPv4 host"
    )]
    WildcardHost(String),
    #[error("has `{0}`, which is not an IP address, a network (ADDR/PREFIX) or a DNS name: {1}")]
    BadHost(String, &'static str),
    #[error("has network `{0}` with a prefix length that is not 0 to {1}")]
    BadPrefix(String, u8),
    #[error("has network `{given}` with host bits set; write the network address: \"{network}\"")]
    HostBits { given: String, network: String },
    #[error("has port 0, which is no port; write a port from 1 to 65535, a range such as 8000-8099, or * for any")]
    PortZero,
    #[error("has port `{0}`, which is not a number from 1 to 65535, a range FIRST-LAST, or *")]
    BadPort(String),
    #[error("has port range `{0}` whose first port is above its last; write it low-high")]
    BackwardsRange(String),
    #[error(
        "names `{0}`: a listen rule is a local address to bind, so it takes an IP address (0.0.0.0 for \
         every IPv4 interface, [::] for every IPv6 one), not a name or a network"
    )]
    ListenNotAddress(String),
}

impl Rule {
    /// Parses `HOST:PORT` (see the module doc for the forms).
    pub fn parse(text: &str) -> Result<Self, RuleError> {
        if text.is_empty() {
            return Err(RuleError::Empty);
        }
        if text.chars().any(char::is_whitespace) {
            return Err(RuleError::Whitespace);
        }
        let (host, port) = split(text)?;
        let host = parse_host(host)?;
        let ports = parse_ports(port)?;
        Ok(Self {
            text: text.to_owned(),
            host,
            ports,
        })
    }

    /// Parses a `listen` rule: an address, never a name or a network.
    pub fn parse_listen(text: &str) -> Result<Self, RuleError> {
        let rule = Self::parse(text)?;
        match rule.host {
            HostPattern::Addr(_) => Ok(rule),
            _ => Err(RuleError::ListenNotAddress(host_text(text).to_owned())),
        }
    }

    /// Whether an IP rule covers `ip` (always false for a name rule).
    pub fn covers_ip(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match &self.host {
            HostPattern::Addr(addr) => *addr == ip,
            HostPattern::Net { base, prefix } => in_network(ip, *base, *prefix),
            HostPattern::Name(_) => false,
        }
    }
}

/// The host part of a rule's text, for messages.
fn host_text(text: &str) -> &str {
    split(text).map_or(text, |(host, _)| host)
}

/// `HOST:PORT` or `[V6]:PORT` into its two parts.
fn split(text: &str) -> Result<(&str, &str), RuleError> {
    if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or(RuleError::Brackets)?;
        let port = after.strip_prefix(':').ok_or(RuleError::Brackets)?;
        if inside.is_empty() {
            return Err(RuleError::EmptyHost);
        }
        if !inside.contains(':') {
            return Err(RuleError::BracketedNotIpv6(inside.to_owned()));
        }
        return Ok((inside, port));
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(RuleError::NoPort(text.to_owned()));
    };
    if host.contains(':') {
        return Err(RuleError::BareIpv6(host.to_owned()));
    }
    if host.is_empty() {
        return Err(RuleError::EmptyHost);
    }
    Ok((host, port))
}

fn parse_host(host: &str) -> Result<HostPattern, RuleError> {
    if host.contains('*') {
        return Err(RuleError::WildcardHost(host.to_owned()));
    }
    if let Some((addr, prefix)) = host.split_once('/') {
        let base: IpAddr = addr
            .parse()
            .map_err(|_| RuleError::BadHost(host.to_owned(), "a network is an IP address, '/', a prefix length"))?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = match prefix.parse() {
            Ok(p) if p <= max && !prefix.starts_with('+') => p,
            _ => return Err(RuleError::BadPrefix(host.to_owned(), max)),
        };
        let base = base.to_canonical();
        let prefix = match (addr.parse::<IpAddr>(), base) {
            // `[::ffff:10.0.0.0/104]` is the IPv4 network 10.0.0.0/8.
            (Ok(IpAddr::V6(_)), IpAddr::V4(_)) => prefix.saturating_sub(96),
            _ => prefix,
        };
        let network = mask(base, prefix);
        if network != base {
            let network = match network {
                IpAddr::V4(n) => format!("{n}/{prefix}"),
                IpAddr::V6(n) => format!("[{n}/{prefix}]"),
            };
            return Err(RuleError::HostBits {
                given: host.to_owned(),
                network,
            });
        }
        return Ok(HostPattern::Net { base, prefix });
    }
    if let Ok(addr) = host.parse::<IpAddr>() {
        return Ok(HostPattern::Addr(addr.to_canonical()));
    }
    check_name(host).map_err(|why| RuleError::BadHost(host.to_owned(), why))?;
    Ok(HostPattern::Name(host.to_ascii_lowercase()))
}

/// A DNS name: dot-separated labels of 1–63 letters, digits and `-` (not at
/// either end), at most 253 bytes, and not all-numeric at the end (so a
/// mistyped IPv4 address such as `10.0.0.256` is not taken for a name).
fn check_name(name: &str) -> Result<(), &'static str> {
    if name.len() > 253 {
        return Err("a DNS name is at most 253 characters");
    }
    if name.ends_with('.') {
        return Err("remove the trailing '.'");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("a DNS name has no empty labels ('..' or a leading '.')");
        }
        if label.len() > 63 {
            return Err("a DNS label is at most 63 characters");
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err("a DNS name has only letters, digits, '-' and '.'");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a DNS label does not start or end with '-'");
        }
    }
    if name
        .rsplit('.')
        .next()
        .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("it looks like an IPv4 address but is not a valid one");
    }
    Ok(())
}

fn parse_ports(port: &str) -> Result<PortRange, RuleError> {
    if port == "*" {
        return Ok(PortRange::ANY);
    }
    let number = |p: &str| -> Result<u16, RuleError> {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(RuleError::BadPort(port.to_owned()));
        }
        match p.parse::<u16>() {
            Ok(0) => Err(RuleError::PortZero),
            Ok(n) => Ok(n),
            Err(_) => Err(RuleError::BadPort(port.to_owned())),
        }
    };
    match port.split_once('-') {
        Some((first, last)) => {
            let (first, last) = (number(first)?, number(last)?);
            if first > last {
                return Err(RuleError::BackwardsRange(port.to_owned()));
            }
            Ok(PortRange { first, last })
        }
        None => {
            let n = number(port)?;
            Ok(PortRange { first: n, last: n })
        }
    }
}

/// `ip` with all but its first `prefix` bits cleared.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let kept = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((bits & kept).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let kept = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((bits & kept).into())
        }
    }
}

fn in_network(ip: IpAddr, base: IpAddr, prefix: u8) -> bool {
    ip.is_ipv4() == base.is_ipv4() && mask(ip, prefix) == base
}

/// Addresses a name rule never opens, whatever the name resolves to: a
/// name that resolves to loopback (DNS rebinding) must not reach the
/// device's own services. Reaching them takes an explicit IP rule.
pub fn is_special(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            v4.is_loopback() || v4.is_unspecified() || v4.is_link_local() || v4.is_multicast() || v4.is_broadcast()
        }
        IpAddr::V6(v6) => v6.is_loopback() || v6.is_unspecified() || v6.is_multicast() || v6.is_unicast_link_local(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(text: &str) -> HostPattern {
        Rule::parse(text).unwrap().host
    }

    #[test]
    fn every_form_parses() {
        assert_eq!(host("10.0.0.5:502"), HostPattern::Addr("10.0.0.5".parse().unwrap()));
        assert_eq!(host("[::1]:80"), HostPattern::Addr("::1".parse().unwrap()));
        assert_eq!(
            host("[::ffff:10.0.0.5]:80"),
            HostPattern::Addr("10.0.0.5".parse().unwrap()),
            "IPv4-mapped is IPv4"
        );
        assert_eq!(
            host("10.0.0.0/8:502"),
            HostPattern::Net {
                base: "10.0.0.0".parse().unwrap(),
                prefix: 8
            }
        );
        assert_eq!(
            host("[fd00::/16]:1"),
            HostPattern::Net {
                base: "fd00::".parse().unwrap(),
                prefix: 16
            }
        );
        assert_eq!(host("Api.Example.COM:443"), HostPattern::Name("api.example.com".into()));
        assert_eq!(host("localhost:1883"), HostPattern::Name("localhost".into()));
        let r = Rule::parse("h:8000-8099").unwrap();
        assert_eq!(
            r.ports,
            PortRange {
                first: 8000,
                last: 8099
            }
        );
        assert!(r.ports.contains(8000) && r.ports.contains(8099) && !r.ports.contains(8100));
        assert_eq!(Rule::parse("0.0.0.0/0:*").unwrap().ports, PortRange::ANY);
        assert_eq!(Rule::parse("h:65535").unwrap().ports.last, 65535);
    }

    #[test]
    fn bad_rules_say_what_to_write() {
        let cases: &[(&str, &str)] = &[
            ("", "is empty"),
            (" 10.0.0.1:80", "whitespace"),
            ("example.com", "no port"),
            (":80", "empty host"),
            ("[]:80", "empty host"),
            ("::1:80", "without brackets"),
            ("[::1]80", "without a matching"),
            ("[::1:80", "without a matching"),
            ("[10.0.0.1]:80", "IPv6 only"),
            ("*.example.com:443", "wildcard host"),
            ("*:443", "wildcard host"),
            ("10.0.0.0/33:1", "prefix length"),
            ("10.0.0.0/x:1", "prefix length"),
            ("[fd00::/129]:1", "prefix length"),
            ("10.1.2.3/8:1", "\"10.0.0.0/8\""),
            ("host:0", "port 0"),
            ("host:0-5", "port 0"),
            ("host:65536", "not a number"),
            ("host:http", "not a number"),
            ("host:", "not a number"),
            ("host:+80", "not a number"),
            ("host:9-", "not a number"),
            ("host:90-80", "low-high"),
            ("host:**", "not a number"),
            ("10.0.0.256:1", "not a valid one"),
            ("300.1.1.1:1", "not a valid one"),
            ("bad_name:1", "letters, digits"),
            ("-bad.com:1", "'-'"),
            ("a..b:1", "empty labels"),
            ("example.com.:1", "trailing"),
            ("x/8:1", "network is"),
        ];
        for (text, needle) in cases {
            let err = Rule::parse(text).expect_err(text).to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
        let long = format!("{}.com:1", "a".repeat(64));
        assert!(Rule::parse(&long).unwrap_err().to_string().contains("63"));
    }

    #[test]
    fn listen_rules_take_addresses_only() {
        assert!(Rule::parse_listen("0.0.0.0:8080").is_ok());
        assert!(Rule::parse_listen("[::]:*").is_ok());
        for bad in ["localhost:80", "10.0.0.0/8:80"] {
            let err = Rule::parse_listen(bad).unwrap_err().to_string();
            assert!(err.contains("local address"), "{err}");
        }
    }

    #[test]
    fn ip_rules_match_exactly_their_addresses() {
        let net = Rule::parse("10.0.0.0/8:502").unwrap();
        assert!(net.covers_ip("10.255.1.2".parse().unwrap()));
        assert!(
            net.covers_ip("::ffff:10.1.2.3".parse().unwrap()),
            "mapped addresses are IPv4"
        );
        assert!(!net.covers_ip("11.0.0.1".parse().unwrap()));
        assert!(!net.covers_ip("::a00:1".parse().unwrap()), "no family crossing");
        let all = Rule::parse("0.0.0.0/0:1").unwrap();
        assert!(all.covers_ip("1.2.3.4".parse().unwrap()));
        assert!(!all.covers_ip("::1".parse().unwrap()));
        let one = Rule::parse("127.0.0.1:1").unwrap();
        assert!(one.covers_ip("127.0.0.1".parse().unwrap()));
        assert!(!one.covers_ip("127.0.0.2".parse().unwrap()));
        let v6 = Rule::parse("[fd00::/16]:1").unwrap();
        assert!(v6.covers_ip("fd00:1::5".parse().unwrap()));
        assert!(!v6.covers_ip("fd01::5".parse().unwrap()));
        assert!(
            !Rule::parse("localhost:1")
                .unwrap()
                .covers_ip("127.0.0.1".parse().unwrap())
        );
    }

    #[test]
    fn special_addresses_are_the_rebinding_targets() {
        for ip in [
            "127.0.0.1",
            "127.8.0.1",
            "0.0.0.0",
            "169.254.169.254",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_special(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["10.0.0.1", "93.184.216.34", "2001:db8::1", "fd00::1"] {
            assert!(!is_special(ip.parse().unwrap()), "{ip}");
        }
    }
}
