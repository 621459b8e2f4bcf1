//! Stopping and daemon shutdown: the shutdown call, then the grace period.

use super::harness::*;
use std::time::{Duration, Instant};

/// How long a module may take to log what a test waits for.
const LOG_WAIT: Duration = Duration::from_secs(10);

const GRACEFUL: &str = "name = \"graceful\"\nversion = \"1\"\n";

fn service(extra: &str) -> String {
    format!("kind = \"service\"\nisolation = \"main\"\ntrusted = true\n{extra}")
}

/// Installs `guest` as the `graceful` service with a read-write `/data`
/// grant, waits until it works, and returns the granted host directory.
fn install_with_granted_dir(daemon: &Daemon, guest: &str) -> std::path::PathBuf {
    let data = daemon.dir.path().join("granted");
    std::fs::create_dir(&data).unwrap();
    let grant = format!(
        "[[capabilities.dirs]]\nhost = \"{}\"\nguest = \"/data\"\nmode = \"rw\"\n",
        data.display()
    );
    daemon.install(guest, Some(GRACEFUL), &service(&grant)).expect_code(0);
    daemon.wait_log("graceful", "out | working", LOG_WAIT);
    data
}

/// Installs `graceful` told to ignore the shutdown call, and waits until it
/// works.
fn install_stubborn(daemon: &Daemon) {
    daemon
        .install(
            "graceful_p1",
            Some(GRACEFUL),
            &service("[capabilities]\nargs = [\"ignore\"]\n"),
        )
        .expect_code(0);
    daemon.wait_log("graceful", "out | working", LOG_WAIT);
}

#[test]
fn stop_gives_a_service_its_shutdown_call() {
    let daemon = Daemon::start();
    daemon
        .install("graceful_p1", Some(GRACEFUL), &service(""))
        .expect_code(0);
    daemon.wait_log("graceful", "out | working", LOG_WAIT);
    daemon.cli(["stop", "graceful"]).expect_code(0);
    daemon.wait_for("graceful", Duration::from_secs(10), "stopped", |s| {
        state_name(s) == "stopped"
    });
    daemon.wait_log("graceful", "out | shutdown requested: cleaning up", LOG_WAIT);
    daemon.wait_log("graceful", "stopped cleanly (exit code 0)", LOG_WAIT);
}

/// `restart` is a stop and a start: the running instance hears the
/// shutdown call and finishes cleanly before the new one starts.
#[test]
fn restart_gives_a_service_its_shutdown_call_before_starting_it_again() {
    let daemon = Daemon::start();
    daemon
        .install("graceful_p2", Some(GRACEFUL), &service(""))
        .expect_code(0);
    daemon.wait_log("graceful", "out | working", LOG_WAIT);
    daemon.cli(["restart", "graceful"]).expect_code(0);
    daemon.wait_log("graceful", "out | shutdown requested: cleaning up", LOG_WAIT);
    daemon.wait_log("graceful", "stopped cleanly (exit code 0)", LOG_WAIT);
    runs_again_after(&daemon, "stopped cleanly");
}

/// The module runs again, and its new instance works after the log line
/// `marker` that ended the old one.
fn runs_again_after(daemon: &Daemon, marker: &str) {
    daemon.wait_for("graceful", Duration::from_secs(10), "running again", |s| {
        state_name(s) == "running"
    });
    let logs = daemon.cli(["logs", "graceful"]).stdout;
    let ended = logs.find(marker).unwrap();
    assert!(
        logs[ended..].contains("out | working"),
        "a new instance works after the old one ended ({marker}):\n{logs}"
    );
}

#[test]
fn a_service_that_ignores_the_call_is_cancelled_after_the_grace() {
    let daemon = Daemon::start_with_config("shutdown_grace = \"300ms\"\n");
    install_stubborn(&daemon);
    daemon
        .cli(["stop", "graceful"])
        .expect_code(0)
        .stdout_has(&["is stopping"]);
    daemon.wait_for("graceful", Duration::from_secs(10), "stopped", |s| {
        state_name(s) == "stopped"
    });
    daemon.wait_log("graceful", "did not stop within 300ms; cancelled", LOG_WAIT);
}

