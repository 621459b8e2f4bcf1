//! Idle means idle: the epoch thread that makes guests yield ticks only
//! while a guest runs wasm, not while the running guests all wait in host
//! calls (issue 18). Its wake-ups are counted from /proc, as the footprint
//! script counts the daemon's.

use super::harness::*;
use arcella_test_broker::Mosquitto;
use std::fs;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

/// Context switches so far of the daemon's epoch thread, if it has one.
fn epoch_switches(pid: u32) -> Option<u64> {
    all_switches(pid)
        .into_iter()
        .find_map(|(name, n)| (name == "arcella-epoch").then_some(n))
}

/// Context switches so far of every thread of `pid`, by thread name.
fn all_switches(pid: u32) -> Vec<(String, u64)> {
    let mut threads = Vec::new();
    for task in fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let dir = task.path();
        let comm = fs::read_to_string(dir.join("comm"))
            .unwrap_or_default()
            .trim()
            .to_owned();
        let status = fs::read_to_string(dir.join("status")).unwrap_or_default();
        let n = status
            .lines()
            .filter(|l| l.contains("ctxt_switches"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        threads.push((comm, n));
    }
    threads
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

#[test]
fn an_idle_daemon_connected_to_its_broker_wakes_up_for_nothing() {
    let broker = Mosquitto::start();
    let daemon = Daemon::start_with_config(&format!("[mqtt]\nurl = \"{}\"\ndevice = \"idle-1\"\n", broker.url()));
    // Connected: its presence is on the broker.
    let presence = broker.subscriber("arcella/v1/idle-1/presence", 1, 10, None).lines();
    assert_eq!(
        presence,
        ["arcella/v1/idle-1/presence online"],
        "the daemon did not connect"
    );
    // A request and a key-value-free install/remove use the blocking-work
    // pool; its threads leave after they idle (offload::IDLE_EXIT), and
    // the quota measurement sleeps with nothing quota'd running.
    daemon.cli(["info"]).expect_code(0);
    daemon
        .install("ticker", Some(TICKER_COMPONENT), TICKER_SERVICE)
        .expect_code(0);
    daemon.cli(["remove", "ticker"]).expect_code(0);
    std::thread::sleep(Duration::from_secs(11));
    let before = all_switches(daemon.pid());
    std::thread::sleep(Duration::from_secs(4));
    let after = all_switches(daemon.pid());
    let woke: Vec<String> = after
        .iter()
        .filter_map(|(name, n)| {
            let was = before.iter().find(|(b, _)| b == name).map_or(0, |(_, b)| *b);
            (*n > was).then(|| format!("{name}: {}", n - was))
        })
        .collect();
    // The MQTT keepalive (30 s) may fall in the window: one ping, one
    // pong. Anything more is a timer of our own.
    let total: u64 = after.iter().map(|(_, n)| n).sum::<u64>() - before.iter().map(|(_, n)| n).sum::<u64>();
    assert!(total <= 4, "an idle daemon woke {total} times in 4 s: {woke:?}");
    assert!(
        !after
            .iter()
            .any(|(name, _)| name.starts_with("arcella-offload") || name == "arcella-epoch"),
        "idle threads left: {after:?}"
    );
}
