//! wasi:http with `arcella run`: the `http_get` command's outgoing
//! requests under `--connect` (plain and TLS, real loopback servers), and
//! `http_hello` served with `--serve-http`, misbehaving requests included.

use crate::support::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Reads a request's head; the request line.
fn read_head(stream: &mut impl Read) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn answer(stream: &mut impl Write, request_line: &str) {
    let path = request_line.split(' ').nth(1).unwrap_or("?");
    let body = format!("upstream says hi {path}");
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// A loopback HTTP server answering `requests` requests, one per
/// connection; joins to the request lines it saw.
pub fn upstream(requests: usize) -> (SocketAddr, JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..requests {
            let Ok((mut stream, _)) = listener.accept() else { break };
            let line = read_head(&mut stream);
            answer(&mut stream, &line);
            seen.push(line);
        }
        seen
    });
    (addr, server)
}

/// A listener no request may reach.
pub fn untouched() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// A CA and a TLS server (certificate for 127.0.0.1 and localhost)
/// serving `connections` connections; the CA's PEM is written to
/// `dir/ca.pem`.
pub fn tls_upstream(dir: &Path, connections: usize) -> (SocketAddr, std::path::PathBuf, JoinHandle<()>) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let ca_pem = dir.join("ca.pem");
    std::fs::write(&ca_pem, ca.pem()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &*ca)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        for _ in 0..connections {
            let Ok((tcp, _)) = listener.accept() else { return };
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let line = read_head(&mut tls);
            if !line.is_empty() {
                answer(&mut tls, &line);
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        }
    });
    (addr, ca_pem, server)
}

fn get(flags: &[&str], url: &str) -> Ran {
    let mut extra = flags.to_vec();
    extra.extend(["--", url]);
    run_guest("http_get", "native", &extra)
}

#[test]
fn outgoing_requests_reach_only_what_connect_allows() {
    let (addr, server) = upstream(1);
    get(&["--connect", &addr.to_string()], &format!("http://{addr}/hi?x=1"))
        .expect_code(0)
        .stdout_has(&["status 200", "upstream says hi /hi?x=1"]);
    assert_eq!(server.join().unwrap(), vec!["GET /hi?x=1 HTTP/1.1".to_owned()]);

    let (listener, addr) = untouched();
    let port = addr.port();
    let other = format!("127.0.0.1:{}", port.wrapping_add(1).max(1));
    // No rule at all: refused, reported without the path (it may hold secrets).
    let ran = get(&[], &format!("http://{addr}/secret?token=x"));
    ran.expect_code(1)
        .stdout_has(&["error: ErrorCode::HttpRequestDenied"])
        .stderr_has(&[&format!(
            "arcella: denied network: http request to http://{addr}: no rule in [capabilities.network] connect \
         allows it (none is given)"
        )]);
    assert!(!ran.stderr.contains("secret"), "{ran:?}");
    // Another port, a TCP listen rule, a name that resolves to loopback.
    for flags in [
        vec!["--connect", &other],
        vec!["--listen", "127.0.0.1:*"],
        vec!["--connect", "10.0.0.0/8:*"],
    ] {
        get(&flags, &format!("http://{addr}/"))
            .expect_code(1)
            .stdout_has(&["error: ErrorCode::HttpRequestDenied"])
            .stderr_has(&["no rule in [capabilities.network] connect allows it"]);
    }
    let name_rule = format!("localhost:{port}");
    get(&["--connect", &name_rule], &format!("http://localhost:{port}/"))
        .expect_code(1)
        .stdout_has(&["error: ErrorCode::HttpRequestDenied"])
        .stderr_has(&["resolved to", "never opens a loopback"]);
    assert!(listener.accept().is_err(), "a refused request reached the server");
}

#[test]
fn https_verifies_the_server_against_the_name_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    // Two connections: one that must fail verification, one that works.
    let (addr, ca_pem, server) = tls_upstream(dir.path(), 2);
    let rule = addr.to_string();
    let url = format!("https://{addr}/tls");
    // Mozilla's roots do not know this CA.
    get(&["--connect", &rule], &url)
        .expect_code(1)
        .stdout_has(&["error: ErrorCode::Tls"]);
    get(&["--connect", &rule, "--http-ca", ca_pem.to_str().unwrap()], &url)
        .expect_code(0)
        .stdout_has(&["status 200", "upstream says hi /tls"]);
    server.join().unwrap();
    // A CA file that is not one is refused before anything runs.
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    get(&["--connect", &rule, "--http-ca", bad.to_str().unwrap()], &url)
        .expect_code(2)
        .stderr_has(&["--http-ca", "bad.pem", "holds no certificate"]);
}

