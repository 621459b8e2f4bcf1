//! The daemon managed over MQTT through a real mosquitto broker (work in
//! progress, issue 6): presence, last will, a command round trip; logging
//! in with a password file; `[mqtt]` files that cannot be used.

use super::harness::*;
use crate::support::{arcella, code};
use arcella_core::protocol::fleet::RemoteCommand;
use arcella_core::protocol::frame::{self, LEN_PREFIX};
use arcella_core::protocol::{DeviceReport, ModuleState, Request, Response, ServerMessage};
use arcella_test_broker::mirror_schema::MirrorSchema;
use arcella_test_broker::{BrokerConfig, Mosquitto};
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use std::ffi::OsStr;
use std::time::{Duration, Instant};

fn next_publish(connection: &mut rumqttc::Connection, topic: &str) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(10);
    for event in connection.iter() {
        assert!(Instant::now() < deadline, "nothing on {topic}");
        if let Ok(Event::Incoming(Packet::Publish(p))) = event
            && p.topic == topic
        {
            return p.payload.to_vec();
        }
    }
    panic!("the connection ended before anything arrived on {topic}");
}

#[test]
fn the_daemon_answers_over_mqtt_and_its_last_will_says_when_it_dies() {
    let broker = Mosquitto::start();
    let mut daemon = Daemon::start_with_config(&format!("[mqtt]\nurl = \"{}\"\ndevice = \"gw-9\"\n", broker.url()));
    daemon
        .install("ticker", Some(TICKER_COMPONENT), TICKER_SERVICE)
        .expect_code(0);
    let mut options = MqttOptions::new("ops", "127.0.0.1", broker.port());
    options.set_keep_alive(Duration::from_secs(5));
    let (operator, mut inbox) = Client::new(options, 10);
    operator
        .subscribe("arcella/v1/gw-9/presence", QoS::AtLeastOnce)
        .unwrap();
    operator
        .subscribe("arcella/v1/gw-9/reply/ops", QoS::AtLeastOnce)
        .unwrap();
    assert_eq!(next_publish(&mut inbox, "arcella/v1/gw-9/presence"), b"online");

    let command = frame::encode(&RemoteCommand {
        id: 5,
        request: Request::List,
        auth: None,
        artifact_signature: None,
    })
    .unwrap();
    operator
        .publish("arcella/v1/gw-9/cmd/ops", QoS::AtLeastOnce, false, command)
        .unwrap();
    let reply = next_publish(&mut inbox, "arcella/v1/gw-9/reply/ops");
    match frame::decode::<ServerMessage>(&reply[LEN_PREFIX..]).unwrap() {
        ServerMessage::Response {
            id: 5,
            result: Ok(Response::Modules(modules)),
        } => assert_eq!(modules[0].id, "ticker"),
        other => panic!("unexpected answer: {other:?}"),
    }

    // The retained state names the board, the engine and the modules.
    operator.subscribe("arcella/v1/gw-9/state", QoS::AtLeastOnce).unwrap();
    let state = next_publish(&mut inbox, "arcella/v1/gw-9/state");
    let report: DeviceReport = frame::decode(&state[LEN_PREFIX..]).unwrap();
    assert_eq!(report.info.board, "generic");
    assert!(report.info.fingerprint.starts_with("wasmtime-48"));
    assert!(report.free_disk > 0 && report.free_memory > 0);
    let ticker = report
        .modules
        .iter()
        .find(|m| m.id == "ticker")
        .expect("ticker reported");
    assert_eq!(ticker.state, ModuleState::Running);
    let health = report
        .health
        .iter()
        .find(|h| h.id == "ticker")
        .expect("ticker's health");
    assert!(
        health.healthy && health.restarts == 0 && health.last_error.is_none(),
        "{health:?}"
    );

    daemon.kill();
    assert_eq!(next_publish(&mut inbox, "arcella/v1/gw-9/presence"), b"offline");
}

