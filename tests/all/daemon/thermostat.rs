//! The thermostat example (issue 15) as a user runs it: the room sensor
//! (a provider in the daemon's process) and the thermostat (a service in
//! a worker that calls it) built from examples/thermostat by the test
//! setup, installed with the example's own manifests under the example's
//! arcella.toml (only the broker's port changed), with a real mosquitto
//! and its command-line clients as the outside world: readings every
//! second on home/livingroom/temp, a target set with mosquitto_pub that
//! the thermostat heats towards, a target it refuses without losing the
//! one it has; a
//! sensor that stops and comes back.

use super::harness::*;
use arcella_test_broker::Mosquitto;
use std::path::Path;
use std::time::Duration;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/thermostat");
const WAIT: Duration = Duration::from_secs(20);

fn example(file: &str) -> std::path::PathBuf {
    Path::new(EXAMPLE).join(file)
}

/// The next `count` readings the broker sees, parsed.
fn readings(broker: &Mosquitto, count: usize) -> Vec<serde_json::Value> {
    let lines = broker.subscriber("home/livingroom/temp", count, 15, None).lines();
    assert_eq!(lines.len(), count, "readings on home/livingroom/temp: {lines:?}");
    lines
        .iter()
        .map(|l| {
            let json = l
                .strip_prefix("home/livingroom/temp ")
                .expect("the topic, then the reading");
            serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
        })
        .collect()
}

#[test]
fn the_thermostat_publishes_through_the_bridge_and_obeys_mosquitto_pub() {
    let broker = Mosquitto::start();
    let config = std::fs::read_to_string(example("arcella.toml"))
        .unwrap()
        .replace("mqtt://127.0.0.1:1883", &broker.url());
    let daemon = Daemon::start_with_config(&config);
    daemon.wait_bridge_connected(WAIT);
    for (module, manifests) in [("room_sensor", "sensor"), ("thermostat", "controller")] {
        daemon
            .install_file(
                &crate::support::artifact(module, "native"),
                &example(&format!("{manifests}.component.toml")),
                &example(&format!("{manifests}.deployment.toml")),
            )
            .expect_code(0);
    }
    // The sensor serves from the daemon's process; the thermostat calls it
    // from its worker.
    let wiring: serde_json::Value =
        serde_json::from_str(&daemon.cli(["--json", "wiring"]).expect_code(0).stdout).unwrap();
    assert_eq!(wiring["providers"][0]["module"], "room-sensor", "{wiring}");
    assert_eq!(wiring["providers"][0]["process"], "daemon", "{wiring}");
    assert_eq!(wiring["links"][0]["consumer"], "thermostat", "{wiring}");
    assert_eq!(
        wiring["links"][0]["import"], "example:thermostat/room@1.0.0",
        "{wiring}"
    );
    assert_eq!(wiring["links"][0]["process"], "worker thermostat", "{wiring}");

    // Readings every second, towards the default target of 21 °C.
    let first = readings(&broker, 2);
    for r in &first {
        assert_eq!(r["target"], 21.0, "{r}");
    }
    let seq = |r: &serde_json::Value| r["seq"].as_u64().unwrap();
    assert_eq!(seq(&first[1]), seq(&first[0]) + 1, "one reading per call: {first:?}");

    // A target from outside: the room is heated towards it.
    broker.publish("home/livingroom/thermostat/set", "30");
    daemon.wait_log("thermostat", "target set to 30.0 °C", WAIT);
    let heating = readings(&broker, 3);
    let celsius = |r: &serde_json::Value| r["celsius"].as_f64().unwrap();
    assert!(heating.iter().all(|r| r["target"] == 30.0), "{heating:?}");
    assert!(heating[1..].iter().all(|r| r["heating"] == true), "{heating:?}");
    assert!(
        celsius(&heating[2]) > celsius(&heating[1]),
        "the heater warms the room: {heating:?}"
    );

    // Targets it refuses: named in its log, the target it had kept.
    for bad in ["hot", "99"] {
        broker.publish("home/livingroom/thermostat/set", bad);
        daemon.wait_log(
            "thermostat",
            &format!("the handler returned an error: a target is a number of °C from 5 to 35, not \"{bad}\""),
            WAIT,
        );
    }
    assert!(readings(&broker, 1)[0]["target"] == 30.0);
    daemon.cli(["kv", "thermostat", "get", "target"]).stdout_has(&["30"]);
    // Only its readings leave: it may publish nowhere else, and nothing
    // from outside reaches it but its commands.
    let status = daemon.status("thermostat").unwrap();
    assert_eq!(status["messaging"]["received"], 3, "{status}");
    assert_eq!(status["messaging"]["failed"], 2, "{status}");
    assert_eq!(status["messaging"]["denied"], 0, "{status}");

    // The sensor stops: the thermostat waits for it, naming what it
    // misses, and comes back with it, its target kept in its store.
    daemon.cli(["stop", "room-sensor"]).expect_code(0);
    let waiting = daemon.wait_for("thermostat", WAIT, "waiting", |s| state_name(s) == "waiting");
    let why = waiting["waiting_for"].as_str().unwrap_or_default();
    assert!(why.contains("example:thermostat/room@1.0.0"), "{waiting}");
    daemon.cli(["start", "room-sensor"]).expect_code(0);
    let back = readings(&broker, 1);
    assert_eq!(back[0]["target"], 30.0, "{back:?}");
}
