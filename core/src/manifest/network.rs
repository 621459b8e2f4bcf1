//! `[capabilities.network]`: the sockets a component may open. The rule
//! forms and their meaning are `crate::host::network`'s (and
//! docs/manifests.md's); this is the TOML side and its check.

use super::locate::KeyPath;
use crate::host::network::NetworkRules;
use serde::{Deserialize, Serialize};

/// `connect = [...]`, `listen = [...]`, `udp = [...]`, `lookup = bool`.
/// Everything empty/false (the default) grants no socket at all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkCapability {
    /// Remote TCP endpoints, `HOST:PORT`.
    pub connect: Vec<String>,
    /// Local addresses to listen on (TCP) or bind a fixed UDP port to.
    pub listen: Vec<String>,
    /// Remote UDP peers.
    pub udp: Vec<String>,
    /// Whether the guest may resolve names.
    pub lookup: bool,
}

impl NetworkCapability {
    /// Whether anything is granted.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The rules, parsed. The error is the key under `capabilities` and
    /// what to fix.
    pub fn rules(&self) -> Result<NetworkRules, (KeyPath, String)> {
        NetworkRules::parse(&self.connect, &self.listen, &self.udp, self.lookup).map_err(|bad| {
            let key = KeyPath::new("network").key(bad.list.key()).index(bad.index);
            (key, format!("= {:?} {}", bad.text, bad.reason))
        })
    }
}