#[test]
fn the_daemon_logs_in_with_a_password_file() {
    let broker = Mosquitto::start_with(&BrokerConfig {
        users: vec![("gw-9".into(), "pw9".into()), ("ops".into(), "opspw".into())],
        ..BrokerConfig::default()
    });
    let secrets = tempfile::tempdir().unwrap();
    let password_file = write(secrets.path(), "mqtt.pw", "pw9\n");
    let _daemon = Daemon::start_with_config(&format!(
        "[mqtt]\nurl = \"{}\"\ndevice = \"gw-9\"\nusername = \"gw-9\"\npassword_file = \"{}\"\n",
        broker.url(),
        password_file.display()
    ));
    let mut options = MqttOptions::new("ops", "127.0.0.1", broker.port());
    options
        .set_keep_alive(Duration::from_secs(5))
        .set_credentials("ops", "opspw");
    let (operator, mut inbox) = Client::new(options, 10);
    operator
        .subscribe("arcella/v1/gw-9/presence", QoS::AtLeastOnce)
        .unwrap();
    assert_eq!(next_publish(&mut inbox, "arcella/v1/gw-9/presence"), b"online");
}

#[test]
fn mqtt_files_that_cannot_be_used_stop_the_daemon_at_start_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("s.sock");
    let data = dir.path().join("data");
    let start = |mqtt: &str| {
        let config = write(
            dir.path(),
            "arcella.toml",
            &format!("[mqtt]\ndevice = \"gw-9\"\n{mqtt}"),
        );
        arcella([
            OsStr::new("daemon"),
            OsStr::new("--config"),
            config.as_os_str(),
            OsStr::new("--data-dir"),
            data.as_os_str(),
            OsStr::new("--socket"),
            socket.as_os_str(),
        ])
    };
    let missing = dir.path().join("missing.pw");
    start(&format!(
        "url = \"mqtt://127.0.0.1:1\"\nusername = \"gw-9\"\npassword_file = \"{}\"\n",
        missing.display()
    ))
    .expect_code(1)
    .stderr_has(&["password_file", "missing.pw"])
    .no_panic();
    let no_ca = dir.path().join("no-ca.pem");
    start(&format!(
        "url = \"mqtts://localhost:1\"\nca_file = \"{}\"\n",
        no_ca.display()
    ))
    .expect_code(1)
    .stderr_has(&["ca_file", "no-ca.pem"])
    .no_panic();
    // A mistake visible in the file alone is a config error naming the key.
    start("url = \"http://127.0.0.1:1\"\n")
        .expect_code(1)
        .stderr_has(&["mqtt.url", "mqtt:// or mqtts://"])
        .no_panic();
}

