//! Durable key-value state (`wasi:keyvalue`, docs/manifests.md
//! `[capabilities.keyvalue]`): the `kv_counter` guest, in the daemon's
//! process and in a worker, keeps a counter that survives restarts,
//! updates, rollbacks, a SIGKILL'd daemon and `arcella remove`; grants,
//! quotas and size limits refuse with clear errors; a damaged file costs
//! only its own module; `arcella kv` reads and writes it from outside.

use super::harness::*;
use std::path::PathBuf;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const GUEST: &str = "kv_counter_p2";

#[derive(Clone, Copy, Debug)]
enum Place {
    Main,
    Worker,
}

const PLACES: [Place; 2] = [Place::Main, Place::Worker];

fn component(name: &str, version: &str) -> String {
    format!("name = \"{name}\"\nversion = \"{version}\"\n")
}

/// A deployment of the counter: `kind`, where, its arguments and its
/// `[capabilities.keyvalue]` body (`None`: no such section).
fn deployment(kind: &str, place: Place, args: &[&str], keyvalue: Option<&str>) -> String {
    let isolation = match place {
        Place::Main => "isolation = \"main\"\ntrusted = true\n",
        Place::Worker => "isolation = \"worker\"\n",
    };
    let args = args.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", ");
    let mut text = format!(
        "kind = \"{kind}\"\n{isolation}[restart]\npolicy = \"never\"\n[update]\nhealth_window = \"0s\"\n\
         [capabilities]\nargs = [{args}]\n"
    );
    if let Some(body) = keyvalue {
        text.push_str(&format!("[capabilities.keyvalue]\n{body}\n"));
    }
    text
}

const GRANT: &str = "buckets = [\"default\"]\nquota = \"64K\"";

fn install(daemon: &Daemon, name: &str, deployment: &str) {
    daemon
        .install_variant(GUEST, "native", Some(&component(name, "1.0.0")), deployment)
        .expect_code(0);
}

fn out(daemon: &Daemon, module: &str) -> Vec<String> {
    daemon.guest_out(module)
}

fn wait_out(daemon: &Daemon, module: &str, needle: &str) -> Vec<String> {
    daemon.wait_guest_out(module, needle, WAIT)
}

fn exited(daemon: &Daemon, module: &str) {
    daemon.wait_for(module, WAIT, "exited", |s| state_name(s) == "exited");
}

fn kv(daemon: &Daemon, args: &[&str]) -> crate::support::Ran {
    daemon.cli(std::iter::once("kv").chain(args.iter().copied()))
}

fn counter(daemon: &Daemon, module: &str) -> u64 {
    let ran = kv(daemon, &[module, "get", "counter"]);
    ran.expect_code(0);
    ran.stdout.trim().parse().unwrap()
}

#[test]
fn the_counter_survives_restart_update_rollback_and_daemon_restart() {
    for place in PLACES {
        let mut daemon = Daemon::start();
        install(&daemon, "kv", &deployment("command", place, &["once"], Some(GRANT)));
        wait_out(&daemon, "kv", "count 1");
        exited(&daemon, "kv");
        daemon.cli(["start", "kv"]).expect_code(0);
        wait_out(&daemon, "kv", "count 2");
        exited(&daemon, "kv");
        let dir = daemon.dir.path().to_owned();
        let c2 = write(&dir, "kv-2.toml", &component("kv", "2.0.0"));
        let d = write(&dir, "kv-d.toml", &deployment("command", place, &["once"], Some(GRANT)));
        daemon
            .update("kv", &crate::support::artifact(GUEST, "native"), &c2, &d)
            .expect_code(0);
        wait_out(&daemon, "kv", "count 3");
        exited(&daemon, "kv");
        daemon.cli(["rollback", "kv"]).expect_code(0);
        wait_out(&daemon, "kv", "count 4");
        exited(&daemon, "kv");
        assert_eq!(daemon.terminate(), Some(0));
        daemon.spawn();
        // A command the daemon should keep running runs again at start.
        wait_out(&daemon, "kv", "count 5");
        exited(&daemon, "kv");
        assert_eq!(counter(&daemon, "kv"), 5, "{place:?}");
        for n in 1..=5 {
            kv(&daemon, &["kv", "get", &format!("history/{n:010}")])
                .expect_code(0)
                .stdout_has(&[&n.to_string()]);
        }
        // Every count was printed once: none repeated, none skipped.
        let state = daemon.data_dir().join("state/kv.redb");
        assert!(state.is_file(), "{place:?}: state lives at {}", state.display());
    }
}

