//! Hostile and broken peers on the management socket: each gets a clear
//! error or is served, and the daemon keeps serving everyone else.

use super::harness::*;
use arcella_core::protocol::frame::{self, FrameReader, MAX_FRAME_LEN};
use arcella_core::protocol::{
    ClientMessage, ErrorKind, Hello, HelloReply, Request, Response, ServerMessage, handshake,
};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// A raw connection that speaks frames by hand.
struct Raw {
    stream: UnixStream,
    reader: FrameReader,
}

impl Raw {
    fn connect(daemon: &Daemon) -> Self {
        let stream = UnixStream::connect(daemon.socket()).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Self {
            stream,
            reader: FrameReader::new(MAX_FRAME_LEN),
        }
    }

    fn welcomed(daemon: &Daemon) -> Self {
        let mut raw = Self::connect(daemon);
        raw.send(&handshake::hello("test"));
        assert!(matches!(raw.receive::<HelloReply>(), Some(HelloReply::Welcome { .. })));
        raw
    }

    fn send<T: serde::Serialize>(&mut self, message: &T) {
        self.stream.write_all(&frame::encode(message).unwrap()).unwrap();
    }

    /// The next message, or `None` once the daemon closed the connection.
    fn receive<T: serde::de::DeserializeOwned>(&mut self) -> Option<T> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(payload) = self.reader.next_frame() {
                return Some(frame::decode(&payload).unwrap());
            }
            match self.stream.read(&mut buf) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.reader.push(&buf[..n]).unwrap(),
            }
        }
    }

    fn call(&mut self, id: u32, request: Request) -> Response {
        self.send(&ClientMessage { id, request });
        match self.receive::<ServerMessage>() {
            Some(ServerMessage::Response {
                id: got,
                result: Ok(response),
            }) if got == id => response,
            other => panic!("expected a response to {id}, got {other:?}"),
        }
    }
}

fn still_serves(daemon: &Daemon) {
    let protocol = format!("protocol {}", arcella_core::protocol::PROTOCOL_VERSION);
    daemon.cli(["info"]).expect_code(0).stdout_has(&[&protocol]);
}

