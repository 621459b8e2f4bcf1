//! The MQTT broker address: `mqtt://host[:port]` (plain TCP, default 1883)
//! or `mqtts://host[:port]` (TLS, default 8883); an IPv6 address goes in
//! brackets, `mqtts://[::1]:8883`.
//!
//! It lives in core rather than in `arcella-mqtt` because the daemon's
//! config validation (`[mqtt] url`) must read it exactly as the agent does,
//! and `arcella-mqtt` depends on core, not the other way round.
//!
//! Deliberately narrow: no user info (credentials have settings of their
//! own and must not end up in logs with the URL), no path, query or
//! fragment (MQTT has no use for them; accepting and ignoring one would
//! hide a typo). A lone trailing `/` is the empty path and is accepted.

use std::net::Ipv6Addr;

/// A parsed broker URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// `mqtts://`.
    pub tls: bool,
    /// A name or an address; an IPv6 address without its brackets (the
    /// form rumqttc wants for both connecting and checking certificates).
    pub host: String,
    pub port: u16,
}

/// Why a broker URL was refused. `url` is what was given, with any user
/// info replaced by `***` so a password never reaches a log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("broker URL `{url}`: {problem}")]
pub struct BadBrokerUrl {
    pub url: String,
    pub problem: UrlProblem,
}

/// What is wrong with a broker URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlProblem {
    #[error("the scheme must be mqtt:// or mqtts://")]
    Scheme,
    #[error("credentials go in the username and password settings, not in the URL")]
    UserInfo,
    #[error("the host is empty")]
    EmptyHost,
    #[error("the host may hold only letters, digits, '.', '-' and '_' (an IPv6 address goes in brackets: [::1]:1883)")]
    BadHost,
    #[error("`[...]` must hold an IPv6 address")]
    BadIpv6,
    #[error("the port must be a number from 1 to 65535")]
    BadPort,
    #[error("a broker URL has no path, query or fragment")]
    Path,
}

impl BrokerUrl {
    pub const MQTT_PORT: u16 = 1883;
    pub const MQTTS_PORT: u16 = 8883;

    pub fn parse(url: &str) -> Result<Self, BadBrokerUrl> {
        let bad = |problem| BadBrokerUrl {
            url: redacted(url),
            problem,
        };
        let (scheme, rest) = url.split_once("://").ok_or(bad(UrlProblem::Scheme))?;
        let tls = if scheme.eq_ignore_ascii_case("mqtt") {
            false
        } else if scheme.eq_ignore_ascii_case("mqtts") {
            true
        } else {
            return Err(bad(UrlProblem::Scheme));
        };
        if rest.contains('@') {
            return Err(bad(UrlProblem::UserInfo));
        }
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#']) {
            return Err(bad(UrlProblem::Path));
        }
        let (host, port) = split_host_port(authority).map_err(bad)?;
        let port = match port {
            None if tls => Self::MQTTS_PORT,
            None => Self::MQTT_PORT,
            Some(text) => match text.parse::<u16>() {
                Ok(port) if port != 0 && text.bytes().all(|b| b.is_ascii_digit()) => port,
                _ => return Err(bad(UrlProblem::BadPort)),
            },
        };
        Ok(Self { tls, host, port })
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port` → the host and the port text.
fn split_host_port(authority: &str) -> Result<(String, Option<&str>), UrlProblem> {
    if let Some(bracketed) = authority.strip_prefix('[') {
        let (address, after) = bracketed.split_once(']').ok_or(UrlProblem::BadIpv6)?;
        let address: Ipv6Addr = address.parse().map_err(|_| UrlProblem::BadIpv6)?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(UrlProblem::BadPort)?),
        };
        return Ok((address.to_string(), port));
    }
    if authority.matches(':').count() > 1 {
        // `mqtt://::1` or `mqtt://fe80::1:1883`: an unbracketed IPv6 address.
        return Err(UrlProblem::BadHost);
    }
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    if host.is_empty() {
        return Err(UrlProblem::EmptyHost);
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    if !host.chars().all(allowed) {
        return Err(UrlProblem::BadHost);
    }
    Ok((host.to_owned(), port))
}

