//! Install, start, stop, logs, remove, restart policy, persistence.

use super::harness::*;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn a_service_installs_runs_logs_stops_and_is_removed() {
    let daemon = Daemon::start();
    daemon.install_running_ticker();
    daemon
        .cli(["list"])
        .expect_code(0)
        .stdout_has(&["ticker", "1.0.0", "service", "main", "running"]);
    let deadline = std::time::Instant::now() + WAIT;
    while !daemon.cli(["logs", "ticker"]).stdout.contains("out | tick") {
        assert!(
            std::time::Instant::now() < deadline,
            "no tick logged:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    daemon.cli(["logs", "ticker", "--tail", "1"]).expect_code(0);
    daemon
        .cli(["stop", "ticker"])
        .expect_code(0)
        .stdout_has(&["ticker 1.0.0 is stopped"]);
    let status = daemon.status("ticker").unwrap();
    assert_eq!(status["desired"], "stopped");
    daemon
        .cli(["start", "ticker"])
        .expect_code(0)
        .stdout_has(&["is running"]);
    daemon
        .cli(["restart", "ticker"])
        .expect_code(0)
        .stdout_has(&["is running"]);
    daemon
        .cli(["remove", "ticker"])
        .expect_code(0)
        .stdout_has(&["ticker removed"]);
    assert!(daemon.status("ticker").is_none());
    daemon
        .cli(["list"])
        .expect_code(0)
        .stdout_has(&["no modules installed"]);
    let artifacts = std::fs::read_dir(daemon.data_dir().join("artifacts")).unwrap().count();
    assert_eq!(artifacts, 0, "the removed module's artifact was collected");
}

#[test]
fn a_command_runs_to_completion_with_its_grants() {
    let daemon = Daemon::start();
    let deployment = "kind = \"command\"\nisolation = \"main\"\ntrusted = true\n[restart]\npolicy = \"never\"\n\
                      [capabilities]\nargs = [\"exit=7\"]\n[capabilities.env]\nGREETING = \"hi\"\n";
    daemon
        .install("hello_p1", Some("name = \"hello\"\nversion = \"2.0\"\n"), deployment)
        .expect_code(0);
    let status = daemon.wait_for("hello", WAIT, "exited", |s| state_name(s) == "exited");
    assert_eq!(status["exit_code"], 7);
    assert_eq!(status["last_exit"], 7);
    daemon.cli(["logs", "hello"]).expect_code(0).stdout_has(&[
        "out | hello from arcella",
        "out | argv0: hello",
        "out | arg: exit=7",
        "out | env: GREETING=hi",
        "err | hello on stderr",
        "exited with code 7",
    ]);
}

#[test]
fn a_crash_loop_backs_off_then_fails_with_the_reason() {
    let daemon = Daemon::start();
    let deployment = "kind = \"service\"\nisolation = \"main\"\ntrusted = true\n\
                      [restart]\npolicy = \"on-failure\"\nbackoff_initial = \"100ms\"\nbackoff_max = \"200ms\"\nmax_restarts = 2\n";
    daemon
        .install("unreachable", Some("name = \"crasher\"\nversion = \"1\"\n"), deployment)
        .expect_code(0);
    let status = daemon.wait_for("crasher", WAIT, "failed", |s| state_name(s) == "failed");
    let reason = status["failure"].as_str().unwrap().to_owned();
    assert!(
        reason.contains("crash loop") && reason.contains("3 failures"),
        "{reason}"
    );
    assert!(reason.contains("unreachable"), "the last error is named: {reason}");
    assert_eq!(status["restarts"], 2);
    daemon
        .cli(["status", "crasher"])
        .expect_code(0)
        .stdout_has(&["failed: crash loop", "restarts:    2"]);
}

#[test]
fn installed_modules_come_back_after_a_crash_of_the_daemon() {
    let mut daemon = Daemon::start();
    daemon
        .install("ticker", Some(TICKER_COMPONENT), TICKER_SERVICE)
        .expect_code(0);
    daemon
        .install(
            "hello_p1",
            Some("name = \"idle\"\nversion = \"1\"\n"),
            "isolation = \"main\"\ntrusted = true\n[startup]\nautostart = false\n",
        )
        .expect_code(0);
    daemon.kill();
    daemon.spawn();
    daemon.wait_for("ticker", WAIT, "running", |s| state_name(s) == "running");
    let idle = daemon.status("idle").unwrap();
    assert_eq!(state_name(&idle), "stopped", "a stopped module stays stopped");
    daemon.cli(["stop", "ticker"]).expect_code(0);
    assert_eq!(daemon.terminate(), Some(0));
    assert!(!daemon.socket().exists(), "the socket is removed at shutdown");
    daemon.spawn();
    let ticker = daemon.status("ticker").unwrap();
    assert_eq!(state_name(&ticker), "stopped", "the desired state survives a restart");

    // A start is answered once the desired state is on disk (the instance
    // itself starts before the save, not to wait for the disk): one
    // whose record cannot be saved fails and leaves nothing running.
    let records = daemon.data_dir().join("modules");
    let away = daemon.data_dir().join("modules.away");
    std::fs::rename(&records, &away).unwrap();
    std::fs::write(&records, "not a directory").unwrap();
    let failed = daemon.cli(["start", "ticker"]);
    assert_ne!(failed.code, Some(0), "{failed:?}");
    assert!(failed.stderr.contains("saving the module record"), "{}", failed.stderr);
    daemon.wait_for("ticker", WAIT, "stopped again", |s| state_name(s) == "stopped");
    daemon
        .cli(["logs", "ticker"])
        .expect_code(0)
        .stdout_has(&["stopped: its record could not be saved"]);
    std::fs::remove_file(&records).unwrap();
    std::fs::rename(&away, &records).unwrap();
    daemon.kill();
    daemon.spawn();
    let ticker = daemon.status("ticker").unwrap();
    assert_eq!(state_name(&ticker), "stopped", "the failed start was not recorded");
    daemon.cli(["start", "ticker"]).expect_code(0);
    daemon.kill();
    daemon.spawn();
    daemon.wait_for("ticker", WAIT, "running", |s| state_name(s) == "running");
}

#[test]
fn an_untrusted_module_is_never_run_in_the_daemon() {
    let daemon = Daemon::start();
    daemon
        .install(
            "ticker",
            Some(TICKER_COMPONENT),
            "isolation = \"main\"\ntrusted = false\n",
        )
        .expect_code(1)
        .stderr_has(&["untrusted", "isolation"]);
    assert!(daemon.status("ticker").is_none(), "nothing was installed");
}

#[test]
fn malformed_manifests_name_the_file_line_and_key() {
    let daemon = Daemon::start();
    daemon
        .install(
            "ticker",
            Some(TICKER_COMPONENT),
            "isolation = \"main\"\ntrusted = true\nrestrat = 1\n",
        )
        .expect_code(1)
        .stderr_has(&["deployment.toml:3:", "restrat"]);
    daemon
        .install("ticker", Some("name = \"ticker\"\nversion = 1\n"), TICKER_SERVICE)
        .expect_code(1)
        .stderr_has(&["component.toml:2:", "version"]);
    daemon
        .install("ticker", None, TICKER_SERVICE)
        .expect_code(1)
        .stderr_has(&["component.toml"]);
    let deployment = format!("{TICKER_SERVICE}[startup]\nentrypoint = \"run_forever\"\n");
    daemon
        .install("ticker", Some(TICKER_COMPONENT), &deployment)
        .expect_code(1)
        .stderr_has(&["run_forever"]);
    daemon
        .cli(["list"])
        .expect_code(0)
        .stdout_has(&["no modules installed"]);
}

#[test]
fn a_damaged_artifact_is_refused_and_nothing_changes() {
    let daemon = Daemon::start();
    daemon
        .install("ticker", Some(TICKER_COMPONENT), TICKER_SERVICE)
        .expect_code(0);
    let mut bytes = std::fs::read(crate::support::artifact("hello_p1", "native")).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 4;
    let bad = write_bytes(daemon.dir.path(), "bad.cwasm", &bytes);
    let deployment = write(daemon.dir.path(), "d.toml", "isolation = \"main\"\ntrusted = true\n");
    let component = write(daemon.dir.path(), "c.toml", "name = \"bad\"\nversion = \"1\"\n");
    daemon
        .install_file(&bad, &component, &deployment)
        .expect_code(1)
        .stderr_has(&["does not match", "changed or damaged"]);
    assert!(daemon.status("bad").is_none());
    assert_eq!(state_name(&daemon.status("ticker").unwrap()), "running");
}

#[test]
fn installing_twice_asks_for_update_and_update_keeps_the_previous_version() {
    let daemon = Daemon::start();
    daemon
        .install("ticker", Some(TICKER_COMPONENT), TICKER_SERVICE)
        .expect_code(0);
    daemon
        .install("ticker", Some(TICKER_COMPONENT), TICKER_SERVICE)
        .expect_code(1)
        .stderr_has(&["already installed", "--replace"]);
    let dir = daemon.dir.path();
    let component = write(dir, "c2.toml", "name = \"ticker\"\nversion = \"1.1.0\"\n");
    let deployment = write(dir, "d2.toml", TICKER_SERVICE);
    let artifact = crate::support::artifact("ticker", "pulley64");
    let ran = daemon.update("ticker", &artifact, &component, &deployment);
    // The daemon's engine is native: a pulley64 artifact is refused, and
    // the running version is untouched.
    ran.expect_code(1).stderr_has(&["pulley64", "arcella compile"]);
    assert_eq!(daemon.status("ticker").unwrap()["version"], "1.0.0");
    let artifact = crate::support::artifact("ticker", "native");
    daemon
        .update("ticker", &artifact, &component, &deployment)
        .expect_code(0)
        .stdout_has(&["ticker 1.1.0 is running"]);
    let status = daemon.status("ticker").unwrap();
    assert_eq!(status["previous_version"], "1.0.0");
}

#[test]
fn info_and_inspect_describe_daemon_and_module() {
    let daemon = Daemon::start();
    let version = format!("arcella 0.1.0 (protocol {})", arcella_core::protocol::PROTOCOL_VERSION);
    daemon.cli(["info"]).expect_code(0).stdout_has(&[
        &version,
        "engine:      wasmtime-48.0.8/",
        "board:       generic",
    ]);
    daemon
        .install("ticker", Some(TICKER_COMPONENT), TICKER_SERVICE)
        .expect_code(0);
    daemon.cli(["inspect", "ticker"]).expect_code(0).stdout_has(&[
        "kind:        core module",
        "exports:     memory, _start",
        "wasi_snapshot_preview1::poll_oneoff",
    ]);
    daemon
        .cli(["inspect", "nothing-here"])
        .expect_code(1)
        .stderr_has(&["no module `nothing-here`"]);
    // A component shows its WIT world: the interfaces it imports and exports.
    daemon
        .install(
            "hello_p2",
            None,
            "isolation = \"main\"\ntrusted = true\n[startup]\nautostart = false\n",
        )
        .expect_code(0);
    daemon.cli(["inspect", "hello_p2"]).expect_code(0).stdout_has(&[
        "kind:        component",
        "exports:     wasi:cli/run@0.2",
        "wasi:cli/stdout@0.2",
        "wasi:cli/environment@0.2",
    ]);
}

#[test]
fn logs_use_syslog_priorities_under_journald() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("s.sock");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_arcella"))
        .args(["daemon", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--socket")
        .arg(&socket)
        .env_clear()
        .env("JOURNAL_STREAM", "8:1234")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let first = std::io::BufRead::lines(std::io::BufReader::new(stderr))
        .next()
        .unwrap()
        .unwrap();
    child.kill().unwrap();
    let _ = child.wait();
    assert!(first.starts_with("<6>arcella_core::daemon: arcella "), "{first}");
}

#[test]
fn logs_follow_streams_new_lines() {
    let daemon = Daemon::start();
    daemon
        .install("ticker", Some(TICKER_COMPONENT), TICKER_SERVICE)
        .expect_code(0);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_arcella"))
        .args(["logs", "ticker", "--follow"])
        .env_clear()
        .env("ARCELLA_SOCKET", daemon.socket())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let mut ticks = 0;
    while ticks < 3 {
        let line = lines.next().expect("the follower keeps printing").unwrap();
        if line.contains("out | tick") {
            ticks += 1;
        }
    }
    child.kill().unwrap();
    let _ = child.wait();
}

fn write_bytes(dir: &std::path::Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A start is launched on the server's thread and its record saved on
/// another (the guest's first output waits for no disk): a stop from
/// another connection that lands in between must stand, in memory and on
/// disk. Attack: start and stop sent at once, over and over; each time
/// the state and the saved desired state must agree (the lie: a module
/// stopped now that would start again at the daemon's next boot).
#[test]
fn a_stop_racing_a_start_leaves_the_saved_desired_state_true() {
    use arcella_core::client::Client;
    use arcella_core::protocol::Request;
    use std::sync::{Arc, Barrier};
    let daemon = Daemon::start();
    daemon
        .install("ticker", Some(TICKER_COMPONENT), TICKER_SERVICE)
        .expect_code(0);
    let socket = daemon.socket();
    let mut starter = Client::connect(&socket, "starter").unwrap();
    let mut stopper = Client::connect(&socket, "stopper").unwrap();
    let mut outcomes = std::collections::BTreeMap::new();
    for round in 0..40 {
        stopper
            .call(Request::Stop {
                module: "ticker".into(),
            })
            .unwrap();
        daemon.wait_for("ticker", WAIT, "stopped", |s| state_name(s) == "stopped");
        let together = Arc::new(Barrier::new(2));
        let go = together.clone();
        let start = std::thread::spawn(move || {
            go.wait();
            starter
                .call(Request::Start {
                    module: "ticker".into(),
                })
                .unwrap();
            starter
        });
        together.wait();
        // Most rounds land the stop between the start's launch and its
        // save; some before or after. Every order must end consistent.
        std::thread::sleep(Duration::from_micros(round % 4 * 50));
        stopper
            .call(Request::Stop {
                module: "ticker".into(),
            })
            .unwrap();
        starter = start.join().unwrap();
        let status = daemon.wait_for("ticker", WAIT, "not stopping", |s| state_name(s) != "stopping");
        let (state, desired) = (
            state_name(&status),
            status["desired"].as_str().unwrap_or_default().to_owned(),
        );
        let running = state == "running";
        assert_eq!(
            desired,
            if running { "running" } else { "stopped" },
            "round {round}: the module is {state} but its saved desired state is {desired}"
        );
        *outcomes.entry(state).or_insert(0) += 1;
    }
    // The stop is sent second: it must win at least the rounds where it
    // was sent 50 µs or more after the start.
    assert!(
        outcomes.get("stopped").copied().unwrap_or(0) >= 20,
        "outcomes: {outcomes:?}"
    );
}
