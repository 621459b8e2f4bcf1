//! `[http]` in the daemon: a component exporting
//! wasi:http/incoming-handler served on its address, in-process and in a
//! worker; its outgoing requests under `[capabilities.network]` (plain and
//! through the daemon's `[http] ca_file`); misbehaving requests; bad
//! deployments refused at install with nothing lost.

use super::harness::*;
use crate::http::{request, tls_upstream, untouched, upstream};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const GUEST: &str = "http_hello";

/// A port free on loopback right now.
fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

fn deployment(place: &str, listen: SocketAddr, connect: &[String]) -> String {
    let placement = match place {
        "main" => "isolation = \"main\"\ntrusted = true\n".to_owned(),
        group => format!("group = \"{group}\"\n"),
    };
    let connect: Vec<String> = connect.iter().map(|c| format!("{c:?}")).collect();
    format!(
        "kind = \"service\"\n{placement}[limits]\nmemory = \"16M\"\n[http]\nlisten = \"{listen}\"\n\
         request_timeout = \"1s\"\n[capabilities.network]\nconnect = [{}]\n",
        connect.join(", ")
    )
}

/// Waits until `listen` answers.
fn wait_serving(listen: SocketAddr) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(listen).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing serves {listen}");
}

#[test]
fn a_component_is_served_in_process_and_in_a_worker() {
    let dir = tempfile::tempdir().unwrap();
    // Both places fetch over TLS from a server the daemon's ca_file trusts.
    let (tls_addr, ca_pem, tls_server) = tls_upstream(dir.path(), 2);
    let daemon = Daemon::start_with_config(&format!("[http]\nca_file = \"{}\"\n", ca_pem.display()));
    let (refused, refused_addr) = untouched();
    for place in ["main", "web"] {
        let (up, up_server) = upstream(1);
        let listen = free_port();
        let rules = [up.to_string(), tls_addr.to_string()];
        daemon
            .install(GUEST, None, &deployment(place, listen, &rules))
            .expect_code(0);
        daemon.wait_for(GUEST, WAIT, "running", |s| state_name(s) == "running");
        wait_serving(listen);
        assert_eq!(
            request(listen, "GET", "/", b""),
            (200, "hello from arcella over http\n".to_owned()),
            "{place}"
        );
        assert_eq!(
            request(listen, "POST", "/echo", b"abc"),
            (200, "abc".to_owned()),
            "{place}"
        );
        // Outgoing, allowed: plain and TLS.
        let (status, body) = request(listen, "GET", &format!("/fetch?http://{up}/x"), b"");
        assert_eq!(
            (status, body.as_str()),
            (200, "upstream 200: upstream says hi /x"),
            "{place}"
        );
        assert_eq!(up_server.join().unwrap(), vec!["GET /x HTTP/1.1".to_owned()]);
        let (status, body) = request(listen, "GET", &format!("/fetch?https://{tls_addr}/s"), b"");
        assert_eq!(
            (status, body.as_str()),
            (200, "upstream 200: upstream says hi /s"),
            "{place}"
        );
        // Outgoing, not allowed: refused, and on the audit trail.
        let (status, body) = request(listen, "GET", &format!("/fetch?http://{refused_addr}/"), b"");
        assert_eq!(status, 502, "{place}: {body}");
        assert!(body.contains("HttpRequestDenied"), "{place}: {body}");
        // Misbehaving requests end alone; the module keeps running.
        assert_eq!(request(listen, "GET", "/trap", b"").0, 500, "{place}");
        assert_eq!(request(listen, "GET", "/hang", b"").0, 504, "{place}");
        let big = vec![b'x'; 24 * 1024 * 1024];
        let (status, body) = request(listen, "POST", "/echo", &big);
        assert!(
            status == 500 && body.contains("memory limit"),
            "{place}: {status} {body}"
        );
        assert_eq!(request(listen, "GET", "/", b"").0, 200, "{place}");
        let status = daemon.cli(["--json", "status", GUEST]).expect_code(0).stdout.clone();
        assert!(status.contains("\"running\""), "{place}: {status}");
        let logs = daemon.cli(["logs", GUEST]).stdout;
        assert!(logs.contains(&format!("serving HTTP on {listen}")), "{place}: {logs}");
        assert!(logs.contains("http GET /trap: 500"), "{place}: {logs}");
        assert!(logs.contains("http GET /hang: 504"), "{place}: {logs}");
        // Stopped: the address is free again.
        daemon.cli(["remove", GUEST]).expect_code(0);
        assert!(TcpListener::bind(listen).is_ok(), "{place}: {listen} still taken");
    }
    assert!(refused.accept().is_err(), "a refused request reached the server");
    tls_server.join().unwrap();
    let audit = daemon
        .cli(["--json", "audit", "--module", GUEST, "--limit", "64"])
        .stdout;
    let denials = audit
        .lines()
        .filter(|l| l.contains("denied-network") && l.contains(&format!("http request to http://{refused_addr}")))
        .count();
    assert_eq!(denials, 2, "{audit}");
}

#[test]
fn bad_http_deployments_are_refused_at_install_and_lose_nothing() {
    let daemon = Daemon::start();
    let listen = free_port();
    let good = deployment("web", listen, &[]);
    daemon.install(GUEST, None, &good).expect_code(0);
    let bad = [
        (good.replace(&listen.to_string(), "localhost:8080"), "http.listen"),
        (
            good.replace("kind = \"service\"", "kind = \"command\""),
            "must be \"service\" with [http]",
        ),
        (
            good.replace("request_timeout = \"1s\"", "instances = 0"),
            "http.instances",
        ),
        (good.replace("[http]", "[http]\nport = 1"), "port"),
        (
            good.replace("memory = \"16M\"", "memory = \"64M\"")
                .replace("[http]", "[http]\ninstances = 64")
                .replace(&listen.to_string(), &free_port().to_string()),
            "limits.memory × [http] instances",
        ),
    ];
    for (deployment, named) in &bad {
        let other = format!("{GUEST}-x");
        let component = format!("name = \"{other}\"\nversion = \"1.0.0\"\n");
        daemon
            .install(GUEST, Some(&component), deployment)
            .expect_code(1)
            .stderr_has(&[named]);
    }
    // The address another module serves (or the unspecified address on
    // its port).
    for address in [listen.to_string(), format!("0.0.0.0:{}", listen.port())] {
        let component = format!("name = \"{GUEST}-2\"\nversion = \"1.0.0\"\n");
        daemon
            .install(GUEST, Some(&component), &good.replace(&listen.to_string(), &address))
            .expect_code(1)
            .stderr_has(&[&format!("is already served by module `{GUEST}`")]);
    }
    // A component without the handler, and a core module.
    let plain = "kind = \"service\"\n[http]\nlisten = \"127.0.0.1:1\"\n";
    daemon
        .install("hello_p2", None, plain)
        .expect_code(1)
        .stderr_has(&["wasi:http/incoming-handler"]);
    daemon
        .install("hello_p1", Some("name = \"core\"\nversion = \"1.0.0\"\n"), plain)
        .expect_code(1)
        .stderr_has(&["core module", "remove [http]"]);
    // The good one is untouched and still serving.
    wait_serving(listen);
    assert_eq!(request(listen, "GET", "/", b"").0, 200);
    let list = daemon.cli(["list"]).expect_code(0).stdout.clone();
    assert!(list.contains(GUEST) && !list.contains("hello_p"), "{list}");
}
