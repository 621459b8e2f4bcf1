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

/// `guest` (`fd_bomb`, `fd_hog`) with a read-write grant of `dir`,
/// in-process or in a worker.
fn fd_guest(daemon: &Daemon, guest: &str, id: &str, dir: &std::path::Path, isolation: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let deployment = format!(
        "kind = \"service\"\nisolation = \"{isolation}\"\ntrusted = true\n[restart]\npolicy = \"never\"\n\
         [[capabilities.dirs]]\nhost = \"{}\"\nguest = \"/data\"\nmode = \"rw\"\n",
        dir.display()
    );
    daemon
        .install(guest, Some(&format!("name = \"{id}\"\nversion = \"1\"\n")), &deployment)
        .expect_code(0);
}

/// What broke: a trusted module that opened files took the daemon to its
/// 1024-descriptor limit; accepting management connections then failed
/// ("Too many open files") and the CLI timed out. Each guest now holds at
/// most 256 host handles, and the daemon serves the operator throughout.
#[test]
fn an_fd_bomb_in_process_ends_naming_the_handle_limit() {
    let daemon = Daemon::start();
    fd_guest(&daemon, "fd_bomb", "files", &daemon.dir.path().join("fd-bomb"), "main");
    let reason = failure(&daemon, "files");
    assert!(reason.contains("host handle limit of 256 exceeded"), "{reason}");
    let open = std::fs::read_dir(format!("/proc/{}/fd", daemon.pid())).unwrap().count();
    assert!(
        open < 128,
        "the daemon still holds {open} descriptors after the bomb ended"
    );
    daemon.cli(["info"]).expect_code(0);
}

/// In a worker the group's descriptor limit (`workers.open_files`) binds
/// first: the guest's open is refused and the daemon is untouched.
#[test]
fn an_fd_bomb_in_a_worker_is_refused_by_the_groups_open_files() {
    let daemon = Daemon::start();
    fd_guest(
        &daemon,
        "fd_bomb",
        "files",
        &daemon.dir.path().join("fd-bomb"),
        "worker",
    );
    let status = daemon.wait_for("files", WAIT, "exited", |s| state_name(s) == "exited");
    // 64 + WASI's errno `io` (29): wasmtime-wasi reports the worker's
    // EMFILE ("too many open files") to the guest as an I/O error.
    assert_eq!(status["exit_code"], 93, "{status}");
    daemon.cli(["info"]).expect_code(0);
}

/// Every module in the daemon's process is counted against its open-file
/// limit at install: one that would let guests take the descriptors the
/// daemon keeps for itself (management connections) is refused, naming
/// the limit; the daemon and what is installed stay as they were.
#[test]
fn a_module_that_would_not_fit_the_daemons_descriptors_is_refused_at_install() {
    // (700 - 256) / 256: room for one module in the daemon's process.
    let daemon = Daemon::start_with_open_files(700);
    daemon
        .install("ticker", Some(TICKER_COMPONENT), &trusted(""))
        .expect_code(0);
    daemon
        .install("fd_bomb", Some("name = \"files\"\nversion = \"1\"\n"), &trusted(""))
        .expect_code(1)
        .stderr_has(&["open-file limit of 700", "room for 1 module", "isolation = \"worker\""]);
    assert_eq!(state_name(&daemon.status("ticker").unwrap()), "running");
    assert!(daemon.status("files").is_none());
    daemon
        .install(
            "fd_bomb",
            Some("name = \"files\"\nversion = \"1\"\n"),
            "kind = \"service\"\n[restart]\npolicy = \"never\"\n",
        )
        .expect_code(0);
}

/// The same table bomb in a worker: its limiter counts table elements
/// there too, and the daemon and the group's other modules are untouched.
#[test]
fn a_table_bomb_in_a_worker_ends_naming_the_table_limit() {
    let daemon = Daemon::start();
    let worker = "kind = \"service\"\ngroup = \"bombs\"\n[restart]\npolicy = \"never\"\n";
    daemon
        .install("ticker", Some("name = \"neighbour\"\nversion = \"1\"\n"), worker)
        .expect_code(0);
    daemon
        .install("table_bomb", Some("name = \"tables\"\nversion = \"1\"\n"), worker)
        .expect_code(0);
    let reason = failure(&daemon, "tables");
    assert!(reason.contains("table limit of 1048576 elements exceeded"), "{reason}");
    assert_eq!(state_name(&daemon.status("neighbour").unwrap()), "running");
    daemon.cli(["info"]).expect_code(0);
}
