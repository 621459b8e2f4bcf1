//! Updates as an A/B swap: staged before the running version is touched,
//! start-first or stop-first, a health window with automatic rollback,
//! rollback by hand, retention, garbage collection, admission control and
//! a full disk.

use super::harness::*;
use crate::support::code;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);

fn component(version: &str) -> String {
    format!("name = \"svc\"\nversion = \"{version}\"\n")
}

/// Installs guest `guest` as module `svc` 1.0.0 with `deployment`.
fn install_svc(daemon: &Daemon, guest: &str, deployment: &str) {
    daemon
        .install(guest, Some(&component("1.0.0")), deployment)
        .expect_code(0);
}

/// `arcella update svc GUEST --component (version)` [--deployment D].
fn update_svc(daemon: &Daemon, guest: &str, version: &str, deployment: Option<&str>) -> crate::support::Ran {
    let dir = daemon.dir.path();
    let c = write(dir, &format!("svc-{version}.toml"), &component(version));
    let artifact = crate::support::artifact(guest, "native");
    let mut args: Vec<PathBuf> = vec!["update".into(), "svc".into(), artifact, "--component".into(), c];
    if let Some(deployment) = deployment {
        args.push("--deployment".into());
        args.push(write(dir, &format!("svc-d{version}.toml"), deployment));
    }
    daemon.cli(args)
}

fn outcome(status: &serde_json::Value) -> String {
    status["update_outcome"].as_str().unwrap_or_default().to_owned()
}

fn running_version(daemon: &Daemon, version: &str) -> serde_json::Value {
    daemon.wait_for("svc", WAIT, &format!("running {version}"), |s| {
        state_name(s) == "running" && s["version"] == version
    })
}

/// Lines of `arcella logs svc` written by the daemon, in order.
fn notes(daemon: &Daemon) -> Vec<String> {
    daemon
        .cli(["logs", "svc"])
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("arcella | ").map(str::to_owned))
        .collect()
}

fn position(notes: &[String], needle: &str) -> usize {
    notes
        .iter()
        .position(|n| n.contains(needle))
        .unwrap_or_else(|| panic!("no note containing {needle:?} in {notes:#?}"))
}

#[test]
fn a_version_that_traps_in_its_health_window_is_rolled_back_in_process_and_in_workers() {
    for (isolation, group) in [
        ("isolation = \"main\"\ntrusted = true\n", ""),
        ("", "group = \"upd\"\n"),
    ] {
        let daemon = Daemon::start();
        install_svc(&daemon, "ticker", &format!("kind = \"service\"\n{isolation}{group}"));
        running_version(&daemon, "1.0.0");
        update_svc(&daemon, "unreachable", "2.0.0", None).expect_code(0);
        let status = daemon.wait_for("svc", WAIT, "rolled back", |s| outcome(s) == "rolled_back");
        let reason = status["update_reason"].as_str().unwrap();
        assert!(reason.contains("unreachable"), "{reason}");
        let status = running_version(&daemon, "1.0.0");
        assert_eq!(status["previous_version"], "2.0.0");
        assert_eq!(status["update_from"], "1.0.0");
        assert_eq!(status["update_to"], "2.0.0");
        daemon
            .cli(["status", "svc"])
            .expect_code(0)
            .stdout_has(&["last update: 1.0.0 -> 2.0.0: rolled back to 1.0.0"]);
        // The way back survives a restart of the daemon too.
        let mut daemon = daemon;
        daemon.terminate();
        daemon.spawn();
        let status = running_version(&daemon, "1.0.0");
        assert_eq!(outcome(&status), "rolled_back");
    }
}

