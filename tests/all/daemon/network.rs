//! `[capabilities.network]` in the daemon: the same rules in-process and in
//! a worker (which enforces them itself), denials in the module's log, and
//! a worker that gets socket system calls only for modules that have rules.

use super::harness::*;
use crate::network::{echo_server, untouched_listener};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const GUEST: &str = "tcp_echo_p2";

/// A deployment running `tcp_echo ARGS` with `network` as the body of
/// `[capabilities.network]`, in-process (`main`) or in worker group `net`.
fn deployment(where_: &str, args: &[&str], network: &str) -> String {
    let placement = match where_ {
        "main" => "isolation = \"main\"\ntrusted = true\n".to_owned(),
        group => format!("group = \"{group}\"\n"),
    };
    let args: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    format!(
        "{placement}[restart]\npolicy = \"never\"\n[capabilities]\nargs = [{}]\n[capabilities.network]\n{network}\n",
        args.join(", ")
    )
}

/// Installs, waits for the exit, returns the module's log.
fn run_once(daemon: &Daemon, deployment: &str) -> String {
    daemon.install(GUEST, None, deployment).expect_code(0);
    daemon.wait_for(GUEST, WAIT, "exited", |s| state_name(s) == "exited");
    let logs = daemon.cli(["logs", GUEST]).stdout;
    daemon.cli(["remove", GUEST]).expect_code(0);
    logs
}

#[test]
fn an_allowed_connect_works_in_process_and_in_a_worker() {
    let daemon = Daemon::start();
    for place in ["main", "net"] {
        let (addr, server) = echo_server();
        let addr = addr.to_string();
        let network = format!("connect = [\"{addr}\"]");
        let logs = run_once(&daemon, &deployment(place, &["connect", &addr, place], &network));
        assert!(logs.contains(&format!("echo: {place}")), "{place}: {logs}");
        server.join().unwrap();
    }
}

#[test]
fn refusals_reach_the_guest_and_the_module_log() {
    let daemon = Daemon::start();
    let (listener, addr) = untouched_listener();
    let port = addr.rsplit(':').next().unwrap().to_owned();
    for place in ["main", "net"] {
        // An unlisted port.
        let logs = run_once(
            &daemon,
            &deployment(place, &["connect", &addr, "x"], "connect = [\"127.0.0.1:1\"]"),
        );
        assert!(
            logs.contains("denied: ") && logs.contains("PermissionDenied"),
            "{place}: {logs}"
        );
        assert!(
            logs.contains(&format!(
                "denied network: connect {addr}: no rule in [capabilities.network] connect allows it"
            )),
            "{place}: {logs}"
        );
        // No rule at all: not even a socket, and the attempt is on record.
        let logs = run_once(&daemon, &deployment(place, &["connect", &addr, "x"], ""));
        assert!(logs.contains("denied: "), "{place}: {logs}");
        assert!(
            logs.contains("denied network: create an IPv4 TCP socket"),
            "{place}: {logs}"
        );
        // A name that resolves to loopback opens nothing (DNS rebinding).
        let rule = format!("connect = [\"localhost:{port}\"]\nlookup = true");
        let logs = run_once(&daemon, &deployment(place, &["connect", &addr, "x"], &rule));
        assert!(logs.contains("never opens a loopback"), "{place}: {logs}");
        assert!(listener.accept().is_err(), "{place}: the guest reached the listener");
    }
    // `arcella logs` and the daemon's log both carry the denial.
    assert!(daemon.log().contains("denied network: connect"), "{}", daemon.log());
    // So does the audit trail: each refusal, in the daemon's process and
    // from the worker, as the guest's, with what it asked for.
    let mut denials = Vec::new();
    for _ in 0..100 {
        let ran = daemon.cli(["--json", "audit", "--module", GUEST, "--limit", "128"]);
        denials = ran
            .expect_code(0)
            .stdout
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|r| r["action"] == "denied-network")
            .collect();
        if denials.len() >= 6 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(denials.len() >= 6, "{denials:#?}");
    assert!(
        denials
            .iter()
            .all(|r| r["actor"] == "guest" && r["outcome"] == "denied")
    );
    let unlisted = format!("connect {addr}: no rule in [capabilities.network] connect allows it");
    assert_eq!(
        denials.iter().filter(|r| r["detail"] == unlisted.as_str()).count(),
        2,
        "{denials:#?}"
    );
}