/// `url` with everything between `://` and the last `@` hidden.
fn redacted(url: &str) -> String {
    let Some(at) = url.rfind('@') else {
        return url.to_owned();
    };
    let start = url.find("://").map_or(0, |i| i + 3);
    let start = if start > at { 0 } else { start };
    format!("{}***{}", &url[..start], &url[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(url: &str) -> (bool, String, u16) {
        let u = BrokerUrl::parse(url).unwrap();
        (u.tls, u.host, u.port)
    }

    fn problem(url: &str) -> UrlProblem {
        BrokerUrl::parse(url).unwrap_err().problem
    }

    #[test]
    fn schemes_hosts_and_default_ports() {
        assert_eq!(
            ok("mqtt://broker.example.com"),
            (false, "broker.example.com".into(), 1883)
        );
        assert_eq!(
            ok("mqtts://broker.example.com"),
            (true, "broker.example.com".into(), 8883)
        );
        assert_eq!(ok("mqtt://10.0.0.2:1884"), (false, "10.0.0.2".into(), 1884));
        assert_eq!(ok("mqtts://localhost:18883/"), (true, "localhost".into(), 18883));
        assert_eq!(ok("MQTTS://gw_broker-1:1"), (true, "gw_broker-1".into(), 1));
    }

    #[test]
    fn ipv6_goes_in_brackets_and_comes_out_bare() {
        assert_eq!(ok("mqtt://[::1]:1883"), (false, "::1".into(), 1883));
        assert_eq!(ok("mqtts://[fe80::1]"), (true, "fe80::1".into(), 8883));
        assert_eq!(problem("mqtt://::1"), UrlProblem::BadHost);
        assert_eq!(problem("mqtt://fe80::1:1883"), UrlProblem::BadHost);
        assert_eq!(problem("mqtt://[not-v6]:1883"), UrlProblem::BadIpv6);
        assert_eq!(problem("mqtt://[::1"), UrlProblem::BadIpv6);
        assert_eq!(problem("mqtt://[::1]1883"), UrlProblem::BadPort);
    }

    #[test]
    fn every_other_shape_is_refused_with_its_reason() {
        assert_eq!(problem("http://x"), UrlProblem::Scheme);
        assert_eq!(problem("broker:1883"), UrlProblem::Scheme);
        assert_eq!(problem("tcp://broker:1883"), UrlProblem::Scheme);
        assert_eq!(problem("mqtt://"), UrlProblem::EmptyHost);
        assert_eq!(problem("mqtt://:1883"), UrlProblem::EmptyHost);
        assert_eq!(problem("mqtt://bro ker"), UrlProblem::BadHost);
        assert_eq!(problem("mqtt://host:"), UrlProblem::BadPort);
        assert_eq!(problem("mqtt://host:0"), UrlProblem::BadPort);
        assert_eq!(problem("mqtt://host:65536"), UrlProblem::BadPort);
        assert_eq!(problem("mqtt://host:+80"), UrlProblem::BadPort);
        assert_eq!(problem("mqtt://host:http"), UrlProblem::BadPort);
        assert_eq!(problem("mqtt://host/arcella"), UrlProblem::Path);
        assert_eq!(problem("mqtt://host:1883/a"), UrlProblem::Path);
        assert_eq!(problem("mqtt://host?x=1"), UrlProblem::Path);
        assert_eq!(problem("mqtt://host#f"), UrlProblem::Path);
        assert_eq!(problem("mqtt://user@host"), UrlProblem::UserInfo);
    }

    #[test]
    fn the_message_names_the_url_and_the_problem() {
        let err = BrokerUrl::parse("http://x").unwrap_err().to_string();
        assert_eq!(err, "broker URL `http://x`: the scheme must be mqtt:// or mqtts://");
    }

    #[test]
    fn a_password_in_the_url_never_reaches_the_message() {
        for url in [
            "mqtt://ops:s3cret@broker:1883",
            "mqtts://ops:s3/cr#et@broker",
            "ops:s3cret@broker",
        ] {
            let err = BrokerUrl::parse(url).unwrap_err().to_string();
            assert!(!err.contains("s3"), "{err}");
            assert!(err.contains("***@broker"), "{err}");
        }
    }
}