#[test]
fn start_first_runs_the_new_version_before_the_old_one_is_asked_to_stop() {
    let daemon = Daemon::start();
    install_svc(&daemon, "ticker", "kind = \"service\"\ngroup = \"swap\"\n");
    running_version(&daemon, "1.0.0");
    // "is running" is not the last word while the health window (5 s by
    // default) lasts: the CLI says the update may still roll back.
    update_svc(&daemon, "ticker", "1.1.0", None)
        .expect_code(0)
        .stdout_has(&[
            "svc 1.1.0 is running",
            "svc 1.1.0 is in its health window for",
            "if it fails before then, 1.0.0 comes back; `arcella status svc` tells whether it held",
        ]);
    let deadline = Instant::now() + WAIT;
    while !notes(&daemon).iter().any(|n| n.starts_with("previous version")) {
        assert!(
            Instant::now() < deadline,
            "the old version never stopped:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let notes = notes(&daemon);
    let started = position(&notes, "starting version 1.1.0");
    let running = notes.iter().rposition(|n| n.starts_with("running in worker")).unwrap();
    let released = position(&notes, "previous version");
    assert!(started < running && running < released, "{notes:#?}");
    let status = running_version(&daemon, "1.1.0");
    assert_eq!(status["previous_version"], "1.0.0");
}

#[test]
fn stop_first_stops_the_old_version_before_the_new_one_starts() {
    let daemon = Daemon::start_with_config("shutdown_grace = \"2s\"\n");
    let deployment = "kind = \"service\"\nisolation = \"main\"\ntrusted = true\n[update]\nstrategy = \"stop-first\"\n";
    install_svc(&daemon, "graceful_p1", deployment);
    running_version(&daemon, "1.0.0");
    update_svc(&daemon, "graceful_p1", "1.1.0", None).expect_code(0);
    running_version(&daemon, "1.1.0");
    let notes = notes(&daemon);
    let asked = position(&notes, "asked to stop");
    let stopped = position(&notes, "stopped cleanly");
    let started = position(&notes, "starting version 1.1.0");
    assert!(asked < stopped && stopped < started, "{notes:#?}");
}

#[test]
fn a_healthy_update_succeeds_when_its_window_ends() {
    let daemon = Daemon::start();
    let deployment = "kind = \"service\"\nisolation = \"main\"\ntrusted = true\n[update]\nhealth_window = \"300ms\"\n";
    install_svc(&daemon, "ticker", deployment);
    update_svc(&daemon, "ticker", "1.1.0", None).expect_code(0);
    let status = daemon.status("svc").unwrap();
    assert_eq!(outcome(&status), "probation", "{status}");
    let status = daemon.wait_for("svc", WAIT, "past its window", |s| outcome(s) == "succeeded");
    assert_eq!(status["version"], "1.1.0");
    daemon
        .cli(["status", "svc"])
        .stdout_has(&["last update: 1.0.0 -> 1.1.0: succeeded"]);
}

#[test]
fn a_command_that_exits_non_zero_in_its_window_is_rolled_back() {
    let daemon = Daemon::start();
    let command = |code: u8| {
        format!(
            "kind = \"command\"\nisolation = \"main\"\ntrusted = true\n[restart]\npolicy = \"never\"\n\
             [capabilities]\nargs = [\"exit={code}\"]\n"
        )
    };
    install_svc(&daemon, "hello_p1", &command(0));
    daemon.wait_for("svc", WAIT, "exited", |s| state_name(s) == "exited");
    daemon.cli(["start", "svc"]).expect_code(0);
    update_svc(&daemon, "hello_p1", "2.0.0", Some(&command(3))).expect_code(0);
    let status = daemon.wait_for("svc", WAIT, "rolled back", |s| outcome(s) == "rolled_back");
    assert!(status.to_string().contains("exited with code 3"), "{status}");
    let status = daemon.wait_for("svc", WAIT, "the old version's clean exit", |s| {
        s["version"] == "1.0.0" && state_name(s) == "exited"
    });
    assert_eq!(status["exit_code"], 0);
}

#[test]
fn rollback_by_hand_swaps_the_current_and_previous_versions() {
    let daemon = Daemon::start();
    install_svc(&daemon, "ticker", TICKER_SERVICE);
    daemon
        .cli(["rollback", "svc"])
        .expect_code(1)
        .stderr_has(&["svc", "no previous version"]);
    update_svc(&daemon, "ticker", "1.1.0", None).expect_code(0);
    daemon
        .cli(["rollback", "svc"])
        .expect_code(0)
        .stdout_has(&["svc 1.0.0 is running"]);
    let status = running_version(&daemon, "1.0.0");
    assert_eq!(status["previous_version"], "1.1.0");
    assert_eq!(outcome(&status), "reverted");
    daemon
        .cli(["rollback", "svc"])
        .expect_code(0)
        .stdout_has(&["svc 1.1.0 is running"]);
    daemon.cli(["rollback", "nope"]).expect_code(1).stderr_has(&["nope"]);
}

fn artifact_count(daemon: &Daemon) -> usize {
    std::fs::read_dir(daemon.data_dir().join("artifacts"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "code"))
        .count()
}

#[test]
fn retention_keeps_what_the_config_asks_and_gc_says_what_it_freed() {
    let daemon = Daemon::start_with_config("retain_versions = 1\n");
    let deployment = "kind = \"service\"\nisolation = \"main\"\ntrusted = true\n[update]\nhealth_window = \"0s\"\n";
    install_svc(&daemon, "ticker", deployment);
    // Four distinct artifacts, one after another.
    for (guest, version) in [("graceful_p1", "2.0.0"), ("sleep_p1", "3.0.0"), ("hello_p1", "4.0.0")] {
        update_svc(&daemon, guest, version, None).expect_code(0);
    }
    // Current, previous and one older: the first version's artifact is gone.
    assert_eq!(artifact_count(&daemon), 3, "{}", daemon.log());
    daemon.cli(["gc"]).expect_code(0).stdout_has(&["nothing to collect"]);
    // An artifact nothing refers to (as a crash between store and record
    // would leave it) is found and reported.
    let store = daemon.data_dir().join("artifacts");
    let (code, meta) = stray_artifact(&store);
    daemon
        .cli(["gc"])
        .expect_code(0)
        .stdout_has(&["removed artifact sha256:", "freed"]);
    assert!(!code.exists() && !meta.exists());
    assert_eq!(artifact_count(&daemon), 3);
}

/// Copies a stored artifact under another (valid) name, unreferenced.
fn stray_artifact(store: &Path) -> (PathBuf, PathBuf) {
    let code = std::fs::read_dir(store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "code"))
        .unwrap();
    let stray = "f".repeat(64);
    let (stray_code, stray_meta) = (store.join(format!("{stray}.code")), store.join(format!("{stray}.meta")));
    std::fs::copy(&code, &stray_code).unwrap();
    std::fs::copy(code.with_extension("meta"), &stray_meta).unwrap();
    (stray_code, stray_meta)
}

#[test]
fn admission_refuses_what_does_not_fit_and_changes_nothing() {
    let daemon = Daemon::start_with_config(
        "memory_budget = \"3MiB\"\n[workers.groups.small]\nmemory = \"16MiB\"\n\
         [policy]\ndirs = [\"/srv/arcella\"]\nallow_trusted = false\n",
    );
    install_svc(
        &daemon,
        "ticker",
        "kind = \"service\"\ngroup = \"small\"\n[limits]\nmemory = \"2MiB\"\n",
    );
    running_version(&daemon, "1.0.0");
    let refusals = [
        (
            "kind = \"service\"\ngroup = \"small\"\n[limits]\nmemory = \"32MiB\"\n",
            vec!["limits.memory", "32 MiB", "16 MiB", "worker group `small`"],
        ),
        (
            "kind = \"service\"\nisolation = \"main\"\ntrusted = true\n",
            vec!["trusted = true", "policy.allow_trusted"],
        ),
        (
            "kind = \"service\"\n[[capabilities.dirs]]\nhost = \"/etc\"\nguest = \"/etc\"\n",
            vec!["/etc", "policy.dirs", "/srv/arcella"],
        ),
    ];
    for (deployment, needles) in refusals {
        update_svc(&daemon, "ticker", "2.0.0", Some(deployment))
            .expect_code(1)
            .stderr_has(&needles);
    }
    // The device-wide budget: a second module declaring 2 MiB more.
    daemon
        .install(
            "ticker",
            Some("name = \"other\"\nversion = \"1.0.0\"\n"),
            "kind = \"service\"\n[limits]\nmemory = \"2MiB\"\n",
        )
        .expect_code(1)
        .stderr_has(&["memory_budget", "3 MiB", "4 MiB"]);
    let status = running_version(&daemon, "1.0.0");
    assert!(status["previous_version"].is_null(), "a refused update left a trace");
    assert!(daemon.status("other").is_none());
    assert_eq!(artifact_count(&daemon), 1, "a refused artifact was kept");
}

#[test]
fn a_disk_quota_refuses_an_upload_that_cannot_fit() {
    // hello_p1's native artifact is ~290 KiB (without fuel metering and
    // bounds checks): its upload fits the quota, storing it as well does not.
    let daemon = Daemon::start_with_config("disk_quota = \"500K\"\n");
    install_svc(&daemon, "ticker", TICKER_SERVICE);
    update_svc(&daemon, "hello_p1", "2.0.0", None)
        .expect_code(1)
        .stderr_has(&["disk_quota", "500 KiB"]);
    let status = running_version(&daemon, "1.0.0");
    assert!(status["previous_version"].is_null());
}

/// A tmpfs of `size` mounted on `dir`, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "mounting a tmpfs needs root (the test suite runs as root in CI)"
        );
        Self(dir.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_fails_an_update_cleanly_and_the_old_version_keeps_running() {
    let root = tempfile::tempdir().unwrap();
    let _disk = Tmpfs::mount(&root.path().join("disk"), "1m");
    let daemon = Daemon::start_with_data_dir(&root.path().join("disk/data"));
    install_svc(&daemon, "ticker", TICKER_SERVICE);
    running_version(&daemon, "1.0.0");
    // Fill the disk, leaving room for the upload but not for the artifact
    // made from it.
    let filler = root.path().join("disk/filler");
    let free = free_bytes(&root.path().join("disk"));
    let upload = std::fs::metadata(crate::support::artifact("hello_p1", "native"))
        .unwrap()
        .len();
    std::fs::write(&filler, vec![0u8; (free - upload - 64 * 1024) as usize]).unwrap();
    let ran = update_svc(&daemon, "hello_p1", "2.0.0", None);
    ran.expect_code(1);
    ran.stderr_has(&["the artifact needs", "KiB free"]);
    let status = running_version(&daemon, "1.0.0");
    assert!(status["previous_version"].is_null());
    for sub in ["artifacts", "modules", "uploads"] {
        for entry in std::fs::read_dir(daemon.data_dir().join(sub)).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                !name.starts_with(".tmp-") && !name.ends_with(".part"),
                "{sub}/{name} left behind"
            );
        }
    }
    assert_eq!(artifact_count(&daemon), 1);
    // With room again, the same update goes through.
    std::fs::remove_file(&filler).unwrap();
    update_svc(&daemon, "hello_p1", "2.0.0", None).expect_code(0);
}

