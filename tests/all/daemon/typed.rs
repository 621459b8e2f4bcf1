//! Typed calls between modules (docs/typed-calls.md): the `thermo_provider`
//! component exports acme:thermo/sensor@1.2.0 as `kind = "provider"`, and
//! `thermo_consumer` calls every function of it: in the daemon and in
//! workers, in every pairing, with records, variants, enums, options,
//! results, flags, tuples, lists and strings crossing intact. Consumers
//! wait for their providers and follow them through stops, updates and
//! removals; a provider that spins or traps fails its caller's call
//! only; installs refuse what could never link, naming the fix.

use super::harness::*;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

fn component(name: &str, version: &str) -> String {
    format!("name = \"{name}\"\nversion = \"{version}\"\n")
}

fn placement(main: bool, group: &str) -> String {
    if main {
        "isolation = \"main\"\ntrusted = true\n".to_owned()
    } else {
        format!("isolation = \"worker\"\ngroup = \"{group}\"\n")
    }
}

/// A provider deployment: where it runs, its LABEL, its pool.
fn provider(main: bool, label: &str, instances: u16) -> String {
    format!(
        "kind = \"provider\"\n{}[update]\nhealth_window = \"0s\"\n[capabilities.env]\nLABEL = \"{label}\"\n\
         [provider]\ninstances = {instances}\n",
        placement(main, "providers")
    )
}

/// A consumer deployment: its kind, where it runs, its mode (argument),
/// the provider it may link to, and extra TOML.
fn consumer(kind: &str, main: bool, mode: &str, provider: &str, extra: &str) -> String {
    format!(
        "kind = \"{kind}\"\n{}[restart]\npolicy = \"never\"\n[capabilities]\nargs = [\"{mode}\"]\n\
         [imports]\n\"acme:thermo/sensor\" = \"{provider}\"\n{extra}",
        placement(main, "consumers")
    )
}

fn install(daemon: &Daemon, guest: &str, name: &str, deployment: &str) {
    daemon
        .install(guest, Some(&component(name, "1.0.0")), deployment)
        .expect_code(0);
}

fn out(daemon: &Daemon, module: &str) -> Vec<String> {
    daemon.guest_out(module)
}

fn wait_out(daemon: &Daemon, module: &str, needle: &str) -> Vec<String> {
    daemon.wait_guest_out(module, needle, WAIT)
}

fn line<'a>(lines: &'a [String], prefix: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in {lines:#?}"))
}

fn state(daemon: &Daemon, id: &str) -> String {
    daemon.status(id).map(|s| state_name(&s)).unwrap_or_default()
}

fn wait_state(daemon: &Daemon, id: &str, want: &str) -> serde_json::Value {
    daemon.wait_for(id, WAIT, want, |s| state_name(s) == want)
}