/// `arcella run http_hello --serve-http 127.0.0.1:0 FLAGS`, and the
/// address it serves on (from its first line).
fn serve(flags: &[&str]) -> (Child, SocketAddr) {
    let artifact = artifact("http_hello", "native");
    let mut child = Command::new(env!("CARGO_BIN_EXE_arcella"))
        .arg("run")
        .arg(&artifact)
        .args(["--serve-http", "127.0.0.1:0"])
        .args(flags)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    // Keep draining stderr so the server never blocks on it.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    (child, addr)
}

/// One request on its own connection: the status and the body.
pub fn request(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    // A server may answer before it has read a large body.
    let _ = stream.write_all(body);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    (status, if chunked { unchunk(body) } else { body.to_owned() })
}

/// A chunked body's bytes.
fn unchunk(mut rest: &str) -> String {
    let mut body = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || after.len() < size {
            break;
        }
        body.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    body
}

#[test]
fn a_served_component_answers_and_outlives_its_bad_requests() {
    let (mut child, addr) = serve(&["--max-memory", "16M", "--http-timeout", "1s", "--http-instances", "2"]);
    assert_eq!(
        request(addr, "GET", "/", b""),
        (200, "hello from arcella over http\n".to_owned())
    );
    assert_eq!(request(addr, "POST", "/echo", b"ping"), (200, "ping".to_owned()));
    let (status, body) = request(addr, "GET", "/nope", b"");
    assert_eq!((status, body.as_str()), (404, "not found\n"));
    // A trap ends that request only.
    let (status, body) = request(addr, "GET", "/trap", b"");
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("trap"), "{body}");
    // A body larger than the instance may hold: its memory limit, named.
    let big = vec![b'x'; 32 * 1024 * 1024];
    let (status, body) = request(addr, "POST", "/echo", &big);
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("memory limit"), "{body}");
    // A handler that never answers gets 504 at its deadline.
    let started = Instant::now();
    let (status, body) = request(addr, "GET", "/hang", b"");
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("request_timeout = 1s"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // Still serving, several at once (more than the two instances).
    let workers: Vec<_> = (0..6)
        .map(|_| std::thread::spawn(move || request(addr, "GET", "/", b"").0))
        .collect();
    for worker in workers {
        assert_eq!(worker.join().unwrap(), 200);
    }
    // 130 clients that connect and say nothing hold the connection slots
    // (128) only until the head deadline: then a real client gets in.
    let idle: Vec<TcpStream> = (0..130).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let started = Instant::now();
    assert_eq!(request(addr, "GET", "/", b"").0, 200);
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    drop(idle);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn bad_serving_flags_are_refused_with_the_fix() {
    let hello = artifact("http_hello", "native");
    let hello = hello.to_str().unwrap();
    arcella(["run", hello, "--serve-http", "localhost:8080"])
        .expect_code(2)
        .stderr_has(&["--serve-http \"localhost:8080\"", "names are not resolved"]);
    arcella(["run", hello, "--serve-http", "127.0.0.1:0", "--http-instances", "0"])
        .expect_code(2)
        .stderr_has(&["--http-instances 0 must be between 1 and 64"]);
    // A component without the handler, and a core module.
    let plain = artifact("hello_p2", "native");
    arcella(["run", plain.to_str().unwrap(), "--serve-http", "127.0.0.1:0"]).stderr_has(&["does not export it"]);
    let core = artifact("hello_p1", "native");
    arcella(["run", core.to_str().unwrap(), "--serve-http", "127.0.0.1:0"])
        .expect_code(2)
        .stderr_has(&["core module", "wasi:http/incoming-handler"]);
    // An address already taken.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    arcella(["run", hello, "--serve-http", &taken]).stderr_has(&[&format!("cannot listen on {taken} ([http] listen)")]);
}
