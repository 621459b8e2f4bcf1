//! What the daemon keeps of a guest's output that is not UTF-8: each
//! invalid byte becomes U+FFFD in `arcella logs` (and its JSON), a
//! character split across two writes arrives whole, and the module and the
//! daemon go on — in the daemon's process and in a worker alike.

use super::harness::Daemon;
use std::time::Duration;

#[test]
fn output_that_is_not_utf8_is_logged_with_replacement_characters_in_and_out_of_process() {
    let daemon = Daemon::start();
    let placements = [
        ("trusted", "kind = \"command\"\nisolation = \"main\"\ntrusted = true\n"),
        ("in-worker", "kind = \"command\"\ngroup = \"bytes\"\n"),
    ];
    for (id, deployment) in placements {
        let component = format!("name = \"{id}\"\nversion = \"1.0.0\"\nexports = [\"_start\"]\n");
        daemon.install("not_utf8", Some(&component), deployment).expect_code(0);
        let lines = daemon.wait_guest_out(id, "after", Duration::from_secs(20));
        assert_eq!(lines, ["bad \u{FFFD}\u{FFFD} here", "after \u{2713}"], "{id}");
        let json = daemon.cli(["--json", "logs", id]);
        let texts: Vec<String> = json
            .expect_code(0)
            .stdout
            .lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
            .filter_map(|line| Some(line["text"].as_str()?.to_owned()))
            .collect();
        assert!(texts.contains(&"bad \u{FFFD}\u{FFFD} here".to_owned()), "{texts:?}");
    }
    daemon
        .cli(["list"])
        .expect_code(0)
        .stdout_has(&["trusted", "in-worker"]);
}