fn free_bytes(dir: &Path) -> u64 {
    let out = std::process::Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap()
}

#[test]
fn a_version_whose_health_export_says_unhealthy_is_rolled_back() {
    for placement in ["isolation = \"main\"\ntrusted = true\n", "group = \"health\"\n"] {
        let daemon = Daemon::start();
        let deployment = format!("kind = \"service\"\n{placement}[update]\nhealth_window = \"300ms\"\n");
        install_svc(&daemon, "health_ok", &deployment);
        running_version(&daemon, "1.0.0");
        // A healthy answer: the update succeeds at the end of its window.
        update_svc(&daemon, "health_ok", "1.1.0", None).expect_code(0);
        let status = daemon.wait_for("svc", WAIT, "past its window", |s| outcome(s) == "succeeded");
        assert_eq!(status["version"], "1.1.0");
        // It runs and traps nothing, but says it is unhealthy.
        update_svc(&daemon, "health_sick", "2.0.0", None).expect_code(0);
        let status = daemon.wait_for("svc", WAIT, "rolled back", |s| outcome(s) == "rolled_back");
        let reason = status["update_reason"].as_str().unwrap();
        assert!(
            reason.contains("arcella_health") && reason.contains("returned 1"),
            "{placement}: {reason}"
        );
        running_version(&daemon, "1.1.0");
    }
}