#[test]
fn calls_carry_every_kind_of_value_in_every_pairing() {
    let daemon = Daemon::start();
    install(
        &daemon,
        "thermo_provider",
        "thermo-main",
        &provider(true, "in-daemon", 1),
    );
    install(
        &daemon,
        "thermo_provider",
        "thermo-worker",
        &provider(false, "in-worker", 2),
    );
    wait_state(&daemon, "thermo-main", "running");
    wait_state(&daemon, "thermo-worker", "running");
    let pairings = [
        ("main-to-main", true, "thermo-main", "in-daemon"),
        ("main-to-worker", true, "thermo-worker", "in-worker"),
        ("worker-to-main", false, "thermo-main", "in-daemon"),
        ("worker-to-worker", false, "thermo-worker", "in-worker"),
    ];
    for (name, main, provider, _) in pairings {
        install(
            &daemon,
            "thermo_consumer",
            name,
            &consumer("command", main, "all", provider, ""),
        );
    }
    for (name, _, _, label) in pairings {
        let status = daemon.wait_for(name, WAIT, "finished", |s| state_name(s) == "exited");
        let lines = out(&daemon, name);
        assert_eq!(status["exit_code"], 0, "{name}: {status}\n{lines:#?}\n{}", daemon.log());
        let read = line(&lines, "read: ");
        assert!(
            read.starts_with("read: Ok(") && read.contains("value: 21.5") && read.contains("Celsius"),
            "{name}: {read}"
        );
        assert!(
            read.contains(&format!("label: \"{label}\"")),
            "{name} reached the wrong provider: {read}"
        );
        assert!(line(&lines, "read-f: ").contains("value: 70.7"), "{name}: {lines:#?}");
        assert_eq!(line(&lines, "history: "), "history: 3 [20.0, 20.5, 21.0]", "{name}");
        let echo = line(&lines, "echo: ");
        for part in [
            "[0, 1, 254, 255]",
            "Some(\"tag ✓\")",
            "-8, 65535, -2000000, 18446744073709551615, 'ü', true, 1.5",
        ] {
            assert!(echo.contains(part), "{name}: {part} missing from {echo}");
        }
        assert_eq!(line(&lines, "echo-none: "), "echo-none: None", "{name}");
        let flags = line(&lines, "features: ");
        // humidity | battery: bits 1 and 4 (wit-bindgen's Debug shows bits).
        assert_eq!(flags, "features: Features { bits: 5 }", "{name}");
        assert_eq!(line(&lines, "whoami: "), format!("whoami: {label}"), "{name}");
    }
    // What `wiring` shows while a consumer runs: a looping one in a worker.
    install(
        &daemon,
        "thermo_consumer",
        "looping",
        &consumer("service", false, "loop", "*", ""),
    );
    wait_out(&daemon, "looping", "whoami: in-");
    let wiring: serde_json::Value =
        serde_json::from_str(&daemon.cli(["--json", "wiring"]).expect_code(0).stdout).unwrap();
    let providers = wiring["providers"].as_array().unwrap();
    let main = providers
        .iter()
        .find(|p| p["module"] == "thermo-main")
        .expect("thermo-main listed");
    assert_eq!(main["process"], "daemon");
    assert_eq!(main["exports"][0], "acme:thermo/sensor@1.2.0");
    let worker = providers
        .iter()
        .find(|p| p["module"] == "thermo-worker")
        .expect("thermo-worker listed");
    assert_eq!(worker["process"], "worker providers");
    let link = &wiring["links"].as_array().unwrap()[0];
    assert_eq!(link["consumer"], "looping", "{wiring}");
    assert_eq!(link["import"], "acme:thermo/sensor@1.2.0");
    assert_eq!(link["process"], "worker consumers");
    let text = daemon.cli(["wiring"]).expect_code(0).stdout.clone();
    assert!(text.contains("thermo-worker") && text.contains("looping"), "{text}");
}

