//! systemd's readiness protocol (sd_notify(3)), without libsystemd: one
//! datagram such as `READY=1` to the Unix socket named by `$NOTIFY_SOCKET`,
//! a path or, when it starts with `@`, an abstract socket name.

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Tells the service manager that the daemon is ready (its socket listens).
/// `Ok(false)`: not started by a manager that asked (`$NOTIFY_SOCKET` unset).
pub fn ready() -> io::Result<bool> {
    notify_env("READY=1")
}

/// Tells the service manager that the daemon is shutting down.
pub fn stopping() -> io::Result<bool> {
    notify_env("STOPPING=1")
}

fn notify_env(state: &str) -> io::Result<bool> {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(address) if !address.is_empty() => notify_to(&address, state).map(|()| true),
        _ => Ok(false),
    }
}

/// Sends `state` (newline-separated `KEY=VALUE` lines) to `address`.
pub fn notify_to(address: &OsStr, state: &str) -> io::Result<()> {
    let bytes = address.as_bytes();
    let to = match bytes.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name)?,
        None if bytes.starts_with(b"/") => SocketAddr::from_pathname(address)?,
        None => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "NOTIFY_SOCKET `{}` is neither an absolute path nor an abstract name (@...)",
                    address.to_string_lossy()
                ),
            ));
        }
    };
    let socket = UnixDatagram::unbound()?;
    let sent = socket.send_to_addr(state.as_bytes(), &to)?;
    if sent != state.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "the notification was truncated",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(socket: &UnixDatagram) -> String {
        socket
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 256];
        let n = socket.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn a_path_socket_gets_the_datagram() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let manager = UnixDatagram::bind(&path).unwrap();
        notify_to(path.as_os_str(), "READY=1").unwrap();
        assert_eq!(received(&manager), "READY=1");
    }

    #[test]
    fn an_abstract_socket_gets_the_datagram() {
        let name = format!("arcella-notify-test-{}", std::process::id());
        let manager = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
        notify_to(OsStr::new(&format!("@{name}")), "STOPPING=1").unwrap();
        assert_eq!(received(&manager), "STOPPING=1");
    }

    #[test]
    fn nobody_listening_and_bad_addresses_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = notify_to(dir.path().join("none.sock").as_os_str(), "READY=1").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
        let err = notify_to(OsStr::new("relative.sock"), "READY=1").unwrap_err();
        assert!(err.to_string().contains("relative.sock"), "{err}");
    }
}
