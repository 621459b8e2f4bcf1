//! The polyglot examples (examples/{rust,c,python,js}-service), built from
//! source by the test setup against the shipped wit/ worlds with the
//! pinned toolchains of scripts/guest-tools, installed with their own
//! manifests on one real daemon, each in its own worker: each logs through
//! wasi:logging, counts its starts in wasi:keyvalue, follows a wasi:config
//! change while it runs, and stops when asked. Without the tools these
//! tests fail (never skip), naming scripts/guest-tools.

use crate::daemon::harness::Daemon;
use std::path::Path;
use std::time::{Duration, Instant};

/// (example directory, guest, language word in its log lines).
const EXAMPLES: &[(&str, &str, &str)] = &[
    ("rust-service", "rust_service", "rust"),
    ("c-service", "c_service", "c"),
    ("python-service", "python_service", "python"),
    ("js-service", "js_service", "js"),
];

fn example(dir: &str, file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(dir)
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Fails (not skips) when the setup had no guest tools.
pub fn require_tools() {
    if let Some(why) = arcella_test_programs::POLYGLOT_MISSING {
        panic!("{why}");
    }
}

/// Waits until `id`'s log has `needle`, returning the log.
fn wait_log(daemon: &Daemon, id: &str, needle: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let logs = daemon.cli(["logs", id]).stdout;
        if logs.contains(needle) {
            return logs;
        }
        assert!(
            Instant::now() < deadline,
            "{id}: no {needle:?} within {within:?} in:\n{logs}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn every_language_logs_counts_in_keyvalue_follows_config_and_stops_on_a_daemon() {
    require_tools();
    let daemon = Daemon::start();
    let mut running = Vec::new();
    for &(dir, guest, lang) in EXAMPLES {
        let installed = daemon.install(
            guest,
            Some(&example(dir, "component.toml")),
            &example(dir, "deployment.toml"),
        );
        // componentize-py and componentize-js import every interface of
        // the world, outgoing wasi:http among them: a daemon built without
        // it refuses them at install, naming the import and the fix.
        if !cfg!(feature = "http") && (lang == "python" || lang == "js") {
            installed
                .expect_code(1)
                .stderr_has(&["wasi:http/outgoing-handler", "`http` cargo feature"]);
            assert!(daemon.status(dir).is_none(), "{dir} kept nothing");
            continue;
        }
        installed.expect_code(0);
        running.push((dir, guest, lang));
    }
    let running = &running;
    // A Python or JS instance takes a while to start on a loaded machine.
    let within = Duration::from_secs(60);
    for &(id, _, lang) in running {
        let logs = wait_log(&daemon, id, &format!("hello from {lang}, start 1"), within);
        assert!(!logs.contains("no key-value store"), "{id}: {logs}");
        let status = daemon.status(id).unwrap();
        assert!(status["worker_pid"].is_u64(), "{id} runs in a worker: {status}");
        let starts = daemon.cli(["kv", id, "get", "starts"]);
        assert_eq!(starts.expect_code(0).stdout.trim(), "1", "{id}");
    }
    // Config changed while they run: each logs it and keeps it in its state.
    for &(id, _, _) in running {
        daemon.cli(["config", id, "set", "greeting=hej"]).expect_code(0);
    }
    for &(id, _, _) in running {
        wait_log(&daemon, id, "greeting is now hej", within);
        let greeting = daemon.cli(["kv", id, "get", "greeting"]);
        assert_eq!(greeting.expect_code(0).stdout.trim(), "hej", "{id}");
    }
    // Stopped, each hears the shutdown call and says so; started again, it
    // counts on from its kept state with the changed greeting.
    for &(id, _, lang) in running {
        daemon.cli(["stop", id]).expect_code(0);
        wait_log(&daemon, id, "stopping", within);
        daemon.cli(["start", id]).expect_code(0);
        wait_log(&daemon, id, &format!("hej from {lang}, start 2"), within);
        let starts = daemon.cli(["kv", id, "get", "starts"]);
        assert_eq!(starts.expect_code(0).stdout.trim(), "2", "{id}");
    }
}
