//! A capability the host refused a guest, on its way to the audit trail.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What kind of grant was missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Capability {
    Network,
    Path,
    Quota,
    KeyValue,
    Config,
    Http,
    /// A typed call to a provider the module's `[imports]` does not grant.
    Calls,
    Messaging,
}

impl Capability {
    /// The word used in logs, the audit trail and `--json`.
    pub fn word(self) -> &'static str {
        match self {
            Self::Network => "network",
            Self::Path => "path",
            Self::Quota => "quota",
            Self::KeyValue => "keyvalue",
            Self::Config => "config",
            Self::Http => "http",
            Self::Calls => "calls",
            Self::Messaging => "messaging",
        }
    }
}

/// One refusal: which capability and what was asked for (for example
/// `connect 10.0.0.9:502: no rule in [capabilities.network] connect`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Denial {
    pub capability: Capability,
    pub detail: String,
}

impl Denial {
    /// The most bytes of `detail` that travel or are kept.
    pub const MAX_DETAIL: usize = 512;

    /// `detail` cut to [`Denial::MAX_DETAIL`] bytes on a char boundary.
    pub fn bounded(mut self) -> Self {
        self.detail.truncate(self.detail.floor_char_boundary(Self::MAX_DETAIL));
        self
    }
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "denied {}: {}", self.capability.word(), self.detail)
    }
}

/// Where an instance's denials go: the daemon's audit trail in-process, a
/// message to the daemon in a worker. Must not block.
pub type DenialSink = Arc<dyn Fn(Denial) + Send + Sync>;
