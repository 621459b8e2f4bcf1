//! Rust and C guests from `arcella new`: the command itself (what it
//! writes, what it refuses), then every Rust and C template built with its
//! own `./build.sh`, compiled with `arcella compile`, and run as a user
//! would: the command templates with `arcella run`, the service template
//! without a key-value grant under `arcella run`, and the rest installed
//! on one real daemon — services that log, read config and count their
//! starts across a restart, providers called by nobody yet but running,
//! the Rust and C HTTP handlers answering over loopback — with
//! examples/c-meter beside them.
//!
//! Each project is built once per test binary (a `OnceLock` per project;
//! the Rust ones share one cargo target directory, so only the first
//! compiles wit-bindgen). `ARCELLA_POLYGLOT_FIGURES=1` prints what was
//! measured (build and compile times, sizes, start to first log line,
//! memory) for docs/guests.md.

use super::{new_project, repo, run_in, tool_path};
use crate::daemon::harness::Daemon;
use crate::support::{Ran, arcella, arcella_in};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

// ---- `arcella new` itself: no toolchain needed ----

#[test]
fn new_writes_a_project_with_every_placeholder_rendered_and_prints_next_steps() {
    let parent = tempfile::tempdir().unwrap();
    let ran = arcella_in(
        Some(parent.path()),
        ["new", "room-sensor", "--lang", "rust", "--kind", "service"],
    );
    ran.expect_code(0).stdout_has(&[
        "made room-sensor (rust service, world arcella:platform/service)",
        "next:",
        "./build.sh",
    ]);
    let dir = parent.path().join("room-sensor");
    for file in [
        "Cargo.toml",
        "build.sh",
        "component.toml",
        "deployment.toml",
        "README.md",
        "src/lib.rs",
        "wit/world.wit",
        "wit/deps/platform/platform.wit",
        "wit/deps/logging/logging.wit",
        "wit/deps/keyvalue/store.wit",
        "wit/deps/cli.wit",
    ] {
        assert!(dir.join(file).is_file(), "no {file}");
    }
    assert!(!dir.join("NEXT").exists(), "NEXT is printed, not written");
    let mut all = String::new();
    for entry in crate::support::files_under(&dir) {
        all.push_str(&std::fs::read_to_string(&entry).unwrap());
    }
    assert!(!all.contains("{{"), "a placeholder left unrendered");
    let cargo = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(cargo.contains("name = \"room-sensor\"") && cargo.contains("name = \"room_sensor\""));
    assert!(cargo.contains("\n[workspace]\n"), "{cargo}");
    let world = std::fs::read_to_string(dir.join("wit/world.wit")).unwrap();
    assert!(world.contains("package local:room-sensor;") && world.contains("world room-sensor {"));
    let component: toml::Value = toml::from_str(&std::fs::read_to_string(dir.join("component.toml")).unwrap()).unwrap();
    assert_eq!(component["name"].as_str(), Some("room-sensor"));
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(dir.join("build.sh")).unwrap().permissions());
    assert_eq!(mode & 0o111, 0o111, "build.sh is executable");
    // The C provider: its interface's package is the project's name, in
    // the WIT and in the shipped bindings alike.
    let ran = arcella_in(
        Some(parent.path()),
        [
            "new",
            "greeter",
            "--lang",
            "c",
            "--kind",
            "provider",
            "--dir",
            "elsewhere/g",
        ],
    );
    ran.expect_code(0).stdout_has(&["in elsewhere/g"]);
    let g = parent.path().join("elsewhere/g");
    let bindings = std::fs::read_to_string(g.join("bindings/bindings.c")).unwrap();
    assert!(bindings.contains("\"local:greeter/api@0.1.0#greet\""), "{bindings}");
    let source = std::fs::read_to_string(g.join("src/main.c")).unwrap();
    assert!(source.contains("void exports_local_greeter_api_greet("));
    let deployment = std::fs::read_to_string(g.join("deployment.toml")).unwrap();
    assert!(deployment.contains("kind = \"provider\""));
}

