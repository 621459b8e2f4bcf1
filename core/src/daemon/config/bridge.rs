//! `[bridge]` in arcella.toml: the device's message bus joined to an MQTT
//! broker (the fleet's, or a local mosquitto where Zigbee2MQTT and
//! sensors publish), with topic prefixes mapped each way. Only what a
//! route names crosses: the routes are the bridge's ACL (docs/messaging.md).
//!
//! ```toml
//! [bridge]
//! url = "mqtt://127.0.0.1:1883"
//! client_id = "gw1-bridge"        # default: arcella-bridge-<mqtt.device>, or arcella-bridge
//! buffer = 1000                   # messages kept for the broker while it is away
//!
//! [[bridge.out]]                  # bus → broker
//! local = "home/#"
//! remote = "site1/home/#"
//! qos = 1
//!
//! [[bridge.in]]                   # broker → bus
//! remote = "zigbee2mqtt/#"
//! local = "z2m/#"
//! ```
//!
//! A route maps a topic (`a/b` → `x/y`) or a subtree (`a/#` → `x/#`: `a`
//! and everything under it; `#` alone is every topic). `+` is refused: a
//! prefix map says exactly where each topic lands. Connection settings
//! (`username`, `password`/`password_file`, `ca_file`, `client_cert`,
//! `client_key`) mean what they mean in `[mqtt]`.

use crate::broker_url::BrokerUrl;
use crate::host::messaging::topic::{check_filter, check_topic};
use serde::Deserialize;
use std::fmt;
use std::path::PathBuf;

/// `buffer` unless given.
pub const DEFAULT_BUFFER: usize = 1000;
/// The largest `buffer` (each message is at most ~10 KiB).
pub const MAX_BUFFER: usize = 100_000;
/// The most routes each way.
pub const MAX_ROUTES: usize = 64;

/// `[bridge]`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeSettings {
    pub url: String,
    pub client_id: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    #[serde(default = "default_buffer")]
    pub buffer: usize,
    #[serde(default)]
    pub out: Vec<Route>,
    #[serde(default, rename = "in")]
    pub into: Vec<Route>,
}

fn default_buffer() -> usize {
    DEFAULT_BUFFER
}

/// One `[[bridge.out]]` or `[[bridge.in]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// On the device's bus.
    pub local: String,
    /// On the broker.
    pub remote: String,
    /// 0 (at most once, the default) or 1 (at least once).
    #[serde(default)]
    pub qos: u8,
}

/// A route's pattern: one topic, or a subtree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    Topic(String),
    /// `prefix/#` (`prefix` and below); an empty prefix is `#`.
    Under(String),
}

impl Pattern {
    fn parse(text: &str) -> Result<Self, String> {
        check_filter(text).map_err(|e| format!("= {text:?} {e}"))?;
        if text.contains('+') {
            return Err(format!(
                "= {text:?} uses `+`; a route maps a topic or a subtree (`a/#`), so where each topic lands is exact"
            ));
        }
        Ok(match text.strip_suffix('#') {
            Some(prefix) => Self::Under(prefix.trim_end_matches('/').to_owned()),
            None => Self::Topic(text.to_owned()),
        })
    }

    /// The part of `topic` below this pattern (`Some("")` for the topic
    /// or prefix itself); `None`: not matched.
    fn rest<'t>(&self, topic: &'t str) -> Option<&'t str> {
        match self {
            Self::Topic(t) => (t == topic).then_some(""),
            Self::Under(p) if p.is_empty() => Some(topic),
            Self::Under(p) => match topic.strip_prefix(p.as_str()) {
                Some("") => Some(""),
                Some(rest) => rest.strip_prefix('/'),
                None => None,
            },
        }
    }

    fn join(&self, rest: &str) -> Option<String> {
        match self {
            Self::Topic(t) => Some(t.clone()),
            Self::Under(p) if p.is_empty() => (!rest.is_empty()).then(|| rest.to_owned()),
            Self::Under(p) if rest.is_empty() => Some(p.clone()),
            Self::Under(p) => Some(format!("{p}/{rest}")),
        }
    }

    /// The filter to subscribe with.
    pub fn filter(&self) -> String {
        match self {
            Self::Topic(t) => t.clone(),
            Self::Under(p) if p.is_empty() => "#".to_owned(),
            Self::Under(p) => format!("{p}/#"),
        }
    }
}

/// A checked route: `from` on one side, `to` on the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Map {
    pub from: Pattern,
    pub to: Pattern,
    pub qos: u8,
}

impl Map {
    /// Where `topic` lands, if this route takes it.
    pub fn map(&self, topic: &str) -> Option<String> {
        let mapped = self.to.join(self.from.rest(topic)?)?;
        check_topic(&mapped).ok()?;
        Some(mapped)
    }
}

/// The first route of `maps` that takes `topic`, and where it lands.
pub fn route<'m>(maps: &'m [Map], topic: &str) -> Option<(&'m Map, String)> {
    maps.iter().find_map(|m| m.map(topic).map(|t| (m, t)))
}

impl BridgeSettings {
    /// The client id: `client_id`, or one derived from the device's name.
    pub fn client_id(&self, device: Option<&str>) -> String {
        match (&self.client_id, device) {
            (Some(id), _) => id.clone(),
            (None, Some(device)) => format!("arcella-bridge-{device}"),
            (None, None) => "arcella-bridge".to_owned(),
        }
    }

    /// `[[bridge.out]]` checked: bus → broker.
    pub fn out_maps(&self) -> Result<Vec<Map>, (&'static str, String)> {
        maps(&self.out, "bridge.out", true)
    }

    /// `[[bridge.in]]` checked: broker → bus.
    pub fn in_maps(&self) -> Result<Vec<Map>, (&'static str, String)> {
        maps(&self.into, "bridge.in", false)
    }

