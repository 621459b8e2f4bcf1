//! The daemon killed (SIGKILL) at random moments inside install and update
//! requests: after every restart each module is fully installed or absent,
//! never half, and the modules installed before are intact.

use super::harness::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Kill points per run; the seed makes a failing point reproducible.
const POINTS: usize = 60;
const SEED: u64 = 0x00a1_ce11_a5ee_d001;

/// xorshift64*: deterministic, good enough to spread kill points.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn install_command(daemon: &Daemon, verb: &[&str], version: &str) -> Command {
    let dir = daemon.dir.path();
    let component = write(
        dir,
        "subject-component.toml",
        &format!("name = \"subject\"\nversion = \"{version}\"\n"),
    );
    let deployment = write(dir, "subject-deployment.toml", TICKER_SERVICE);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_arcella"));
    cmd.args(verb)
        .arg(crate::support::artifact("ticker", "native"))
        .arg("--component")
        .arg(component)
        .arg("--deployment")
        .arg(deployment)
        .env_clear()
        .env("ARCELLA_SOCKET", daemon.socket())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

fn no_torn_files(dir: &Path) {
    for sub in ["modules", "artifacts"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                !name.starts_with(".tmp-"),
                "a temp file survived a restart: {sub}/{name}"
            );
        }
    }
}

#[test]
fn sigkill_during_install_and_update_never_leaves_a_half_module() {
    let mut daemon = Daemon::start();
    daemon
        .install("ticker", Some(TICKER_COMPONENT), TICKER_SERVICE)
        .expect_code(0);

    // How long one install takes, so kill points cover the whole request.
    let began = Instant::now();
    let status = install_command(&daemon, &["install"], "0").status().unwrap();
    assert!(status.success(), "{}", daemon.log());
    let span = began.elapsed().max(Duration::from_millis(5));
    daemon.cli(["remove", "subject"]).expect_code(0);

    let mut rng = Rng(SEED);
    // [install: absent, install: present, update: old kept, update: new]
    let mut outcomes = [0usize; 4];
    for point in 0..POINTS {
        if daemon.status("subject").is_some() && rng.next().is_multiple_of(2) {
            daemon.cli(["remove", "subject"]).expect_code(0);
        }
        let installed = daemon.status("subject");
        let version = format!("{point}");
        let verb: &[&str] = if installed.is_some() {
            &["update", "subject"]
        } else {
            &["install"]
        };
        let delay = Duration::from_micros(rng.next() % (span.as_micros() as u64 * 12 / 10 + 1));
        let mut client = install_command(&daemon, verb, &version).spawn().unwrap();
        std::thread::sleep(delay);
        daemon.kill();
        let _ = client.kill();
        let _ = client.wait();

        daemon.spawn();
        let context = format!("kill point {point} ({} after {delay:?}, seed {SEED:#x})", verb[0]);
        let keeper = daemon.wait_for("ticker", Duration::from_secs(10), "running", |s| {
            state_name(s) == "running"
        });
        assert_eq!(keeper["version"], "1.0.0", "{context}");
        match daemon.status("subject") {
            None => {
                assert!(installed.is_none(), "{context}: an installed module vanished");
                outcomes[0] += 1;
            }
            Some(subject) => {
                let shown = subject["version"].as_str().unwrap().to_owned();
                let before = installed.as_ref().map(|s| s["version"].as_str().unwrap().to_owned());
                assert!(
                    shown == version || Some(&shown) == before.as_ref(),
                    "{context}: version {shown}"
                );
                daemon
                    .cli(["inspect", "subject"])
                    .expect_code(0)
                    .stdout_has(&["kind:        core module"]);
                outcomes[1] += 1;
            }
        }
        no_torn_files(&daemon.data_dir());
    }
    // Both outcomes must have happened, or the kill points missed the window.
    assert!(
        outcomes[0] > 0 && outcomes[1] > 0,
        "absent/present outcomes: {outcomes:?}"
    );
}

/// Kill points across updates (good and failing) and rollbacks.
const UPDATE_POINTS: usize = 100;