/// The `Event`s published on `topic` until `until` (rumqttc's connection
/// polled with a timeout, so a quiet topic ends the wait on time).
fn events_until(
    connection: &mut rumqttc::Connection,
    topic: &str,
    until: Instant,
) -> Vec<arcella_core::protocol::Event> {
    let mut events = Vec::new();
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        match connection.recv_timeout(left) {
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) if p.topic == topic => {
                events.push(arcella_mqtt::wire::decode(&p.payload).expect("an Event"));
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    events
}

/// A client subscribed to `topic` (the SubAck received), and its
/// connection.
fn watch(broker: &Mosquitto, topic: &str) -> (Client, rumqttc::Connection) {
    watch_as(broker, "watch", topic)
}

/// [`watch`] as client `id` (one broker session per client id).
fn watch_as(broker: &Mosquitto, id: &str, topic: &str) -> (Client, rumqttc::Connection) {
    let (watcher, mut connection) = Client::new(MqttOptions::new(id, "127.0.0.1", broker.port()), 64);
    watcher.subscribe(topic, QoS::AtMostOnce).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    for event in connection.iter() {
        assert!(Instant::now() < deadline, "no SubAck");
        if let Ok(Event::Incoming(Packet::SubAck(_))) = event {
            break;
        }
    }
    (watcher, connection)
}

#[test]
fn log_lines_reach_the_fleet_only_where_a_deployment_asks_and_state_changes_always() {
    use arcella_core::protocol::Event as DaemonEvent;
    let broker = Mosquitto::start();
    let daemon = Daemon::start_with_config(&format!("[mqtt]\nurl = \"{}\"\ndevice = \"gw-logs\"\n", broker.url()));
    let topic = "arcella/v1/gw-logs/events";
    let (_watcher, mut connection) = watch(&broker, topic);
    // Two tickers (a line a second each): one with the default (the
    // device's `logs`, off), one whose deployment asks for info and above.
    daemon
        .install("ticker", Some(TICKER_COMPONENT), TICKER_SERVICE)
        .expect_code(0);
    daemon
        .install(
            "ticker",
            Some("name = \"loud\"\nversion = \"1.0.0\"\n"),
            &format!("{TICKER_SERVICE}[logs]\nforward = \"info\"\n"),
        )
        .expect_code(0);
    // A level that does not exist: refused by name, nothing installed.
    daemon
        .install(
            "ticker",
            Some("name = \"typo\"\nversion = \"1.0.0\"\n"),
            &format!("{TICKER_SERVICE}[logs]\nforward = \"loud\"\n"),
        )
        .expect_code(code::FAILURE)
        .stderr_has(&["forward", "\"loud\"", "\"off\", \"trace\""]);
    let events = events_until(&mut connection, topic, Instant::now() + Duration::from_millis(3500));
    let running = |id: &str| {
        events
            .iter()
            .any(|e| matches!(e, DaemonEvent::State { module, state: ModuleState::Running } if module == id))
    };
    assert!(
        running("ticker") && running("loud"),
        "state changes are always sent: {events:?}"
    );
    let lines = |id: &str| {
        events
            .iter()
            .filter(|e| matches!(e, DaemonEvent::Log(l) if l.module == id))
            .count()
    };
    assert_eq!(lines("ticker"), 0, "the default is off: {events:?}");
    assert!(
        lines("loud") >= 2,
        "the module that asked for its lines got too few: {events:?}"
    );
    // Its lines are all still on the device.
    daemon.cli(["logs", "ticker"]).expect_code(0).stdout_has(&["tick"]);
    daemon.cli(["status", "typo"]).expect_code(code::FAILURE);
}

#[test]
fn a_log_rate_of_zero_and_a_level_that_does_not_exist_are_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let base = "[mqtt]\nurl = \"mqtt://127.0.0.1:1\"\ndevice = \"gw-x\"\n";
    let check = |name: &str, extra: &str| {
        let path = write(dir.path(), name, &format!("{base}{extra}"));
        arcella([
            OsStr::new("daemon"),
            OsStr::new("--config"),
            path.as_os_str(),
            OsStr::new("--check"),
        ])
    };
    check("zero.toml", "logs = \"warn\"\nlogs_per_minute = 0\n")
        .expect_code(code::FAILURE)
        .stderr_has(&["mqtt.logs_per_minute", "0 is not between 1 and 6000", "logs = \"off\""]);
    check("loud.toml", "logs = \"loud\"\n")
        .expect_code(code::FAILURE)
        .stderr_has(&["\"loud\"", "\"off\", \"trace\""]);
    check("fine.toml", "logs = \"warn\"\nlogs_per_minute = 30\n").expect_code(0);
    // The JSON mirror's keys.
    check("fast.toml", "telemetry = \"5ms\"\n")
        .expect_code(code::FAILURE)
        .stderr_has(&[
            "mqtt.telemetry",
            "`5ms` is not between 1s and 24h",
            "telemetry = \"off\"",
        ]);
    check("soon.toml", "telemetry = \"soon\"\n")
        .expect_code(code::FAILURE)
        .stderr_has(&["mqtt.telemetry", "soon", "\"5m\""]);
    check("ha.toml", "json = false\nhome_assistant = true\n")
        .expect_code(code::FAILURE)
        .stderr_has(&["mqtt.home_assistant", "set json = true"]);
    check(
        "prefix.toml",
        "home_assistant = true\nhome_assistant_prefix = \"ha/#\"\n",
    )
    .expect_code(code::FAILURE)
    .stderr_has(&["mqtt.home_assistant_prefix", "no wildcards"]);
    check("json.toml", "telemetry = \"off\"\nhome_assistant = true\n").expect_code(0);
}

