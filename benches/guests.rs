//! `cargo bench --bench guests`: what a guest language costs on a device
//! (the table in docs/guests.md), for the service `arcella new --lang L`
//! makes, built with its `./build.sh` and the pinned toolchains of
//! `scripts/guest-tools`, run by a real daemon:
//!
//! 1. .wasm and native .cwasm size, build time, compile time;
//! 2. `arcella start` → the guest's first log line (p50 of a few);
//! 3. resident memory: the worker with one instance, then with five of the
//!    same artifact (what each further one adds), and five instances in
//!    five workers (the shared worker gone: what each further worker
//!    adds); RSS and PSS (proportional: shared pages divided among the
//!    processes mapping them) from /proc/PID/smaps_rollup. A worker
//!    template (big code: `workers.template_above`) counts with the
//!    workers forked from it;
//! 4. install over the socket of the largest artifact (Python's, ~45 MB),
//!    compile excluded: goal ≤ 3 s.
//!
//! `ARCELLA_BENCH_LANGS=python,js` picks languages (default: all four).

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::percentile;

const ARCELLA: &str = env!("CARGO_BIN_EXE_arcella");
/// Instances of one artifact for the "each further instance" figure.
const INSTANCES: usize = 5;
/// Restarts timed for start → first log line.
const STARTS: usize = 5;
/// Goal: install of a ~45 MB artifact over the socket.
const INSTALL_GOAL: Duration = Duration::from_secs(3);
/// Goal: what each instance after the first adds, as a share of the first.
const FURTHER_GOAL: f64 = 0.10;

struct Daemon {
    child: std::process::Child,
    socket: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(ARCELLA)
            .args(args)
            .env("ARCELLA_SOCKET", &self.socket)
            .stdin(Stdio::null())
            .output()
            .expect("arcella runs");
        assert!(
            out.status.success(),
            "arcella {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(self.cli(&all).trim()).expect("JSON")
    }

    fn log_lines(&self, id: &str) -> usize {
        self.cli(&["logs", id]).lines().count()
    }

    fn worker_pid(&self, group: &str) -> u32 {
        let telemetry = self.json(&["telemetry"]);
        let worker = telemetry["workers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["group"] == group)
            .unwrap_or_else(|| panic!("no worker for group {group}: {telemetry}"));
        worker["pid"].as_u64().unwrap() as u32
    }

    /// (RSS, PSS) of the worker templates the daemon runs (its children
    /// started as `arcella-worker --template`, which hold big code loaded
    /// for the workers forked from them): counted with the workers, since
    /// the memory they share is theirs.
    fn templates(&self) -> (u64, u64) {
        let daemon = self.child.id().to_string();
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let parent = stat.rsplit_once(") ").and_then(|(_, rest)| rest.split(' ').nth(1));
                let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                parent == Some(daemon.as_str()) && cmdline.split('\0').any(|a| a == "--template")
            })
            .map(memory_of)
            .fold((0, 0), |(r, p), (rss, pss)| (r + rss, p + pss))
    }
}

/// Two (RSS, PSS) figures added.
fn plus(a: (u64, u64), b: (u64, u64)) -> (u64, u64) {
    (a.0 + b.0, a.1 + b.1)
}

/// (RSS, PSS) of a process, in bytes.
fn memory_of(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).expect("smaps_rollup");
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {name} in smaps_rollup"))
            * 1024
    };
    (field("Rss:"), field("Pss:"))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn tools_path() -> String {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(repo.join("scripts/guest-tools"))
        .stderr(Stdio::inherit())
        .output()
        .expect("scripts/guest-tools");
    assert!(out.status.success(), "scripts/guest-tools failed");
    let tools = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let arcella_dir = Path::new(ARCELLA).parent().unwrap().display().to_string();
    format!("{tools}:{arcella_dir}:{}", std::env::var("PATH").unwrap_or_default())
}

/// CPU time (user + system) of the children waited for so far.
fn children_cpu() -> Duration {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    let tv = |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
    tv(usage.user_time()) + tv(usage.system_time())
}

