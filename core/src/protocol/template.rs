//! The daemon ↔ worker-template messages (docs/security.md, "Workers
//! forked from a template"). A template is an `arcella-worker --template`
//! process that holds one big artifact loaded, and forks a worker for a
//! group on request, so the workers running that artifact share its
//! loaded form (wasmtime's metadata of it, megabytes for an interpreter
//! built into a component) copy-on-write instead of each loading its own.
//!
//! Same framing as the worker link ([`super::worker::send`] and
//! [`super::worker::receive`]: postcard, one message per packet, at most
//! one descriptor each).

use crate::artifact::ArtifactKind;
use crate::engine::EngineProfile;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Daemon to template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToTemplate {
    /// First message, with the code file's descriptor (verified by the
    /// daemon, as for a start): load it, with the engine the daemon's
    /// fingerprint names.
    Load {
        version: u16,
        profile: EngineProfile,
        /// The daemon's engine fingerprint; the template's must equal it.
        fingerprint: String,
        /// The fuel-metered engine's variant of the code.
        metered: bool,
        kind: ArtifactKind,
    },
    /// Fork a worker, with its end of a new worker link as the descriptor.
    /// The worker is the daemon's child (`CLONE_PARENT`), jailed as a
    /// spawned one is, and then greets the daemon on that link as any
    /// worker does.
    Fork {
        /// The group it will serve (its command line says so).
        group: String,
        /// The daemon's pid: the child checks it is its parent.
        daemon: u32,
        user: Option<(u32, u32)>,
        data_limit: Option<u64>,
        open_files: u64,
        cgroup_procs: Option<PathBuf>,
    },
}

/// Template to daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FromTemplate {
    /// The code is loaded; forks may come.
    Loaded,
    /// A worker was forked; the descriptor is the read end of its stderr.
    Forked { pid: u32 },
    /// The request could not be done, and why.
    Refused { reason: String },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::worker::{decode, encode};

    #[test]
    fn every_message_round_trips() {
        let to = [
            ToTemplate::Load {
                version: 1,
                profile: EngineProfile::default(),
                fingerprint: "f".into(),
                metered: true,
                kind: ArtifactKind::Component,
            },
            ToTemplate::Fork {
                group: "g".into(),
                daemon: 1,
                user: Some((7, 7)),
                data_limit: Some(1 << 20),
                open_files: 64,
                cgroup_procs: Some("/sys/fs/cgroup/x/cgroup.procs".into()),
            },
        ];
        for message in to {
            assert_eq!(decode::<ToTemplate>(&encode(&message).unwrap()).unwrap(), message);
        }
        let from = [
            FromTemplate::Loaded,
            FromTemplate::Forked { pid: 9 },
            FromTemplate::Refused { reason: "r".into() },
        ];
        for message in from {
            assert_eq!(decode::<FromTemplate>(&encode(&message).unwrap()).unwrap(), message);
        }
    }
}