#[test]
fn new_json_lists_the_files_and_the_next_steps() {
    let parent = tempfile::tempdir().unwrap();
    let ran = arcella_in(
        Some(parent.path()),
        ["--json", "new", "tool", "--lang", "c", "--kind", "command"],
    );
    ran.expect_code(0);
    let made: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(made["lang"], "c");
    assert_eq!(made["kind"], "command");
    assert_eq!(made["world"], "arcella:platform/command");
    let files: Vec<&str> = made["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    for file in [
        "build.sh",
        "src/main.c",
        "bindings/bindings.h",
        "embed.mjs",
        "wit/world.wit",
    ] {
        assert!(files.contains(&file), "{file} not in {files:?}");
        assert!(parent.path().join("tool").join(file).is_file());
    }
    assert!(!files.contains(&"NEXT"));
    assert!(
        made["next"].as_str().unwrap().contains("arcella install tool.cwasm"),
        "{made}"
    );
}

#[test]
fn new_refuses_a_bad_name_an_unknown_language_and_a_non_empty_directory() {
    let parent = tempfile::tempdir().unwrap();
    arcella_in(Some(parent.path()), ["new", "Room_Sensor", "--lang", "rust"])
        .expect_code(2)
        .stderr_has(&["`Room_Sensor` is not a usable project name", "room-sensor"]);
    arcella_in(Some(parent.path()), ["new", "x", "--lang", "cobol"])
        .expect_code(2)
        .stderr_has(&["cobol", "possible values: rust, c, python, js"]);
    assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 0, "nothing written");
    let taken = parent.path().join("taken");
    std::fs::create_dir(&taken).unwrap();
    std::fs::write(taken.join("build.sh"), "mine").unwrap();
    arcella_in(Some(parent.path()), ["new", "taken", "--lang", "c"])
        .expect_code(2)
        .stderr_has(&["taken exists and is not empty"]);
    assert_eq!(std::fs::read_to_string(taken.join("build.sh")).unwrap(), "mine");
    assert_eq!(std::fs::read_dir(&taken).unwrap().count(), 1, "nothing added");
}

#[test]
fn new_help_names_the_languages_the_kinds_and_the_directory() {
    arcella(["new", "--help"]).expect_code(0).stdout_has(&[
        "--lang <LANG>",
        "rust",
        "python",
        "--kind <KIND>",
        "provider",
        "http",
        "--dir <DIR>",
    ]);
}

// ---- built projects ----

/// A project made by `arcella new` and built by its `./build.sh`.
struct Built {
    dir: PathBuf,
    wasm: PathBuf,
    cwasm: PathBuf,
    build: Duration,
    compile: Duration,
}

/// Where every project of this test binary is made: beside the test
/// binary (a static is never dropped, so a temporary directory would
/// outlive the run), emptied at the first use of a run.
fn workdir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = target_dir().join("polyglot-rust-c");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// The test profile's directory of the target (`target/debug`).
fn target_dir() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_arcella")).parent().unwrap()
}

/// The cargo target directory every Rust project builds into, kept
/// between runs, so wit-bindgen is compiled once.
fn rust_target() -> PathBuf {
    target_dir().join("polyglot-rust")
}

/// The project `lang` `kind`, made, built and compiled once; builds run
/// one at a time (two cores; cargo would wait on its lock anyway).
fn built(lang: &str, kind: &str) -> &'static Built {
    static ALL: Mutex<BTreeMap<(String, String), &'static Built>> = Mutex::new(BTreeMap::new());
    let mut all = ALL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let key = (lang.to_string(), kind.to_string());
    if let Some(built) = all.get(&key) {
        return built;
    }
    let name = format!("{lang}-{kind}");
    let dir = new_project(workdir(), &name, lang, kind);
    let made = build_and_compile(&dir, &name);
    let made: &'static Built = Box::leak(Box::new(made));
    all.insert(key, made);
    made
}

/// examples/c-meter, copied (its `wit/deps` resolved) and built once.
fn c_meter() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = workdir().join("c-meter");
        let example = repo().join("examples/c-meter");
        super::copy_project(&example, &dir);
        build_and_compile(&dir, "c-meter")
    })
}