#[test]
fn garbage_instead_of_a_handshake_is_refused() {
    let daemon = Daemon::start();
    let mut raw = Raw::connect(&daemon);
    raw.stream
        .write_all(&[0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8])
        .unwrap();
    match raw.receive::<HelloReply>() {
        Some(HelloReply::Refused { reason, .. }) => {
            assert!(reason.contains("not an Arcella management peer"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    still_serves(&daemon);
}

#[test]
fn a_peer_of_another_version_is_told_both_versions() {
    let daemon = Daemon::start();
    let mut raw = Raw::connect(&daemon);
    let mut hello: Hello = handshake::hello("future");
    hello.version = 99;
    raw.send(&hello);
    match raw.receive::<HelloReply>() {
        Some(HelloReply::Refused { reason, daemon_version }) => {
            assert_eq!(daemon_version, arcella_core::protocol::PROTOCOL_VERSION);
            let ours = arcella_core::protocol::PROTOCOL_VERSION.to_string();
            assert!(reason.contains("99") && reason.contains(&ours), "{reason}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn an_unknown_message_gets_an_error_and_the_connection_goes_on() {
    let daemon = Daemon::start();
    let mut raw = Raw::welcomed(&daemon);
    // id 7, then a Request discriminant no version has defined.
    let payload = [7u8, 0xf0, 0x01];
    let mut bytes = (payload.len() as u32).to_le_bytes().to_vec();
    bytes.extend_from_slice(&payload);
    raw.stream.write_all(&bytes).unwrap();
    match raw.receive::<ServerMessage>() {
        Some(ServerMessage::Response { id: 7, result: Err(e) }) => {
            assert_eq!(e.kind, ErrorKind::BadRequest);
            assert!(e.message.contains("could not decode"), "{}", e.message);
        }
        other => panic!("expected an error for request 7, got {other:?}"),
    }
    // A frame whose id cannot even be read gets a connection-level error.
    raw.stream.write_all(&[1, 0, 0, 0, 0xff]).unwrap();
    assert!(matches!(raw.receive::<ServerMessage>(), Some(ServerMessage::Error(e)) if e.kind == ErrorKind::BadRequest));
    assert!(matches!(raw.call(8, Request::List), Response::Modules(_)));
}

#[test]
fn an_oversized_frame_is_refused_without_buffering_it() {
    let daemon = Daemon::start();
    let mut raw = Raw::welcomed(&daemon);
    raw.stream
        .write_all(&((MAX_FRAME_LEN as u32) + 1).to_le_bytes())
        .unwrap();
    match raw.receive::<ServerMessage>() {
        Some(ServerMessage::Error(e)) => assert!(e.message.contains("exceeds"), "{}", e.message),
        other => panic!("expected an error, got {other:?}"),
    }
    assert!(
        raw.receive::<ServerMessage>().is_none(),
        "the connection is closed: framing is lost"
    );
    still_serves(&daemon);
}

#[test]
fn a_truncated_frame_and_a_vanished_client_harm_no_one() {
    let daemon = Daemon::start();
    {
        let mut raw = Raw::welcomed(&daemon);
        raw.stream.write_all(&100u32.to_le_bytes()).unwrap();
        raw.stream.write_all(&[1, 2, 3]).unwrap();
    }
    still_serves(&daemon);
}

#[test]
fn a_stalled_client_is_dropped_and_does_not_block_others() {
    let daemon = Daemon::start();
    let mut stalled = UnixStream::connect(daemon.socket()).unwrap();
    still_serves(&daemon);
    stalled.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let n = stalled.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the daemon closes a connection that never says hello");
    assert!(started.elapsed() < Duration::from_secs(12));
}

#[test]
fn fifty_clients_at_once_are_all_served() {
    let daemon = Daemon::start();
    daemon
        .install("ticker", Some(TICKER_COMPONENT), TICKER_SERVICE)
        .expect_code(0);
    let socket = daemon.socket();
    let handles: Vec<_> = (0..50)
        .map(|_| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                let mut client = arcella_core::client::Client::connect(&socket, "load").unwrap();
                for _ in 0..5 {
                    match client.call(Request::List).unwrap() {
                        Response::Modules(modules) => assert_eq!(modules.len(), 1),
                        other => panic!("{other:?}"),
                    }
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
}

#[test]
fn pipelined_requests_are_answered_by_id() {
    let daemon = Daemon::start();
    let mut raw = Raw::welcomed(&daemon);
    raw.send(&ClientMessage {
        id: 41,
        request: Request::Info,
    });
    raw.send(&ClientMessage {
        id: 42,
        request: Request::List,
    });
    raw.send(&ClientMessage {
        id: 43,
        request: Request::Status { module: "ghost".into() },
    });
    let mut seen = Vec::new();
    for _ in 0..3 {
        match raw.receive::<ServerMessage>() {
            Some(ServerMessage::Response { id, result }) => seen.push((id, result.is_ok())),
            other => panic!("{other:?}"),
        }
    }
    seen.sort();
    assert_eq!(seen, [(41, true), (42, true), (43, false)]);
}

#[test]
fn the_socket_is_private_and_other_users_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let daemon = Daemon::start();
    let mode = std::fs::metadata(daemon.socket()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    if arcella_core::sys::user::effective_uid() != 0 {
        // Without root no other uid can be borrowed; the mode is the guard.
        return;
    }
    // Open the socket file to everyone so the daemon's SO_PEERCRED check,
    // not the file mode, is what refuses uid 65534.
    std::fs::set_permissions(daemon.socket(), std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::set_permissions(daemon.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // The build tree may not be reachable by uid 65534; a copy beside the
    // socket is.
    let cli = daemon.dir.path().join("arcella-cli");
    std::fs::copy(env!("CARGO_BIN_EXE_arcella"), &cli).unwrap();
    std::fs::set_permissions(&cli, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = std::process::Command::new(&cli)
        .arg("list")
        .env_clear()
        .env("ARCELLA_SOCKET", daemon.socket())
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("uid 65534 is not allowed"), "{stderr}");
    assert!(
        daemon.log().contains("refused management connection from uid 65534"),
        "{}",
        daemon.log()
    );
}