fn timed(dir: &Path, path: &str, program: &str, args: &[&str]) -> Duration {
    let began = Instant::now();
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("PATH", path)
        .stdin(Stdio::null())
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    began.elapsed()
}

/// The project's component.toml with its name set to `id`.
fn component_named(project: &Path, id: &str) -> PathBuf {
    let text = std::fs::read_to_string(project.join("component.toml")).expect("component.toml");
    let renamed: Vec<String> = text
        .lines()
        .map(|line| {
            if line.starts_with("name") {
                format!("name = \"{id}\"")
            } else {
                line.to_owned()
            }
        })
        .collect();
    let path = project.join(format!("{id}.component.toml"));
    std::fs::write(&path, renamed.join("\n") + "\n").unwrap();
    path
}

fn deployment_in(project: &Path, group: &str) -> PathBuf {
    let path = project.join(format!("{group}.deployment.toml"));
    std::fs::write(
        &path,
        format!(
            "kind = \"service\"\ngroup = \"{group}\"\n\n[capabilities.keyvalue]\nbuckets = [\"default\"]\n\n[config]\ngreeting = \"bench\"\n"
        ),
    )
    .unwrap();
    path
}

struct Row {
    lang: String,
    wasm: u64,
    cwasm: u64,
    build: Duration,
    compile: Duration,
    compile_cpu: Duration,
    start_p50_ms: f64,
    first: (u64, u64),
    further: (u64, u64),
    separate: (u64, u64),
    install: Duration,
}

impl Row {
    /// What each worker after the first adds (PSS): the five workers'
    /// total less one worker alone, shared among the other four.
    fn further_worker(&self) -> u64 {
        self.separate.1.saturating_sub(self.first.1) / (INSTANCES as u64 - 1)
    }
}