#[test]
fn remove_keeps_state_and_purge_state_deletes_it() {
    let daemon = Daemon::start();
    let d = deployment("command", Place::Worker, &["once"], Some(GRANT));
    install(&daemon, "kv", &d);
    wait_out(&daemon, "kv", "count 1");
    exited(&daemon, "kv");
    let state = daemon.data_dir().join("state/kv.redb");
    daemon.cli(["remove", "kv"]).expect_code(0);
    assert!(state.is_file(), "remove kept the state");
    install(&daemon, "kv", &d);
    wait_out(&daemon, "kv", "count 2");
    exited(&daemon, "kv");
    daemon.cli(["remove", "--purge-state", "kv"]).expect_code(0);
    assert!(!state.exists(), "--purge-state deleted {}", state.display());
    install(&daemon, "kv", &d);
    wait_out(&daemon, "kv", "count 1");
    exited(&daemon, "kv");
    // State of a module removed earlier can be purged on its own.
    daemon.cli(["remove", "kv"]).expect_code(0);
    assert!(state.is_file());
    daemon.cli(["remove", "--purge-state", "kv"]).expect_code(0);
    assert!(!state.exists());
    daemon
        .cli(["remove", "--purge-state", "kv"])
        .expect_code(1)
        .stderr_has(&["no module `kv`"]);
}