fn build_and_compile(dir: &Path, name: &str) -> Built {
    let began = Instant::now();
    if dir.join("Cargo.toml").is_file() {
        let ran = Command::new("./build.sh")
            .current_dir(dir)
            .env("PATH", tool_path())
            .env("CARGO_TARGET_DIR", rust_target())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            ran.status.success(),
            "{name}: ./build.sh failed\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&ran.stdout),
            String::from_utf8_lossy(&ran.stderr)
        );
    } else {
        super::build(dir);
    }
    let build = began.elapsed();
    let wasm = dir.join(format!("{name}.wasm"));
    assert!(wasm.is_file(), "./build.sh made no {}", wasm.display());
    let cwasm = dir.join(format!("{name}.cwasm"));
    let began = Instant::now();
    arcella(["compile".as_ref(), wasm.as_os_str(), "-o".as_ref(), cwasm.as_os_str()]).expect_code(0);
    let compile = began.elapsed();
    Built {
        dir: dir.to_owned(),
        wasm,
        cwasm,
        build,
        compile,
    }
}

fn figures_wanted() -> bool {
    std::env::var_os("ARCELLA_POLYGLOT_FIGURES").is_some()
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

// ---- `arcella run` ----

#[test]
fn command_templates_run_to_completion_with_arcella_run() {
    for lang in ["rust", "c"] {
        let project = built(lang, "command");
        let ran = run_in(
            &project.dir,
            "arcella",
            &["run", project.wasm.to_str().unwrap(), "--", "you", "there"],
        );
        ran.expect_code(0)
            .stdout_has(&[&format!("hello, you there, from {lang}-command")]);
    }
}

#[test]
fn service_templates_under_arcella_run_log_the_refused_store_and_stop_on_a_signal() {
    for lang in ["rust", "c"] {
        let project = built(lang, "service");
        let mut child = Command::new(env!("CARGO_BIN_EXE_arcella"))
            .arg("run")
            .arg(&project.cwasm)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = Vec::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            let refused = line.contains("no key-value state, starts not counted");
            seen.push(line);
            if refused {
                break;
            }
        }
        assert!(
            seen.last().is_some_and(|l| l.contains("access denied")),
            "{lang}: the refusal names why: {seen:#?}"
        );
        crate::daemon::harness::send_signal(child.id(), "INT");
        let rest: Vec<String> = lines.map(|line| line.unwrap()).collect();
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!("hello from {lang}-service")),
            "{lang}: {stdout}"
        );
        assert!(
            rest.iter().any(|l| l.contains("stopping after")),
            "{lang}: it heard the shutdown call: {rest:#?}"
        );
        assert_eq!(out.status.code(), Some(0), "{lang}: {rest:#?}");
    }
}

// ---- a daemon ----

/// How long a module may take to log what a test waits for.
const LOG_WAIT: Duration = Duration::from_secs(20);

/// A number kept in the module's bucket `default` (0 if absent).
fn kv_number(daemon: &Daemon, id: &str, key: &str) -> u64 {
    daemon.cli(["kv", id, "get", key]).stdout.trim().parse().unwrap_or(0)
}

fn install(daemon: &Daemon, project: &Built, deployment: &str) -> Ran {
    let path = project.dir.join("test-deployment.toml");
    std::fs::write(&path, deployment).unwrap();
    daemon.install_file(&project.cwasm, &project.dir.join("component.toml"), &path)
}

fn deployment_of(project: &Built) -> String {
    std::fs::read_to_string(project.dir.join("deployment.toml")).unwrap()
}

