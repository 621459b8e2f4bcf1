//! The handshake that opens every connection: the client's [`Hello`], the
//! daemon's [`HelloReply`]. Both layouts are frozen (docs/protocol.md,
//! "Handshake"), so peers of any two versions can tell each other why they
//! cannot talk. No I/O here.

use super::PROTOCOL_VERSION;
use super::frame::{self, FrameError};
use super::messages::{HELLO_MAGIC, Hello, HelloReply};

/// The reason given to a peer whose Hello does not carry [`HELLO_MAGIC`].
pub const NOT_ARCELLA: &str = "not an Arcella management peer";

/// The client's first message: magic [`HELLO_MAGIC`], version
/// [`PROTOCOL_VERSION`], and `peer` naming the client for the daemon's logs.
pub fn hello(peer: &str) -> Hello {
    Hello {
        magic: HELLO_MAGIC,
        version: PROTOCOL_VERSION,
        peer: peer.to_owned(),
    }
}

/// The daemon's side: `Welcome` (carrying `daemon`, a description such as
/// `arcella 0.1.0`) if magic and version match, else `Refused` with a reason
/// a person can act on. The daemon closes the connection after a `Refused`.
pub fn answer(hello: &Hello, daemon: &str) -> HelloReply {
    if hello.magic != HELLO_MAGIC {
        return refused(NOT_ARCELLA.to_owned());
    }
    if hello.version != PROTOCOL_VERSION {
        let older = if hello.version < PROTOCOL_VERSION {
            "the client"
        } else {
            "the daemon"
        };
        return refused(format!(
            "client speaks protocol version {}, daemon speaks {PROTOCOL_VERSION}: upgrade the older side ({older})",
            hello.version
        ));
    }
    HelloReply::Welcome {
        version: PROTOCOL_VERSION,
        daemon: daemon.to_owned(),
    }
}

/// [`answer`] for a raw first payload: one that is not a [`Hello`] at all
/// (another program, or a peer that skipped the handshake) is refused as
/// [`NOT_ARCELLA`], with postcard's complaint appended.
pub fn answer_payload(payload: &[u8], daemon: &str) -> HelloReply {
    match frame::decode::<Hello>(payload) {
        Ok(hello) => answer(&hello, daemon),
        Err(FrameError::TrailingBytes { extra }) => refused(format!("{NOT_ARCELLA}: {extra} bytes follow the Hello")),
        Err(err) => refused(format!("{NOT_ARCELLA}: {err}")),
    }
}

fn refused(reason: String) -> HelloReply {
    HelloReply::Refused {
        daemon_version: PROTOCOL_VERSION,
        reason,
    }
}

/// Why the daemon did not accept this client.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum HandshakeError {
    /// The daemon answered `Refused`.
    #[error(
        "the daemon refused this client: {reason} (daemon speaks protocol version {daemon_version}, \
         this client speaks {})",
        PROTOCOL_VERSION
    )]
    Refused { daemon_version: u16, reason: String },
    /// The daemon welcomed us, but speaking another protocol version.
    #[error(
        "daemon speaks protocol version {daemon}, this client speaks {client}: upgrade the older side ({})",
        older_side(*.client, *.daemon)
    )]
    VersionMismatch { client: u16, daemon: u16 },
}

fn older_side(client: u16, daemon: u16) -> &'static str {
    if client < daemon { "this client" } else { "the daemon" }
}