#[test]
fn consumers_wait_for_providers_and_follow_them_through_stop_update_and_removal() {
    let daemon = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    install(
        &daemon,
        "thermo_consumer",
        "waiter",
        &consumer("service", false, "loop", "thermo", ""),
    );
    let stopper_extra = "[calls]\nwhen_provider_stops = \"stop\"\n";
    install(
        &daemon,
        "thermo_consumer",
        "stopper",
        &consumer("service", true, "loop", "thermo", stopper_extra),
    );
    for id in ["waiter", "stopper"] {
        let status = wait_state(&daemon, id, "waiting");
        let why = status["waiting_for"].as_str().unwrap_or_default();
        assert!(
            why.contains("acme:thermo/sensor@1.2.0") && why.contains("`thermo`"),
            "{id}: {status}"
        );
    }
    // Another provider of the interface is not one they may use.
    install(&daemon, "thermo_provider", "impostor", &provider(true, "impostor", 1));
    wait_state(&daemon, "impostor", "running");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(state(&daemon, "waiter"), "waiting");
    // The provider arrives: both start.
    install(&daemon, "thermo_provider", "thermo", &provider(false, "v1", 1));
    wait_out(&daemon, "waiter", "whoami: v1");
    wait_out(&daemon, "stopper", "whoami: v1");

    // An update of the provider keeps its consumers running; their calls
    // reach the new version.
    let before = daemon.status("waiter").unwrap();
    let artifact = crate::support::artifact("thermo_provider", "native");
    let component_path = write(dir.path(), "c.toml", &component("thermo", "2.0.0"));
    let deployment_path = write(dir.path(), "d.toml", &provider(false, "v2", 1));
    daemon
        .update("thermo", &artifact, &component_path, &deployment_path)
        .expect_code(0);
    wait_out(&daemon, "waiter", "whoami: v2");
    wait_out(&daemon, "stopper", "whoami: v2");
    let after = daemon.status("waiter").unwrap();
    assert_eq!(state_name(&after), "running");
    assert_eq!(
        after["restarts"], before["restarts"],
        "the consumer was restarted: {after}"
    );

    // An update that cannot start (its memory limit is below what the
    // provider's instance needs) fails its health window and rolls back to
    // v2: calls queued on it go to v2, the consumers never notice more
    // than the wait, and the next good update reaches them.
    let cannot_start = format!(
        "kind = \"provider\"\n{}[update]\nhealth_window = \"2s\"\n[limits]\nmemory = \"64K\"\n",
        placement(false, "providers")
    );
    let deployment_path = write(dir.path(), "d3.toml", &cannot_start);
    let component_path = write(dir.path(), "c3.toml", &component("thermo", "3.0.0"));
    daemon.update("thermo", &artifact, &component_path, &deployment_path);
    let back = daemon.wait_for("thermo", Duration::from_secs(20), "back on 2.0.0", |s| {
        state_name(s) == "running" && s["version"] == "2.0.0"
    });
    assert_eq!(back["update_outcome"], "rolled_back", "{back}");
    assert!(
        back["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("memory limit of 65536 bytes"),
        "{back}"
    );
    let deployment_path = write(dir.path(), "d4.toml", &provider(false, "v4", 1));
    let component_path = write(dir.path(), "c4.toml", &component("thermo", "4.0.0"));
    daemon
        .update("thermo", &artifact, &component_path, &deployment_path)
        .expect_code(0);
    for consumer in ["waiter", "stopper"] {
        wait_out(&daemon, consumer, "whoami: v4");
        let now = daemon.status(consumer).unwrap();
        assert_eq!(state_name(&now), "running", "{consumer}: {now}");
        assert_eq!(now["restarts"], 0, "{consumer} was restarted: {now}");
        assert!(now["last_error"].is_null(), "{consumer} saw a failed call: {now}");
    }

    // Stopping the provider: "wait" waits, "stop" stops.
    daemon.cli(["stop", "thermo"]).expect_code(0);
    let status = wait_state(&daemon, "waiter", "waiting");
    assert!(
        status["waiting_for"].as_str().unwrap_or_default().contains("thermo"),
        "{status}"
    );
    wait_state(&daemon, "stopper", "stopped");
    daemon.cli(["start", "thermo"]).expect_code(0);
    wait_state(&daemon, "waiter", "running");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        state(&daemon, "stopper"),
        "stopped",
        "a stopped consumer came back by itself"
    );

    // Removing the provider leaves the waiter waiting again.
    daemon.cli(["remove", "thermo"]).expect_code(0);
    wait_state(&daemon, "waiter", "waiting");
    let trail = daemon
        .cli(["audit", "--module", "waiter"])
        .expect_code(0)
        .stdout
        .clone();
    assert!(trail.contains("waiting"), "{trail}");
}

#[test]
fn a_provider_that_spins_or_traps_fails_only_that_call() {
    let daemon = Daemon::start();
    install(&daemon, "thermo_provider", "thermo", &provider(false, "steady", 1));
    install(
        &daemon,
        "thermo_provider",
        "thermo-main",
        &provider(true, "steady-main", 1),
    );
    wait_state(&daemon, "thermo", "running");
    let quick = "[calls]\ntimeout = \"400ms\"\n";
    for (name, main, provider) in [("spin-w", true, "thermo"), ("spin-m", false, "thermo-main")] {
        install(
            &daemon,
            "thermo_consumer",
            name,
            &consumer("command", main, "spin", provider, quick),
        );
        let status = daemon.wait_for(name, WAIT, "failed", |s| state_name(s) == "failed");
        let why = status["failure"].as_str().unwrap_or_default();
        assert!(
            why.contains("did not answer") && why.contains("400ms"),
            "{name}: {status}"
        );
    }
    for (name, main, provider) in [("crash-w", true, "thermo"), ("crash-m", false, "thermo-main")] {
        install(
            &daemon,
            "thermo_consumer",
            name,
            &consumer("command", main, "crash", provider, ""),
        );
        let status = daemon.wait_for(name, WAIT, "failed", |s| state_name(s) == "failed");
        let why = status["failure"].as_str().unwrap_or_default();
        assert!(why.contains("trapped in") && why.contains("crash"), "{name}: {status}");
    }
    // The providers kept serving: a fresh instance answers the next caller.
    for id in ["thermo", "thermo-main"] {
        assert_eq!(state(&daemon, id), "running", "{id}");
        let log = daemon.cli(["logs", id]).stdout;
        assert!(log.contains("#crash") && log.contains("#spin"), "{id}: {log}");
    }
    for (name, main, provider) in [("after-w", true, "thermo"), ("after-m", false, "thermo-main")] {
        install(
            &daemon,
            "thermo_consumer",
            name,
            &consumer("command", main, "all", provider, ""),
        );
        let status = daemon.wait_for(name, WAIT, "finished", |s| state_name(s) == "exited");
        assert_eq!(status["exit_code"], 0, "{name}: {status}");
    }
    // A provider removed in the middle of a call: its caller stops and
    // waits for a provider again; nothing else is disturbed.
    let patient = "[calls]\ntimeout = \"1m\"\n";
    install(
        &daemon,
        "thermo_consumer",
        "victim",
        &consumer("service", false, "spin", "thermo", patient),
    );
    wait_out(&daemon, "victim", "calling spin");
    std::thread::sleep(Duration::from_millis(200));
    let began = Instant::now();
    daemon.cli(["remove", "thermo"]).expect_code(0);
    let status = wait_state(&daemon, "victim", "waiting");
    assert!(began.elapsed() < Duration::from_secs(10), "took {:?}", began.elapsed());
    assert!(
        status["waiting_for"].as_str().unwrap_or_default().contains("`thermo`"),
        "{status}"
    );
    assert_eq!(state(&daemon, "thermo-main"), "running");
}