#[test]
fn a_flood_of_log_lines_is_cut_to_the_rate_and_the_drops_are_counted() {
    use arcella_core::protocol::Event as DaemonEvent;
    let broker = Mosquitto::start();
    let daemon = Daemon::start_with_config(&format!(
        "[mqtt]\nurl = \"{}\"\ndevice = \"gw-flood\"\nlogs = \"info\"\n",
        broker.url()
    ));
    let topic = "arcella/v1/gw-flood/events";
    let (_watcher, mut connection) = watch(&broker, topic);
    // 200 lines at once, then one burst a second; the default limit is 60
    // a minute, a bucket holding a minute's worth.
    daemon
        .install(
            "chatter",
            Some("name = \"chatter\"\nversion = \"1.0.0\"\n"),
            TICKER_SERVICE,
        )
        .expect_code(0);
    let events = events_until(&mut connection, topic, Instant::now() + Duration::from_millis(3500));
    let texts: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            DaemonEvent::Log(line) if line.module == "chatter" => Some(line.text.as_str()),
            _ => None,
        })
        .collect();
    let sent = texts.iter().filter(|t| **t == "chatt").count();
    // A minute's worth at once, then about one a second for the 3.5 s.
    assert!((60..=65).contains(&sent), "{sent} lines of the flood went out");
    let counted: Vec<&&str> = texts.iter().filter(|t| t.contains("not sent to the fleet")).collect();
    assert!(!counted.is_empty(), "the drops were not counted: {texts:?}");
    assert!(counted[0].contains("logs_per_minute = 60"), "{}", counted[0]);
    // The device kept what the fleet was not sent.
    let kept = daemon
        .cli(["logs", "chatter"])
        .expect_code(0)
        .stdout
        .matches("chatt")
        .count();
    assert!(kept > sent, "the device kept {kept} lines, the fleet got {sent}");
}

/// What a client that knows nothing of Arcella saw: the last payload of
/// each topic, and every JSON event.
#[derive(Default)]
struct Seen {
    latest: std::collections::HashMap<String, Vec<u8>>,
    events: Vec<serde_json::Value>,
    telemetry: Vec<serde_json::Value>,
}

impl Seen {
    fn json(&self, topic: &str) -> Option<serde_json::Value> {
        self.latest
            .get(topic)
            .filter(|p| !p.is_empty())
            .map(|p| serde_json::from_slice(p).unwrap())
    }
}

/// Reads publishes into `seen` until `done` says so (or 15 s), checking
/// every payload of `<device>/json/…` against the schema as it arrives.
fn read_mirror(
    connection: &mut rumqttc::Connection,
    schema: &mut MirrorSchema,
    seen: &mut Seen,
    done: impl Fn(&Seen) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done(seen) {
        let left = deadline
            .checked_duration_since(Instant::now())
            .unwrap_or_else(|| panic!("not seen in time; seen: {:?}", seen.latest.keys().collect::<Vec<_>>()));
        let Ok(Ok(Event::Incoming(Packet::Publish(p)))) = connection.recv_timeout(left) else {
            continue;
        };
        if let Some((_, leaf)) = p.topic.split_once("/json/") {
            let value = schema.parse_valid(leaf, &p.payload);
            match leaf {
                "events" => seen.events.push(value),
                "telemetry" => seen.telemetry.push(value),
                _ => {}
            }
        }
        seen.latest.insert(p.topic.clone(), p.payload.to_vec());
    }
}

