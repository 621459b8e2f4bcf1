//! A CPU-bound guest must not starve the others: epoch interruption makes
//! it yield to the daemon's executor every 10 ms.

use super::harness::*;
use std::time::Duration;

/// How far a one-second tick may drift while a busy loop shares the
/// daemon's executor thread.
const TOLERANCE_MS: i64 = 200;

#[test]
fn a_busy_loop_does_not_disturb_a_ticking_service() {
    let daemon = Daemon::start();
    daemon
        .install(
            "infinite_loop",
            Some("name = \"spinner\"\nversion = \"1\"\n"),
            "kind = \"service\"\nisolation = \"main\"\ntrusted = true\n",
        )
        .expect_code(0);
    daemon
        .install("ticker", Some(TICKER_COMPONENT), TICKER_SERVICE)
        .expect_code(0);
    std::thread::sleep(Duration::from_millis(4500));

    let spinner = daemon.status("spinner").unwrap();
    assert_eq!(state_name(&spinner), "Running", "the busy loop is still running");
    let ran = daemon.cli(["--json", "logs", "ticker"]);
    ran.expect_code(0);
    let logs: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    let ticks: Vec<i64> = logs["Logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|line| line["text"] == "tick")
        .map(|line| line["at_ms"].as_i64().unwrap())
        .collect();
    assert!(
        ticks.len() >= 4,
        "only {} ticks in 4.5 s beside a busy loop",
        ticks.len()
    );
    for pair in ticks.windows(2) {
        let interval = pair[1] - pair[0];
        assert!(
            (interval - 1000).abs() <= TOLERANCE_MS,
            "a tick came {interval} ms after the previous one (expected 1000 ± {TOLERANCE_MS}): {ticks:?}"
        );
    }
}
