//! `wasi:sockets`, deny by default: a component may open exactly the
//! connections, listeners and datagram peers its `[capabilities.network]`
//! rules allow (or `arcella run --connect/--listen/--udp/--lookup`).
//!
//! The rules travel with the instance's [`crate::run::Grants`] and are
//! enforced where the socket lives (in the daemon or in the worker) through
//! wasmtime-wasi's socket address check ([`check`]). Core modules (WASI
//! preview 1) have no socket API at all: network grants are for
//! components only, and install refuses them on a core module.

pub mod check;
pub mod refuse;
pub mod rules;

pub use rules::{HostPattern, PortRange, Rule, RuleError};

use serde::{Deserialize, Serialize};

/// The three rule lists a grant has, named as in `deployment.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleList {
    Connect,
    Listen,
    Udp,
}

impl RuleList {
    /// The key in `[capabilities.network]` (and, with `--`, the flag of
    /// `arcella run`).
    pub fn key(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Listen => "listen",
            Self::Udp => "udp",
        }
    }
}

/// A rule that does not parse, and where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}[{index}] = {text:?} {reason}", list.key())]
pub struct BadRule {
    pub list: RuleList,
    pub index: usize,
    pub text: String,
    pub reason: RuleError,
}

/// An instance's network grant, parsed. Empty (the default) grants nothing:
/// no socket can even be created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "NetworkText", into = "NetworkText")]
pub struct NetworkRules {
    /// Remote TCP endpoints a guest may connect to.
    pub connect: Vec<Rule>,
    /// Local addresses a guest may listen on (TCP) or bind to a fixed
    /// port (UDP).
    pub listen: Vec<Rule>,
    /// Remote UDP peers a guest may send to and receive from.
    pub udp: Vec<Rule>,
    /// Whether the guest may resolve names (`wasi:sockets/ip-name-lookup`).
    pub lookup: bool,
}

impl NetworkRules {
    /// Parses the rule texts; the first bad one is the error.
    pub fn parse(connect: &[String], listen: &[String], udp: &[String], lookup: bool) -> Result<Self, BadRule> {
        let list = |which: RuleList, texts: &[String]| -> Result<Vec<Rule>, BadRule> {
            texts
                .iter()
                .enumerate()
                .map(|(index, text)| {
                    let parsed = match which {
                        RuleList::Listen => Rule::parse_listen(text),
                        _ => Rule::parse(text),
                    };
                    parsed.map_err(|reason| BadRule {
                        list: which,
                        index,
                        text: text.clone(),
                        reason,
                    })
                })
                .collect()
        };
        Ok(Self {
            connect: list(RuleList::Connect, connect)?,
            listen: list(RuleList::Listen, listen)?,
            udp: list(RuleList::Udp, udp)?,
            lookup,
        })
    }

    /// Whether anything is granted (then a worker needs socket system calls).
    pub fn any(&self) -> bool {
        self.tcp() || self.udp_allowed() || self.lookup
    }

    /// Whether TCP sockets may be created at all.
    pub fn tcp(&self) -> bool {
        !self.connect.is_empty() || !self.listen.is_empty()
    }

    /// Whether UDP sockets may be created at all.
    pub fn udp_allowed(&self) -> bool {
        !self.udp.is_empty()
    }

    pub fn list(&self, which: RuleList) -> &[Rule] {
        match which {
            RuleList::Connect => &self.connect,
            RuleList::Listen => &self.listen,
            RuleList::Udp => &self.udp,
        }
    }
}

/// How [`NetworkRules`] travel (to a worker) and are stored: the rule
/// texts, parsed again on arrival.
#[derive(Serialize, Deserialize)]
struct NetworkText {
    connect: Vec<String>,
    listen: Vec<String>,
    udp: Vec<String>,
    lookup: bool,
}

impl TryFrom<NetworkText> for NetworkRules {
    type Error = BadRule;

    fn try_from(text: NetworkText) -> Result<Self, BadRule> {
        Self::parse(&text.connect, &text.listen, &text.udp, text.lookup)
    }
}

impl From<NetworkRules> for NetworkText {
    fn from(rules: NetworkRules) -> Self {
        let texts = |rules: Vec<Rule>| rules.into_iter().map(|r| r.text).collect();
        Self {
            connect: texts(rules.connect),
            listen: texts(rules.listen),
            udp: texts(rules.udp),
            lookup: rules.lookup,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(texts: &[&str]) -> Vec<String> {
        texts.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn rules_round_trip_as_their_texts() {
        let rules = NetworkRules::parse(
            &strings(&["api.example.com:443", "10.0.0.0/8:502", "[::1]:1883"]),
            &strings(&["0.0.0.0:8080"]),
            &strings(&["10.0.0.5:5683"]),
            true,
        )
        .unwrap();
        let bytes = postcard::to_stdvec(&rules).unwrap();
        assert_eq!(postcard::from_bytes::<NetworkRules>(&bytes).unwrap(), rules);
        assert!(rules.tcp() && rules.udp_allowed() && rules.any());
        assert!(!NetworkRules::default().any());
    }

    #[test]
    fn a_bad_rule_is_named_by_list_and_index() {
        let err = NetworkRules::parse(&strings(&["ok.example:1", "nope"]), &[], &[], false).unwrap_err();
        assert_eq!((err.list, err.index), (RuleList::Connect, 1));
        assert!(
            err.to_string().starts_with("connect[1] = \"nope\" has no port"),
            "{err}"
        );
        let err = NetworkRules::parse(&[], &strings(&["localhost:80"]), &[], false).unwrap_err();
        assert_eq!(err.list, RuleList::Listen);
        // A forged message carrying a bad rule does not decode.
        let forged = NetworkText {
            connect: strings(&["*.evil:1"]),
            listen: vec![],
            udp: vec![],
            lookup: false,
        };
        let bytes = postcard::to_stdvec(&forged).unwrap();
        assert!(postcard::from_bytes::<NetworkRules>(&bytes).is_err());
    }
}
