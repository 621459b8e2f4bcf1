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
pub const WORKER_PROTOCOL_VERSION: u16 = 7;

/// The largest message either side sends or accepts.
pub const MAX_WORKER_MESSAGE: usize = 16 * 1024;

/// Identifies one instance of a module in a worker, unique per daemon run.
pub type InstanceId = u64;

/// Daemon to worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToWorker {
    /// First message: who the worker is and how to build its engine. It
    /// may come with a descriptor: the group's code directory (an `O_PATH`
    /// descriptor of `artifacts/groups/<group>`), which Landlock walls let
    /// the worker read beneath (`artifact/group_links.rs`).
    Hello {
        version: u16,
        group: String,
        profile: EngineProfile,
        /// The daemon's engine fingerprint; the worker's must equal it.
        fingerprint: String,
        /// Install the seccomp allowlist before serving.
        seccomp: bool,
        /// The only host directories the worker may ever open, and how it
        /// walls itself in (Landlock or a mount namespace).
        walls: Walls,
        /// Roots guests' https requests trust besides Mozilla's (the
        /// daemon's `[http] ca_file`, PEM, at most 6 KiB); empty: none.
        http_roots: Vec<u8>,
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
    /// The instance's whole runtime configuration (`wasi:config`), sent
    /// before its `Start` and again after each change; its next read sees
    /// it. Bounded by `manifest::MAX_CONFIG_BYTES`, well inside a message.
    Config {
        instance: InstanceId,
        values: Vec<(String, String)>,
    },
    /// The answer to [`FromWorker::HostCall`] number `call`.
    HostReply {
        call: u32,
        reply: super::host_call::HostReply,
    },
    /// A typed call to the provider `instance` (the daemon's number
    /// `call`, echoed in [`FromWorker::CallReply`]); the worker gives up
    /// on it after `timeout_ms`.
    Call {
        instance: InstanceId,
        call: u32,
        export: String,
        function: String,
        args: Vec<crate::host::typed::value::WireVal>,
        timeout_ms: u64,
    },
    /// A message for the instance's `wasi:messaging` handler. The daemon
    /// sends the next only after [`FromWorker::Handled`]: the queue (and
    /// its drop-oldest bound) stays in the daemon.
    Deliver {
        instance: InstanceId,
        message: super::messaging::BusMessage,
    },
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceSpec {
    pub name: String,
    pub kind: ArtifactKind,
    pub grants: Grants,
    pub limits: Limits,
    pub entrypoint: Option<String>,
    /// For a provider: the calls it serves at once (`[provider]
    /// instances`); it then serves [`ToWorker::Call`]s instead of running.
    pub provider_instances: Option<u16>,
}

/// Worker to daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FromWorker {
    /// The sandbox is complete; the worker serves requests.
    Ready {
        version: u16,
        pid: u32,
        /// What the seccomp step did, in words (for the daemon's log).
        seccomp: String,
        /// What the filesystem walls step did, in words (for the daemon's log).
        walls: String,
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
    /// The host refused the guest a capability (for the audit trail).
    Denied {
        instance: InstanceId,
        denial: crate::host::Denial,
    },
    /// A guest called a host interface served by the daemon (key-value);
    /// `call` is the worker's number for it, echoed in the reply.
    HostCall {
        instance: InstanceId,
        call: u32,
        request: super::host_call::HostRequest,
    },
    /// The answer to [`ToWorker::Call`] number `call`.
    CallReply {
        call: u32,
        result: Result<Vec<crate::host::typed::value::WireVal>, crate::host::typed::CallError>,
    },
    /// The instance's handler finished the last [`ToWorker::Deliver`]:
    /// `Err` says how it failed.
    Handled {
        instance: InstanceId,
        outcome: Result<(), String>,
    },
}

/// The host directories a worker may reach, fixed when it starts: the
/// grants of the instances it was started for. The worker walls itself in
/// (Landlock, or a mount namespace holding only these directories) before
/// loading any guest, so even code that escaped wasmtime opens nothing
/// else (not `/proc`, not the data directory, not another group's grants).
/// An instance whose grants a worker's walls do not cover gets a new
/// worker (see [`Walls::covers`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Walls {
    pub dirs: Vec<WallDir>,
    /// Whether the worker may use sockets beyond its daemon link (its
    /// instances have network rules): seccomp then allows creating
    /// internet sockets, and the walls let the name resolver read its
    /// configuration. Without it, `socket` kills the worker.
    pub network: bool,
    /// How the walls are built (`[workers] filesystem_walls`); the daemon
    /// sets it for every worker, the grants do not change it.
    pub kind: FilesystemWalls,
}

