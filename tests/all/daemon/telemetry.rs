//! `arcella telemetry`: what each module uses (linear memory, CPU time),
//! counted by its run in the daemon or in its worker (then carried back in
//! the worker's answer to a ping), and a reading that never waits long on
//! a worker that cannot answer.

use super::harness::*;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);
/// MiB the memory hog allocates (and holds) in 1 MiB blocks.
const HOG_MIB: u64 = 8;
/// The longest a reading may take: one second for workers' answers
/// (supervisor/telemetry.rs), and a debug build on a shared machine.
const READING_BOUND: Duration = Duration::from_secs(3);

fn component(name: &str) -> String {
    format!("name = \"{name}\"\nversion = \"1.0.0\"\n")
}

/// A service in-process (`group` `None`) or in a worker of `group`, with
/// `args`.
fn service(group: Option<&str>, args: &[&str]) -> String {
    let place = match group {
        None => "isolation = \"main\"\ntrusted = true\n".to_owned(),
        Some(group) => format!("group = \"{group}\"\n"),
    };
    let args: Vec<String> = args.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        "kind = \"service\"\n{place}[restart]\npolicy = \"never\"\n[capabilities]\nargs = [{}]\n",
        args.join(", ")
    )
}

/// `arcella --json telemetry`, and how long it took.
fn reading(daemon: &Daemon) -> (serde_json::Value, Duration) {
    let began = Instant::now();
    let ran = daemon.cli(["--json", "telemetry"]);
    let took = began.elapsed();
    ran.expect_code(0);
    (serde_json::from_str(&ran.stdout).unwrap(), took)
}

/// One module's object in a reading.
fn module<'a>(reading: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    reading["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {reading:#}"))
}

