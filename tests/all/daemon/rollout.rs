//! Staged rollouts through a real mosquitto to 50 real daemons, driven
//! by the CLI as an operator types it: a rollout interrupted (the CLI
//! killed) and resumed by the same command, a device going offline in
//! its wave's soak (counted as a failure, tolerated), another rollout
//! refused while one is unfinished, a wave with injected failures that
//! aborts and returns every updated device to the previous version, a
//! rollout signed by a key the devices do not trust, two operators
//! starting rollouts to one group at once, and a forged rollout state.

use super::fleet::{WAIT, operator, wait_for_fleet};
use super::harness::*;
use arcella_core::digest;
use arcella_core::signing;
use arcella_mqtt::deploy;
use arcella_mqtt::operator::{Operator, Target};
use arcella_test_broker::Mosquitto;
use arcella_test_broker::mirror_schema::MirrorSchema;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

const DEVICES: usize = 50;
/// Devices whose memory budget the second version's deployment exceeds:
/// all in wave 3 of `1,10%,50%,100%` (devices 5 to 24 of 50).
const SICK: [usize; 3] = [12, 13, 14];
/// A device of wave 3 that goes offline during that wave's soak.
const DROPS_OUT: usize = 20;

const V1: &str = "kind = \"service\"\nisolation = \"main\"\ntrusted = true\n[limits]\nmemory = \"8MiB\"\n[update]\nhealth_window = \"1s\"\n";
const V2: &str = "kind = \"service\"\nisolation = \"main\"\ntrusted = true\n[limits]\nmemory = \"40MiB\"\n[update]\nhealth_window = \"1s\"\n";

fn device_config(broker: &Mosquitto, id: &str, group: &str, public: &str, sick: bool) -> String {
    format!(
        "{}[mqtt]\nurl = \"{}\"\ndevice = \"{id}\"\ngroup = \"{group}\"\ntrusted_keys = [\"{public}\"]\nallow_remote_trusted = true\ntelemetry = \"off\"\n",
        if sick { "memory_budget = \"24MiB\"\n" } else { "" },
        broker.url()
    )
}

/// An `arcella fleet` run whose output is read as it comes.
struct Cli {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Cli {
    fn spawn(url: &str, client: &str, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_arcella"))
            .args(["fleet", "--broker", url, "--client", client, "rollout"])
            .args(args)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for stream in [Box::new(stdout) as Box<dyn std::io::Read + Send>, Box::new(stderr)] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line holding `needle`.
    fn wait_line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with `{needle}`; so far:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// Waits for the exit; returns its code and everything it printed.
    fn finish(mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + Duration::from_secs(180);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "still running:\n{}", self.seen.join("\n"));
            std::thread::sleep(Duration::from_millis(50));
        };
        // The readers end with the pipes.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        (status.code(), self.seen.join("\n"))
    }
}

struct Files {
    key: PathBuf,
    public: String,
    ticker: PathBuf,
    health: PathBuf,
    component: PathBuf,
    v1: PathBuf,
    v2: PathBuf,
}

fn files(dir: &Path) -> Files {
    let stem = dir.join("fleet");
    crate::support::arcella(["keygen", "--out", stem.to_str().unwrap()]).expect_code(0);
    let ticker = dir.join("ticker.cwasm");
    std::fs::copy(crate::support::artifact("ticker", "native"), &ticker).unwrap();
    let health = dir.join("health_ok.cwasm");
    std::fs::copy(crate::support::artifact("health_ok", "native"), &health).unwrap();
    Files {
        key: dir.join("fleet.key"),
        public: std::fs::read_to_string(dir.join("fleet.pub"))
            .unwrap()
            .trim()
            .to_owned(),
        ticker,
        health,
        component: write(dir, "component.toml", TICKER_COMPONENT),
        v1: write(dir, "v1.toml", V1),
        v2: write(dir, "v2.toml", V2),
    }
}