#[test]
fn a_health_export_the_host_could_never_call_is_refused() {
    let daemon = Daemon::start();
    install_svc(&daemon, "ticker", TICKER_SERVICE);
    update_svc(&daemon, "health_deaf", "2.0.0", None)
        .expect_code(1)
        .stderr_has(&["arcella_health", "arcella.shutdown_requested"]);
    running_version(&daemon, "1.0.0");
}

#[test]
fn a_changed_engine_leaves_installed_modules_with_the_commands_that_recover_them() {
    let mut daemon = Daemon::start();
    daemon
        .install("ticker", Some(TICKER_COMPONENT), TICKER_SERVICE)
        .expect_code(0);
    // A module installed from its .wasm: the daemon keeps the source.
    // (Another program than ticker's: one artifact, one kept source.)
    #[cfg(feature = "compiler")]
    let kept = {
        let dir = daemon.dir.path();
        daemon
            .install_file(
                &crate::support::wasm("health_ok"),
                &write(dir, "kept-component.toml", "name = \"kept\"\nversion = \"1.0.0\"\n"),
                &write(dir, "kept-deployment.toml", TICKER_SERVICE),
            )
            .expect_code(0);
        daemon.wait_for("kept", WAIT, "running", |s| state_name(s) == "running")["artifact_sha256"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // The engine changes under the installed module ([engine] settings
    // here; an Arcella upgrade does the same).
    assert_eq!(daemon.terminate(), Some(0));
    let config = daemon.socket().with_file_name("arcella.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}\n[engine]\nmemory_reservation = 67108864\n")).unwrap();
    daemon.spawn();
    let source = crate::support::wasm("ticker");
    let source_name = source.file_name().unwrap().to_str().unwrap().to_owned();
    let recover = [
        "compiled for engine",
        "but this daemon's engine is now",
        "Arcella was upgraded, or the board or [engine] settings changed",
        &format!("arcella compile {source_name} -o ticker.cwasm --board FILE"),
        "arcella update ticker ticker.cwasm",
    ];
    daemon
        .cli(["status", "ticker"])
        .expect_code(0)
        .stdout_has(&["failed"])
        .stdout_has(&recover);
    // Not the store's insides: the hint is about the module.
    let status = daemon.status("ticker").unwrap();
    assert!(!status.to_string().contains("/artifacts/"), "{status}");
    daemon
        .cli(["start", "ticker"])
        .expect_code(code::FAILURE)
        .stderr_has(&recover);
    // With the compiler, the first command it names is enough: the daemon
    // compiles the source for its own engine, and the module runs again.
    #[cfg(feature = "compiler")]
    {
        // The module installed from its .wasm needed nothing: the daemon
        // compiled its kept source again for the new engine at start.
        let status = daemon.wait_for("kept", WAIT, "running again by itself", |s| state_name(s) == "running");
        assert_ne!(
            status["artifact_sha256"].as_str(),
            Some(kept.as_str()),
            "a new artifact"
        );
        assert!(
            daemon
                .log()
                .contains("its engine changed; compiled again from its kept source"),
            "{}",
            daemon.log()
        );
        daemon
            .cli(["status", "ticker"])
            .stdout_has(&[&format!("arcella update ticker {source_name}")]);
        daemon
            .cli([
                std::ffi::OsStr::new("update"),
                std::ffi::OsStr::new("ticker"),
                source.as_os_str(),
            ])
            .expect_code(0);
        daemon.wait_for("ticker", WAIT, "running again", |s| state_name(s) == "running");
    }
}