/// `[workers] filesystem_walls`: what a worker builds its walls with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FilesystemWalls {
    /// Landlock where the kernel has it, else a mount namespace where the
    /// kernel allows an unprivileged one, else none (and the worker says so).
    #[default]
    Auto,
    /// Landlock only; none where the kernel lacks it.
    Landlock,
    /// A user and mount namespace only (even where Landlock exists); none
    /// where the kernel refuses one.
    MountNamespace,
}

impl FilesystemWalls {
    /// The names arcella.toml uses, in order.
    pub const NAMES: [&'static str; 3] = ["auto", "landlock", "mount-namespace"];

    /// The setting named `name` in arcella.toml.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "auto" => Some(Self::Auto),
            "landlock" => Some(Self::Landlock),
            "mount-namespace" => Some(Self::MountNamespace),
            _ => None,
        }
    }
}

/// One directory inside a worker's walls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WallDir {
    pub path: std::path::PathBuf,
    pub writable: bool,
}

impl Walls {
    /// At most this many bytes of paths: a Hello must fit a message.
    pub const MAX_PATH_BYTES: usize = 8 * 1024;

    /// The walls an instance with `grants` needs.
    pub fn of(grants: &Grants) -> Self {
        let mut walls = Self::default();
        walls.add(grants);
        walls
    }

    /// Whether an instance with `grants` can run inside these walls.
    pub fn covers(&self, grants: &Grants) -> bool {
        if grants.needs_network() && !self.network {
            return false;
        }
        grants.dirs.iter().all(|grant| {
            self.dirs
                .iter()
                .any(|d| d.path == grant.host && (d.writable || grant.read_only))
        })
    }

    /// These walls widened to let `grants` in too, if that stays within
    /// [`Self::MAX_PATH_BYTES`]; else just the walls `grants` needs (the
    /// old worker keeps its instances, a new one serves the rest).
    pub fn widened(&self, grants: &Grants) -> Self {
        let mut wider = self.clone();
        wider.add(grants);
        if wider.path_bytes() <= Self::MAX_PATH_BYTES {
            wider
        } else {
            Self::of(grants)
        }
    }

    fn add(&mut self, grants: &Grants) {
        self.network |= grants.needs_network();
        for grant in &grants.dirs {
            match self.dirs.iter_mut().find(|d| d.path == grant.host) {
                Some(dir) => dir.writable |= !grant.read_only,
                None => self.dirs.push(WallDir {
                    path: grant.host.clone(),
                    writable: !grant.read_only,
                }),
            }
        }
    }

    fn path_bytes(&self) -> usize {
        self.dirs.iter().map(|d| d.path.as_os_str().len()).sum()
    }
}

/// A worker's resource use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerUsage {
    pub resident_bytes: u64,
    pub instances: u32,
    /// What its running instances use, at most [`MAX_INSTANCE_USAGES`] of
    /// them (a worker running more leaves the rest out: the daemon then
    /// knows no figures for those). Untrusted, like every worker message:
    /// the daemon only looks its own instances up in it.
    pub per_instance: Vec<InstanceUsage>,
}

/// Entries of [`WorkerUsage::per_instance`] a `Pong` carries at most: each
/// takes at most 30 bytes (three varints), so 256 of them (7.5 KiB) keep
/// the message well inside [`MAX_WORKER_MESSAGE`].
pub const MAX_INSTANCE_USAGES: usize = 256;