#[test]
fn a_plain_mqtt_client_reads_the_json_mirror_by_its_schema_and_home_assistant_finds_the_modules() {
    let broker = Mosquitto::start();
    let daemon = Daemon::start_with_config(&format!(
        "[mqtt]\nurl = \"{}\"\ndevice = \"gw-json\"\ntelemetry = \"1s\"\nhome_assistant = true\n",
        broker.url()
    ));
    // rumqttc as any MQTT client: topic filters and JSON, no Arcella type.
    let (watcher, mut connection) = watch(&broker, "arcella/v1/gw-json/json/#");
    watcher.subscribe("homeassistant/#", QoS::AtMostOnce).unwrap();
    daemon
        .install(
            "ticker",
            Some(TICKER_COMPONENT),
            &format!("{TICKER_SERVICE}[logs]\nforward = \"info\"\n"),
        )
        .expect_code(0);
    let mut schema = MirrorSchema::load();
    let mut seen = Seen::default();
    let state = "arcella/v1/gw-json/json/state";
    let module_config = "homeassistant/sensor/arcella_gw-json/module_ticker/config";
    let ticker_running = |seen: &Seen| {
        seen.json(state)
            .is_some_and(|s| s["modules"]["ticker"]["state"] == "running")
    };
    read_mirror(&mut connection, &mut schema, &mut seen, |seen| {
        ticker_running(seen)
            && seen.latest.contains_key(module_config)
            && seen.events.iter().any(|e| e["stream"] == "stdout")
            && seen
                .telemetry
                .iter()
                .filter(|t| t["modules"]["ticker"]["state"] == "running")
                .count()
                >= 2
    });

    let device = seen.json(state).unwrap();
    assert_eq!(device["device"], "gw-json");
    assert_eq!(device["module_count"], 1);
    assert_eq!(device["modules"]["ticker"]["isolation"], "main");
    assert_eq!(device["modules"]["ticker"]["healthy"], true);
    assert!(device["free_memory"].as_u64().unwrap() > 0);
    assert!(
        seen.events
            .iter()
            .any(|e| e["type"] == "state" && e["module"] == "ticker" && e["state"] == "running"),
        "{:?}",
        seen.events
    );
    assert!(
        seen.events.iter().any(|e| e["type"] == "log"
            && e["module"] == "ticker"
            && e["stream"] == "stdout"
            && e["text"].as_str().is_some_and(|t| t.contains("tick"))),
        "the ticker's own lines: {:?}",
        seen.events
    );
    // Telemetry at its interval: readings a second apart, figures that
    // are the device's.
    let readings: Vec<_> = seen
        .telemetry
        .iter()
        .filter(|t| t["modules"]["ticker"]["state"] == "running")
        .collect();
    let (first, last) = (readings[0], readings[readings.len() - 1]);
    assert!(last["at"].as_u64() > first["at"].as_u64(), "{first}\n{last}");
    assert!(first["daemon_resident"].as_u64().unwrap() > 1 << 20);
    assert!(first["total_memory"].as_u64() >= first["free_memory"].as_u64());
    assert!(first["free_disk"].as_u64().unwrap() > 0);
    assert!(first["modules"]["ticker"]["started_at"].as_u64().is_some(), "{first}");
    // The module's own figures: its linear memory, and the time its code ran.
    assert!(last["modules"]["ticker"]["memory"].as_u64().unwrap() >= 65536, "{last}");
    assert!(last["modules"]["ticker"]["cpu_ms"].as_u64().is_some(), "{last}");
    // Convergence: no fleet document yet, said so in JSON (retained).
    let convergence = seen.json("arcella/v1/gw-json/json/convergence").unwrap();
    assert_eq!(convergence["phase"], "idle");

    // Home Assistant: the device's connectivity from its presence, a
    // module count, and a sensor per module that reads its own entry.
    let online: serde_json::Value =
        serde_json::from_slice(&seen.latest["homeassistant/binary_sensor/arcella_gw-json/online/config"]).unwrap();
    assert_eq!(online["state_topic"], "arcella/v1/gw-json/presence");
    assert_eq!(online["device_class"], "connectivity");
    assert!(
        seen.latest
            .contains_key("homeassistant/sensor/arcella_gw-json/modules/config")
    );
    let sensor = seen.json(module_config).unwrap();
    assert_eq!(sensor["state_topic"], state);
    assert_eq!(sensor["availability_topic"], "arcella/v1/gw-json/presence");
    assert_eq!(sensor["device"]["identifiers"][0], "arcella_gw-json");
    assert!(
        sensor["value_template"]
            .as_str()
            .unwrap()
            .contains("value_json.modules['ticker'].state"),
        "{sensor}"
    );

    // Removed: Home Assistant is told to delete the entity (an empty
    // retained config), and the state no longer lists it.
    daemon.cli(["remove", "ticker"]).expect_code(0);
    read_mirror(&mut connection, &mut schema, &mut seen, |seen| {
        seen.latest.get(module_config).is_some_and(Vec::is_empty)
            && seen.json(state).is_some_and(|s| s["module_count"] == 0)
    });
    // A client arriving later finds the same retained picture.
    let (_late, mut late) = watch_as(&broker, "late", "arcella/v1/gw-json/json/state");
    let mut later = Seen::default();
    read_mirror(&mut late, &mut schema, &mut later, |seen| seen.json(state).is_some());
    assert_eq!(later.json(state).unwrap()["module_count"], 0);

    // Discovery turned off: what it announced is cleared at the next
    // start, not left for Home Assistant to show as a device for good.
    let mut daemon = daemon;
    assert_eq!(daemon.terminate(), Some(0));
    let config = daemon.socket().with_file_name("arcella.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("home_assistant = true", "home_assistant = false")).unwrap();
    daemon.spawn();
    let online = "homeassistant/binary_sensor/arcella_gw-json/online/config";
    let count = "homeassistant/sensor/arcella_gw-json/modules/config";
    read_mirror(&mut connection, &mut schema, &mut seen, |seen| {
        [online, count]
            .iter()
            .all(|t| seen.latest.get(*t).is_some_and(Vec::is_empty))
    });
    assert!(!daemon.data_dir().join("fleet/home-assistant").exists());
}
