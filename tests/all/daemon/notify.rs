//! systemd readiness (`Type=notify`): the daemon sends READY=1 to
//! `$NOTIFY_SOCKET` once its socket accepts connections, STOPPING=1 when
//! it begins to shut down.

use super::harness::{send_signal, write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::process::{Command, Stdio};
use std::time::Duration;

fn receive(manager: &UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let n = manager.recv(&mut buf).expect("a notification within 20s");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn the_daemon_tells_the_service_manager_when_it_serves_and_when_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let notify = dir.path().join("notify.sock");
    let manager = UnixDatagram::bind(&notify).unwrap();
    manager.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let config = write(dir.path(), "arcella.toml", "");
    let socket = dir.path().join("arcella.sock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_arcella"))
        .arg("daemon")
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--socket")
        .arg(&socket)
        .env_clear()
        .env("HOME", dir.path())
        .env("NOTIFY_SOCKET", &notify)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert_eq!(receive(&manager), "READY=1");
    // Ready means the management socket takes connections now.
    UnixStream::connect(&socket).expect("the socket accepts once READY=1 is sent");
    send_signal(child.id(), "TERM");
    assert_eq!(receive(&manager), "STOPPING=1");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}