/// One instance's usage, as `run::Usage` counts it in the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceUsage {
    pub instance: InstanceId,
    /// Bytes of linear memory its stores hold.
    pub memory: u64,
    /// Milliseconds its code has run.
    pub cpu_ms: u64,
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
                walls: Walls {
                    dirs: vec![WallDir {
                        path: "/srv/x".into(),
                        writable: true,
                    }],
                    network: true,
                    kind: FilesystemWalls::MountNamespace,
                },
                http_roots: b"-----BEGIN CERTIFICATE-----".to_vec(),
            },
            ToWorker::Start {
                instance: 7,
                spec: InstanceSpec {
                    name: "m".into(),
                    kind: ArtifactKind::Component,
                    grants: Grants::default(),
                    limits: Limits::default(),
                    entrypoint: Some("_start".into()),
                    provider_instances: Some(2),
                },
            },
            ToWorker::Stop { instance: 7 },
            ToWorker::Cancel { instance: 7 },
            ToWorker::Ping { id: 1 },
            ToWorker::CheckHealth { instance: 7 },
            ToWorker::Config {
                instance: 7,
                values: vec![("greeting".into(), "hi".into())],
            },
            ToWorker::HostReply {
                call: 3,
                reply: crate::protocol::host_call::HostReply::Refused("busy".into()),
            },
            ToWorker::Deliver {
                instance: 7,
                message: crate::protocol::messaging::BusMessage {
                    topic: "cmd/thermo/set".into(),
                    data: vec![b'2'; crate::protocol::messaging::MAX_DATA],
                    content_type: Some("text/plain".into()),
                    metadata: vec![("k".into(), "v".into())],
                },
            },
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
                walls: "on".into(),
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
            FromWorker::Log {
                instance: 1,
                stream: LogStream::Logging(crate::protocol::LogLevel::Critical),
                text: "db: gone".into(),
            },
            FromWorker::Pong {
                id: 1,
                usage: WorkerUsage {
                    resident_bytes: 1,
                    instances: 1,
                    per_instance: vec![InstanceUsage {
                        instance: 7,
                        memory: 65536,
                        cpu_ms: 12,
                    }],
                },
            },
            FromWorker::Health {
                instance: 1,
                verdict: Err("returned 1".into()),
            },
            FromWorker::Denied {
                instance: 1,
                denial: crate::host::Denial {
                    capability: crate::host::Capability::Network,
                    detail: "connect 10.0.0.1:502".into(),
                },
            },
            FromWorker::HostCall {
                instance: 1,
                call: 3,
                request: crate::protocol::host_call::HostRequest::KeyValue(
                    crate::protocol::host_call::KvRequest::Open {
                        bucket: "default".into(),
                    },
                ),
            },
            FromWorker::Handled {
                instance: 1,
                outcome: Err("trap".into()),
            },
        ];
        for message in from {
            let bytes = encode(&message).unwrap();
            assert_eq!(decode::<FromWorker>(&bytes).unwrap(), message);
        }
    }

    #[test]
    fn a_pong_with_the_most_instances_at_their_largest_fits_in_one_message() {
        let largest = InstanceUsage {
            instance: u64::MAX,
            memory: u64::MAX,
            cpu_ms: u64::MAX,
        };
        let pong = FromWorker::Pong {
            id: u32::MAX,
            usage: WorkerUsage {
                resident_bytes: u64::MAX,
                instances: u32::MAX,
                per_instance: vec![largest; MAX_INSTANCE_USAGES],
            },
        };
        let bytes = encode(&pong).expect("the largest pong fits");
        assert!(bytes.len() <= MAX_WORKER_MESSAGE / 2, "{} bytes", bytes.len());
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

    fn grants(dirs: &[(&str, bool)]) -> Grants {
        Grants {
            dirs: dirs
                .iter()
                .map(|&(host, read_only)| crate::run::DirGrant {
                    host: host.into(),
                    guest: "/g".into(),
                    read_only,
                })
                .collect(),
            ..Grants::default()
        }
    }

    #[test]
    fn walls_cover_only_what_they_were_widened_for() {
        let walls = Walls::of(&grants(&[("/srv/a", true)]));
        assert!(walls.covers(&grants(&[])));
        assert!(walls.covers(&grants(&[("/srv/a", true)])));
        assert!(
            !walls.covers(&grants(&[("/srv/a", false)])),
            "read-only walls do not admit a writer"
        );
        assert!(!walls.covers(&grants(&[("/srv/b", true)])));
        assert!(
            !walls.covers(&grants(&[("/srv", true)])),
            "a parent is not inside a child's walls"
        );
        let wider = walls.widened(&grants(&[("/srv/a", false), ("/srv/b", true)]));
        assert!(wider.covers(&grants(&[("/srv/a", false), ("/srv/b", true)])));
        assert_eq!(wider.dirs.len(), 2);
        assert!(!wider.network);
    }

    #[test]
    fn walls_without_network_do_not_cover_a_network_grant() {
        let mut networked = grants(&[("/srv/a", true)]);
        networked.network =
            crate::host::network::NetworkRules::parse(&["127.0.0.1:80".to_owned()], &[], &[], false).unwrap();
        let walls = Walls::of(&grants(&[("/srv/a", true)]));
        assert!(!walls.covers(&networked), "a worker without sockets cannot host it");
        let wider = walls.widened(&networked);
        assert!(wider.network && wider.covers(&networked));
        assert!(
            wider.covers(&grants(&[("/srv/a", true)])),
            "and it still hosts the others"
        );
        assert!(Walls::of(&networked).network);
    }

    #[test]
    fn walls_that_would_not_fit_a_hello_start_over() {
        let long = format!("/{}", "x".repeat(Walls::MAX_PATH_BYTES - 10));
        let walls = Walls::of(&grants(&[(&long, true)]));
        let other = walls.widened(&grants(&[("/srv/other-group-data", true)]));
        assert_eq!(other, Walls::of(&grants(&[("/srv/other-group-data", true)])));
        let hello = ToWorker::Hello {
            version: WORKER_PROTOCOL_VERSION,
            group: "g".repeat(64),
            profile: EngineProfile::default(),
            fingerprint: "f".repeat(64),
            seccomp: true,
            walls,
            http_roots: vec![b'r'; crate::host::http::MAX_ROOTS_BYTES],
        };
        assert!(encode(&hello).is_ok(), "the largest walls and roots still fit a Hello");
    }
}
