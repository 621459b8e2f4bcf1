//! Management connections cannot lock the operator out: idle ones are
//! closed, and a few slots are kept for root and the daemon's user.

use super::harness::*;
use arcella_core::client::Client;
use arcella_core::protocol::Request;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The peer that hogs connections: an unprivileged uid and group that the
/// daemon's `[access]` allows.
const NOBODY: u32 = 65534;
/// Set (to the socket path) in the copy of this test binary that hogs.
const HOG: &str = "ARCELLA_TEST_HOG_SOCKET";

/// What broke: 64 idle connections that completed the handshake locked the
/// operator out for as long as they stayed.
#[test]
fn sixty_four_idle_connections_do_not_lock_the_operator_out() {
    if let Some(socket) = std::env::var_os(HOG) {
        // The hog: as many served connections as the daemon gives, held
        // until the test closes our stdin.
        let held: Vec<Client> = (0..64)
            .map_while(|_| Client::connect(socket.as_ref(), "hog").ok())
            .collect();
        println!("held {}", held.len());
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    }
    let daemon = Daemon::start_with_config(&format!(
        "[access]\nallowed_uids = [{NOBODY}]\nsocket_gid = {NOBODY}\nidle_timeout = \"1h\"\n"
    ));
    // Let the hog reach the (group-accessible) socket in the test's directory.
    std::fs::set_permissions(daemon.dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let module = module_path!().split_once("::").map_or(module_path!(), |(_, path)| path);
    let mut hog = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &format!("{module}::sixty_four_idle_connections_do_not_lock_the_operator_out"),
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOG, daemon.socket())
        .uid(NOBODY)
        .gid(NOBODY)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // libtest prints "test NAME ... " before the hog's own line.
    let mut said = String::new();
    let mut out = BufReader::new(hog.stdout.take().unwrap());
    while !said.contains("held ") {
        said.clear();
        assert_ne!(out.read_line(&mut said).unwrap(), 0, "the hog ended:\n{}", daemon.log());
    }
    let held = said.split("held ").nth(1).unwrap_or_default().trim().to_owned();
    assert_eq!(held, "60", "an [access] peer may hold 64 − 4 connections");
    // The operator still gets in, more than once at a time.
    let mut operator = Client::connect(&daemon.socket(), "operator").unwrap();
    operator.call(Request::Info).unwrap();
    daemon.cli(["info"]).expect_code(0);
    assert!(
        daemon.log().contains("of which 4 are kept for root"),
        "{}",
        daemon.log()
    );
    drop(hog.stdin.take());
    hog.wait().unwrap();
}

#[test]
fn an_idle_connection_is_closed_after_the_idle_timeout_but_a_follower_is_not() {
    let daemon = Daemon::start_with_config("[access]\nidle_timeout = \"300ms\"\n");
    let mut idle = Client::connect(&daemon.socket(), "idle").unwrap();
    let mut follower = Client::connect(&daemon.socket(), "follower").unwrap();
    follower.call(Request::Follow { module: None }).unwrap();
    idle.call(Request::Info).unwrap();
    std::thread::sleep(Duration::from_millis(900));
    assert!(idle.call(Request::Info).is_err(), "the idle connection was kept");
    follower.call(Request::Info).unwrap();
    assert!(
        daemon
            .log()
            .contains("sent no request for 300ms; closing its connection"),
        "{}",
        daemon.log()
    );
}

/// What broke: a module restarting 64 times a second wrote 20 KB/s of
/// daemon log. Restarts are now at least 100 ms apart, and a group's
/// worker start and end lines are logged at most 10 a minute.
#[test]
fn a_module_restarting_all_the_time_does_not_flood_the_daemon_log() {
    let daemon = Daemon::start();
    daemon
        .install(
            "hello_p1",
            Some("name = \"flappy\"\nversion = \"1\"\n"),
            "group = \"flappy\"\n[restart]\npolicy = \"always\"\nbackoff_initial = \"100ms\"\nbackoff_max = \"100ms\"\n",
        )
        .expect_code(0);
    daemon.wait_for("flappy", Duration::from_secs(30), "restarted 15 times", |s| {
        s["restarts"].as_u64().unwrap_or(0) >= 15
    });
    let log = daemon.log();
    let started = log.matches("worker `flappy` started").count();
    assert!(started <= 10, "{started} start lines for 15 restarts:\n{log}");
    assert!(log.contains("worker `flappy` starts and ends often"), "{log}");
}

/// `[access] read_only_gids`: a group that may look, not touch.
#[test]
fn a_read_only_group_may_read_but_not_operate_or_change() {
    let daemon = Daemon::start_with_config(&format!(
        "[access]\nread_only_gids = [{NOBODY}]\nsocket_gid = {NOBODY}\n"
    ));
    std::fs::set_permissions(daemon.dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    daemon
        .install("ticker", Some(TICKER_COMPONENT), TICKER_SERVICE)
        .expect_code(0);
    let as_nobody = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_arcella"))
            .arg("--socket")
            .arg(daemon.socket())
            .args(args)
            .env_clear()
            .uid(NOBODY)
            .gid(NOBODY)
            .output()
            .unwrap()
    };
    let list = as_nobody(&["list"]);
    assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
    assert!(String::from_utf8_lossy(&list.stdout).contains("ticker"));
    for verb in [&["stop", "ticker"][..], &["remove", "ticker"][..], &["gc"][..]] {
        let refused = as_nobody(verb);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            !refused.status.success() && stderr.contains("may only read"),
            "{verb:?}: {stderr}"
        );
    }
    assert_eq!(state_name(&daemon.status("ticker").unwrap()), "running");
    // Each refused attempt is on the audit trail, with who tried; the
    // read-only peer may read the trail itself.
    let mut refused = 0;
    for _ in 0..100 {
        let trail = as_nobody(&["--json", "audit"]);
        assert!(trail.status.success(), "{}", String::from_utf8_lossy(&trail.stderr));
        refused = String::from_utf8_lossy(&trail.stdout)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|r| {
                r["action"] == "refused"
                    && r["actor"].as_str().unwrap_or("").starts_with(&format!("uid {NOBODY} "))
                    && r["outcome"] == "permission denied: read-only peer"
            })
            .count();
        if refused == 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(refused, 3, "the three refused attempts are audited");
}
