//! The daemon ↔ worker messages. They travel as postcard, one message per
//! `SOCK_SEQPACKET` packet (no length prefix needed), and reuse the
//! management protocol's types where they fit ([`LogStream`], the engine
//! profile, grants and limits).
//!
//! The daemon opens with [`ToWorker::Hello`]; the worker answers
//! [`FromWorker::Ready`] once its sandbox is complete, or
//! [`FromWorker::Refused`]. After that the daemon sends requests and the
//! worker sends replies and events, each naming the instance it is about.

use super::LogStream;
use crate::artifact::ArtifactKind;
use crate::engine::EngineProfile;
use crate::run::{Grants, Limits};
use serde::{Deserialize, Serialize};
use std::io;
use std::os::fd::{AsFd, OwnedFd};

/// Bumped on any change to these messages; daemon and worker must match
/// (they are built together, but a stale worker binary is refused).
pub const WORKER_PROTOCOL_VERSION: u16 = 1;

/// The largest message either side sends or accepts.
pub const MAX_WORKER_MESSAGE: usize = 16 * 1024;

/// Identifies one instance of a module in a worker, unique per daemon run.
pub type InstanceId = u64;

/// Daemon to worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToWorker {
    /// First message: who the worker is and how to build its engine.
    Hello {
        version: u16,
        group: String,
        profile: EngineProfile,
        /// The daemon's engine fingerprint; the worker's must equal it.
        fingerprint: String,
        /// Install the seccomp allowlist before serving.
        seccomp: bool,
    },
    /// Start an instance; the code file (already verified by the daemon)
    /// comes attached to this message as a descriptor.
    Start { instance: InstanceId, spec: InstanceSpec },
    /// Ask an instance to finish (its shutdown call starts returning true).
    Stop { instance: InstanceId },
    /// End an instance now.
    Cancel { instance: InstanceId },
    /// Liveness and resource usage.
    Ping { id: u32 },
    /// Ask the instance's health export (see `run::HEALTH_EXPORT`).
    CheckHealth { instance: InstanceId },
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceSpec {
    pub name: String,
    pub kind: ArtifactKind,
    pub grants: Grants,
    pub limits: Limits,
    pub entrypoint: Option<String>,
}

/// Worker to daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FromWorker {
    /// The sandbox is complete; the worker serves requests.
    Ready {
        version: u16,
        pid: u32,
        /// What the seccomp step did, in words (for the daemon's log).
        seccomp: String,
    },
    /// The worker cannot serve (version or fingerprint mismatch, engine).
    Refused { reason: String },
    /// The instance's guest is running.
    Started { instance: InstanceId },
    /// The instance finished: the guest's exit code, or why it failed
    /// (the same words the daemon would use for an in-process module).
    Exited {
        instance: InstanceId,
        outcome: Result<i32, String>,
    },
    /// A line the guest wrote.
    Log {
        instance: InstanceId,
        stream: LogStream,
        text: String,
    },
    /// Answer to [`ToWorker::Ping`].
    Pong { id: u32, usage: WorkerUsage },
    /// Answer to [`ToWorker::CheckHealth`]: `Err` says what is wrong.
    Health {
        instance: InstanceId,
        verdict: Result<(), String>,
    },
}

/// A worker's resource use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerUsage {
    pub resident_bytes: u64,
    pub instances: u32,
}

/// Encodes a message; one that would exceed [`MAX_WORKER_MESSAGE`] is an
/// error (log lines are bounded well below it).
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, postcard::Error> {
    let bytes = postcard::to_stdvec(message)?;
    if bytes.len() > MAX_WORKER_MESSAGE {
        return Err(postcard::Error::SerializeBufferFull);
    }
    Ok(bytes)
}

/// Decodes a message.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(bytes)
}

/// One end of the daemon ↔ worker socket pair, for async use.
pub type Link = std::sync::Arc<smol::Async<crate::sys::seqpacket::SeqPacket>>;

/// Sends one message, with at most one descriptor attached.
pub async fn send<T: Serialize>(link: &Link, message: &T, fd: Option<OwnedFd>) -> io::Result<()> {
    let bytes = encode(message).map_err(io::Error::other)?;
    link.write_with(|socket| socket.send(&bytes, fd.as_ref().map(AsFd::as_fd)))
        .await
}

/// Receives one message; `None` at end of stream. `buf` (at least
/// [`MAX_WORKER_MESSAGE`] bytes) is reused across calls by the caller's
/// read loop. A message that does not decode is an `InvalidData` error.
pub async fn receive<T: serde::de::DeserializeOwned>(
    link: &Link,
    buf: &mut [u8],
) -> io::Result<Option<(T, Option<OwnedFd>)>> {
    let (len, fd) = link.read_with(|socket| socket.recv(buf)).await?;
    if len == 0 {
        return Ok(None);
    }
    let message = postcard::from_bytes(&buf[..len]).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a message that does not decode: {e}"),
        )
    })?;
    Ok(Some((message, fd)))
}

/// A receive buffer of the right size.
pub fn receive_buffer() -> Vec<u8> {
    vec![0u8; MAX_WORKER_MESSAGE]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_round_trips() {
        let to = [
            ToWorker::Hello {
                version: WORKER_PROTOCOL_VERSION,
                group: "sensors".into(),
                profile: EngineProfile::default(),
                fingerprint: "f".into(),
                seccomp: true,
            },
            ToWorker::Start {
                instance: 7,
                spec: InstanceSpec {
                    name: "m".into(),
                    kind: ArtifactKind::Component,
                    grants: Grants::default(),
                    limits: Limits::default(),
                    entrypoint: Some("_start".into()),
                },
            },
            ToWorker::Stop { instance: 7 },
            ToWorker::Cancel { instance: 7 },
            ToWorker::Ping { id: 1 },
            ToWorker::CheckHealth { instance: 7 },
        ];
        for message in to {
            let bytes = encode(&message).unwrap();
            assert_eq!(decode::<ToWorker>(&bytes).unwrap(), message);
        }
        let from = [
            FromWorker::Ready {
                version: 1,
                pid: 9,
                seccomp: "on".into(),
            },
            FromWorker::Refused { reason: "r".into() },
            FromWorker::Started { instance: 1 },
            FromWorker::Exited {
                instance: 1,
                outcome: Err("trap".into()),
            },
            FromWorker::Log {
                instance: 1,
                stream: LogStream::Stdout,
                text: "hi".into(),
            },
            FromWorker::Pong {
                id: 1,
                usage: WorkerUsage {
                    resident_bytes: 1,
                    instances: 0,
                },
            },
            FromWorker::Health {
                instance: 1,
                verdict: Err("returned 1".into()),
            },
        ];
        for message in from {
            let bytes = encode(&message).unwrap();
            assert_eq!(decode::<FromWorker>(&bytes).unwrap(), message);
        }
    }

    #[test]
    fn a_longest_log_line_fits_in_one_message() {
        let line = FromWorker::Log {
            instance: u64::MAX,
            stream: LogStream::Stderr,
            text: "é".repeat(crate::run::capture::LINE_MAX),
        };
        assert!(encode(&line).is_ok());
    }
}