fn measure(lang: &str, path: &str, work: &Path) -> Row {
    let name = format!("bench-{lang}");
    let made = Command::new(ARCELLA)
        .args(["new", &name, "--lang", lang])
        .current_dir(work)
        .output()
        .expect("arcella new");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let project = work.join(&name);
    let build = timed(&project, path, "./build.sh", &[]);
    let wasm = project.join(format!("{name}.wasm"));
    let cwasm = project.join(format!("{name}.cwasm"));
    let cpu_before = children_cpu();
    let compile = timed(
        &project,
        path,
        ARCELLA,
        &["compile", wasm.to_str().unwrap(), "-o", cwasm.to_str().unwrap()],
    );
    let compile_cpu = children_cpu() - cpu_before;

    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("arcella.sock");
    let daemon = Daemon {
        child: support::spawn_daemon(dir.path(), &socket),
        socket,
    };
    let install = |id: &str, group: &str| -> Duration {
        let component = component_named(&project, id);
        let deployment = deployment_in(&project, group);
        let began = Instant::now();
        daemon.cli(&[
            "install",
            cwasm.to_str().unwrap(),
            "--component",
            component.to_str().unwrap(),
            "--deployment",
            deployment.to_str().unwrap(),
        ]);
        began.elapsed()
    };
    let wait_lines = |id: &str, more_than: usize| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while daemon.log_lines(id) <= more_than {
            assert!(
                Instant::now() < deadline,
                "{id} logged nothing:\n{}",
                daemon.cli(&["logs", id])
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    };

    // One instance, then the time from start to its first line.
    let install_time = install(&format!("{lang}-1"), "one");
    wait_lines(&format!("{lang}-1"), 0);
    let mut starts = Vec::new();
    for _ in 0..STARTS {
        daemon.cli(&["stop", &format!("{lang}-1")]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while daemon.json(&["status", &format!("{lang}-1")])["state"] != "stopped" {
            assert!(Instant::now() < deadline, "{lang}-1 did not stop");
            std::thread::sleep(Duration::from_millis(5));
        }
        let before = daemon.log_lines(&format!("{lang}-1"));
        let began = Instant::now();
        daemon.cli(&["start", &format!("{lang}-1")]);
        wait_lines(&format!("{lang}-1"), before);
        starts.push(began.elapsed());
    }
    std::thread::sleep(Duration::from_millis(500));
    let first = plus(memory_of(daemon.worker_pid("one")), daemon.templates());

    for i in 2..=INSTANCES {
        install(&format!("{lang}-{i}"), "one");
        wait_lines(&format!("{lang}-{i}"), 0);
    }
    std::thread::sleep(Duration::from_millis(500));
    let five = plus(memory_of(daemon.worker_pid("one")), daemon.templates());
    let further = (
        five.0.saturating_sub(first.0) / (INSTANCES as u64 - 1),
        five.1.saturating_sub(first.1) / (INSTANCES as u64 - 1),
    );

    // The shared worker goes (its last module removed), so that only the
    // separate workers hold the code's pages while they are measured.
    let one = daemon.worker_pid("one");
    for i in 1..=INSTANCES {
        daemon.cli(&["remove", &format!("{lang}-{i}")]);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::path::Path::new(&format!("/proc/{one}")).exists() {
        assert!(Instant::now() < deadline, "worker `one` did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
    for i in 1..=INSTANCES {
        let id = format!("{lang}-sep-{i}");
        install(&id, &format!("sep-{i}"));
        wait_lines(&id, 0);
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut separate = daemon.templates();
    for i in 1..=INSTANCES {
        let (rss, pss) = memory_of(daemon.worker_pid(&format!("sep-{i}")));
        separate = (separate.0 + rss, separate.1 + pss);
    }

    Row {
        lang: lang.to_owned(),
        wasm: std::fs::metadata(&wasm).unwrap().len(),
        cwasm: std::fs::metadata(&cwasm).unwrap().len(),
        build,
        compile,
        compile_cpu,
        start_p50_ms: percentile(&mut starts, 0.5) / 1000.0,
        first,
        further,
        separate,
        install: install_time,
    }
}

fn main() {
    let langs = std::env::var("ARCELLA_BENCH_LANGS").unwrap_or_else(|_| "rust,c,python,js".into());
    let path = tools_path();
    let work = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    for lang in langs.split(',').filter(|l| !l.is_empty()) {
        eprintln!("guests: measuring {lang}…");
        rows.push(measure(lang, &path, work.path()));
    }

    println!("\nper language: the `arcella new` service, native artifact, worker isolation");
    println!(
        "| language | .wasm | .cwasm | build | compile (cores used) | start → first line p50 | worker RSS / PSS, 1 instance | each further instance, same worker: RSS / PSS | 5 workers, 1 instance each: RSS / PSS | each further worker: PSS |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {:.1} MiB | {:.1} MiB | {:.1} s | {:.1} s ({:.1}) | {:.1} ms | {:.1} / {:.1} MiB | {:.2} / {:.2} MiB ({:.1} % of the first's PSS; goal ≤ {:.0} %) | {:.1} / {:.1} MiB | {:.2} MiB ({:.1} % of the first's; goal ≤ {:.0} %) |",
            r.lang,
            mib(r.wasm),
            mib(r.cwasm),
            r.build.as_secs_f64(),
            r.compile.as_secs_f64(),
            r.compile_cpu.as_secs_f64() / r.compile.as_secs_f64(),
            r.start_p50_ms,
            mib(r.first.0),
            mib(r.first.1),
            mib(r.further.0),
            mib(r.further.1),
            100.0 * r.further.1 as f64 / r.first.1 as f64,
            100.0 * FURTHER_GOAL,
            mib(r.separate.0),
            mib(r.separate.1),
            mib(r.further_worker()),
            100.0 * r.further_worker() as f64 / r.first.1 as f64,
            100.0 * FURTHER_GOAL,
        );
    }
    if let Some(biggest) = rows.iter().max_by_key(|r| r.cwasm) {
        println!(
            "\ninstall over the socket of the largest artifact ({}, {:.1} MiB; compile excluded): {:.2} s (goal ≤ {} s)",
            biggest.lang,
            mib(biggest.cwasm),
            biggest.install.as_secs_f64(),
            INSTALL_GOAL.as_secs()
        );
    }
}
