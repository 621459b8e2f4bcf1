//! One record of the audit trail: who did what to which module, when,
//! and how it ended. The daemon stores each as one JSON object per line
//! (`daemon/audit`), so `tail -f` and `jq` read the file as well as
//! `arcella audit` does; on the wire it is postcard like the rest.

use serde::{Deserialize, Serialize};

/// Who caused an event (kept in the record as its text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A peer on the management socket, by its kernel-reported identity.
    Local { uid: u32, pid: u32 },
    /// An operator over MQTT, by the name its signing key is trusted as.
    Operator { name: String },
    /// The fleet agent applying a signed desired-state document.
    Fleet { detail: String },
    /// The daemon itself (restarts, rollbacks, exits).
    Daemon,
    /// A guest (denials).
    Guest,
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local { uid, pid } => write!(f, "uid {uid} (pid {pid})"),
            Self::Operator { name } => write!(f, "operator {name}"),
            Self::Fleet { detail } => write!(f, "fleet ({detail})"),
            Self::Daemon => f.write_str("daemon"),
            Self::Guest => f.write_str("guest"),
        }
    }
}

/// One audited event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The [`Actor`], as text: `uid 1000 (pid 4242)`, `operator alice`,
    /// `daemon`, `guest`.
    pub actor: String,
    /// What happened: a verb (`install`, `stop`, `config`), a lifecycle
    /// event (`started`, `exited`, `crashed`, `rolled-back`), or
    /// `denied-<capability>`.
    pub action: String,
    pub module: Option<String>,
    /// `ok`, or the error the request ended with.
    pub outcome: String,
    /// Anything more (the version installed, the denied address).
    pub detail: String,
}

impl AuditRecord {
    /// The most bytes a record's free text (outcome, detail) keeps.
    pub const MAX_TEXT: usize = 512;

    pub fn new(actor: Actor, action: impl Into<String>, module: Option<&str>) -> Self {
        Self {
            at_ms: now_ms(),
            actor: actor.to_string(),
            action: action.into(),
            module: module.map(str::to_owned),
            outcome: "ok".into(),
            detail: String::new(),
        }
    }

    pub fn outcome(mut self, outcome: impl Into<String>) -> Self {
        self.outcome = bounded(outcome.into());
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = bounded(detail.into());
        self
    }
}

fn bounded(mut text: String) -> String {
    text.truncate(text.floor_char_boundary(AuditRecord::MAX_TEXT));
    text
}

pub use super::now_ms;