/// `rollout start` arguments for `group`.
fn start_args<'a>(
    group: &'a str,
    artifact: &'a Path,
    deployment: &'a Path,
    f: &'a Files,
    plan: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "start",
        "--to-group",
        group,
        artifact.to_str().unwrap(),
        "--component",
        f.component.to_str().unwrap(),
        "--deployment",
        deployment.to_str().unwrap(),
        "--key",
        f.key.to_str().unwrap(),
        "--wave-timeout",
        "60s",
    ];
    args.extend_from_slice(plan);
    args
}

fn running_sha(daemon: &Daemon) -> Option<String> {
    let status = daemon.status("ticker")?;
    (state_name(&status) == "running").then(|| status["artifact_sha256"].as_str().unwrap().to_owned())
}

/// The JSON mirror's rollout view of `group`, read with mosquitto_sub and
/// checked against the schema.
fn mirror(broker: &Mosquitto, group: &str) -> serde_json::Value {
    let line = broker
        .subscriber(&format!("arcella/v1/group/{group}/json/rollout"), 1, 10, None)
        .lines()
        .pop()
        .expect("the retained JSON rollout");
    let (_, payload) = line.split_once(' ').unwrap();
    MirrorSchema::load().parse_valid("rollout", payload.as_bytes())
}

fn group_entry_sha(op: &Operator, key: &ed25519_dalek::SigningKey, group: &str) -> Option<String> {
    let docs = deploy::Documents::of(op, &Target::Group(group.into())).unwrap();
    let doc = docs.newest(&deploy::Signer::new(key.clone()).trust, &Target::Group(group.into()))?;
    let entry = doc.modules.into_iter().find(|m| m.id == "ticker")?;
    Some(digest::hex(&entry.artifact.sha256))
}