    /// Everything that can be checked without the disk or the network.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let url = BrokerUrl::parse(&self.url).map_err(|e| ("bridge.url", e.to_string()))?;
        if self.client_id.as_deref() == Some("") {
            return Err(("bridge.client_id", "must not be empty (it names the session)".into()));
        }
        if self.password.is_some() && self.password_file.is_some() {
            return Err((
                "bridge.password_file",
                "give password or password_file, not both".into(),
            ));
        }
        if (self.password.is_some() || self.password_file.is_some()) && self.username.is_none() {
            return Err(("bridge.username", "a password needs a username".into()));
        }
        if url.tls && self.ca_file.is_none() {
            return Err((
                "bridge.ca_file",
                format!("`{}` is mqtts://, which needs ca_file", self.url),
            ));
        }
        if !url.tls && (self.ca_file.is_some() || self.client_cert.is_some() || self.client_key.is_some()) {
            return Err((
                "bridge.url",
                format!("`{}` is plain TCP but a TLS file is set; use mqtts://", self.url),
            ));
        }
        if !(1..=MAX_BUFFER).contains(&self.buffer) {
            return Err((
                "bridge.buffer",
                format!(
                    "= {} is out of range: give between 1 and {MAX_BUFFER} messages",
                    self.buffer
                ),
            ));
        }
        if self.out.is_empty() && self.into.is_empty() {
            return Err((
                "bridge",
                "has no routes: add [[bridge.out]] (bus → broker) or [[bridge.in]] (broker → bus), or remove [bridge]"
                    .into(),
            ));
        }
        self.out_maps()?;
        self.in_maps()?;
        Ok(())
    }

    /// The password, from `password` or the first line of `password_file`.
    pub fn read_password(&self) -> Result<Option<String>, String> {
        let Some(path) = &self.password_file else {
            return Ok(self.password.clone());
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("[bridge] password_file `{}`: {e}", path.display()))?;
        Ok(Some(text.trim_end_matches(['\n', '\r']).to_owned()))
    }
}

fn maps(routes: &[Route], key: &'static str, outward: bool) -> Result<Vec<Map>, (&'static str, String)> {
    if routes.len() > MAX_ROUTES {
        return Err((key, format!("has {} routes; at most {MAX_ROUTES}", routes.len())));
    }
    routes
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let at = |side: &str, why: String| (key, format!("#{} {side} {why}", i + 1));
            let local = Pattern::parse(&r.local).map_err(|e| at("local", e))?;
            let remote = Pattern::parse(&r.remote).map_err(|e| at("remote", e))?;
            if matches!(local, Pattern::Topic(_)) != matches!(remote, Pattern::Topic(_)) {
                return Err(at(
                    "local/remote",
                    format!(
                        "map {:?} to {:?}: a topic maps to a topic and a subtree (`a/#`) to a subtree",
                        r.local, r.remote
                    ),
                ));
            }
            if r.qos > 1 {
                return Err(at("qos", format!("= {} is not offered: give 0 or 1", r.qos)));
            }
            let (from, to) = if outward { (local, remote) } else { (remote, local) };
            Ok(Map { from, to, qos: r.qos })
        })
        .collect()
}

impl fmt::Debug for BridgeSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BridgeSettings")
            .field("url", &self.url)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("buffer", &self.buffer)
            .field("out", &self.out)
            .field("in", &self.into)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str) -> BridgeSettings {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn the_docs_example_maps_both_ways() {
        let s = settings(
            "url = \"mqtt://127.0.0.1:1883\"\n[[out]]\nlocal = \"home/#\"\nremote = \"site1/home/#\"\nqos = 1\n\
             [[in]]\nremote = \"zigbee2mqtt/#\"\nlocal = \"z2m/#\"\n[[in]]\nremote = \"cmd/x\"\nlocal = \"cmd/thermo/set\"\n",
        );
        s.validate().unwrap();
        let out = s.out_maps().unwrap();
        assert_eq!(route(&out, "home/living/temp").unwrap().1, "site1/home/living/temp");
        assert_eq!(route(&out, "home").unwrap().1, "site1/home");
        assert!(route(&out, "homeless/x").is_none());
        assert!(route(&out, "sensors/x").is_none());
        let inward = s.in_maps().unwrap();
        assert_eq!(route(&inward, "zigbee2mqtt/plug/state").unwrap().1, "z2m/plug/state");
        assert_eq!(route(&inward, "cmd/x").unwrap().1, "cmd/thermo/set");
        assert!(route(&inward, "cmd/x/y").is_none());
        assert_eq!(inward[0].from.filter(), "zigbee2mqtt/#");
        let all = Map {
            from: Pattern::parse("#").unwrap(),
            to: Pattern::parse("dev/#").unwrap(),
            qos: 0,
        };
        assert_eq!(all.map("a/b").unwrap(), "dev/a/b");
    }

    #[test]
    fn bad_routes_are_named() {
        let bad = |route: &str| {
            let s = settings(&format!("url = \"mqtt://h\"\n[[out]]\n{route}\n"));
            s.validate().unwrap_err().1
        };
        assert!(bad("local = \"a/+/b\"\nremote = \"x/#\"").contains("uses `+`"));
        assert!(bad("local = \"a/#\"\nremote = \"x\"").contains("a topic maps to a topic"));
        assert!(bad("local = \"a\"\nremote = \"x\"\nqos = 2").contains("give 0 or 1"));
        assert!(bad("local = \"a/#/c\"\nremote = \"x/#\"").contains("may only end"));
        let none = settings("url = \"mqtt://h\"\n");
        assert!(none.validate().unwrap_err().1.contains("has no routes"));
    }
}