#[test]
fn a_bucket_not_granted_is_refused_and_audited() {
    for place in PLACES {
        let daemon = Daemon::start();
        install(
            &daemon,
            "kv",
            &deployment("command", place, &["open", "secret"], Some(GRANT)),
        );
        wait_out(&daemon, "kv", "open secret failed: Error::AccessDenied");
        exited(&daemon, "kv");
        daemon
            .cli(["logs", "kv"])
            .stdout_has(&["denied keyvalue: open bucket \"secret\": not in [capabilities.keyvalue] buckets"]);
        // No grant at all: even "default" is refused.
        install(
            &daemon,
            "bare",
            &deployment("command", place, &["open", "default"], None),
        );
        wait_out(&daemon, "bare", "open default failed: Error::AccessDenied");
        daemon
            .cli(["logs", "bare"])
            .stdout_has(&["denied keyvalue: open bucket \"default\": the module has no [capabilities.keyvalue]"]);
        assert!(
            !daemon.data_dir().join("state/bare.redb").exists(),
            "{place:?}: no file for a module without a grant"
        );
        // The audit trail has the refusal, as the guest's.
        let mut found = false;
        for _ in 0..100 {
            let ran = daemon.cli(["--json", "audit", "--module", "kv"]);
            found = ran.expect_code(0).stdout.lines().any(|l| {
                let r: serde_json::Value = serde_json::from_str(l).unwrap();
                r["action"] == "denied-keyvalue"
                    && r["actor"] == "guest"
                    && r["detail"].as_str().unwrap_or("").contains("open bucket \"secret\"")
            });
            if found {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(found, "{place:?}: no denied-keyvalue record");
    }
}

#[test]
fn a_batch_over_quota_writes_nothing() {
    for place in PLACES {
        let daemon = Daemon::start();
        let grant = "buckets = [\"default\"]\nquota = \"8K\"";
        // 10 values of 1000 bytes: the quota runs out in the middle.
        install(
            &daemon,
            "kv",
            &deployment("command", place, &["batch", "10", "1000"], Some(grant)),
        );
        let lines = wait_out(&daemon, "kv", "batch keys");
        assert!(
            lines
                .iter()
                .any(|l| l.contains("set-many failed") && l.contains("quota exceeded")),
            "{place:?}: {lines:#?}"
        );
        assert!(
            lines.iter().any(|l| l == "batch keys 0"),
            "{place:?}: nothing written: {lines:#?}"
        );
        daemon
            .cli(["logs", "kv"])
            .stdout_has(&["denied quota: keyvalue bucket \"default\": quota exceeded"]);
        // Within the quota the same batch is written whole.
        install(
            &daemon,
            "kv2",
            &deployment("command", place, &["batch", "5", "1000"], Some(grant)),
        );
        let lines = wait_out(&daemon, "kv2", "batch keys");
        assert!(lines.iter().any(|l| l == "batch keys 5"), "{place:?}: {lines:#?}");
    }
}

#[test]
fn oversize_keys_and_values_get_clear_errors() {
    for place in PLACES {
        let daemon = Daemon::start();
        install(&daemon, "kv", &deployment("command", place, &["oversize"], Some(GRANT)));
        let lines = wait_out(&daemon, "kv", "big value kept");
        let text = lines.join("\n");
        for needle in [
            "long key: Err(Error::Other(\"key of 1025 bytes is longer than the 1024-byte limit",
            "big value: Err(Error::Other(\"value of 12289 bytes for key \\\"big\\\" is larger than the 12288-byte limit",
            "max value: Ok(())",
            "big value kept: Ok(false)",
        ] {
            assert!(text.contains(needle), "{place:?}: no {needle:?} in\n{text}");
        }
    }
}

#[test]
fn a_damaged_database_stops_only_its_own_module() {
    let mut daemon = Daemon::start();
    for name in ["kv", "other"] {
        install(
            &daemon,
            name,
            &deployment("command", Place::Worker, &["once"], Some(GRANT)),
        );
        wait_out(&daemon, name, "count 1");
        exited(&daemon, name);
    }
    assert_eq!(daemon.terminate(), Some(0));
    let file: PathBuf = daemon.data_dir().join("state/kv.redb");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[..512].fill(0xa5);
    std::fs::write(&file, &bytes).unwrap();
    daemon.spawn();
    wait_out(&daemon, "other", "count 2");
    let status = daemon.wait_for("kv", WAIT, "failed or exited", |s| {
        s["last_error"].as_str().is_some_and(|e| e.contains("kv.redb"))
    });
    let error = status["last_error"].as_str().unwrap();
    assert!(
        error.contains(&file.display().to_string()) && error.contains("arcella remove --purge-state kv"),
        "{error}"
    );
    assert!(
        !out(&daemon, "kv").iter().any(|l| l.starts_with("count")),
        "the damaged module never ran"
    );
    // The operator can start over.
    daemon.cli(["remove", "--purge-state", "kv"]).expect_code(0);
    install(
        &daemon,
        "kv",
        &deployment("command", Place::Worker, &["once"], Some(GRANT)),
    );
    wait_out(&daemon, "kv", "count 1");
}

#[test]
fn arcella_kv_lists_gets_sets_deletes_exports_and_imports() {
    let daemon = Daemon::start();
    install(
        &daemon,
        "kv",
        &deployment("command", Place::Worker, &["once"], Some(GRANT)),
    );
    wait_out(&daemon, "kv", "count 1");
    exited(&daemon, "kv");
    kv(&daemon, &["kv", "set", "greeting", "hello"]).expect_code(0);
    kv(&daemon, &["kv", "set", "raw", "hex:00ff10"]).expect_code(0);
    kv(&daemon, &["kv", "get", "greeting"])
        .expect_code(0)
        .stdout_has(&["hello"]);
    kv(&daemon, &["kv", "get", "raw"])
        .expect_code(0)
        .stdout_has(&["hex:00ff10"]);
    let listed = kv(&daemon, &["kv", "list"]);
    listed.expect_code(0);
    let keys: Vec<&str> = listed.stdout.lines().collect();
    assert_eq!(keys, ["counter", "greeting", "history/0000000001", "raw"]);
    let json = daemon.cli(["--json", "kv", "kv", "list"]);
    let parsed: Vec<String> = serde_json::from_str(json.stdout.trim()).unwrap();
    assert_eq!(parsed.len(), 4);

    let dir = daemon.dir.path();
    let export = dir.join("export.jsonl");
    kv(&daemon, &["kv", "export", export.to_str().unwrap()]).expect_code(0);
    let text = std::fs::read_to_string(&export).unwrap();
    assert!(text.contains(r#"{"key":"greeting","value":"hello"}"#), "{text}");
    assert!(text.contains(r#"{"key":"raw","hex":"00ff10"}"#), "{text}");

    kv(&daemon, &["kv", "delete", "greeting"]).expect_code(0);
    kv(&daemon, &["kv", "get", "greeting"])
        .expect_code(1)
        .stderr_has(&["no key \"greeting\""]);
    kv(&daemon, &["kv", "set", "counter", "41"]).expect_code(0);
    kv(&daemon, &["kv", "import", export.to_str().unwrap()])
        .expect_code(0)
        .stdout_has(&["imported 4 entries"]);
    kv(&daemon, &["kv", "get", "greeting"])
        .expect_code(0)
        .stdout_has(&["hello"]);
    assert_eq!(counter(&daemon, "kv"), 1, "import restored the exported counter");
    // The guest sees what the operator wrote.
    kv(&daemon, &["kv", "set", "counter", "41"]).expect_code(0);
    daemon.cli(["start", "kv"]).expect_code(0);
    wait_out(&daemon, "kv", "count 42");

    // Bad input: a bucket not granted, a module without state, a broken
    // import file (nothing of it is written), an oversize value.
    kv(&daemon, &["kv", "--bucket", "secret", "list"])
        .expect_code(1)
        .stderr_has(&["no bucket \"secret\"", "--bucket"]);
    kv(&daemon, &["nosuch", "list"])
        .expect_code(1)
        .stderr_has(&["no module `nosuch`"]);
    let bad = write(
        dir,
        "bad.jsonl",
        "{\"key\":\"a\",\"value\":\"1\"}\n{\"key\":\"b\",\"hex\":\"zz\"}\n",
    );
    kv(&daemon, &["kv", "import", bad.to_str().unwrap()])
        .expect_code(1)
        .stderr_has(&["bad.jsonl:2", "hex"]);
    kv(&daemon, &["kv", "get", "a"]).expect_code(1);
    let big = "x".repeat(12 * 1024 + 1);
    kv(&daemon, &["kv", "set", "big", &big])
        .expect_code(1)
        .stderr_has(&["12288-byte limit"]);
    // Over the quota: refused, and the state is as it was.
    let many: String = (0..70)
        .map(|i| format!("{{\"key\":\"fill/{i}\",\"value\":\"{}\"}}\n", "y".repeat(1000)))
        .collect();
    let fill = write(dir, "fill.jsonl", &many);
    kv(&daemon, &["kv", "import", fill.to_str().unwrap()])
        .expect_code(1)
        .stderr_has(&["quota exceeded"]);
    assert!(!kv(&daemon, &["kv", "list"]).stdout.contains("fill/"));
}

/// The daemon SIGKILL'd again and again while a service increments its
/// counter: after every restart the count goes on from at least the last
/// one printed (acknowledged) before the kill, and every printed count's
/// history entry is there.
#[test]
fn sigkill_never_loses_an_acknowledged_count() {
    for place in PLACES {
        let mut daemon = Daemon::start();
        install(&daemon, "kv", &deployment("service", place, &["loop"], Some(GRANT)));
        let mut highest = 0u64;
        let mut seen = Vec::new();
        for round in 0..5 {
            // Follow the output from outside the daemon: what it printed
            // before the kill is what the guest was told was written.
            let follow_path = daemon.dir.path().join(format!("follow-{round}.txt"));
            let follow_file = std::fs::File::create(&follow_path).unwrap();
            let mut follower = std::process::Command::new(env!("CARGO_BIN_EXE_arcella"))
                .args(["logs", "kv", "--follow"])
                .env_clear()
                .env("ARCELLA_SOCKET", daemon.socket())
                .stdout(follow_file)
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            wait_out(&daemon, "kv", &format!("count {}", highest + 3));
            std::thread::sleep(Duration::from_millis(37 * (round + 1)));
            daemon.kill();
            let _ = follower.wait();
            let counts: Vec<u64> = std::fs::read_to_string(&follow_path)
                .unwrap()
                .lines()
                .filter_map(|l| l.split("out | count ").nth(1))
                .map(|n| n.trim().parse().unwrap())
                .collect();
            let first = *counts.first().expect("counts were printed");
            assert!(
                first > highest,
                "{place:?} round {round}: restarted at {first}, but {highest} was acknowledged before"
            );
            assert!(counts.windows(2).all(|w| w[1] == w[0] + 1), "{place:?}: {counts:?}");
            highest = *counts.last().unwrap();
            seen.extend(counts);
            daemon.spawn();
        }
        daemon.cli(["stop", "kv"]).expect_code(0);
        daemon.wait_for("kv", WAIT, "stopped", |s| {
            state_name(s) != "running" && state_name(s) != "stopping"
        });
        assert!(counter(&daemon, "kv") >= highest);
        for n in seen {
            kv(&daemon, &["kv", "get", &format!("history/{n:010}")])
                .expect_code(0)
                .stdout_has(&[&n.to_string()]);
        }
    }
}
