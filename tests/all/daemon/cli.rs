//! The CLI's contract with scripts, against a real daemon: flat JSON
//! objects, a closed stdout, `install --replace`, manifest errors that name
//! the file given, a finished command shown as finished.

use super::harness::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const HELLO_COMMAND: &str = "kind = \"command\"\nisolation = \"main\"\ntrusted = true\n[restart]\npolicy = \"never\"\n";

fn json(ran: &crate::support::Ran) -> serde_json::Value {
    serde_json::from_str(ran.expect_code(0).stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", ran.stdout))
}

#[test]
fn json_objects_are_flat_and_state_has_one_shape() {
    let daemon = Daemon::start();
    daemon
        .install("hello_p1", Some("name = \"hello\"\nversion = \"2.0\"\n"), HELLO_COMMAND)
        .expect_code(0);
    let status = daemon.wait_for("hello", Duration::from_secs(10), "finished", |s| s["state"] == "exited");
    assert_eq!(status["exit_code"], 0, "{status}");
    for key in ["failure", "restart_attempt", "worker_pid", "update_outcome"] {
        assert!(
            status.get(key).is_some_and(serde_json::Value::is_null),
            "{key}: {status}"
        );
    }
    let list = json(&daemon.cli(["--json", "list"]));
    assert_eq!(list[0]["id"], "hello");
    assert_eq!(list[0]["state"], "exited");
    assert_eq!(list[0]["kind"], "command");
    let info = json(&daemon.cli(["--json", "info"]));
    assert!(info["fingerprint"].as_str().unwrap().starts_with("wasmtime-"), "{info}");
    assert!(info.get("Info").is_none());
    let removed = json(&daemon.cli(["--json", "remove", "hello"]));
    assert_eq!(removed, serde_json::json!({"id": "hello", "removed": true}));
}

#[test]
fn a_finished_command_is_shown_as_finished() {
    let daemon = Daemon::start();
    daemon
        .install("hello_p1", Some("name = \"hello\"\nversion = \"2.0\"\n"), HELLO_COMMAND)
        .expect_code(0);
    daemon.wait_for("hello", Duration::from_secs(10), "finished", |s| s["state"] == "exited");
    let ran = daemon.cli(["status", "hello"]);
    ran.expect_code(0).stdout_has(&["finished (exit code 0)"]);
    assert!(!ran.stdout.contains("desired: running"), "{}", ran.stdout);
}

#[test]
fn logs_into_a_pipe_closed_by_its_reader_end_quietly() {
    let daemon = Daemon::start();
    daemon
        .install("ticker", Some(TICKER_COMPONENT), TICKER_SERVICE)
        .expect_code(0);
    let mut logs = Command::new(env!("CARGO_BIN_EXE_arcella"))
        .args(["logs", "ticker", "--follow"])
        .env_clear()
        .env("ARCELLA_SOCKET", daemon.socket())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(logs.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(!first.is_empty());
    // The reader is gone (like `| head -1`); the next tick hits the pipe.
    let out = logs.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "{stderr}"
    );
}

#[test]
fn install_replace_installs_then_updates() {
    let daemon = Daemon::start();
    let dir = daemon.dir.path();
    let artifact = crate::support::artifact("ticker", "native");
    let deployment = write(dir, "d.toml", TICKER_SERVICE);
    let install = |version: &str| {
        let component = write(dir, "c.toml", &format!("name = \"ticker\"\nversion = \"{version}\"\n"));
        daemon.cli([
            "--json".as_ref(),
            "install".as_ref(),
            "--replace".as_ref(),
            artifact.as_os_str(),
            "--component".as_ref(),
            component.as_os_str(),
            "--deployment".as_ref(),
            deployment.as_os_str(),
        ])
    };
    assert_eq!(json(&install("1.0.0"))["version"], "1.0.0");
    assert_eq!(json(&install("1.1.0"))["version"], "1.1.0");
    let status = daemon.status("ticker").unwrap();
    assert_eq!(status["previous_version"], "1.0.0", "{status}");
}

#[test]
fn a_manifest_the_daemon_refuses_is_named_as_the_user_named_it() {
    let daemon = Daemon::start();
    let ran = daemon.install(
        "ticker",
        Some(TICKER_COMPONENT),
        "kind = \"service\"\nisolation = \"main\"\ntrusted = false\n",
    );
    ran.expect_code(1).stderr_has(&["ticker-deployment.toml", "trusted"]);
    assert!(!ran.stderr.contains(" deployment.toml"), "{}", ran.stderr);
}

#[test]
fn json_error_of_a_refused_request_keeps_the_daemons_kind() {
    let daemon = Daemon::start();
    let ran = daemon.cli(["--json", "start", "nope"]);
    ran.expect_code(1);
    let value: serde_json::Value = serde_json::from_str(ran.stderr.trim()).unwrap();
    assert_eq!(value["error"]["kind"], "not_found", "{value}");
    assert!(ran.stdout.is_empty());
}

/// `ARCELLA_SOCKET` points the daemon and the CLI at one socket, as the
/// README's demo uses it (what broke: the daemon's own `--socket` stopped
/// reading it, and the CLI could not find the daemon).
#[test]
fn arcella_socket_points_the_daemon_and_the_cli_at_one_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("env.sock");
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_arcella"))
        .arg("daemon")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env_clear()
        .env("HOME", dir.path())
        .env("ARCELLA_SOCKET", &socket)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !socket.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let info = Command::new(env!("CARGO_BIN_EXE_arcella"))
        .arg("info")
        .env_clear()
        .env("HOME", dir.path())
        .env("ARCELLA_SOCKET", &socket)
        .output()
        .unwrap();
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert!(
        socket.exists() || info.status.success(),
        "the daemon never served {}",
        socket.display()
    );
    assert!(info.status.success(), "{}", String::from_utf8_lossy(&info.stderr));
    assert!(String::from_utf8_lossy(&info.stdout).contains("modules:"));
}