fn cpu_ms(reading: &serde_json::Value, id: &str) -> u64 {
    module(reading, id)["cpu_ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("no cpu_ms for {id}: {reading:#}"))
}

/// Installs a spinner, a sleeper and a memory hog (in `group`'s worker,
/// or in-process) and checks what two readings a second apart say of
/// them; then that a stopped module has no figures.
fn usage_is_measured(group: Option<&str>) {
    let daemon = Daemon::start();
    let hold = HOG_MIB.to_string();
    for (guest, id, args) in [
        ("infinite_loop", "spin", vec![]),
        ("sleep_p1", "nap", vec![]),
        ("memory_bomb_p1", "hog", vec![hold.as_str(), "hold"]),
    ] {
        daemon
            .install(guest, Some(&component(id)), &service(group, &args))
            .expect_code(0);
    }
    daemon.wait_guest_out("hog", &format!("allocated {HOG_MIB} MiB"), WAIT);
    daemon.wait_guest_out("nap", "sleeping", WAIT);
    if group.is_some() {
        for id in ["spin", "nap", "hog"] {
            daemon.wait_for(id, WAIT, "hosted by a worker", |s| s["worker_pid"].is_u64());
        }
    }

    let (first, took) = reading(&daemon);
    assert!(took < READING_BOUND, "a reading took {took:?}");
    std::thread::sleep(Duration::from_millis(1000));
    let (second, _) = reading(&daemon);
    let wall_ms = (second["at"].as_u64().unwrap() - first["at"].as_u64().unwrap()) * 1000;
    let spun = cpu_ms(&second, "spin") - cpu_ms(&first, "spin");
    let napped = cpu_ms(&second, "nap") - cpu_ms(&first, "nap");
    // A busy guest runs most of the second (shared with other tests on
    // two cores); a sleeping one is not polled at all.
    assert!(
        spun >= 300,
        "the spinner ran {spun} ms in about a second ({wall_ms} ms by the readings' clocks): {second:#}"
    );
    assert!(napped <= 20, "the sleeper ran {napped} ms while asleep: {second:#}");

    let hog = module(&second, "hog");
    let memory = hog["memory_bytes"].as_u64().unwrap();
    assert!(
        memory >= HOG_MIB << 20,
        "the hog holds {HOG_MIB} MiB of blocks but reports {memory} bytes: {hog:#}"
    );
    assert!(memory < (HOG_MIB + 8) << 20, "{hog:#}");
    // The spinner's memory is its one page.
    assert_eq!(module(&second, "spin")["memory_bytes"], 65536, "{second:#}");
    let expected = if group.is_some() { "worker" } else { "main" };
    assert_eq!(hog["isolation"], expected);
    assert_eq!(hog["state"], "running");
    assert_eq!(hog["restarts"], 0);
    assert!(second["uptime_secs"].is_u64() && second["free_disk_bytes"].as_u64().unwrap() > 0);
    assert!(second["total_memory_bytes"].as_u64().unwrap() >= second["free_memory_bytes"].as_u64().unwrap());
    assert!(second["daemon_resident_bytes"].as_u64().unwrap() > 0);
    if let Some(group) = group {
        let workers = second["workers"].as_array().unwrap();
        assert_eq!(workers.len(), 1, "{second:#}");
        assert_eq!(workers[0]["group"], group);
        assert!(workers[0]["resident_bytes"].as_u64().unwrap() > 0, "{second:#}");
    }

    // Stopped: no figures.
    daemon.cli(["stop", "spin"]).expect_code(0);
    daemon.wait_for("spin", WAIT, "stopped", |s| state_name(s) == "stopped");
    let (third, _) = reading(&daemon);
    let spin = module(&third, "spin");
    assert_eq!(spin["state"], "stopped");
    assert!(spin["memory_bytes"].is_null() && spin["cpu_ms"].is_null(), "{spin:#}");

    // The text: a row per module, `-` where nothing is known.
    daemon
        .cli(["telemetry"])
        .expect_code(0)
        .stdout_has(&["memory:", "disk:", "MODULE", "CPU", "RESTARTS", "hog", "MiB", "stopped"]);
}

#[test]
fn in_process_modules_report_their_memory_and_cpu_time() {
    usage_is_measured(None);
}

#[test]
fn worker_modules_report_their_memory_and_cpu_time_through_their_worker() {
    usage_is_measured(Some("metered"));
}

/// A worker that cannot answer (stopped by SIGSTOP, as a hung one) costs
/// a reading at most a second, and its modules show no figures; one
/// killed outright costs nothing.
#[test]
fn a_hung_or_killed_worker_never_holds_up_a_reading() {
    let daemon = Daemon::start();
    daemon
        .install("sleep_p1", Some(&component("nap")), &service(Some("doomed"), &[]))
        .expect_code(0);
    daemon
        .install("sleep_p1", Some(&component("local")), &service(None, &[]))
        .expect_code(0);
    let status = daemon.wait_for("nap", WAIT, "hosted by a worker", |s| s["worker_pid"].is_u64());
    let pid = status["worker_pid"].as_u64().unwrap() as u32;
    let (before, _) = reading(&daemon);
    assert!(module(&before, "nap")["memory_bytes"].is_u64(), "{before:#}");

    send_signal(pid, "STOP");
    let (hung, took) = reading(&daemon);
    assert!(took < READING_BOUND, "a reading took {took:?} beside a hung worker");
    assert!(
        took >= Duration::from_millis(900),
        "a reading took only {took:?}: did it wait for the worker at all?"
    );
    let nap = module(&hung, "nap");
    assert!(nap["memory_bytes"].is_null() && nap["cpu_ms"].is_null(), "{nap:#}");
    // The in-process module's figures do not depend on any worker.
    assert!(module(&hung, "local")["memory_bytes"].is_u64(), "{hung:#}");

    send_signal(pid, "KILL");
    let (killed, took) = reading(&daemon);
    assert!(
        took < READING_BOUND,
        "a reading took {took:?} after the worker was killed"
    );
    let nap = module(&killed, "nap");
    assert!(
        nap["state"] != "running" || nap["memory_bytes"].is_null(),
        "a killed worker's module still reports figures: {nap:#}"
    );
    assert!(module(&killed, "local")["cpu_ms"].is_u64(), "{killed:#}");
}
