//! Trusted (in-process) modules cannot exhaust the daemon: memory always
//! has a limit, and table elements are counted.

use super::harness::*;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn trusted(extra: &str) -> String {
    format!("kind = \"service\"\nisolation = \"main\"\ntrusted = true\n[restart]\npolicy = \"never\"\n{extra}")
}

/// The module's failure reason, once it has failed.
fn failure(daemon: &Daemon, id: &str) -> String {
    let status = daemon.wait_for(id, WAIT, "failed", |s| state_name(s) == "failed");
    status["failure"].as_str().unwrap().to_owned()
}

/// What broke: 100 tables of 1M funcrefs took the daemon to 842 MB under
/// `limits.memory = "1M"` (tables were not counted).
#[test]
fn a_table_bomb_in_process_ends_naming_the_table_limit() {
    let daemon = Daemon::start();
    daemon
        .install(
            "table_bomb",
            Some("name = \"tables\"\nversion = \"1\"\n"),
            &trusted("[limits]\nmemory = \"1M\"\n"),
        )
        .expect_code(0);
    let reason = failure(&daemon, "tables");
    assert!(reason.contains("table limit of 1048576 elements exceeded"), "{reason}");
    daemon.cli(["info"]).expect_code(0);
}

/// What broke: a trusted module without `limits.memory` grew the daemon to
/// 830 MB and hung it. Now it gets the in-process default (64 MiB).
#[test]
fn a_trusted_module_without_a_memory_limit_is_stopped_at_the_default() {
    let daemon = Daemon::start();
    daemon
        .install(
            "memory_bomb_p1",
            Some("name = \"bomb\"\nversion = \"1\"\n"),
            &trusted(""),
        )
        .expect_code(0);
    let reason = failure(&daemon, "bomb");
    assert!(reason.contains("memory limit of 67108864 bytes exceeded"), "{reason}");
    daemon.cli(["info"]).expect_code(0);
}

/// The default counts against `memory_budget` like a declared limit.
#[test]
fn the_in_process_default_counts_against_the_memory_budget() {
    let daemon = Daemon::start_with_config("memory_budget = \"100MiB\"\n");
    daemon
        .install("ticker", Some(TICKER_COMPONENT), TICKER_SERVICE)
        .expect_code(0);
    daemon
        .install(
            "memory_bomb_p1",
            Some("name = \"bomb\"\nversion = \"1\"\n"),
            &trusted(""),
        )
        .expect_code(1)
        .stderr_has(&["memory_budget", "128 MiB"]);
}