fn subject_command(daemon: &Daemon, args: &[&str], guest: Option<(&str, &str)>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_arcella"));
    cmd.args(args);
    if let Some((guest, version)) = guest {
        let dir = daemon.dir.path();
        let component = write(
            dir,
            "subject-component.toml",
            &format!("name = \"subject\"\nversion = \"{version}\"\n"),
        );
        cmd.arg(crate::support::artifact(guest, "native"))
            .arg("--component")
            .arg(component);
    }
    cmd.env_clear()
        .env("ARCELLA_SOCKET", daemon.socket())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// Every artifact the subject's record names is in the store.
fn referenced_artifacts_exist(data: &Path, context: &str) {
    let record = std::fs::read_to_string(data.join("modules/subject.toml")).unwrap();
    let artifacts: Vec<&str> = record
        .lines()
        .filter_map(|l| l.strip_prefix("artifact = \""))
        .map(|l| l.trim_end_matches('"'))
        .collect();
    assert!(!artifacts.is_empty(), "{context}: no artifact in\n{record}");
    for artifact in artifacts {
        for ext in ["code", "meta"] {
            let file = data.join(format!("artifacts/{artifact}.{ext}"));
            assert!(
                file.exists(),
                "{context}: the record names {artifact} but {ext} is missing"
            );
        }
    }
}

#[test]
fn sigkill_during_updates_and_rollbacks_leaves_the_old_or_the_new_version_running() {
    let mut daemon = Daemon::start();
    daemon
        .install("ticker", Some(TICKER_COMPONENT), TICKER_SERVICE)
        .expect_code(0);
    let deployment = write(daemon.dir.path(), "subject-deployment.toml", TICKER_SERVICE);
    let mut install = subject_command(&daemon, &["install"], Some(("ticker", "v0")));
    install.arg("--deployment").arg(&deployment);
    assert!(install.status().unwrap().success(), "{}", daemon.log());

    let began = Instant::now();
    let update = subject_command(&daemon, &["update", "subject"], Some(("ticker", "v-probe")))
        .status()
        .unwrap();
    assert!(update.success(), "{}", daemon.log());
    let span = began.elapsed().max(Duration::from_millis(5));

    let seed = SEED ^ 0x0bad_5eed;
    let mut rng = Rng(seed);
    // [kill landed before the change, after it]
    let mut outcomes = [0usize; 2];
    for point in 0..UPDATE_POINTS {
        let before = daemon.status("subject").unwrap();
        let current = before["version"].as_str().unwrap().to_owned();
        let previous = before["previous_version"].as_str().map(str::to_owned);
        let good_previous = previous.as_deref().filter(|p| !p.starts_with("bad"));
        let roll = rng.next() % 3;
        let (args, guest, allowed): (Vec<&str>, Option<(&str, String)>, Vec<String>) = match (roll, good_previous) {
            (2, Some(previous)) => (
                vec!["rollback", "subject"],
                None,
                vec![current.clone(), previous.to_owned()],
            ),
            (1, _) => {
                // Fails at once: rolled back in its health window, so the
                // old version must be what runs in the end.
                let version = format!("bad{point}");
                (
                    vec!["update", "subject"],
                    Some(("unreachable", version)),
                    vec![current.clone()],
                )
            }
            _ => {
                let version = format!("v{}", point + 1);
                (
                    vec!["update", "subject"],
                    Some(("ticker", version.clone())),
                    vec![current.clone(), version],
                )
            }
        };
        let delay = Duration::from_micros(rng.next() % (span.as_micros() as u64 * 15 / 10 + 1));
        let guest_ref = guest.as_ref().map(|(g, v)| (*g, v.as_str()));
        let mut client = subject_command(&daemon, &args, guest_ref).spawn().unwrap();
        std::thread::sleep(delay);
        daemon.kill();
        let _ = client.kill();
        let _ = client.wait();

        daemon.spawn();
        let context = format!(
            "kill point {point} ({} after {delay:?}, seed {seed:#x})",
            args.join(" ")
        );
        let subject = daemon.wait_for("subject", Duration::from_secs(15), "running an allowed version", |s| {
            state_name(s) == "running" && allowed.iter().any(|v| s["version"] == v.as_str())
        });
        let shown = subject["version"].as_str().unwrap();
        outcomes[usize::from(
            shown != current
                || subject["update_at"] != before["update_at"]
                || subject["update_to"] != before["update_to"],
        )] += 1;
        let keeper = daemon.status("ticker").unwrap();
        assert_eq!(keeper["version"], "1.0.0", "{context}");
        assert_eq!(state_name(&keeper), "running", "{context}");
        referenced_artifacts_exist(&daemon.data_dir(), &context);
        no_torn_files(&daemon.data_dir());
        daemon.cli(["inspect", "subject"]).expect_code(0);
    }
    assert!(
        outcomes[0] > 0 && outcomes[1] > 0,
        "kills before/after the change: {outcomes:?}"
    );
}
