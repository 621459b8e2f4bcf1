//! Neither the daemon nor a worker can be read or written by another
//! process of the same uid: both are non-dumpable (`PR_SET_DUMPABLE 0`).
//!
//! What broke: under the packaged non-root unit, workers share the
//! daemon's uid, and a worker that escaped wasmtime opened
//! `/proc/<daemon>/mem` (and another group's worker's) read-write.

use super::harness::*;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

/// The packaged unit's stand-in: an unprivileged uid with no home.
const NOBODY: u32 = 65534;

#[test]
fn a_process_of_the_daemons_uid_cannot_open_the_daemons_or_a_workers_memory() {
    let daemon = Daemon::start_as_user(NOBODY);
    daemon
        .install(
            "ticker",
            Some("name = \"ticker\"\nversion = \"1.0.0\"\n"),
            "kind = \"service\"\ngroup = \"sensors\"\n",
        )
        .expect_code(0);
    let status = daemon.wait_for("ticker", Duration::from_secs(15), "hosted by a worker", |s| {
        state_name(s) == "running" && s["worker_pid"].is_u64()
    });
    let worker = status["worker_pid"].as_u64().unwrap() as u32;
    for (who, pid) in [("the daemon", daemon.pid()), ("its worker", worker)] {
        let proc_dir = format!("/proc/{pid}");
        let uid_line = std::fs::read_to_string(format!("{proc_dir}/status"))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("Uid:").map(str::to_owned))
            .unwrap();
        assert!(
            uid_line.split_whitespace().all(|u| u == NOBODY.to_string()),
            "{who} should run as {NOBODY}: Uid:{uid_line}"
        );
        // The kernel's sign of a non-dumpable process: its /proc files (not
        // the directory) belong to root, not to the uid it runs as.
        let owner = std::fs::metadata(format!("{proc_dir}/status")).unwrap().uid();
        assert_eq!(
            owner, 0,
            "{who} (pid {pid}) is dumpable: {proc_dir}/status belongs to uid {owner}"
        );
        // As an escaped worker would try it: same uid, read-write.
        let opened = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("exec 3<> {proc_dir}/mem"))
            .uid(NOBODY)
            .gid(NOBODY)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&opened.stderr);
        assert!(
            !opened.status.success() && said.contains("Permission denied"),
            "uid {NOBODY} opened {proc_dir}/mem of {who} (exit {:?}): {said}",
            opened.status.code()
        );
    }
}
