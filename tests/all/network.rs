//! Network grants with `arcella run`: real loopback sockets, the
//! `tcp_echo` guest, `--connect/--listen/--udp/--lookup`.

use crate::support::*;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

const GUEST: &str = "tcp_echo_p2";

/// A loopback TCP server that echoes one line to one client.
pub fn echo_server() -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        if let Ok((stream, _)) = listener.accept() {
            let mut line = String::new();
            let _ = BufReader::new(stream.try_clone().unwrap()).read_line(&mut line);
            let _ = (&stream).write_all(line.as_bytes());
        }
    });
    (addr, server)
}

/// A listener nobody is allowed to reach: `accept` must find nobody.
pub fn untouched_listener() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    (listener, addr)
}

fn run(flags: &[&str], guest_args: &[&str]) -> Ran {
    let mut extra = flags.to_vec();
    extra.push("--");
    extra.extend(guest_args);
    run_guest(GUEST, "native", &extra)
}

#[test]
fn connect_works_with_a_rule_and_is_refused_without() {
    let (addr, server) = echo_server();
    let addr = addr.to_string();
    let rule = addr.clone();
    run(&["--connect", &rule], &["connect", &addr, "hello"])
        .expect_code(0)
        .stdout_has(&["echo: hello"]);
    server.join().unwrap();

    let (listener, addr) = untouched_listener();
    let port = addr.rsplit(':').next().unwrap();
    let other = format!("127.0.0.1:{}", port.parse::<u16>().unwrap().wrapping_add(1).max(1));
    let refused_by = [
        vec![],
        vec!["--connect", &other],
        vec!["--connect", "10.0.0.0/8:*"],
        vec!["--listen", "127.0.0.1:*"],
        vec!["--udp", &addr],
    ];
    for flags in &refused_by {
        let ran = run(flags, &["connect", &addr, "hello"]);
        assert!(
            ran.stdout.contains("denied:") && ran.stdout.contains("PermissionDenied"),
            "{flags:?}: {ran:?}"
        );
        assert!(listener.accept().is_err(), "{flags:?} reached the listener");
    }
    // Without any TCP rule no socket is even created, and that is reported.
    run(&[], &["connect", &addr, "x"]).stderr_has(&[
        "arcella: denied network: create an IPv4 TCP socket: [capabilities.network] has no connect or listen rule",
    ]);
    run(&["--connect", &addr], &["udp", &addr, "x"]).stderr_has(&["denied network: create an IPv4 UDP socket"]);
    // A refusal by a rule is reported on stderr, naming address and list.
    let ran = run(&["--connect", &other], &["connect", &addr, "x"]);
    ran.stderr_has(&[&format!(
        "arcella: denied network: connect {addr}: no rule in [capabilities.network] connect allows it"
    )]);
}

#[test]
fn a_name_rule_never_opens_loopback() {
    let (listener, addr) = untouched_listener();
    let port = addr.rsplit(':').next().unwrap();
    let rule = format!("localhost:{port}");
    let ran = run(&["--connect", &rule, "--lookup"], &["connect", &addr, "rebound"]);
    ran.stdout_has(&["denied:"]);
    ran.stderr_has(&["never opens a loopback", &format!("add an IP rule such as \"{addr}\"")]);
    // The same through the guest's own lookup of the name.
    let by_name = format!("localhost:{port}");
    let ran = run(&["--connect", &rule, "--lookup"], &["connect", &by_name, "rebound"]);
    assert!(!ran.stdout.contains("echo:"), "{ran:?}");
    assert!(listener.accept().is_err(), "a name rule opened loopback");
}

#[test]
fn listen_and_accept_from_the_host() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_arcella"))
        .arg("run")
        .arg(artifact(GUEST, "native"))
        .args(["--listen", "127.0.0.1:*", "--", "listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let addr = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{first}"));
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(b"from the host\n").unwrap();
    let mut echo = String::new();
    BufReader::new(&stream).read_line(&mut echo).unwrap();
    assert_eq!(echo, "from the host\n");
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(
        status.success() && rest.contains("served: from the host"),
        "{status:?} {rest}"
    );

    // One address never opens all of them; a port rule does not open another port.
    let ran = run(&["--listen", "127.0.0.1:*"], &["listen", "0.0.0.0:0"]);
    ran.stdout_has(&["denied:"])
        .stderr_has(&["denied network: listen 0.0.0.0:"]);
    let ran = run(&["--listen", "127.0.0.1:1"], &["listen", "127.0.0.1:0"]);
    ran.stdout_has(&["denied:"])
        .stderr_has(&["denied network: bind 127.0.0.1:0"]);
    run(&["--connect", "127.0.0.1:*"], &["listen", "127.0.0.1:0"]).stdout_has(&["denied:"]);
}

#[test]
fn udp_reaches_only_listed_peers() {
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let addr = peer.local_addr().unwrap().to_string();
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let (len, from) = peer.recv_from(&mut buf).unwrap();
        peer.send_to(&buf[..len], from).unwrap();
        peer
    });
    run(&["--udp", &addr], &["udp", &addr, "datagram"])
        .expect_code(0)
        .stdout_has(&["udp echo: datagram"]);
    let peer = echo.join().unwrap();
    peer.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let ran = run(&["--udp", "127.0.0.1:1"], &["udp", &addr, "nope"]);
    ran.stdout_has(&["denied:"])
        .stderr_has(&[&format!("denied network: send udp {addr}")]);
    run(&["--connect", &addr], &["udp", &addr, "nope"]).stdout_has(&["denied:"]);
    let mut buf = [0u8; 8];
    assert!(peer.recv_from(&mut buf).is_err(), "a refused datagram arrived");
}

#[test]
fn lookup_needs_its_grant() {
    run(&["--lookup"], &["lookup", "localhost"])
        .expect_code(0)
        .stdout_has(&["resolved: ", "127.0.0.1"]);
    let ran = run(&[], &["lookup", "localhost"]);
    assert!(!ran.stdout.contains("resolved:"), "{ran:?}");
}

#[test]
fn bad_rules_and_core_modules_are_refused_with_the_fix() {
    let cases: &[(&str, &str, &str)] = &[
        ("--connect", "nope", "has no port"),
        ("--connect", "*.example.com:443", "wildcard host"),
        ("--connect", "10.0.0.1:0", "port 0"),
        ("--connect", "::1:80", "[::1]:PORT"),
        ("--udp", "10.1.2.3/8:1", "\"10.0.0.0/8\""),
        ("--listen", "localhost:80", "local address"),
        ("--listen", "0.0.0.0:99999", "1 to 65535"),
    ];
    for (flag, rule, needle) in cases {
        let ran = run(&[flag, rule], &["connect", "127.0.0.1:9", "x"]);
        ran.expect_code(2).stderr_has(&[needle, rule]);
    }
    run_guest("tcp_echo_p1", "native", &["--connect", "127.0.0.1:9"])
        .expect_code(2)
        .stderr_has(&["core module", "wasm32-wasip2"]);
}
