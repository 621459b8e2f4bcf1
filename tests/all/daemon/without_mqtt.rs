//! A build without the `mqtt` feature (`cargo test -p arcella
//! --no-default-features --test all daemon::without_mqtt`, as
//! scripts/test runs it): managed over its socket only, it refuses
//! whatever asks for MQTT with an error naming the feature, and loses
//! nothing it already runs.

use super::harness::*;
use crate::support::arcella;

const WITHOUT: &str = "built without MQTT (cargo feature `mqtt`)";

#[test]
fn a_configuration_asking_for_mqtt_or_the_bridge_is_refused_naming_the_feature() {
    let dir = tempfile::tempdir().unwrap();
    for (section, text) in [
        ("[mqtt]", "[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\ndevice = \"gw-1\"\n"),
        (
            "[bridge]",
            "[bridge]\nurl = \"mqtt://127.0.0.1:1883\"\n[[bridge.out]]\nlocal = \"home/#\"\nremote = \"site1/home/#\"\n",
        ),
    ] {
        let config = write(dir.path(), "arcella.toml", text);
        let config = config.to_str().unwrap();
        for args in [
            vec!["daemon", "--check", "--config", config],
            vec!["daemon", "--config", config],
        ] {
            arcella(&args).expect_code(1).no_panic().stderr_has(&[
                &format!("the configuration has {section}"),
                WITHOUT,
                "remove [mqtt] and [bridge]",
            ]);
        }
    }
}

#[test]
fn the_socket_manages_modules_and_a_broker_is_refused_leaving_them_running() {
    let daemon = Daemon::start();
    daemon.install_running_ticker();
    daemon
        .cli(["--broker", "mqtt://127.0.0.1:1883", "--device", "gw-1", "list"])
        .expect_code(1)
        .no_panic()
        .stderr_has(&[WITHOUT, "over its local socket"]);
    daemon
        .cli(["list"])
        .expect_code(0)
        .stdout_has(&["ticker", "1.0.0", "running"]);
}

#[test]
fn the_fleet_verbs_are_not_offered() {
    arcella(["fleet", "devices", "--broker", "mqtt://127.0.0.1:1883"])
        .expect_code(2)
        .stderr_has(&["unrecognized subcommand 'fleet'"]);
    let help = arcella(["--help"]);
    assert!(!help.stdout.contains("\n  fleet "), "{}", help.stdout);
}