#[test]
fn rust_and_c_projects_install_and_run_on_a_daemon_keeping_state_across_restarts() {
    let mut projects: Vec<(&str, &Built)> = vec![
        ("rust-service", built("rust", "service")),
        ("c-service", built("c", "service")),
        ("c-meter", c_meter()),
        ("rust-provider", built("rust", "provider")),
        ("c-provider", built("c", "provider")),
    ];
    // A build without wasi:http refuses the HTTP handlers at install.
    if cfg!(feature = "http") {
        projects.push(("rust-http", built("rust", "http")));
        projects.push(("c-http", built("c", "http")));
    }
    let daemon = Daemon::start();
    let mut started = BTreeMap::new();
    // Each HTTP handler on a loopback port of its own.
    let web: BTreeMap<&str, std::net::SocketAddr> = ["rust-http", "c-http"]
        .into_iter()
        .map(|id| {
            let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            (id, free.local_addr().unwrap())
        })
        .collect();
    for (id, project) in &projects {
        let mut deployment = deployment_of(project).replace("interval_ms = \"1000\"", "interval_ms = \"100\"");
        if let Some(address) = web.get(id) {
            deployment = deployment.replace("127.0.0.1:8080", &address.to_string());
        }
        // For the figures, a worker per module: its resident memory is
        // the module's.
        if figures_wanted() {
            deployment = format!("group = \"{id}\"\n{deployment}");
        }
        if *id != "c-meter" {
            deployment = deployment.replace("greeting = \"hello\"", &format!("greeting = \"hi from {id}\""));
        }
        let began = Instant::now();
        install(&daemon, project, &deployment).expect_code(0);
        started.insert(*id, began);
    }
    // Services: the config they read, their first start counted, and a
    // line on stdout.
    let mut first_line = BTreeMap::new();
    for id in ["rust-service", "c-service"] {
        let logs = daemon.wait_log(id, "start number 1", LOG_WAIT);
        first_line.insert(id, started[id].elapsed());
        assert!(logs.contains(&format!("config: greeting = \"hi from {id}\"")), "{logs}");
        daemon.wait_log(id, &format!("hi from {id} from {id}"), LOG_WAIT);
    }
    let logs = daemon.wait_log("c-meter", "total=3", LOG_WAIT);
    first_line.insert("c-meter", started["c-meter"].elapsed());
    assert!(logs.contains("meter hall: rate 1 every 100 ms"), "{logs}");
    assert!(logs.contains("start 1, total so far 0"), "{logs}");
    // Config changed while it runs: read at the next tick.
    daemon.cli(["config", "c-meter", "set", "rate=1000"]).expect_code(0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while kv_number(&daemon, "c-meter", "total") < 1000 {
        assert!(
            Instant::now() < deadline,
            "the rate never changed:\n{}",
            daemon.cli(["logs", "c-meter"]).stdout
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for id in ["rust-provider", "c-provider"] {
        daemon.wait_for(id, Duration::from_secs(20), "running", |s| s["state"] == "running");
    }
    #[cfg(feature = "http")]
    {
        let (status, body) = crate::http::request(web["rust-http"], "GET", "/", b"");
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, "hi from rust-http from rust-http (request 1)\n");
        // The C handler: the greeting of its [config], the path, a log
        // line; a greeting changed at run time is read by the next request.
        let (status, body) = crate::http::request(web["c-http"], "GET", "/hi?there", b"");
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, "hi from c-http from c-http: you asked for /hi?there\n");
        daemon.wait_log("c-http", "/hi?there: 200", LOG_WAIT);
        daemon.cli(["config", "c-http", "set", "greeting=hey"]).expect_code(0);
        let (status, body) = crate::http::request(web["c-http"], "POST", "/again", b"ignored");
        assert_eq!(
            (status, body.as_str()),
            (200, "hey from c-http: you asked for /again\n")
        );
    }
    if figures_wanted() {
        std::thread::sleep(Duration::from_secs(1));
        eprintln!("telemetry:\n{}", daemon.cli(["telemetry"]).stdout);
    }
    // State survives a restart: the count goes on.
    for id in ["rust-service", "c-service"] {
        daemon.cli(["restart", id]).expect_code(0);
        daemon.wait_log(id, "start number 2", LOG_WAIT);
        daemon
            .cli(["kv", id, "get", "starts"])
            .expect_code(0)
            .stdout_has(&["2"]);
    }
    let before = kv_number(&daemon, "c-meter", "total");
    daemon.cli(["restart", "c-meter"]).expect_code(0);
    let logs = daemon.wait_log("c-meter", "start 2, total so far", LOG_WAIT);
    let after: u64 = logs
        .split("start 2, total so far ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(after >= before, "the total went from {before} back to {after}");
    // Stopped, a service hears the shutdown call and returns.
    for (id, last) in [
        ("rust-service", "stopping after"),
        ("c-service", "stopping after"),
        ("c-meter", "stopping at total"),
    ] {
        daemon.cli(["stop", id]).expect_code(0);
        daemon.wait_log(id, last, LOG_WAIT);
    }
    if figures_wanted() {
        for (id, project) in &projects {
            eprintln!(
                "{id}: build {:.1?}, {} B .wasm, compile {:.1?}, {} B .cwasm, install to first line {:?}",
                project.build,
                size(&project.wasm),
                project.compile,
                size(&project.cwasm),
                first_line.get(id)
            );
        }
    }
}