/// The client's side: `Ok(daemon description)` on a `Welcome` with our
/// version; an error naming both versions otherwise.
pub fn check_reply(reply: &HelloReply) -> Result<String, HandshakeError> {
    match reply {
        HelloReply::Welcome { version, daemon } if *version == PROTOCOL_VERSION => Ok(daemon.clone()),
        HelloReply::Welcome { version, .. } => Err(HandshakeError::VersionMismatch {
            client: PROTOCOL_VERSION,
            daemon: *version,
        }),
        HelloReply::Refused { daemon_version, reason } => Err(HandshakeError::Refused {
            daemon_version: *daemon_version,
            reason: reason.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::protocol::frame::{LEN_PREFIX, decode, encode};

    fn hello_v(version: u16) -> Hello {
        Hello {
            version,
            ..hello("cli")
        }
    }

    fn welcome(version: u16, daemon: &str) -> HelloReply {
        HelloReply::Welcome {
            version,
            daemon: daemon.into(),
        }
    }

    #[test]
    fn handshake_layout_is_frozen() {
        // Frame: u32 LE length 7; magic "ARCP"; version varint 7; peer "t".
        // Only byte 8 may change, when PROTOCOL_VERSION is bumped.
        let hello_frame = [7, 0, 0, 0, b'A', b'R', b'C', b'P', 7, 1, b't'];
        assert_eq!(encode(&hello("t")).unwrap(), hello_frame);
        // Welcome is variant 0: version varint 1, daemon "d".
        assert_eq!(encode(&welcome(1, "d")).unwrap(), [4, 0, 0, 0, 0, 1, 1, b'd']);
        // Refused is variant 1; a multi-byte varint version (300 = ac 02).
        let refused = HelloReply::Refused {
            daemon_version: 300,
            reason: "r".into(),
        };
        assert_eq!(encode(&refused).unwrap(), [5, 0, 0, 0, 1, 0xac, 0x02, 1, b'r']);
    }

    #[test]
    fn hello_and_replies_round_trip() {
        let hello = hello("arcella-cli 0.1.0");
        assert_eq!(decode::<Hello>(&encode(&hello).unwrap()[LEN_PREFIX..]).unwrap(), hello);
        for reply in [answer(&hello, "arcella 0.1.0"), answer(&hello_v(9), "x")] {
            assert_eq!(
                decode::<HelloReply>(&encode(&reply).unwrap()[LEN_PREFIX..]).unwrap(),
                reply
            );
        }
    }

    #[test]
    fn matching_versions_are_welcome() {
        let reply = answer(&hello("cli"), "arcella 0.1.0");
        assert_eq!(reply, welcome(PROTOCOL_VERSION, "arcella 0.1.0"));
        assert_eq!(check_reply(&reply).unwrap(), "arcella 0.1.0");
    }

    #[test]
    fn wrong_magic_is_refused() {
        let reply = answer(
            &Hello {
                magic: *b"HTTP",
                ..hello("cli")
            },
            "d",
        );
        let reason = NOT_ARCELLA.to_owned();
        assert_eq!(
            reply,
            HelloReply::Refused {
                daemon_version: PROTOCOL_VERSION,
                reason
            }
        );
        let err = check_reply(&reply).unwrap_err().to_string();
        assert!(
            err.starts_with("the daemon refused this client: not an Arcella management peer (daemon"),
            "{err}"
        );
    }

    #[test]
    fn older_and_newer_clients_are_refused_naming_both_versions() {
        let ours = PROTOCOL_VERSION;
        for (theirs, older) in [(ours - 1, "the client"), (ours + 1, "the daemon")] {
            let reply = answer(&hello_v(theirs), "d");
            let reason = format!(
                "client speaks protocol version {theirs}, daemon speaks {ours}: upgrade the older side ({older})"
            );
            assert_eq!(
                reply,
                HelloReply::Refused {
                    daemon_version: ours,
                    reason: reason.clone()
                }
            );
            let err = check_reply(&reply).unwrap_err();
            assert_eq!(
                err,
                HandshakeError::Refused {
                    daemon_version: ours,
                    reason
                }
            );
            let text = err.to_string();
            assert!(
                text.contains(&format!("daemon speaks protocol version {ours}, this client speaks")),
                "{text}"
            );
        }
    }

    #[test]
    fn client_rejects_a_welcome_in_another_version() {
        let ours = PROTOCOL_VERSION;
        for (theirs, older) in [(ours + 1, "this client"), (ours - 1, "the daemon")] {
            let err = check_reply(&welcome(theirs, "d")).unwrap_err();
            assert_eq!(
                err,
                HandshakeError::VersionMismatch {
                    client: ours,
                    daemon: theirs
                }
            );
            let text = format!(
                "daemon speaks protocol version {theirs}, this client speaks {ours}: upgrade the older side ({older})"
            );
            assert_eq!(err.to_string(), text);
        }
    }

    #[test]
    fn payloads_that_are_not_a_hello_are_refused() {
        let good = encode(&hello("cli")).unwrap().split_off(LEN_PREFIX);
        assert_eq!(answer_payload(&good, "d"), welcome(PROTOCOL_VERSION, "d"));
        let trailing = [&good[..], &[0]].concat();
        for payload in [&b"GET /"[..], &[], &trailing] {
            let HelloReply::Refused { reason, .. } = answer_payload(payload, "d") else {
                panic!("{payload:?}")
            };
            assert!(reason.starts_with(NOT_ARCELLA), "{reason}");
        }
    }

    proptest! {
        #[test]
        fn any_first_payload_gets_an_answer(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let welcome = matches!(answer_payload(&bytes, "d"), HelloReply::Welcome { .. });
            let valid = decode::<Hello>(&bytes).is_ok_and(|h| h.magic == HELLO_MAGIC && h.version == PROTOCOL_VERSION);
            prop_assert_eq!(welcome, valid);
        }
    }
}

/// The wire layout of every message: each variant round-trips, and its
/// payload starts with the discriminant docs/protocol.md gives. Kept beside
/// the frozen handshake layout; frame.rs tests the framing itself.
#[cfg(test)]
mod layout_tests {
    use std::fmt::Debug;

    use serde::Serialize;
    use serde::de::DeserializeOwned;

    use crate::protocol::frame::{LEN_PREFIX, decode, encode};
    use crate::protocol::*;

    /// `(index, count)` of `$v`'s variant among the listed patterns, which
    /// must be in declaration order. The match is exhaustive, so a new
    /// variant fails to compile until it is listed (and sampled, below).
    macro_rules! variant_index {
        ($v:expr => $($pat:pat),+ $(,)?) => {{
            let names = [$(stringify!($pat)),+];
            let name = match $v { $($pat => stringify!($pat)),+ };
            (names.iter().position(|n| *n == name).unwrap() as u8, names.len() as u8)
        }};
    }

    /// Round-trips every value, checks that its payload starts with its
    /// variant's index, and that every variant has a sample.
    fn check<T>(values: &[T], index: fn(&T) -> (u8, u8))
    where
        T: Serialize + DeserializeOwned + PartialEq + Debug,
    {
        let count = index(&values[0]).1;
        let mut seen = Vec::new();
        for value in values {
            let frame = encode(value).unwrap();
            assert_eq!(frame[..LEN_PREFIX], ((frame.len() - LEN_PREFIX) as u32).to_le_bytes());
            assert_eq!(&decode::<T>(&frame[LEN_PREFIX..]).unwrap(), value);
            assert_eq!(frame[LEN_PREFIX], index(value).0, "discriminant of {value:?}");
            seen.push(index(value).0);
        }
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen, (0..count).collect::<Vec<_>>(), "a variant has no sample");
    }

    fn s(text: &str) -> String {
        text.to_owned()
    }

    fn summary(state: ModuleState) -> ModuleSummary {
        ModuleSummary {
            id: s("blinky"),
            version: s("1.2.0"),
            kind: ModuleKind::Service,
            isolation: Isolation::Worker,
            state,
        }
    }

    fn log_line(stream: LogStream) -> LogLine {
        LogLine {
            module: s("blinky"),
            stream,
            at_ms: 1_700_000_000_123,
            text: s("héllo ✓"),
        }
    }

    fn spec(component_toml: Option<String>) -> InstallSpec {
        InstallSpec {
            upload: [7; 32],
            component_toml,
            deployment_toml: Some(s("id = 'b'")),
        }
    }

    fn module_states() -> Vec<ModuleState> {
        use ModuleState::*;
        let backing_off = BackingOff {
            attempt: 3,
            in_ms: u64::MAX,
        };
        vec![
            Stopped,
            Starting,
            Running,
            Stopping,
            Exited { code: -1 },
            backing_off,
            Failed { reason: s("trap") },
            Waiting {
                reason: s("no provider"),
            },
        ]
    }

    fn requests() -> Vec<Request> {
        use Request::*;
        let m = || s("blinky");
        let chunk = crate::protocol::Upload {
            sha256: [0xab; 32],
            total_len: 1 << 40,
            offset: 300,
            data: vec![1, 2],
        };
        vec![
            Info,
            List,
            Status { module: m() },
            Inspect { module: m() },
            Logs { module: m(), tail: 0 },
            Follow { module: None },
            Follow { module: Some(m()) },
            Unfollow,
            Upload(chunk),
            Install(spec(Some(s("[component]")))),
            Update {
                module: m(),
                spec: spec(None),
            },
            Start { module: m() },
            Stop { module: m() },
            Restart { module: m() },
            Remove { module: m() },
            Rollback { module: m() },
            Gc,
            GetConfig { module: m(), key: None },
            GetConfig {
                module: m(),
                key: Some(s("greeting")),
            },
            SetConfig {
                module: m(),
                set: vec![(s("greeting"), s("hi"))],
                unset: vec![s("old")],
            },
            Audit(AuditQuery {
                module: Some(m()),
                since_ms: Some(1),
                limit: 20,
            }),
            RemovePurgingState { module: m() },
            Wiring,
            Telemetry,
            Kv {
                module: m(),
                bucket: s("default"),
                op: crate::protocol::KvOp::Set {
                    key: s("k"),
                    value: vec![0, 255],
                },
            },
        ]
    }

    fn responses() -> Vec<Response> {
        use Response::*;
        let info = DaemonInfo {
            version: s("0.1.0"),
            protocol: PROTOCOL_VERSION,
            fingerprint: s("fp"),
            target: s("aarch64-unknown-linux-gnu"),
            board: s("rpi-zero-2w"),
            data_dir: s("/var/lib/arcella"),
            uptime_secs: 86_400,
            modules: 2,
            interfaces: vec![s("wasi:cli/stdout@0.2.12")],
        };
        let status = ModuleStatus {
            summary: summary(ModuleState::Running),
            desired: DesiredState::Running,
            artifact: s("ab12"),
            previous_version: Some(s("1.1.0")),
            restarts: 4,
            last_exit: Some(i32::MIN),
            last_error: None,
            started_at: Some(1_700_000_000),
            worker: Some(WorkerHost {
                group: s("sensors"),
                pid: u32::MAX,
                resident_bytes: u64::MAX,
            }),
            last_update: Some(UpdateReport {
                from: s("1.0.0"),
                to: s("1.1.0"),
                at: u64::MAX,
                outcome: UpdateOutcome::RolledBack { reason: s("trap") },
            }),
            messaging: Some(super::super::messaging::MessagingStats {
                published: 1,
                denied: 2,
                received: u64::MAX,
                handled: 3,
                failed: 4,
                dropped: 5,
                queued: 6,
                capacity: 64,
            }),
            engine: Some(s("wasmtime-48.0.8/x86_64-unknown-linux-gnu/157f4e812d93ace9")),
        };
        let inspect = ModuleInspect {
            id: s("blinky"),
            artifact_kind: s("component"),
            fingerprint: s("fp"),
            code_sha256: s("c0de"),
            source_sha256: s("5eed"),
            exports: vec![s("wasi:cli/run@0.2.0")],
            imports: vec![],
        };
        let command = ModuleSummary {
            kind: ModuleKind::Command,
            isolation: Isolation::Main,
            ..summary(ModuleState::Exited { code: 0 })
        };
        let stopped = ModuleStatus {
            desired: DesiredState::Stopped,
            last_exit: None,
            worker: None,
            last_update: None,
            ..status.clone()
        };
        let outcomes = [
            UpdateOutcome::Probation { until: 1 },
            UpdateOutcome::Succeeded,
            UpdateOutcome::RolledBack { reason: s("r") },
            UpdateOutcome::Reverted,
        ];
        let updating = outcomes.map(|outcome| ModuleStatus {
            last_update: Some(UpdateReport {
                from: s("1"),
                to: s("2"),
                at: 0,
                outcome,
            }),
            ..stopped.clone()
        });
        let streams = [LogStream::Stdout, LogStream::Stderr, LogStream::Daemon];
        vec![
            Info(info),
            Modules(module_states().into_iter().map(summary).collect()),
            Status(Box::new(status)),
            Status(Box::new(stopped)),
            Inspect(inspect),
            Logs(streams.into_iter().map(log_line).collect()),
            Uploaded {
                received: 65_536,
                complete: false,
            },
            Module(command),
            Removed { module: s("blinky") },
            Following,
            Unfollowed,
            Collected(crate::protocol::Collected {
                artifacts: vec![s("ab12")],
                bytes: u64::MAX,
                uploads: 1,
            }),
            Config(crate::protocol::ModuleConfig {
                module: s("blinky"),
                entries: vec![crate::protocol::ConfigEntry {
                    key: s("greeting"),
                    value: s("hi"),
                    source: crate::protocol::ConfigSource::Operator,
                }],
                restarted: true,
            }),
            Audit(vec![crate::protocol::audit::AuditRecord {
                at_ms: 1,
                actor: s("uid 0 (pid 1)"),
                action: s("install"),
                module: Some(s("blinky")),
                outcome: s("ok"),
                detail: s("version 1.0.0"),
            }]),
            Kv(crate::protocol::KvAnswer::Entries {
                entries: vec![(s("k"), vec![1])],
                more: true,
            }),
            Wiring(crate::protocol::Wiring {
                providers: vec![crate::protocol::WiringProvider {
                    module: s("thermo"),
                    version: s("1.0.0"),
                    exports: vec![s("acme:thermo/sensor@1.2.0")],
                    process: s("daemon"),
                }],
                links: vec![],
                waiting: vec![(s("c"), s("no provider"))],
            }),
            Telemetry(crate::protocol::telemetry::Telemetry {
                at: 1_700_000_000,
                uptime_secs: 60,
                free_memory: 1 << 27,
                total_memory: 1 << 28,
                free_disk: u64::MAX,
                daemon_resident: 1 << 23,
                modules: vec![crate::protocol::telemetry::ModuleTelemetry {
                    id: s("blinky"),
                    version: s("1.0.0"),
                    isolation: Isolation::Worker,
                    state: ModuleState::Running,
                    restarts: 1,
                    started_at: Some(1_700_000_000),
                    memory: Some(1 << 20),
                    cpu_ms: None,
                }],
                workers: vec![crate::protocol::telemetry::WorkerTelemetry {
                    group: s("sensors"),
                    pid: 42,
                    resident: 1 << 22,
                }],
            }),
        ]
        .into_iter()
        .chain(updating.into_iter().map(|s| Status(Box::new(s))))
        .collect()
    }

    fn error_kinds() -> Vec<ErrorKind> {
        use ErrorKind::*;
        vec![
            BadRequest,
            NotFound,
            AlreadyExists,
            InvalidManifest,
            InvalidArtifact,
            Unavailable,
            PermissionDenied,
            ResourceExhausted,
            Internal,
        ]
    }

    fn events() -> Vec<Event> {
        vec![
            Event::State {
                module: s("blinky"),
                state: ModuleState::Starting,
            },
            Event::Log(log_line(LogStream::Daemon)),
        ]
    }

    fn server_messages() -> Vec<ServerMessage> {
        let ok = responses().into_iter().map(|r| ServerMessage::Response {
            id: u32::MAX,
            result: Ok(r),
        });
        let err = error_kinds().into_iter().map(|k| ServerMessage::Response {
            id: 0,
            result: Err(RemoteError::new(k, "no")),
        });
        let conn = error_kinds()
            .into_iter()
            .map(|k| ServerMessage::Error(RemoteError::new(k, "bad frame")));
        ok.chain(err)
            .chain(conn)
            .chain(events().into_iter().map(ServerMessage::Event))
            .collect()
    }

    fn request_index(v: &Request) -> (u8, u8) {
        use Request::*;
        variant_index!(v => Info, List, Status { .. }, Inspect { .. }, Logs { .. }, Follow { .. }, Unfollow,
            Upload(_), Install(_), Update { .. }, Start { .. }, Stop { .. }, Restart { .. }, Remove { .. },
            Rollback { .. }, Gc, GetConfig { .. }, SetConfig { .. }, Audit(_), RemovePurgingState { .. }, Kv { .. }, Wiring,
            Telemetry)
    }

    #[test]
    fn every_variant_round_trips_with_its_documented_discriminant() {
        check(&requests(), request_index);
        check(&responses(), |v| {
            use Response::*;
            variant_index!(v => Info(_), Modules(_), Status(_), Inspect(_), Logs(_), Uploaded { .. }, Module(_),
                Removed { .. }, Following, Unfollowed, Collected(_), Config(_), Audit(_), Kv(_), Wiring(_),
                Telemetry(_))
        });
        let outcomes = [
            UpdateOutcome::Probation { until: 1 },
            UpdateOutcome::Succeeded,
            UpdateOutcome::RolledBack { reason: "r".into() },
            UpdateOutcome::Reverted,
        ];
        check(&outcomes, |v| {
            use UpdateOutcome::*;
            variant_index!(v => Probation { .. }, Succeeded, RolledBack { .. }, Reverted)
        });
        check(&module_states(), |v| {
            use ModuleState::*;
            variant_index!(v => Stopped, Starting, Running, Stopping, Exited { .. }, BackingOff { .. }, Failed { .. },
                Waiting { .. })
        });
        check(&error_kinds(), |v| {
            use ErrorKind::*;
            variant_index!(v => BadRequest, NotFound, AlreadyExists, InvalidManifest, InvalidArtifact, Unavailable,
                PermissionDenied, ResourceExhausted, Internal)
        });
        check(&server_messages(), |v| {
            use ServerMessage::*;
            variant_index!(v => Response { .. }, Event(_), Error(_))
        });
        check(&events(), |v| variant_index!(v => Event::State { .. }, Event::Log(_)));
        check(&[ModuleKind::Command, ModuleKind::Service, ModuleKind::Provider], |v| {
            use ModuleKind::*;
            variant_index!(v => Command, Service, Provider)
        });
        check(&[Isolation::Main, Isolation::Worker], |v| {
            use Isolation::*;
            variant_index!(v => Main, Worker)
        });
        check(&[DesiredState::Running, DesiredState::Stopped], |v| {
            use DesiredState::*;
            variant_index!(v => Running, Stopped)
        });
        let streams = [
            LogStream::Stdout,
            LogStream::Stderr,
            LogStream::Daemon,
            LogStream::Logging(LogLevel::Critical),
        ];
        check(&streams, |v| {
            use LogStream::*;
            variant_index!(v => Stdout, Stderr, Daemon, Logging(_))
        });
        let levels = [
            LogLevel::Trace,
            LogLevel::Debug,
            LogLevel::Info,
            LogLevel::Warn,
            LogLevel::Error,
            LogLevel::Critical,
        ];
        check(&levels, |v| {
            use LogLevel::*;
            variant_index!(v => Trace, Debug, Info, Warn, Error, Critical)
        });
        check(&[ConfigSource::Deployment, ConfigSource::Operator], |v| {
            use ConfigSource::*;
            variant_index!(v => Deployment, Operator)
        });
    }

    #[test]
    fn client_messages_and_results_round_trip() {
        for request in requests() {
            let discriminant = request_index(&request).0;
            let msg = ClientMessage { id: 300, request };
            let frame = encode(&msg).unwrap();
            assert_eq!(decode::<ClientMessage>(&frame[LEN_PREFIX..]).unwrap(), msg);
            // The id comes first: 300 is the varint ac 02.
            assert_eq!(frame[LEN_PREFIX..LEN_PREFIX + 3], [0xac, 0x02, discriminant]);
        }
        // A Result is an enum, Ok = 0 and Err = 1, after the request id.
        let err = ServerMessage::Response {
            id: 1,
            result: Err(RemoteError::new(ErrorKind::NotFound, "x")),
        };
        assert_eq!(encode(&err).unwrap()[LEN_PREFIX..], [0, 1, 1, 1, 1, b'x']);
    }
}
