//! Python and JavaScript guests as a user makes them: `arcella new` and
//! `./build.sh` with the pinned componentize-py and componentize-js,
//! `arcella compile`, and a real daemon running the result; the examples
//! `examples/python-room-monitor` (typed calls to the Rust room sensor) and
//! `examples/js-alarm` (a message handler fed through the MQTT bridge)
//! built from source the same way.
//!
//! A Python or JavaScript component takes seconds to componentize and
//! tens of seconds to compile (an interpreter of 14–18 MB), so each one is
//! built and compiled once, on first use, and shared by the tests
//! ([`Built`]); each test has a daemon of its own (started in well under a
//! second). The figures docs/guests.md tabulates are printed
//! (`cargo test … -- --nocapture`): sizes, componentize and compile times,
//! start to first log line, the worker's resident memory.

use super::{build, new_project, repo, tool_path};
use crate::daemon::harness::Daemon;
use crate::support::arcella_in;
use arcella_test_broker::Mosquitto;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

/// A component built from source and compiled once for every test.
struct Built {
    /// The project it was built in (a copy, under the test's scratch space).
    project: PathBuf,
    cwasm: PathBuf,
}

/// Scratch space for the projects, kept for the test binary's life (under
/// cargo's target/tmp, emptied when first used).
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("polyglot-python-js-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// Builds `project` with its `./build.sh` and compiles the component,
/// printing the figures.
fn build_and_compile(project: PathBuf, what: &str) -> Built {
    tool_path();
    let started = Instant::now();
    let wasm = build(&project);
    let componentize = started.elapsed();
    let cwasm = wasm.with_extension("cwasm");
    let started = Instant::now();
    arcella_in(
        Some(&project),
        ["compile".as_ref(), wasm.as_os_str(), "-o".as_ref(), cwasm.as_os_str()],
    )
    .expect_code(0);
    let compile = started.elapsed();
    let size = |path: &Path| std::fs::metadata(path).unwrap().len() as f64 / 1e6;
    println!(
        "figures {what}: .wasm {:.1} MB, componentize {:.1} s; .cwasm {:.1} MB, compile {:.1} s",
        size(&wasm),
        componentize.as_secs_f64(),
        size(&cwasm),
        compile.as_secs_f64()
    );
    Built { project, cwasm }
}

/// The service `arcella new` makes for `lang` (`python` or `js`), built
/// and compiled once.
fn service(lang: &'static str) -> &'static Built {
    static PYTHON: OnceLock<Built> = OnceLock::new();
    static JS: OnceLock<Built> = OnceLock::new();
    let cell = if lang == "python" { &PYTHON } else { &JS };
    cell.get_or_init(|| {
        let parent = scratch().join(format!("new-{lang}"));
        std::fs::create_dir_all(&parent).unwrap();
        let project = new_project(&parent, &format!("{lang}-svc"), lang, "service");
        build_and_compile(project, &format!("{lang} service"))
    })
}

/// An example of the repository (`python-room-monitor` or `js-alarm`),
/// copied (its own files, not what a build left there), built and compiled
/// once.
fn example(name: &'static str) -> &'static Built {
    static ROOM_MONITOR: OnceLock<Built> = OnceLock::new();
    static ALARM: OnceLock<Built> = OnceLock::new();
    let cell = if name == "python-room-monitor" {
        &ROOM_MONITOR
    } else {
        &ALARM
    };
    cell.get_or_init(|| {
        let project = scratch().join(name);
        super::copy_project(&repo().join("examples").join(name), &project);
        build_and_compile(project, name)
    })
}

/// How many lines of `module`'s log contain `needle`.
fn count_log(daemon: &Daemon, module: &str, needle: &str) -> usize {
    daemon.cli(["logs", module]).stdout.matches(needle).count()
}

/// What `telemetry` says of the module `id` alone in worker group `id`, in
/// MB: the worker's resident memory, the module's linear memory, and the
/// daemon's resident memory.
fn memory_mb(daemon: &Daemon, id: &str) -> (f64, f64, f64) {
    let telemetry: serde_json::Value =
        serde_json::from_str(&daemon.cli(["--json", "telemetry"]).expect_code(0).stdout).unwrap();
    let find = |list: &str, key: &str| {
        telemetry[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row[key] == id)
            .unwrap_or_else(|| panic!("no {key} {id} in {list}: {telemetry}"))
            .clone()
    };
    let mb = |value: &serde_json::Value| value.as_u64().unwrap_or_else(|| panic!("{telemetry}")) as f64 / 1e6;
    (
        mb(&find("workers", "group")["resident_bytes"]),
        mb(&find("modules", "id")["memory_bytes"]),
        mb(&telemetry["daemon_resident_bytes"]),
    )
}

/// The service of `arcella new --lang LANG` on a daemon: it logs its
/// greeting from `[config]`, counts its starts in key-value state across
/// a restart (1, then 2), hears a config change without a restart, and
/// stops when asked, logging it.
fn service_runs_on_a_daemon(lang: &'static str) {
    let built = service(lang);
    let name = format!("{lang}-svc");
    let daemon = Daemon::start();
    let project = &built.project;
    // The template's deployment, with a short interval so that a config
    // change shows within the test.
    let deployment = std::fs::read_to_string(project.join("deployment.toml"))
        .unwrap()
        .replace("interval_ms = \"5000\"", "interval_ms = \"200\"");
    assert!(deployment.contains("interval_ms = \"200\""), "{deployment}");
    let deployment = crate::daemon::harness::write(daemon.dir.path(), "deployment.toml", &deployment);
    let installed = Instant::now();
    daemon
        .install_file(&built.cwasm, &project.join("component.toml"), &deployment)
        .expect_code(0);
    let install = installed.elapsed();
    daemon.wait_log(&name, "started; greeting", WAIT);
    let first_log = installed.elapsed();
    let logs = daemon.wait_log(&name, "start number 1", WAIT);
    assert!(
        logs.contains(&format!("{name}: {name} started; greeting: ")) && logs.contains(&format!("hello from {name}")),
        "the greeting of [config]:\n{logs}"
    );
    daemon.wait_log(&name, &format!("hello from {name} (tick 1)"), WAIT);
    let (worker, linear, daemon_rss) = memory_mb(&daemon, &name);

    // The operator's value is read at the next tick, without a restart.
    daemon
        .cli(["config", &name, "set", "greeting=guten Tag"])
        .expect_code(0);
    daemon.wait_log(&name, "guten Tag (tick", WAIT);
    assert_eq!(
        count_log(&daemon, &name, "started;"),
        1,
        "no restart for a config change"
    );

    // Stopped, it is asked to finish and says so; started again, it
    // counts on from its key-value state.
    daemon.cli(["stop", &name]).expect_code(0);
    daemon.wait_log(&name, &format!("{name} stopping after"), WAIT);
    let started = Instant::now();
    daemon.cli(["start", &name]).expect_code(0);
    daemon.wait_log(&name, "start number 2", WAIT);
    let start_to_log = started.elapsed();
    assert_eq!(
        daemon.cli(["kv", &name, "get", "starts"]).expect_code(0).stdout.trim(),
        "2"
    );
    println!(
        "figures {lang} service: install {:.1} s, install to first log line {:.2} s, `arcella start` to \
         first log lines {:.2} s; worker RSS {worker:.1} MB, its linear memory {linear:.1} MB, daemon RSS \
         {daemon_rss:.1} MB",
        install.as_secs_f64(),
        first_log.as_secs_f64(),
        start_to_log.as_secs_f64(),
    );
}

#[test]
fn a_python_service_from_arcella_new_logs_reads_config_and_counts_its_starts() {
    service_runs_on_a_daemon("python");
}

#[test]
fn a_js_service_from_arcella_new_logs_reads_config_and_counts_its_starts() {
    service_runs_on_a_daemon("js");
}

/// `arcella run` grants no key-value store: the service says so on its
/// log (stderr here), goes on, and stops on SIGINT within its grace.
fn service_goes_on_without_a_store_under_arcella_run(lang: &'static str) {
    let built = service(lang);
    let mut child = Command::new(env!("CARGO_BIN_EXE_arcella"))
        .args(["run".as_ref(), built.cwasm.as_os_str()])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let deadline = Instant::now() + WAIT;
    while !seen.iter().any(|l: &String| l.contains("(tick 1)")) {
        assert!(Instant::now() < deadline, "no first tick: {seen:#?}");
        match lines.next() {
            Some(line) => seen.push(line.unwrap()),
            None => panic!("arcella run ended early: {seen:#?}, {:?}", child.wait()),
        }
    }
    assert!(
        seen.iter()
            .any(|l| l.contains("no key-value store") && l.contains("starts are not counted")),
        "{seen:#?}"
    );
    crate::daemon::harness::send_signal(child.id(), "INT");
    seen.extend(lines.map(Result::unwrap));
    let status = child.wait().unwrap();
    assert!(seen.iter().any(|l| l.contains("stopping after 1 ticks")), "{seen:#?}");
    assert_eq!(status.code(), Some(0), "a stop it heard is a clean exit: {seen:#?}");
}

#[test]
fn the_python_and_js_services_go_on_without_a_store_under_arcella_run() {
    service_goes_on_without_a_store_under_arcella_run("python");
    service_goes_on_without_a_store_under_arcella_run("js");
}

/// examples/python-room-monitor: a Python service calling the Rust
/// `room-sensor` provider of examples/thermostat through the daemon, from
/// a worker; it keeps the room near its target and its count of readings
/// in key-value state.
#[test]
fn the_python_room_monitor_heats_the_rust_room_sensor_through_typed_calls() {
    let built = example("python-room-monitor");
    let daemon = Daemon::start();
    let thermostat = repo().join("examples/thermostat");
    daemon
        .install_file(
            &crate::support::artifact("room_sensor", "native"),
            &thermostat.join("sensor.component.toml"),
            &thermostat.join("sensor.deployment.toml"),
        )
        .expect_code(0);
    daemon
        .install_file(
            &built.cwasm,
            &built.project.join("component.toml"),
            &built.project.join("deployment.toml"),
        )
        .expect_code(0);
    // The room starts at 18 °C, under the target of 21: the heater goes
    // on, and the provider answers with it on at the next reading.
    let logs = daemon.wait_log("python-room-monitor", "heater on (target 21.0 °C, reading 2)", WAIT);
    assert!(
        logs.contains("17.9 °C, heater on (target 21.0 °C, reading 1)"),
        "{logs}"
    );
    let wiring: serde_json::Value =
        serde_json::from_str(&daemon.cli(["--json", "wiring"]).expect_code(0).stdout).unwrap();
    assert_eq!(wiring["links"][0]["consumer"], "python-room-monitor", "{wiring}");
    assert_eq!(wiring["links"][0]["provider"], "room-sensor", "{wiring}");
    // The room sensor's own log: the heater it was told to switch on.
    daemon.wait_log("room-sensor", "heater on", WAIT);

    // A lower target, read at the next reading: the heater goes off.
    daemon
        .cli(["config", "python-room-monitor", "set", "target=15"])
        .expect_code(0);
    daemon.wait_log("python-room-monitor", "heater off (target 15.0 °C", WAIT);
    let readings: u64 = daemon
        .cli(["kv", "python-room-monitor", "get", "readings"])
        .expect_code(0)
        .stdout
        .trim()
        .parse()
        .unwrap();
    assert!(readings >= 3, "{readings}");
    daemon.cli(["restart", "python-room-monitor"]).expect_code(0);
    daemon.wait_log("python-room-monitor", "resuming; the last reading was", WAIT);
}

/// examples/js-alarm: a JavaScript message handler fed the readings a
/// client outside publishes to mosquitto, through the daemon's bridge
/// (the example's own arcella.toml); a reading above its limit comes back
/// out as an alert, counted in key-value state; a reading that is not a
/// number is refused and counted as failed.
#[test]
fn the_js_alarm_turns_readings_from_mosquitto_into_alerts() {
    let built = example("js-alarm");
    let broker = Mosquitto::start();
    let config = std::fs::read_to_string(built.project.join("arcella.toml"))
        .unwrap()
        .replace("mqtt://127.0.0.1:1883", &broker.url());
    let daemon = Daemon::start_with_config(&config);
    daemon.wait_bridge_connected(WAIT);
    daemon
        .install_file(
            &built.cwasm,
            &built.project.join("component.toml"),
            &built.project.join("deployment.toml"),
        )
        .expect_code(0);
    daemon.wait_for("js-alarm", WAIT, "running", |s| s["state"] == "running");

    let alerts = broker.subscriber("alerts/#", 1, 30, None);
    std::thread::sleep(Duration::from_millis(500));
    broker.publish("home/kitchen/temp", "21.5");
    broker.publish("home/kitchen/temp", "35.5");
    let lines = alerts.lines();
    assert_eq!(lines.len(), 1, "one alert: {lines:?}\n{}", daemon.log());
    let (topic, json) = lines[0].split_once(' ').unwrap();
    assert_eq!(topic, "alerts/kitchen");
    let alert: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(alert["celsius"], 35.5, "{alert}");
    assert_eq!(alert["limit"], 30, "{alert}");
    assert_eq!(alert["alarms"], 1, "{alert}");
    daemon.wait_log("js-alarm", "kitchen: 35.5 °C is above 30 °C (alarm 1)", WAIT);
    assert_eq!(
        daemon
            .cli(["kv", "js-alarm", "get", "alarms.kitchen"])
            .expect_code(0)
            .stdout
            .trim(),
        "1"
    );

    // A reading that is not a number: an error result, logged and counted.
    broker.publish("home/kitchen/temp", "hot");
    daemon.wait_log(
        "js-alarm",
        "the handler returned an error: a reading is a number of °C, not \"hot\"",
        WAIT,
    );
    let status = daemon.wait_for("js-alarm", WAIT, "counted the failure", |s| {
        s["messaging"]["failed"].as_u64() == Some(1)
    });
    assert_eq!(status["messaging"]["handled"], 3, "{status}");
}

/// Every kind of project is made for Python and JavaScript, with the WIT
/// package set; one more kind per language is built and run, side by
/// side: the Python command greets its argument under `arcella run`, the
/// JavaScript HTTP handler answers a GET under `arcella run
/// --serve-http`. (The providers and the Python HTTP handler are left to
/// docs/guests.md's bench: each costs a componentize and a compile.)
#[test]
fn every_kind_is_made_for_python_and_js_and_a_command_and_a_handler_run() {
    let parent = scratch().join("kinds");
    std::fs::create_dir_all(&parent).unwrap();
    for lang in ["python", "js"] {
        let source = if lang == "python" { "app.py" } else { "app.js" };
        for kind in ["service", "command", "http", "provider"] {
            let name = format!("{lang}-{kind}-kind");
            let project = new_project(&parent, &name, lang, kind);
            for file in [
                source,
                "build.sh",
                "README.md",
                "component.toml",
                "deployment.toml",
                "wit/world.wit",
                "wit/deps/platform/platform.wit",
                "wit/deps/cli.wit",
            ] {
                assert!(project.join(file).is_file(), "{name} has no {file}");
            }
            assert!(!project.join("NEXT").exists(), "NEXT is printed, not written");
            for file in [source, "README.md", "deployment.toml", "build.sh"] {
                let text = std::fs::read_to_string(project.join(file)).unwrap();
                assert!(!text.contains("{{"), "a placeholder left in {name}/{file}");
            }
            let mode = std::fs::metadata(project.join("build.sh")).unwrap().permissions();
            assert_eq!(
                std::os::unix::fs::PermissionsExt::mode(&mode) & 0o111,
                0o111,
                "{name}/build.sh is executable"
            );
        }
    }
    std::thread::scope(|threads| {
        threads.spawn(|| {
            let command = parent.join("python-command-kind");
            let wasm = build(&command);
            arcella_in(
                Some(&command),
                ["run".as_ref(), wasm.as_os_str(), "--".as_ref(), "Ada".as_ref()],
            )
            .expect_code(0)
            .stdout_has(&["hello, Ada, from python-command-kind"]);
        });
        threads.spawn(|| {
            let handler = parent.join("js-http-kind");
            let wasm = build(&handler);
            let address = free_address();
            let mut server = Command::new(env!("CARGO_BIN_EXE_arcella"))
                .args([
                    "run".as_ref(),
                    wasm.as_os_str(),
                    "--serve-http".as_ref(),
                    address.as_ref(),
                ])
                .env_clear()
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let answer = http_get(&address, "/hi?there");
            let _ = server.kill();
            let _ = server.wait();
            assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
            assert!(
                answer.contains("hello from js-http-kind: you asked for /hi?there"),
                "{answer}"
            );
        });
    });
}

/// A loopback address with a port nobody listens on.
fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// The whole answer to `GET path` at `address`, once something serves
/// there (the component is compiled first: that takes a while).
fn http_get(address: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut stream = loop {
        match std::net::TcpStream::connect(address) {
            Ok(stream) => break stream,
            Err(err) => assert!(Instant::now() < deadline, "nothing serves {address}: {err}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// Bad input: a language there is no template for (clap names the ones
/// there are), and a directory that is not empty (nothing in it changes).
#[test]
fn arcella_new_refuses_an_unknown_language_and_a_directory_in_use() {
    let dir = tempfile::tempdir().unwrap();
    arcella_in(Some(dir.path()), ["new", "x", "--lang", "go"])
        .expect_code(2)
        .stderr_has(&[
            "invalid value 'go' for '--lang <LANG>'",
            "[possible values: rust, c, python, js]",
        ]);
    assert!(!dir.path().join("x").exists(), "nothing made");

    let project = dir.path().join("taken");
    std::fs::create_dir(&project).unwrap();
    std::fs::write(project.join("app.py"), "mine").unwrap();
    arcella_in(Some(dir.path()), ["new", "taken", "--lang", "python"])
        .expect_code(2)
        .stderr_has(&["exists and is not empty"]);
    assert_eq!(std::fs::read_to_string(project.join("app.py")).unwrap(), "mine");
    assert_eq!(std::fs::read_dir(&project).unwrap().count(), 1, "nothing added");
}

/// The room monitor's copy of the room's WIT is the thermostat's.
#[test]
fn the_room_monitor_imports_the_thermostat_s_own_room() {
    let read = |path: &str| std::fs::read_to_string(repo().join(path)).unwrap();
    assert_eq!(
        read("examples/python-room-monitor/wit/deps/thermostat/room.wit"),
        read("examples/thermostat/wit/room.wit"),
        "copy examples/thermostat/wit/room.wit to examples/python-room-monitor/wit/deps/thermostat/"
    );
}