/// A `start` that comes while the instance is still stopping (within its
/// grace) is not lost: once the old instance has ended, the module runs
/// again, and stays running.
#[test]
fn a_start_while_stopping_runs_the_module_again_once_the_old_instance_ended() {
    let daemon = Daemon::start_with_config("shutdown_grace = \"300ms\"\n");
    install_stubborn(&daemon);
    daemon
        .cli(["stop", "graceful"])
        .expect_code(0)
        .stdout_has(&["is stopping"]);
    daemon.cli(["start", "graceful"]).expect_code(0);
    daemon.wait_log("graceful", "did not stop within 300ms; cancelled", LOG_WAIT);
    runs_again_after(&daemon, "cancelled");
}

#[test]
fn sigterm_asks_modules_to_finish_before_the_daemon_exits() {
    let mut daemon = Daemon::start_with_config("shutdown_grace = \"5s\"\n");
    let data = install_with_granted_dir(&daemon, "graceful_p1");
    let began = Instant::now();
    assert_eq!(daemon.terminate(), Some(0), "{}", daemon.log());
    assert!(
        began.elapsed() < Duration::from_secs(4),
        "a cooperative module does not use up the grace"
    );
    assert_eq!(
        std::fs::read_to_string(data.join("clean-exit")).unwrap(),
        "bye\n",
        "the module cleaned up"
    );
    // It comes back at the next start: shutdown keeps desired states.
    daemon.spawn();
    daemon.wait_for("graceful", Duration::from_secs(10), "running", |s| {
        state_name(s) == "running"
    });
}

#[test]
fn sigterm_cancels_what_ignores_it_within_the_grace() {
    let mut daemon = Daemon::start_with_config("shutdown_grace = \"500ms\"\n");
    install_stubborn(&daemon);
    let began = Instant::now();
    assert_eq!(daemon.terminate(), Some(0));
    assert!(
        began.elapsed() < Duration::from_secs(4),
        "shutdown took {:?}",
        began.elapsed()
    );
    assert!(
        daemon.log().contains("did not stop within 500ms; cancelled"),
        "{}",
        daemon.log()
    );
}

#[test]
fn sigint_shuts_down_as_gracefully_as_sigterm() {
    let mut daemon = Daemon::start();
    let data = install_with_granted_dir(&daemon, "graceful_p2");
    assert_eq!(daemon.stop_with("INT"), Some(0), "{}", daemon.log());
    assert_eq!(std::fs::read_to_string(data.join("clean-exit")).unwrap(), "bye\n");
    assert!(daemon.log().contains("Int received"), "{}", daemon.log());
}

/// What broke: SIGTERM waited the whole grace for modules that do not
/// import the shutdown call (the docs say they are cancelled at once), and
/// every clean shutdown logged a WARN "worker … exited with code 0; 1
/// module(s) on it lost".
#[test]
fn sigterm_cancels_modules_without_the_shutdown_import_at_once_and_loses_none() {
    let mut daemon = Daemon::start_with_config("shutdown_grace = \"10s\"\n");
    daemon
        .install(
            "infinite_loop",
            Some("name = \"spinner\"\nversion = \"1\"\n"),
            &service(""),
        )
        .expect_code(0);
    daemon
        .install("ticker", Some(TICKER_COMPONENT), "kind = \"service\"\ngroup = \"g\"\n")
        .expect_code(0);
    daemon.wait_for("ticker", Duration::from_secs(10), "hosted by a worker", |s| {
        state_name(s) == "running" && s["worker_pid"].is_u64()
    });
    daemon.wait_log("ticker", "out | tick", LOG_WAIT);
    let began = Instant::now();
    assert_eq!(daemon.terminate(), Some(0), "{}", daemon.log());
    let took = began.elapsed();
    let log = daemon.log();
    assert!(
        took < Duration::from_secs(4),
        "shutdown took {took:?} with a 10 s grace, though neither module can hear the call:\n{log}"
    );
    assert!(!log.contains("module(s) on it lost"), "{log}");
    assert!(log.contains("as the daemon stops"), "{log}");
}