#[test]
fn a_rollout_goes_wave_by_wave_resumes_tolerates_aborts_restores_and_runs_one_at_a_time() {
    let broker = Mosquitto::start();
    let url = broker.url();
    let work = tempfile::tempdir().unwrap();
    let f = files(work.path());
    let key = signing::secret_from_text(&std::fs::read_to_string(&f.key).unwrap()).unwrap();
    let mut canary: Vec<Daemon> = (0..DEVICES)
        .map(|i| {
            let sick = SICK.contains(&i);
            Daemon::start_with_config(&device_config(
                &broker,
                &format!("dev-{i:02}"),
                "canary",
                &f.public,
                sick,
            ))
        })
        .collect();
    let pair: Vec<Daemon> = (0..2)
        .map(|i| Daemon::start_with_config(&device_config(&broker, &format!("pair-{i}"), "pair", &f.public, false)))
        .collect();
    let op = operator(&broker, "watcher");
    wait_for_fleet(&op, "every device reported its group", |fleet| {
        deploy::targets(fleet, &Target::Group("canary".into())).len() == DEVICES
            && deploy::targets(fleet, &Target::Group("pair".into())).len() == 2
    });
    let ticker_sha = digest::hex(&digest::sha256(&std::fs::read(&f.ticker).unwrap()));

    // Two operators start different rollouts to one group at once: one
    // runs, the other is refused and says by whom; never both.
    let soak = ["--waves", "100%", "--soak", "4s"];
    let a = Cli::spawn(&url, "ops-a", &start_args("pair", &f.ticker, &f.v1, &f, &soak));
    let b = Cli::spawn(&url, "ops-b", &start_args("pair", &f.health, &f.v1, &f, &soak));
    let (a, b) = (a.finish(), b.finish());
    // ticker prints "tick", health_ok "serving".
    let (says, never, loser) = match (a.0, b.0) {
        (Some(0), Some(1)) => ("tick", "serving", b.1),
        (Some(1), Some(0)) => ("serving", "tick", a.1),
        _ => panic!(
            "exactly one rollout runs:\nops-a {:?}:\n{}\nops-b {:?}:\n{}",
            a.0, a.1, b.0, b.1
        ),
    };
    assert!(
        loser.contains("is running a rollout to group pair now")
            || loser.contains("another rollout to group pair is starting at this moment")
            || loser.contains("has an unfinished rollout"),
        "{loser}"
    );
    assert!(loser.contains("nothing was changed"), "{loser}");
    for device in &pair {
        let out = device.wait_guest_out("ticker", says, WAIT);
        assert!(
            !out.iter().any(|l| l.contains(never)),
            "the winner's module, never the other's: {out:?}"
        );
    }

    // The rollout of version 1 to 50 devices, interrupted in wave 2 (the
    // operator's laptop closed: the CLI is killed).
    let plan = ["--waves", "1,10%,50%,100%", "--soak", "3s", "--max-failures", "5%"];
    let mut first = Cli::spawn(&url, "ops", &start_args("canary", &f.ticker, &f.v1, &f, &plan));
    let started = first.wait_line("rollout ");
    assert!(
        started.contains("50 device(s) in 4 wave(s) of 1, 4, 20, 25") && started.contains("2 failure(s) tolerated"),
        "{started}"
    );
    first.wait_line("dev-00: healthy");
    first.wait_line("wave 2/4");
    first.child.kill().unwrap();
    let _ = first.finish();
    // Its claim went with its connection: status says nobody drives it.
    let status_of = |group: &str, json: bool| {
        let mut args = vec![
            "fleet",
            "--broker",
            &url,
            "rollout",
            "status",
            "--to-group",
            group,
            "--key",
            f.key.to_str().unwrap(),
        ];
        if json {
            args.insert(0, "--json");
        }
        crate::support::arcella(args)
    };
    let status = || status_of("canary", false);
    let deadline = Instant::now() + WAIT;
    loop {
        let ran = status();
        if ran.stdout.contains("no run is driving it") {
            ran.expect_code(0)
                .stdout_has(&["wave 2/4", "wave 1/4: 1 device(s): 1 healthy"]);
            break;
        }
        assert!(Instant::now() < deadline, "{}{}", ran.stdout, ran.stderr);
        std::thread::sleep(Duration::from_millis(200));
    }
    // Another rollout to the group is refused while this one is unfinished.
    let other = Cli::spawn(&url, "ops-2", &start_args("canary", &f.health, &f.v2, &f, &plan)).finish();
    assert_eq!(other.0, Some(1), "{}", other.1);
    assert!(
        other.1.contains("has an unfinished rollout of ticker (wave 2/4") && other.1.contains("resume"),
        "{}",
        other.1
    );
    // The same command resumes it; a device of wave 3 goes offline during
    // that wave's soak and counts as a failure (2 are tolerated).
    let mut resumed = Cli::spawn(&url, "ops", &start_args("canary", &f.ticker, &f.v1, &f, &plan));
    resumed.wait_line("resuming rollout");
    resumed.wait_line("wave 3: every device has a verdict; soaking");
    canary[DROPS_OUT].kill();
    resumed.wait_line(&format!("dev-{DROPS_OUT:02}: FAILED: went offline during the soak"));
    let (code, out) = resumed.finish();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("rollout complete"), "{out}");
    assert!(
        out.contains("49 of 50 device(s) healthy") && out.contains("1 failure(s) tolerated"),
        "{out}"
    );
    // (The daemon names a stored artifact by its own digest.)
    let v1_sha = running_sha(&canary[0]).expect("version 1 runs");
    for (i, device) in canary.iter().enumerate().filter(|(i, _)| *i != DROPS_OUT) {
        assert_eq!(running_sha(device).as_ref(), Some(&v1_sha), "dev-{i:02}");
    }
    // The group's document has it now, and the devices' own documents
    // hand the module back to the group.
    assert_eq!(
        group_entry_sha(&op, &key, "canary").as_deref(),
        Some(ticker_sha.as_str())
    );
    let pinned: Vec<String> = op
        .all_desired()
        .unwrap()
        .iter()
        .filter_map(signing::document::read_unverified)
        .filter(|d| matches!(&d.target, arcella_core::protocol::fleet::DocumentTarget::Device(id) if id.starts_with("dev-")))
        .filter(|d| d.modules.iter().any(|m| m.id == "ticker"))
        .map(|d| d.target.to_string())
        .collect();
    assert!(pinned.is_empty(), "{pinned:?}");
    let view = mirror(&broker, "canary");
    assert_eq!(view["phase"], "done", "{view}");
    assert_eq!(view["failures"], 1, "{view}");
    assert_eq!(
        view["devices"][format!("dev-{DROPS_OUT:02}")]["status"],
        "failed",
        "{view}"
    );
    // Back, it converges from the group's document.
    canary[DROPS_OUT].spawn();
    wait_until(|| running_sha(&canary[DROPS_OUT]).as_ref() == Some(&v1_sha));

    // Version 2 needs more memory than three devices of wave 3 may give:
    // the third failure passes --max-failures 2 and the rollout aborts;
    // every device given version 2 returns to version 1.
    let plan = ["--waves", "1,10%,50%,100%", "--soak", "1s", "--max-failures", "2"];
    let (code, out) = Cli::spawn(&url, "ops", &start_args("canary", &f.health, &f.v2, &f, &plan)).finish();
    assert_eq!(code, Some(3), "{out}");
    assert!(
        out.contains("ABORTING: 3 failure(s), more than the 2 tolerated (--max-failures 2)"),
        "{out}"
    );
    for i in SICK {
        assert!(out.contains(&format!("dev-{i:02}: FAILED")), "{out}");
    }
    assert!(out.contains("back on the previous document"), "{out}");
    assert!(!out.contains("rollout complete"), "{out}");
    for (i, device) in canary.iter().enumerate() {
        assert_eq!(running_sha(device).as_ref(), Some(&v1_sha), "dev-{i:02}");
    }
    assert_eq!(
        group_entry_sha(&op, &key, "canary").as_deref(),
        Some(ticker_sha.as_str())
    );
    let view = mirror(&broker, "canary");
    assert_eq!(view["phase"], "aborted", "{view}");
    assert_eq!(view["waves"][3]["healthy"], 0, "wave 4 never started: {view}");
    assert_eq!(view["devices"]["dev-30"]["status"], "waiting", "{view}");
    assert_eq!(view["devices"]["dev-01"]["status"], "restored", "{view}");
    status()
        .expect_code(0)
        .stdout_has(&["aborted: 3 failure(s)", "dev-13: restored"]);
    let ran = status_of("canary", true);
    ran.expect_code(0);
    let json: serde_json::Value = serde_json::from_str(ran.stdout.trim()).unwrap();
    assert_eq!(json["phase"], "aborted", "{json}");
    assert_eq!(json["failures"], 3, "{json}");
    assert_eq!(json["running_by"], serde_json::Value::Null, "{json}");

    // A rollout signed by a key the devices do not trust: the first
    // device refuses it, the rollout aborts there, nothing changes.
    let stranger = work.path().join("stranger");
    crate::support::arcella(["keygen", "--out", stranger.to_str().unwrap()]).expect_code(0);
    let public = work.path().join("fleet.pub");
    let mut args = start_args("canary", &f.health, &f.v1, &f, &["--waves", "1,100%", "--soak", "0s"]);
    let stranger_key = work.path().join("stranger.key");
    assert_eq!(args[8], "--key");
    args[9] = stranger_key.to_str().unwrap();
    args.extend(["--trust", public.to_str().unwrap()]);
    let (code, out) = Cli::spawn(&url, "ops", &args).finish();
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("dev-00: FAILED: refused version"), "{out}");
    assert!(out.contains("does not trust"), "{out}");
    assert!(!out.contains("dev-01"), "the second wave never started: {out}");
    assert_eq!(running_sha(&canary[0]).as_ref(), Some(&v1_sha));

    // A forged rollout state is ignored, and said to be.
    op.publish_raw("arcella/v1/group/pair/rollout", true, b"forged".to_vec())
        .unwrap();
    status_of("pair", false)
        .expect_code(1)
        .stdout_has(&["the retained rollout state is not one"]);
}

fn wait_until(check: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "never");
        std::thread::sleep(Duration::from_millis(100));
    }
}
