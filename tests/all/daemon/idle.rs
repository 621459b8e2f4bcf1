//! Idle means idle: the epoch thread that makes guests yield ticks only
//! while a guest runs wasm, not while the running guests all wait in host
//! calls (issue 18). Its wake-ups are counted from /proc, as the footprint
//! script counts the daemon's.

use super::harness::*;
use std::fs;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

/// Context switches so far of the daemon's epoch thread, if it has one.
fn epoch_switches(pid: u32) -> Option<u64> {
    for task in fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let dir = task.ok()?.path();
        let comm = fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() != "arcella-epoch" {
            continue;
        }
        let status = fs::read_to_string(dir.join("status")).ok()?;
        return Some(
            status
                .lines()
                .filter(|l| l.starts_with("voluntary_ctxt_switches") || l.starts_with("nonvoluntary_ctxt_switches"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum(),
        );
    }
    None
}

/// The epoch thread's switches over `window`.
fn switches_over(daemon: &Daemon, window: Duration) -> u64 {
    let before = epoch_switches(daemon.pid()).expect("no arcella-epoch thread while a guest runs in-process");
    std::thread::sleep(window);
    let after = epoch_switches(daemon.pid()).expect("the arcella-epoch thread went away");
    after - before
}

#[test]
fn a_guest_asleep_in_a_host_call_costs_no_epoch_ticks_and_a_busy_one_gets_them() {
    let daemon = Daemon::start();
    // The sample ticker: one line a second, asleep in poll_oneoff between.
    daemon
        .install("ticker", Some(TICKER_COMPONENT), TICKER_SERVICE)
        .expect_code(0);
    daemon.wait_for("ticker", WAIT, "running", |s| state_name(s) == "running");
    std::thread::sleep(Duration::from_millis(500));
    // A 100/s ticker would switch ~300 times in 3 s; waking for each of the
    // guest's three ticks (and one period after each) is ~10.
    let idle = switches_over(&daemon, Duration::from_secs(3));
    assert!(
        idle <= 40,
        "the epoch thread woke {idle} times in 3 s while the guest slept"
    );

    // A busy guest needs the ticks (to yield, to be stopped): they resume.
    daemon
        .install(
            "infinite_loop",
            Some("name = \"spinner\"\nversion = \"1\"\n"),
            "kind = \"service\"\nisolation = \"main\"\ntrusted = true\n",
        )
        .expect_code(0);
    daemon.wait_for("spinner", WAIT, "running", |s| state_name(s) == "running");
    let busy = switches_over(&daemon, Duration::from_secs(1));
    assert!(busy >= 50, "only {busy} epoch wake-ups in 1 s beside a busy guest");
    // ... and it can be stopped (an epoch deadline interrupts it).
    daemon.cli(["stop", "spinner"]).expect_code(0);
    daemon.wait_for("spinner", WAIT, "stopped", |s| state_name(s) == "stopped");

    // Back to sleeping guests only: back to (almost) no wake-ups.
    std::thread::sleep(Duration::from_millis(500));
    let idle = switches_over(&daemon, Duration::from_secs(3));
    assert!(
        idle <= 40,
        "the epoch thread woke {idle} times in 3 s after the busy guest stopped"
    );
}