#[test]
fn a_worker_gets_sockets_only_for_modules_with_rules() {
    let daemon = Daemon::start();
    // A service without network rules holds the group's first worker.
    let service = "kind = \"service\"\ngroup = \"mixed\"\n[restart]\nbackoff_initial = \"100ms\"\n";
    daemon
        .install("ticker", Some("name = \"ticker\"\nversion = \"1.0.0\"\n"), service)
        .expect_code(0);
    let first = daemon.wait_for("ticker", WAIT, "hosted by a worker", |s| {
        state_name(s) == "running" && s["worker_pid"].is_u64()
    })["worker_pid"]
        .as_u64()
        .unwrap();
    // A network module in the same group gets a new worker, with sockets,
    // and works there; the old one keeps its module, and its filter.
    let (addr, server) = echo_server();
    let addr = addr.to_string();
    let logs = run_once(
        &daemon,
        &deployment(
            "mixed",
            &["connect", &addr, "mixed"],
            &format!("connect = [\"{addr}\"]"),
        ),
    );
    assert!(logs.contains("echo: mixed"), "{logs}");
    server.join().unwrap();
    assert!(
        daemon.log().contains("walled off from a directory or the network"),
        "{}",
        daemon.log()
    );
    let status = daemon.status("ticker").unwrap();
    assert_eq!(
        status["worker_pid"].as_u64(),
        Some(first),
        "the old worker keeps its module"
    );
    assert_eq!(state_name(&status), "running");
}

#[test]
fn bad_rules_are_refused_at_install_and_lose_nothing() {
    let daemon = Daemon::start();
    let kept = deployment("net", &["lookup", "localhost"], "lookup = true");
    daemon.install(GUEST, None, &kept).expect_code(0);
    let cases: &[(&str, &str)] = &[
        (
            "connect = [\"api.example.com\"]",
            "capabilities.network.connect[0]` = \"api.example.com\" has no port",
        ),
        (
            "connect = [\"10.0.0.1:1\", \"*.example.com:443\"]",
            "connect[1]` = \"*.example.com:443\" uses a wildcard host",
        ),
        (
            "listen = [\"localhost:8080\"]",
            "listen[0]` = \"localhost:8080\" names `localhost`",
        ),
        ("udp = [\"10.0.0.5:0\"]", "has port 0"),
        ("udp = [\"[::1:80\"]", "without a matching"),
        ("connect = \"10.0.0.1:80\"", "connect"),
        ("ports = [80]", "ports"),
    ];
    for (network, needle) in cases {
        let component = "name = \"bad-net\"\nversion = \"1.0.0\"\n";
        let ran = daemon.install(GUEST, Some(component), &deployment("net", &["x"], network));
        assert_ne!(ran.code, Some(0), "{network} was accepted");
        assert!(ran.stderr.contains(needle), "{network}: {}", ran.stderr);
    }
    // A core module has no socket API: its network grant is refused.
    let ran = daemon.install(
        "hello_p1",
        Some("name = \"hello-p1\"\nversion = \"1.0.0\"\n"),
        "[capabilities.network]\nconnect = [\"127.0.0.1:80\"]\n",
    );
    assert_ne!(ran.code, Some(0));
    assert!(
        ran.stderr.contains("core module") && ran.stderr.contains("components"),
        "{}",
        ran.stderr
    );
    // The first install is intact and still runs with its grant.
    let status = daemon.wait_for(GUEST, WAIT, "exited", |s| state_name(s) == "exited");
    let logs = daemon.cli(["logs", GUEST]).stdout;
    assert_eq!(status["exit_code"], 0, "{logs}");
    assert!(logs.contains("resolved: ") && logs.contains("127.0.0.1"), "{logs}");
}

#[test]
fn modules_sharing_code_in_one_worker_keep_their_own_network_grants() {
    // A worker loads an artifact once for all its modules, and resolves
    // its imports once per grant shape: the module without rules must
    // not inherit the sockets of the one with rules that ran first.
    let daemon = Daemon::start();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    daemon
        .install(
            GUEST,
            Some("name = \"listener\"\nversion = \"1\"\n"),
            &deployment("shared", &["listen", &addr], &format!("listen = [\"{addr}\"]")),
        )
        .expect_code(0);
    daemon.wait_guest_out("listener", "listening on", WAIT);
    daemon
        .install(
            GUEST,
            Some("name = \"sneaky\"\nversion = \"1\"\n"),
            &deployment("shared", &["connect", &addr, "sneaky"], ""),
        )
        .expect_code(0);
    let sneaky = daemon.wait_for("sneaky", WAIT, "exited", |s| state_name(s) == "exited");
    assert_ne!(sneaky["exit_code"], 0, "{sneaky}");
    let logs = daemon.cli(["logs", "sneaky"]).stdout;
    assert!(logs.contains("denied network: create an IPv4 TCP socket"), "{logs}");
    // The listener never saw it; a module with the rule reaches it.
    daemon
        .install(
            GUEST,
            Some("name = \"friend\"\nversion = \"1\"\n"),
            &deployment(
                "shared",
                &["connect", &addr, "friend"],
                &format!("connect = [\"{addr}\"]"),
            ),
        )
        .expect_code(0);
    daemon.wait_guest_out("friend", "echo: friend", WAIT);
    daemon.wait_guest_out("listener", "served: friend", WAIT);
    let log = daemon.log();
    assert_eq!(
        log.matches("worker `shared` started").count(),
        1,
        "all three ran in one worker, sharing the loaded code:\n{log}"
    );
}
