//! Runtime configuration (`wasi:config/store`) and structured logging
//! (`wasi:logging`) for components, in the daemon's process and in a
//! worker: `arcella config` changes what a running guest reads without a
//! restart, the change is durable, `[restart] on_config_change` restarts
//! instead, bad input changes nothing; `logs --level` filters by level.

use super::harness::*;
use arcella_core::client::{Client, ClientError};
use arcella_core::protocol::{ErrorKind, Request};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);
const GUEST: &str = "config_log_p2";

fn component(version: &str) -> String {
    format!("name = \"cfg\"\nversion = \"{version}\"\n")
}

/// A service deployment, in-process or in a worker, with `[config]`
/// `greeting` and any `extra` tables.
fn deployment(in_process: bool, greeting: &str, extra: &str) -> String {
    let place = if in_process {
        "isolation = \"main\"\ntrusted = true\n"
    } else {
        ""
    };
    format!("kind = \"service\"\n{place}[config]\ngreeting = \"{greeting}\"\n{extra}")
}

/// `arcella logs cfg` once it holds `needle` `times` times.
fn wait_log(daemon: &Daemon, needle: &str, times: usize) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let ran = daemon.cli(["logs", "cfg"]);
        if ran.stdout.matches(needle).count() >= times {
            return ran.stdout;
        }
        if Instant::now() > deadline {
            panic!(
                "`{needle}` never showed {times} time(s) in the log:\n{}\ndaemon log:\n{}",
                ran.stdout,
                daemon.log()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn running(daemon: &Daemon) -> serde_json::Value {
    daemon.wait_for("cfg", WAIT, "running", |s| {
        state_name(s) == "running" && (s["isolation"] == "main" || s["worker_pid"].is_u64())
    })
}

fn live_change(in_process: bool) {
    let daemon = Daemon::start();
    daemon
        .install(GUEST, Some(&component("1.0.0")), &deployment(in_process, "hello", ""))
        .expect_code(0);
    let before = running(&daemon);
    let log = wait_log(&daemon, "greeting=hello keys=1", 1);
    assert!(log.contains("missing=Ok(None)"), "a missing key reads as none:\n{log}");
    daemon
        .cli(["config", "cfg"])
        .expect_code(0)
        .stdout_has(&["greeting=hello  (deployment)"]);

    daemon
        .cli(["config", "cfg", "set", "greeting=bonjour", "extra.key=a=b"])
        .expect_code(0)
        .stdout_has(&["greeting=bonjour  (operator)", "extra.key=a=b  (operator)"]);
    let log = wait_log(&daemon, "greeting=bonjour keys=2", 1);
    assert_eq!(
        log.matches("missing=").count(),
        1,
        "the guest was not restarted:\n{log}"
    );
    let after = running(&daemon);
    for key in ["started_at", "restarts", "worker_pid"] {
        assert_eq!(before[key], after[key], "{key} changed: the guest was restarted");
    }
    assert_eq!(daemon.cli(["config", "cfg", "get", "greeting"]).stdout, "bonjour\n");
    let json = daemon.cli(["--json", "config", "cfg", "get", "greeting"]);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(value["value"], "bonjour");
    assert_eq!(value["source"], "operator");
    daemon
        .cli(["config", "cfg", "get", "nope"])
        .expect_code(1)
        .stderr_has(&["no config key `nope`"]);

    // Unset returns to the deployment's value, again without a restart.
    daemon.cli(["config", "cfg", "unset", "greeting"]).expect_code(0);
    let log = wait_log(&daemon, "greeting=hello", 2);
    assert_eq!(log.matches("missing=").count(), 1, "{log}");
    let listing = daemon.cli(["--json", "config", "cfg"]);
    let listing: serde_json::Value = serde_json::from_str(&listing.stdout).unwrap();
    assert_eq!(listing["restarted"], false);
    let entries = listing["config"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{listing}");
    assert_eq!(entries[1]["key"], "greeting");
    assert_eq!(entries[1]["source"], "deployment");

    // wasi:logging: levels in the module's log, filtered by --level.
    let warn = daemon.cli(["logs", "cfg", "--level", "warn"]);
    assert!(
        warn.stdout.contains("warn | config_log: greeting is now bonjour"),
        "{}",
        warn.stdout
    );
    assert!(
        !warn.stdout.contains("greeting: ") && !warn.stdout.contains("greeting=") && !warn.stdout.contains("arcella |"),
        "info, stdout and daemon lines are below warn:\n{}",
        warn.stdout
    );
    let all = daemon.cli(["logs", "cfg"]);
    assert!(all.stdout.contains("info | greeting: bonjour"), "{}", all.stdout);
    let json = daemon.cli(["--json", "logs", "cfg"]);
    let lines: Vec<serde_json::Value> = json.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(
        lines
            .iter()
            .any(|l| l["stream"] == "logging" && l["level"] == "info" && l["text"] == "greeting: hello")
    );
    assert!(lines.iter().any(|l| l["stream"] == "stdout" && l["level"] == "info"));
    assert!(lines.iter().any(|l| l["stream"] == "logging" && l["level"] == "warn"));
    let tail = daemon.cli(["--json", "logs", "cfg", "--level", "warn", "--tail", "1"]);
    assert_eq!(tail.stdout.lines().count(), 1, "{}", tail.stdout);
    // Warn and above reach the daemon's own log; info stays out of it.
    let own = daemon.log();
    assert!(own.contains("module `cfg`: config_log: greeting is now hello"), "{own}");
    assert!(!own.contains("greeting: hello"), "{own}");
}

#[test]
fn config_set_reaches_a_running_guest_in_process_without_a_restart() {
    live_change(true);
}

#[test]
fn config_set_reaches_a_running_guest_in_a_worker_without_a_restart() {
    live_change(false);
}

#[test]
fn operator_values_survive_daemon_restart_update_and_rollback() {
    let mut daemon = Daemon::start();
    daemon
        .install(GUEST, Some(&component("1.0.0")), &deployment(false, "hello", ""))
        .expect_code(0);
    running(&daemon);
    daemon.cli(["config", "cfg", "set", "greeting=kept"]).expect_code(0);
    wait_log(&daemon, "greeting=kept", 1);
    assert_eq!(daemon.terminate(), Some(0));
    daemon.spawn();
    running(&daemon);
    wait_log(&daemon, "greeting=kept", 1);

    let dir = daemon.dir.path();
    let artifact = crate::support::artifact(GUEST, "native");
    let c = write(dir, "c2.toml", &component("1.1.0"));
    let d = write(
        dir,
        "d2.toml",
        &deployment(false, "second", "[update]\nhealth_window = \"0s\"\n"),
    );
    daemon.update("cfg", &artifact, &c, &d).expect_code(0);
    daemon.wait_for("cfg", WAIT, "1.1.0 running", |s| {
        s["version"] == "1.1.0" && state_name(s) == "running"
    });
    let log = wait_log(&daemon, "starting version 1.1.0", 1);
    let after_update = log
        .split("starting version 1.1.0")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    assert!(
        !after_update.contains("greeting=second"),
        "the operator's value lost to the update's default:\n{log}"
    );
    wait_log(&daemon, "greeting=kept", 2);
    daemon.cli(["config", "cfg", "unset", "greeting"]).expect_code(0);
    wait_log(&daemon, "greeting=second", 1);
    daemon.cli(["config", "cfg", "set", "greeting=again"]).expect_code(0);
    wait_log(&daemon, "greeting=again", 1);
    daemon.cli(["rollback", "cfg"]).expect_code(0);
    daemon.wait_for("cfg", WAIT, "1.0.0 running", |s| {
        s["version"] == "1.0.0" && state_name(s) == "running"
    });
    wait_log(&daemon, "greeting=again", 2);
}

#[test]
fn restart_on_config_change_restarts_the_module() {
    let daemon = Daemon::start();
    daemon
        .install(
            GUEST,
            Some(&component("1.0.0")),
            &deployment(false, "hello", "[restart]\non_config_change = true\n"),
        )
        .expect_code(0);
    running(&daemon);
    wait_log(&daemon, "greeting=hello", 1);
    let json = daemon.cli(["--json", "config", "cfg", "set", "greeting=new"]);
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(json["restarted"], true, "{json}");
    let log = wait_log(&daemon, "greeting=new", 1);
    assert_eq!(log.matches("missing=").count(), 2, "a second start:\n{log}");
    assert!(log.contains("restarting: its configuration changed"), "{log}");
    // Setting the same value again changes nothing, so no restart.
    let again = daemon.cli(["--json", "config", "cfg", "set", "greeting=new"]);
    assert!(again.stdout.contains("\"restarted\":false"), "{}", again.stdout);
}

#[test]
fn bad_config_input_is_refused_and_changes_nothing() {
    let daemon = Daemon::start();
    // A NUL in deployment.toml's [config] is refused at install, by key.
    let nul = "kind = \"service\"\n[config]\ngreeting = \"a\\u0000b\"\n";
    daemon
        .install(GUEST, Some(&component("1.0.0")), nul)
        .expect_code(1)
        .stderr_has(&["config.greeting", "NUL"]);
    daemon
        .install(GUEST, Some(&component("1.0.0")), &deployment(false, "hello", ""))
        .expect_code(0);
    running(&daemon);
    daemon.cli(["config", "cfg", "set", "ok=1"]).expect_code(0);
    let listing = || daemon.cli(["--json", "config", "cfg"]).stdout;
    let before = listing();

    // Over the protocol (the CLI cannot even pass a NUL): all or nothing.
    let mut client = Client::connect(&daemon.socket(), "test").unwrap();
    let refused = client
        .call(Request::SetConfig {
            module: "cfg".into(),
            set: vec![("fine".into(), "1".into()), ("greeting".into(), "a\0b".into())],
            unset: vec!["ok".into()],
        })
        .unwrap_err();
    let ClientError::Remote(remote) = refused else {
        panic!("{refused}")
    };
    assert_eq!(remote.kind, ErrorKind::BadRequest);
    assert!(
        remote.message.contains("`greeting`") && remote.message.contains("NUL"),
        "{remote}"
    );
    assert_eq!(listing(), before, "nothing changed");

    daemon
        .cli(["config", "cfg", "set", "novalue"])
        .expect_code(2)
        .stderr_has(&["not KEY=VALUE"]);
    daemon
        .cli(["config", "cfg", "set", "bad key=1"])
        .expect_code(1)
        .stderr_has(&["config key `bad key` contains ' '"]);
    let big = format!("greeting={}", "x".repeat(5000));
    daemon
        .cli(["config", "cfg", "set", &big])
        .expect_code(1)
        .stderr_has(&["4096"]);
    // Many values each within bounds, too large together.
    let many: Vec<String> = (0..3).map(|i| format!("k{i}={}", "y".repeat(4000))).collect();
    let mut args = vec!["config", "cfg", "set"];
    args.extend(many.iter().map(String::as_str));
    daemon.cli(&args).expect_code(1).stderr_has(&["8192 bytes"]);
    daemon
        .cli(["config", "nosuch", "set", "a=1"])
        .expect_code(1)
        .stderr_has(&["no module `nosuch`"]);
    assert_eq!(listing(), before, "nothing changed");
    wait_log(&daemon, "greeting=hello", 1);
    assert_eq!(state_name(&daemon.status("cfg").unwrap()), "running");
}