#[test]
fn what_could_never_link_is_refused_or_named() {
    let daemon = Daemon::start();
    // An import no [imports] grants: refused at install, with the fix.
    let ungranted = "kind = \"command\"\n[restart]\npolicy = \"never\"\n";
    daemon
        .install("thermo_consumer", Some(&component("c", "1.0.0")), ungranted)
        .expect_code(1)
        .stderr_has(&[
            "acme:thermo/sensor@1.2.0",
            "[imports] \"acme:thermo/sensor\" = \"PROVIDER\"",
        ]);
    for (bad, key) in [
        ("[imports]\n\"acme-thermo\" = \"x\"\n", "is not an interface name"),
        (
            "[imports]\n\"wasi:keyvalue/store\" = \"x\"\n",
            "served by the daemon itself",
        ),
        (
            "[imports]\n\"acme:thermo/sensor\" = \"Not A Module\"\n",
            "is not a module id",
        ),
        ("[provider]\ninstances = 2\n", "applies to kind = \"provider\" only"),
        ("[calls]\ntimeout = \"0s\"\n", "between 1ms and 1h"),
    ] {
        let deployment = format!("kind = \"command\"\n{bad}");
        daemon
            .install("thermo_consumer", Some(&component("c", "1.0.0")), &deployment)
            .expect_code(1)
            .stderr_has(&[key]);
    }
    let pool = "kind = \"provider\"\n[provider]\ninstances = 17\n";
    daemon
        .install("thermo_provider", Some(&component("p", "1.0.0")), pool)
        .expect_code(1)
        .stderr_has(&["instances", "between 1 and 16"]);
    // A provider that exports nothing for others.
    daemon
        .install("hello_p2", Some(&component("p", "1.0.0")), "kind = \"provider\"\n")
        .expect_code(1)
        .stderr_has(&["exports no interface for other modules"]);
    assert!(daemon.cli(["list"]).stdout.contains("no modules installed"));

    // A consumer built against another shape of the interface waits,
    // told why it does not fit.
    install(&daemon, "thermo_provider", "thermo", &provider(true, "x", 1));
    install(
        &daemon,
        "thermo_misfit",
        "misfit",
        &consumer("command", true, "all", "*", ""),
    );
    let status = wait_state(&daemon, "misfit", "waiting");
    let why = status["waiting_for"].as_str().unwrap_or_default();
    assert!(why.contains("does not fit") && why.contains("`read`"), "{status}");

    // Two providers importing each other: the cycle is named.
    let cyclic = |other: &str| {
        format!(
            "kind = \"provider\"\nisolation = \"main\"\ntrusted = true\n[imports]\n\"acme:cycle/{other}\" = \"*\"\n"
        )
    };
    install(&daemon, "cycle_a", "cycle-a", &cyclic("b"));
    install(&daemon, "cycle_b", "cycle-b", &cyclic("a"));
    let status = wait_state(&daemon, "cycle-b", "failed");
    let why = status["failure"].as_str().unwrap_or_default();
    assert!(why.contains("import cycle: cycle-b → cycle-a → cycle-b"), "{status}");
}
